#include "cloud/sts.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <regex>

#include "cloud/iam.hpp"
#include "common/encoding.hpp"

namespace sluice::cloud {
namespace {

struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/sluice-sts-test-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

std::string between(const std::string& xml, const std::string& tag) {
  const size_t start = xml.find("<" + tag + ">");
  const size_t end = xml.find("</" + tag + ">");
  if (start == std::string::npos || end == std::string::npos) return "";
  return xml.substr(start + tag.size() + 2, end - start - tag.size() - 2);
}

QueryParams form(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string body;
  for (const auto& [k, v] : params) body += (body.empty() ? "" : "&") + k + "=" + percent_encode(v);
  return QueryParams::parse(body);
}

struct StsTest : ::testing::Test {
  TempDir dir;
  Store store{dir.path + "/state.db"};
  Iam iam{store, "123456789012"};
  RoleCredentials credentials{"123456789012"};
  Sts sts{store, credentials, "123456789012"};

  void SetUp() override {
    iam.handle("CreateRole",
               form({{"RoleName", "meal-planner-role"},
                     {"Path", "/service/"},
                     {"AssumeRolePolicyDocument",
                      R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":)"
                      R"({"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]})"}}));
  }
  std::string error_of(std::string_view action, const QueryParams& params,
                       const RoleSession* caller = nullptr, std::string* message = nullptr) {
    try {
      sts.handle(action, params, caller);
    } catch (const ApiError& e) {
      if (message) *message = e.what();
      return e.code;
    }
    return "";
  }
};

const std::string kRole = "arn:aws:iam::123456789012:role/service/meal-planner-role";

TEST_F(StsTest, GetCallerIdentityForTheAccountsKeys) {
  const std::string xml = sts.handle("GetCallerIdentity", form({}), nullptr);
  EXPECT_EQ(between(xml, "Arn"), "arn:aws:iam::123456789012:root");
  EXPECT_EQ(between(xml, "UserId"), "123456789012");
  EXPECT_EQ(between(xml, "Account"), "123456789012");
}

TEST_F(StsTest, AssumeRoleIssuesCredentialsThatIdentifyTheSession) {
  const std::string xml = sts.handle(
      "AssumeRole", form({{"RoleArn", kRole}, {"RoleSessionName", "cli-test"}}), nullptr);
  const std::string key = between(xml, "AccessKeyId");
  EXPECT_TRUE(std::regex_match(key, std::regex("ASIA[A-Z2-7]{16}"))) << key;
  EXPECT_EQ(between(xml, "SecretAccessKey").size(), 40u);
  EXPECT_TRUE(std::regex_match(between(xml, "Expiration"),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
  EXPECT_EQ(between(xml, "Arn"),
            "arn:aws:sts::123456789012:assumed-role/meal-planner-role/cli-test");
  const std::string assumed_id = between(xml, "AssumedRoleId");
  EXPECT_TRUE(std::regex_match(assumed_id, std::regex("AROA[A-Z2-7]{17}:cli-test"))) << assumed_id;

  auto session = credentials.find(key);
  ASSERT_TRUE(session);
  EXPECT_EQ(session->role_arn, kRole);
  EXPECT_EQ(session->session_token, between(xml, "SessionToken"));
  const auto left = session->expiration - std::chrono::system_clock::now();
  EXPECT_GT(left, std::chrono::minutes(59));  // an hour by default
  EXPECT_LE(left, std::chrono::minutes(60));

  const std::string who = sts.handle("GetCallerIdentity", form({}), &*session);
  EXPECT_EQ(between(who, "Arn"),
            "arn:aws:sts::123456789012:assumed-role/meal-planner-role/cli-test");
  EXPECT_EQ(between(who, "UserId"), assumed_id);  // IAM's RoleId
  EXPECT_EQ(between(who, "Account"), "123456789012");
  EXPECT_EQ(sts.role_id(kRole), assumed_id.substr(0, 21));
  // A role that is gone still has a stable ID.
  EXPECT_EQ(sts.role_id("arn:aws:iam::123456789012:role/gone"),
            sts.role_id("arn:aws:iam::123456789012:role/gone"));
}

TEST_F(StsTest, AssumeRoleRefusesWhatAwsRefuses) {
  std::string message;
  EXPECT_EQ(error_of("AssumeRole",
                     form({{"RoleArn", "arn:aws:iam::123456789012:role/nope"},
                           {"RoleSessionName", "s1"}}),
                     nullptr, &message),
            "AccessDenied");
  EXPECT_EQ(message,
            "User: arn:aws:iam::123456789012:root is not authorized to perform: sts:AssumeRole on "
            "resource: arn:aws:iam::123456789012:role/nope");
  // The name alone (without the role's path) is another ARN.
  EXPECT_EQ(
      error_of("AssumeRole", form({{"RoleArn", "arn:aws:iam::123456789012:role/meal-planner-role"},
                                   {"RoleSessionName", "s1"}})),
      "AccessDenied");
  EXPECT_EQ(error_of("AssumeRole",
                     form({{"RoleArn", "not-an-arn-at-all-really"}, {"RoleSessionName", "s1"}}),
                     nullptr, &message),
            "ValidationError");
  EXPECT_EQ(message, "Request ARN is invalid");
  EXPECT_EQ(error_of("AssumeRole", form({{"RoleArn", kRole}, {"RoleSessionName", "has space"}})),
            "ValidationError");
  EXPECT_EQ(error_of("AssumeRole", form({{"RoleArn", kRole}, {"RoleSessionName", "x"}})),
            "ValidationError");
  EXPECT_EQ(
      error_of("AssumeRole",
               form({{"RoleArn", kRole}, {"RoleSessionName", "s1"}, {"DurationSeconds", "899"}})),
      "ValidationError");
  // Longer than the role's MaxSessionDuration (an hour unless set).
  EXPECT_EQ(
      error_of("AssumeRole",
               form({{"RoleArn", kRole}, {"RoleSessionName", "s1"}, {"DurationSeconds", "7200"}}),
               nullptr, &message),
      "ValidationError");
  EXPECT_EQ(message,
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.");
  EXPECT_EQ(error_of("AssumeRole", form({{"RoleSessionName", "s1"}})), "ValidationError");
  EXPECT_EQ(error_of("DecodeAuthorizationMessage", form({})), "InvalidAction");
}

}  // namespace
}  // namespace sluice::cloud
