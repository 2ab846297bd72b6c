// Calls signed with role credentials, through ControlPlane::handle: signature, session token,
// expiry, then the role's policies, with each service's own refusal.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/json.hpp>
#include <filesystem>

#include "cloud/control_plane.hpp"
#include "common/encoding.hpp"
#include "common/sigv4.hpp"

namespace sluice::cloud {
namespace {
namespace json = boost::json;

struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/sluice-authz-test-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

QueryParams form(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string body;
  for (const auto& [k, v] : params) body += (body.empty() ? "" : "&") + k + "=" + percent_encode(v);
  return QueryParams::parse(body);
}

constexpr std::string_view kAccount = "123456789012";
const std::string kRole = "arn:aws:iam::123456789012:role/fn-role";

struct AuthorizationTest : ::testing::Test {
  TempDir dir;
  std::unique_ptr<ControlPlane> plane;

  void SetUp() override {
    ControlPlaneOptions options;
    options.home = dir.path;
    options.account_id = kAccount;
    options.hosts_file = "";
    plane = std::make_unique<ControlPlane>(options);
    plane->iam().handle(
        "CreateRole",
        form(
            {{"RoleName", "fn-role"},
             {"AssumeRolePolicyDocument",
              R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",)"
              R"("Principal":{"Service":"lambda.amazonaws.com"}}]})"}}));
    plane->iam().handle(
        "PutRolePolicy",
        form(
            {{"RoleName", "fn-role"},
             {"PolicyName", "logs"},
             {"PolicyDocument",
              R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],)"
              R"("Resource":"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn:*"},)"
              R"({"Effect":"Deny","Action":"lambda:*","Resource":"arn:aws:lambda:*:*:function:secret-*"}]})"}}));
  }
  void TearDown() override { plane->shutdown(); }

  // A request as botocore signs it with `session`'s credentials (or others given).
  ApiRequest signed_request(const RoleSession& session, std::string method, std::string target,
                            std::string body, std::string service,
                            std::map<std::string, std::string> headers = {},
                            std::string secret = "", std::string token = "") {
    ApiRequest request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    request.service = service;
    request.access_key = session.access_key_id;
    headers["host"] = "127.0.0.1:4566";
    headers["x-amz-date"] = "20261205T120000Z";
    headers["x-amz-security-token"] = token.empty() ? session.session_token : token;
    const CredentialScope scope{session.access_key_id, "20261205", "us-east-1", service};
    const std::string authorization =
        sign_request(request.method, request.target, headers, request.body, scope,
                     secret.empty() ? session.secret_access_key : secret, "20261205T120000Z");
    request.headers = headers;
    request.headers["authorization"] = authorization;
    return request;
  }
  ApiRequest logs_call(const RoleSession& session, const std::string& operation,
                       const json::object& input) {
    return signed_request(session, "POST", "/", json::serialize(input), "logs",
                          {{"x-amz-target", "Logs_20140328." + operation},
                           {"content-type", "application/x-amz-json-1.1"}});
  }
  static std::string type_of(const ApiResponse& response) {
    for (const auto& [name, value] : response.headers)
      if (name == "x-amzn-ErrorType") return value;
    return "";
  }
};

TEST_F(AuthorizationTest, TheRolesPoliciesDecide) {
  const RoleSession session = plane->role_credentials().issue(kRole, "fn");
  plane->log_store().create_group("/aws/lambda/fn");
  plane->log_store().create_group("/aws/lambda/other");
  ApiRequest allowed = logs_call(session, "CreateLogStream",
                                 {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "s"}});
  ApiResponse response = plane->handle(allowed);
  EXPECT_EQ(response.status, 200) << response.body;

  ApiRequest denied = logs_call(session, "CreateLogStream",
                                {{"logGroupName", "/aws/lambda/other"}, {"logStreamName", "s"}});
  response = plane->handle(denied);
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(type_of(response), "AccessDeniedException");
  EXPECT_EQ(json::parse(response.body).at("Message").as_string(),
            "User: arn:aws:sts::123456789012:assumed-role/fn-role/fn is not authorized to perform: "
            "logs:CreateLogStream on resource: "
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/other:log-stream:s because "
            "no identity-based policy allows the logs:CreateLogStream action");
  EXPECT_FALSE(plane->log_store().streams("/aws/lambda/other")->size());

  // Lambda's REST routes name their action; an explicit Deny says so.
  ApiRequest lambda =
      signed_request(session, "GET", "/2015-03-31/functions/secret-fn/configuration", "", "lambda");
  response = plane->handle(lambda);
  EXPECT_EQ(response.status, 403);
  EXPECT_EQ(type_of(response), "AccessDeniedException");
  EXPECT_EQ(json::parse(response.body).at("message").as_string(),
            "User: arn:aws:sts::123456789012:assumed-role/fn-role/fn is not authorized to perform: "
            "lambda:GetFunctionConfiguration on resource: "
            "arn:aws:lambda:us-east-1:123456789012:function:secret-fn with an explicit deny in an "
            "identity-based policy");

  // GetCallerIdentity needs no permission.
  ApiRequest who =
      signed_request(session, "POST", "/", "Action=GetCallerIdentity&Version=2011-06-15", "sts",
                     {{"content-type", "application/x-www-form-urlencoded"}});
  response = plane->handle(who);
  EXPECT_EQ(response.status, 200) << response.body;
  EXPECT_NE(response.body.find("<Arn>arn:aws:sts::123456789012:assumed-role/fn-role/fn</Arn>"),
            std::string::npos);
}

TEST_F(AuthorizationTest, CredentialsAreCheckedBeforeAnything) {
  const RoleSession session = plane->role_credentials().issue(kRole, "fn");
  const json::object input{{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "s"}};

  ApiRequest wrong_token =
      signed_request(session, "POST", "/", json::serialize(input), "logs",
                     {{"x-amz-target", "Logs_20140328.CreateLogStream"}}, "", "not-the-token");
  ApiResponse response = plane->handle(wrong_token);
  EXPECT_EQ(response.status, 403);
  EXPECT_EQ(type_of(response), "UnrecognizedClientException");

  ApiRequest wrong_secret =
      signed_request(session, "POST", "/", json::serialize(input), "logs",
                     {{"x-amz-target", "Logs_20140328.CreateLogStream"}}, std::string(40, 'x'));
  response = plane->handle(wrong_secret);
  EXPECT_EQ(response.status, 403);
  EXPECT_EQ(type_of(response), "InvalidSignatureException");

  // Signed, then changed on the way.
  ApiRequest tampered = logs_call(session, "CreateLogStream", input);
  tampered.body =
      json::serialize(json::object{{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "t"}});
  EXPECT_EQ(type_of(plane->handle(tampered)), "InvalidSignatureException");

  const RoleSession expired =
      plane->role_credentials().issue(kRole, "old", std::chrono::seconds(-1));
  ApiRequest late = logs_call(expired, "CreateLogStream", input);
  response = plane->handle(late);
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(type_of(response), "ExpiredTokenException");
  EXPECT_EQ(json::parse(response.body).at("Message").as_string(),
            "The security token included in the request is expired");
  ApiRequest late_query =
      signed_request(expired, "POST", "/", "Action=GetCallerIdentity&Version=2011-06-15", "sts");
  response = plane->handle(late_query);
  EXPECT_EQ(response.status, 403);
  EXPECT_NE(response.body.find("<Code>ExpiredToken</Code>"), std::string::npos) << response.body;

  // A revoked session is unknown, like any ASIA key this region did not issue.
  plane->role_credentials().revoke(session.access_key_id);
  ApiRequest revoked = logs_call(session, "CreateLogStream", input);
  response = plane->handle(revoked);
  EXPECT_EQ(response.status, 403);
  EXPECT_EQ(type_of(response), "UnrecognizedClientException");
  EXPECT_FALSE(plane->log_store().streams("/aws/lambda/fn"));  // nothing was done
}

TEST_F(AuthorizationTest, PlainKeysAreUnchecked) {
  ApiRequest request;
  request.method = "POST";
  request.target = "/";
  request.body = "Action=GetCallerIdentity&Version=2011-06-15";
  request.access_key = "AKIDLOCAL";
  request.service = "sts";
  const ApiResponse response = plane->handle(request);
  EXPECT_EQ(response.status, 200) << response.body;
  EXPECT_NE(response.body.find("<Arn>arn:aws:iam::123456789012:root</Arn>"), std::string::npos);
  EXPECT_NE(response.body.find("xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\""),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::cloud
