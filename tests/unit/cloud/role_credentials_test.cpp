#include "cloud/role_credentials.hpp"

#include <gtest/gtest.h>

#include <set>

namespace sluice::cloud {
namespace {

TEST(RoleCredentials, IssuesKeysInAwsFormat) {
  RoleCredentials credentials("123456789012");
  const RoleSession session =
      credentials.issue("arn:aws:iam::123456789012:role/meal-planner-role", "meal-planner");
  ASSERT_EQ(session.access_key_id.size(), 20u);
  EXPECT_TRUE(session.access_key_id.starts_with("ASIA"));
  EXPECT_EQ(session.access_key_id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
            std::string::npos);
  EXPECT_EQ(session.secret_access_key.size(), 40u);
  EXPECT_GE(session.session_token.size(), 200u);
  EXPECT_EQ(session.assumed_role_arn(),
            "arn:aws:sts::123456789012:assumed-role/meal-planner-role/meal-planner");
  // Twelve hours by default, as Lambda's.
  const auto left = session.expiration - std::chrono::system_clock::now();
  EXPECT_GT(left, std::chrono::hours(11));
  EXPECT_LE(left, std::chrono::hours(12));
}

TEST(RoleCredentials, EverySessionIsItsOwn) {
  RoleCredentials credentials("123456789012");
  std::set<std::string> keys, secrets, tokens;
  for (int i = 0; i < 50; ++i) {
    const RoleSession s = credentials.issue("arn:aws:iam::123456789012:role/r", "s");
    keys.insert(s.access_key_id);
    secrets.insert(s.secret_access_key);
    tokens.insert(s.session_token);
  }
  EXPECT_EQ(keys.size(), 50u);
  EXPECT_EQ(secrets.size(), 50u);
  EXPECT_EQ(tokens.size(), 50u);
}

TEST(RoleCredentials, FindsRevokesAndKeepsExpiredOnes) {
  RoleCredentials credentials("123456789012");
  const RoleSession live = credentials.issue("arn:aws:iam::123456789012:role/path/app", "fn");
  auto found = credentials.find(live.access_key_id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->secret_access_key, live.secret_access_key);
  EXPECT_EQ(found->session_token, live.session_token);
  EXPECT_EQ(found->role_arn, "arn:aws:iam::123456789012:role/path/app");
  // The role's path is not part of the session's ARN.
  EXPECT_EQ(found->assumed_role_arn(), "arn:aws:sts::123456789012:assumed-role/app/fn");
  EXPECT_FALSE(credentials.find("ASIAAAAAAAAAAAAAAAAA"));
  EXPECT_FALSE(credentials.find(""));

  // An expired session is still found (its caller hears ExpiredToken), with its expiry.
  const RoleSession expired =
      credentials.issue("arn:aws:iam::123456789012:role/app", "old", std::chrono::seconds(-1));
  found = credentials.find(expired.access_key_id);
  ASSERT_TRUE(found);
  EXPECT_LT(found->expiration, std::chrono::system_clock::now());

  credentials.revoke(live.access_key_id);
  EXPECT_FALSE(credentials.find(live.access_key_id));
  credentials.revoke(live.access_key_id);  // twice is harmless
  EXPECT_TRUE(credentials.find(expired.access_key_id));
}

TEST(RoleCredentials, ForgetsLongExpiredSessions) {
  RoleCredentials credentials("123456789012");
  const RoleSession ancient =
      credentials.issue("arn:aws:iam::123456789012:role/app", "old", -std::chrono::hours(25));
  EXPECT_TRUE(credentials.find(ancient.access_key_id));
  credentials.issue("arn:aws:iam::123456789012:role/app", "new");
  EXPECT_FALSE(credentials.find(ancient.access_key_id));
}

}  // namespace
}  // namespace sluice::cloud
