#include <gtest/gtest.h>

#include "cloud/api.hpp"
#include "cloud/iam_policy.hpp"
#include "cloud/query_protocol.hpp"

namespace sluice::cloud {
namespace {

TEST(Wildcards, AsIamMatchesThem) {
  EXPECT_TRUE(wildcard_match("*", ""));
  EXPECT_TRUE(wildcard_match("arn:aws:secretsmanager:*:*:secret:db-*",
                             "arn:aws:secretsmanager:us-east-1:1:secret:db-x-AbC123"));
  EXPECT_FALSE(wildcard_match("arn:aws:secretsmanager:*:*:secret:db-*",
                              "arn:aws:secretsmanager:us-east-1:1:secret:app"));
  EXPECT_TRUE(wildcard_match("secret-??????", "secret-AbC123"));
  EXPECT_FALSE(wildcard_match("secret-??????", "secret-AbC12"));
  EXPECT_TRUE(wildcard_match("secretsmanager:Get*", "SecretsManager:GetSecretValue", true));
  EXPECT_FALSE(wildcard_match("secretsmanager:Get*", "SecretsManager:GetSecretValue", false));
  EXPECT_TRUE(wildcard_match("a*b*c", "aXXbYYbZc"));
  EXPECT_FALSE(wildcard_match("a*b*c", "aXXbYYbZ"));
}

TEST(PolicyEvaluation, ExplicitDenyWinsThenAllowThenImplicitDeny) {
  const std::string allow = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
      "Action":["secretsmanager:GetSecretValue"],"Resource":"arn:aws:secretsmanager:*:*:secret:db-*"}]})";
  const std::string deny = R"({"Statement":{"Effect":"Deny","Action":"secretsmanager:*",
      "Resource":"arn:aws:secretsmanager:*:*:secret:db-admin*"}})";
  const std::string not_action =
      R"({"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]})";
  const std::string db = "arn:aws:secretsmanager:us-east-1:1:secret:db-app-AbC123";
  const std::string admin = "arn:aws:secretsmanager:us-east-1:1:secret:db-admin-AbC123";
  EXPECT_EQ(evaluate_policies({allow}, "secretsmanager:GetSecretValue", db), Decision::kAllow);
  EXPECT_EQ(evaluate_policies({allow}, "secretsmanager:PutSecretValue", db),
            Decision::kImplicitDeny);
  EXPECT_EQ(evaluate_policies({allow, deny}, "secretsmanager:GetSecretValue", admin),
            Decision::kExplicitDeny);
  EXPECT_EQ(evaluate_policies({allow, deny}, "secretsmanager:GetSecretValue", db),
            Decision::kAllow);
  EXPECT_EQ(evaluate_policies({}, "secretsmanager:GetSecretValue", db), Decision::kImplicitDeny);
  EXPECT_EQ(evaluate_policies({"not json"}, "secretsmanager:GetSecretValue", db),
            Decision::kImplicitDeny);
  EXPECT_EQ(evaluate_policies({not_action}, "secretsmanager:GetSecretValue", db), Decision::kAllow);
  EXPECT_EQ(evaluate_policies({not_action}, "iam:CreateRole", db), Decision::kImplicitDeny);
}

TEST(PolicyDocuments, MalformedOnesAreRefused) {
  auto code = [](std::string_view document) -> std::string {
    try {
      check_policy_document(document);
      return "ok";
    } catch (const ApiError& e) {
      return e.code;
    }
  };
  EXPECT_EQ(
      code(
          R"({"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"Service":"rds.amazonaws.com"}}]})"),
      "ok");
  EXPECT_EQ(code("{"), "MalformedPolicyDocument");
  EXPECT_EQ(code(R"({"Version":"2012-10-17"})"), "MalformedPolicyDocument");
  EXPECT_EQ(code(R"({"Statement":[{"Effect":"Maybe","Action":"x"}]})"), "MalformedPolicyDocument");
  EXPECT_EQ(code(R"({"Statement":[{"Effect":"Allow"}]})"), "MalformedPolicyDocument");
}

TEST(QueryProtocol, FormsListsAndXml) {
  auto params = QueryParams::parse(
      "Action=CreateRole&RoleName=r1&AssumeRolePolicyDocument=%7B%22a%22%3A+1%7D&Tags.member.1.Key="
      "k"
      "&SubnetIds.member.1=s1&SubnetIds.member.2=s2&GroupId.1=g1");
  EXPECT_EQ(params.get("Action"), "CreateRole");
  EXPECT_EQ(params.get("AssumeRolePolicyDocument"), "{\"a\": 1}");
  EXPECT_EQ(params.list("SubnetIds"), (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(params.list("GroupId"), (std::vector<std::string>{"g1"}));
  EXPECT_FALSE(params.get("Missing"));
  try {
    params.required("Missing");
    FAIL() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code, "ValidationError");
    EXPECT_NE(std::string(e.what()).find("Missing"), std::string::npos);
  }
  EXPECT_EQ(xml_escape("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
  EXPECT_EQ(percent_encode("{\"a\": 1}"), "%7B%22a%22%3A%201%7D");
  const ApiResponse ok = query_response("GetRole", "ns", "<Role/>");
  EXPECT_NE(ok.body.find("<GetRoleResponse xmlns=\"ns\"><GetRoleResult><Role/></GetRoleResult>"),
            std::string::npos);
  const ApiResponse error = query_error(ApiError("NoSuchEntity", "no <role>", 404), "ns");
  EXPECT_EQ(error.status, 404);
  EXPECT_NE(error.body.find("<Code>NoSuchEntity</Code><Message>no &lt;role&gt;</Message>"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::cloud
