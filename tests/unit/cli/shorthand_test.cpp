#include "cli/shorthand.hpp"

#include <gtest/gtest.h>

namespace sluice::cli {
namespace {
namespace json = boost::json;

json::value doc(std::string_view text) {
  return parse_shorthand(text);
}

TEST(Shorthand, TheGuidesAuthFlag) {
  EXPECT_EQ(doc("AuthScheme=SECRETS,SecretArn=arn:aws:secretsmanager:us-east-1:512662829295:"
                "secret:rds-proxy-secret-meal-planner-7Ps2c0,IAMAuth=DISABLED"),
            json::parse(R"({"AuthScheme":"SECRETS","SecretArn":"arn:aws:secretsmanager:us-east-1:)"
                        R"(512662829295:secret:rds-proxy-secret-meal-planner-7Ps2c0",)"
                        R"("IAMAuth":"DISABLED"})"));
}

TEST(Shorthand, CommasAfterAValueMakeAList) {
  EXPECT_EQ(doc("SubnetIds=subnet-a,subnet-b,SecurityGroupIds=sg-1"),
            json::parse(R"({"SubnetIds":["subnet-a","subnet-b"],"SecurityGroupIds":"sg-1"})"));
}

TEST(Shorthand, BracketsBracesAndQuotes) {
  EXPECT_EQ(doc("Variables={DB_HOST=h.example,DB_NAME=app}"),
            json::parse(R"({"Variables":{"DB_HOST":"h.example","DB_NAME":"app"}})"));
  EXPECT_EQ(doc("Ids=[a, b],Empty=[],Nested=[{K=1},{K=2}]"),
            json::parse(R"({"Ids":["a","b"],"Empty":[],"Nested":[{"K":"1"},{"K":"2"}]})"));
  EXPECT_EQ(doc(R"(Q="a,b=c",S='x y')"), json::parse(R"({"Q":"a,b=c","S":"x y"})"));
  EXPECT_EQ(doc("InitQuery=SET x = 1"), json::parse(R"({"InitQuery":"SET x = 1"})"));
}

TEST(Shorthand, MistakesSayWhatWasExpected) {
  EXPECT_THROW(doc("AuthScheme"), ShorthandError);
  EXPECT_THROW(doc("A=1,A=2"), ShorthandError);
  EXPECT_THROW(doc("A=[1,2"), ShorthandError);
  EXPECT_THROW(doc("A={B=1"), ShorthandError);
  EXPECT_THROW(doc("A=\"open"), ShorthandError);
  try {
    doc("=1");
    FAIL();
  } catch (const ShorthandError& e) {
    EXPECT_NE(std::string(e.what()).find("expected a key"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sluice::cli
