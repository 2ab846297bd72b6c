#include "common/sigv4.hpp"

#include <gtest/gtest.h>

namespace sluice::cloud {
namespace {

const std::string kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

std::optional<std::string> keys(std::string_view access_key) {
  if (access_key == "AKIDEXAMPLE") return kSecret;
  return std::nullopt;
}

// The AWS SigV4 test suite's "get-vanilla" request.
TEST(SigV4Verify, AwsTestSuiteGetVanilla) {
  std::map<std::string, std::string> headers{
      {"host", "example.amazonaws.com"},
      {"x-amz-date", "20150830T123600Z"},
      {"authorization",
       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
       "SignedHeaders=host;x-amz-date, "
       "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"}};
  EXPECT_EQ(verify_signature("GET", "/", headers, "", keys), SignatureCheck::kValid);
}

// Signed by botocore: an encoded ARN in the path, a query string, a JSON body.
TEST(SigV4Verify, BotocoreSignedRequestAndTampering) {
  std::map<std::string, std::string> headers{
      {"host", "127.0.0.1:4566"},
      {"content-type", "application/json"},
      {"x-amz-date", "20261127T101748Z"},
      {"authorization",
       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/us-east-1/service/aws4_request, "
       "SignedHeaders=content-type;host;x-amz-date, "
       "Signature=4299e20086f14b4e3f5ffc071d5d1736ef0e28ada48cddfb45ede5cd508fef8d"}};
  const std::string target =
      "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/configuration"
      "?a=b%20c&Qualifier=%24LATEST";  // botocore sorts these itself when signing
  EXPECT_EQ(verify_signature("POST", target, headers, "{\"x\": 1}", keys), SignatureCheck::kValid);
  EXPECT_EQ(verify_signature("POST", target, headers, "{\"x\": 2}", keys),
            SignatureCheck::kMismatch);
  EXPECT_EQ(verify_signature("PUT", target, headers, "{\"x\": 1}", keys),
            SignatureCheck::kMismatch);
  auto other_host = headers;
  other_host["host"] = "127.0.0.1:4567";
  EXPECT_EQ(verify_signature("POST", target, other_host, "{\"x\": 1}", keys),
            SignatureCheck::kMismatch);
  auto wrong_secret = [](std::string_view) -> std::optional<std::string> {
    return "not the secret";
  };
  EXPECT_EQ(verify_signature("POST", target, headers, "{\"x\": 1}", wrong_secret),
            SignatureCheck::kMismatch);
  auto unknown = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  EXPECT_EQ(verify_signature("POST", target, headers, "{\"x\": 1}", unknown),
            SignatureCheck::kUnknownKey);
  auto unsigned_request = headers;
  unsigned_request.erase("authorization");
  EXPECT_EQ(verify_signature("POST", target, unsigned_request, "{\"x\": 1}", keys),
            SignatureCheck::kMissing);
}

}  // namespace
}  // namespace sluice::cloud

namespace sluice::cloud {
namespace {

// What the sluice CLI signs, `sluice serve --strict-auth` accepts; the AWS suite's vector holds.
TEST(SigV4Sign, ReproducesTheSuiteAndRoundTrips) {
  std::map<std::string, std::string> headers{{"host", "example.amazonaws.com"},
                                             {"x-amz-date", "20150830T123600Z"}};
  const CredentialScope scope{"AKIDEXAMPLE", "20150830", "us-east-1", "service"};
  EXPECT_EQ(sign_request("GET", "/", headers, "", scope, kSecret, "20150830T123600Z"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");

  std::map<std::string, std::string> post{{"host", "127.0.0.1:4566"},
                                          {"x-amz-date", "20261127T120000Z"},
                                          {"content-type", "application/x-www-form-urlencoded"}};
  const std::string body = "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16";
  const CredentialScope ec2{"AKIDEXAMPLE", "20261127", "us-east-1", "ec2"};
  post["authorization"] = sign_request("POST", "/", post, body, ec2, kSecret, "20261127T120000Z");
  EXPECT_EQ(verify_signature("POST", "/", post, body, keys), SignatureCheck::kValid);
  EXPECT_EQ(verify_signature("POST", "/", post, body + "&x=1", keys), SignatureCheck::kMismatch);
}

// x-amz-date: UTC, YYYYMMDDTHHMMSSZ (the suite's 2015-08-30 12:36:00 is 1440938160).
TEST(SigV4Sign, AmzDateIsUtcBasicFormat) {
  const auto t = std::chrono::system_clock::from_time_t(1440938160);
  EXPECT_EQ(amz_date(t), "20150830T123600Z");
  EXPECT_EQ(amz_date(t + std::chrono::milliseconds(999)), "20150830T123600Z");
  EXPECT_EQ(amz_date(std::chrono::system_clock::from_time_t(0)), "19700101T000000Z");
}

}  // namespace
}  // namespace sluice::cloud
