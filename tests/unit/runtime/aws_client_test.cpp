#include "runtime/aws_client.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>

#include "common/sigv4.hpp"
#include "fake_runtime_api.hpp"

namespace sluice::runtime {
namespace {

using testing::FakeRuntimeApi;

const std::string kAccessKey = "ASIAEXAMPLEEXAMPLE01";
const std::string kSecretKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const std::string kSessionToken = "IQoJb3JpZ2luX2VjEXAMPLE-session-token";

AwsEnvironment environment_for(const FakeRuntimeApi& api) {
  return {api.url(), "eu-west-3", kAccessKey, kSecretKey, kSessionToken};
}

TEST(AwsJsonCall, SignsWithTheSessionTokenAndTheRegionsScope) {
  FakeRuntimeApi api;
  api.answer_aws_calls(200, R"({"ARN":"arn:x","Name":"db","SecretString":"{\"a\":1}"})");
  const AwsResponse response =
      aws_json_call(environment_for(api), "secretsmanager", "secretsmanager.GetSecretValue",
                    boost::json::object{{"SecretId", "db"}});
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response.body.at("Name").as_string(), "db");

  const auto sent = api.received("/");
  ASSERT_EQ(sent.size(), 1u);
  const auto& request = sent[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.body, R"({"SecretId":"db"})");
  EXPECT_EQ(request.headers.at("x-amz-target"), "secretsmanager.GetSecretValue");
  EXPECT_EQ(request.headers.at("content-type"), "application/x-amz-json-1.1");
  EXPECT_EQ(request.headers.at("x-amz-security-token"), kSessionToken);

  const std::string& authorization = request.headers.at("authorization");
  const auto scope = cloud::parse_authorization(authorization);
  ASSERT_TRUE(scope);
  EXPECT_EQ(scope->access_key, kAccessKey);
  EXPECT_EQ(scope->region, "eu-west-3");
  EXPECT_EQ(scope->service, "secretsmanager");
  EXPECT_EQ(scope->date, request.headers.at("x-amz-date").substr(0, 8));
  EXPECT_NE(authorization.find("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;"
                               "x-amz-target,"),
            std::string::npos)
      << authorization;

  const auto secret_for = [](std::string_view key) -> std::optional<std::string> {
    if (key == kAccessKey) return kSecretKey;
    return std::nullopt;
  };
  EXPECT_EQ(cloud::verify_signature(request.method, request.target, request.headers, request.body,
                                    secret_for),
            cloud::SignatureCheck::kValid);
  // The token is covered by the signature: another one does not verify.
  auto forged = request.headers;
  forged["x-amz-security-token"] = "another-token";
  EXPECT_EQ(
      cloud::verify_signature(request.method, request.target, forged, request.body, secret_for),
      cloud::SignatureCheck::kMismatch);
}

TEST(AwsJsonCall, LongTermKeysSendNoToken) {
  FakeRuntimeApi api;
  AwsEnvironment environment = environment_for(api);
  environment.session_token.clear();
  ASSERT_TRUE(aws_json_call(environment, "lambda", "x.Y", boost::json::object{}).ok());
  const auto sent = api.received("/");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_FALSE(sent[0].headers.contains("x-amz-security-token"));
}

TEST(AwsJsonCall, ReportsTheServicesErrorCodeAndMessage) {
  FakeRuntimeApi api;
  api.answer_aws_calls(
      400,
      R"({"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."})");
  const AwsResponse response =
      aws_json_call(environment_for(api), "secretsmanager", "secretsmanager.GetSecretValue",
                    boost::json::object{});
  EXPECT_FALSE(response.ok());
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.error_type, "ResourceNotFoundException");
  EXPECT_EQ(response.error_message, "Secrets Manager can't find the specified secret.");

  api.answer_aws_calls(400, R"({"message":"User is not authorized"})", "AccessDeniedException");
  try {
    get_secret_string(environment_for(api), "db");
    FAIL() << "expected an AwsError";
  } catch (const AwsError& e) {
    EXPECT_EQ(e.type(), "AccessDeniedException");
    EXPECT_STREQ(e.what(), "User is not authorized");
    EXPECT_EQ(e.status(), 400);
  }

  api.answer_aws_calls(500, "not json");
  const AwsResponse broken = aws_json_call(environment_for(api), "secretsmanager", "x.Y", {});
  EXPECT_EQ(broken.error_type, "HTTP500");
  EXPECT_TRUE(broken.body.is_null());
}

TEST(GetSecretString, ReturnsTheSecretString) {
  FakeRuntimeApi api;
  api.answer_aws_calls(200, R"({"SecretString":"{\"username\":\"app\"}"})");
  EXPECT_EQ(get_secret_string(environment_for(api), "db"), R"({"username":"app"})");
  api.answer_aws_calls(200, R"({"SecretBinary":"AAEC"})");
  try {
    get_secret_string(environment_for(api), "db");
    FAIL() << "expected an AwsError";
  } catch (const AwsError& e) {
    EXPECT_EQ(e.type(), "SecretBinaryNotSupported");
  }
}

TEST(AwsJsonCall, AnUnreachableEndpointIsAnEndpointConnectionError) {
  AwsEnvironment environment;
  {
    FakeRuntimeApi gone;
    environment = environment_for(gone);
  }
  try {
    aws_json_call(environment, "secretsmanager", "x.Y", {});
    FAIL() << "expected an AwsError";
  } catch (const AwsError& e) {
    EXPECT_EQ(e.type(), "EndpointConnectionError");
  }
}

TEST(AwsEnvironment, ReadsLambdasVariablesAndNamesTheMissingOne) {
  ::setenv("AWS_ENDPOINT_URL", "http://10.0.0.1:4566", 1);
  ::setenv("AWS_REGION", "us-east-1", 1);
  ::setenv("AWS_ACCESS_KEY_ID", kAccessKey.c_str(), 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", kSecretKey.c_str(), 1);
  ::setenv("AWS_SESSION_TOKEN", kSessionToken.c_str(), 1);
  const AwsEnvironment environment = AwsEnvironment::from_environment();
  EXPECT_EQ(environment.endpoint_url, "http://10.0.0.1:4566");
  EXPECT_EQ(environment.region, "us-east-1");
  EXPECT_EQ(environment.access_key_id, kAccessKey);
  EXPECT_EQ(environment.secret_access_key, kSecretKey);
  EXPECT_EQ(environment.session_token, kSessionToken);

  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  try {
    AwsEnvironment::from_environment();
    FAIL() << "expected an AwsError";
  } catch (const AwsError& e) {
    EXPECT_EQ(e.type(), "Runtime.ConfigError");
    EXPECT_STREQ(e.what(), "AWS_SECRET_ACCESS_KEY is not set");
  }
  for (const char* name :
       {"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"})
    ::unsetenv(name);
}

TEST(HttpGet, FetchesAPublicDocument) {
  FakeRuntimeApi api;
  api.serve_document("/sluice/ca-bundle.pem", "-----BEGIN CERTIFICATE-----\n");
  EXPECT_EQ(http_get(api.url() + "/sluice/ca-bundle.pem"), "-----BEGIN CERTIFICATE-----\n");
  EXPECT_TRUE(api.received("/sluice/ca-bundle.pem")[0].headers.count("authorization") == 0);
  try {
    http_get(api.url() + "/missing");
    FAIL() << "expected an AwsError";
  } catch (const AwsError& e) {
    EXPECT_EQ(e.type(), "HttpError");
    EXPECT_EQ(e.status(), 404);
  }
}

}  // namespace
}  // namespace sluice::runtime
