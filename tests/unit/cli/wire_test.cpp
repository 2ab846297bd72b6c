// The requests the CLI sends and the documents it prints, checked against the wire forms the
// services (and botocore) use.
#include <gtest/gtest.h>

#include "cli/json_printer.hpp"
#include "cli/request_serializer.hpp"
#include "cli/response_parser.hpp"
#include "cli/service_model.hpp"

namespace sluice::cli {
namespace {
namespace json = boost::json;
using Pairs = std::vector<std::pair<std::string, std::string>>;

const ServiceModel& service(const std::string& name) {
  return *find_service(name);
}
const json::object& op(const std::string& service_name, const std::string& operation) {
  return *service(service_name).operation(operation);
}

TEST(RequestSerializer, QueryListsStructuresAndNumbers) {
  const json::object input = json::parse(R"({
    "DBProxyName": "p", "VpcSubnetIds": ["a", "b"], "RequireTLS": true,
    "Auth": [{"AuthScheme": "SECRETS", "SecretArn": "arn:s"}], "IdleClientTimeout": 900})")
                                 .as_object();
  const Pairs params = query_parameters(service("rds"), op("rds", "create-db-proxy"), input);
  const Pairs expected{{"Action", "CreateDBProxy"},
                       {"Version", "2014-10-31"},
                       {"DBProxyName", "p"},
                       {"VpcSubnetIds.member.1", "a"},
                       {"VpcSubnetIds.member.2", "b"},
                       {"RequireTLS", "true"},
                       {"Auth.member.1.AuthScheme", "SECRETS"},
                       {"Auth.member.1.SecretArn", "arn:s"},
                       {"IdleClientTimeout", "900"}};
  EXPECT_EQ(params, expected);
  const Pairs scaling = query_parameters(
      service("rds"), op("rds", "create-db-cluster"),
      json::parse(R"({"ServerlessV2ScalingConfiguration":{"MinCapacity":0.5,"MaxCapacity":4.0}})")
          .as_object());
  EXPECT_EQ(scaling[2], (std::pair<std::string, std::string>{
                            "ServerlessV2ScalingConfiguration.MinCapacity", "0.5"}));
  EXPECT_EQ(scaling[3], (std::pair<std::string, std::string>{
                            "ServerlessV2ScalingConfiguration.MaxCapacity", "4.0"}));
}

TEST(RequestSerializer, Ec2NumbersListsDirectlyAndCapitalizesNames) {
  const json::object input = json::parse(R"({"GroupId": "sg-1", "IpPermissions": [
      {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
       "UserIdGroupPairs": [{"GroupId": "sg-2"}], "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]})")
                                 .as_object();
  const Pairs params =
      query_parameters(service("ec2"), op("ec2", "authorize-security-group-ingress"), input);
  const Pairs expected{{"Action", "AuthorizeSecurityGroupIngress"},
                       {"Version", "2016-11-15"},
                       {"GroupId", "sg-1"},
                       {"IpPermissions.1.IpProtocol", "tcp"},
                       {"IpPermissions.1.FromPort", "5432"},
                       {"IpPermissions.1.ToPort", "5432"},
                       {"IpPermissions.1.Groups.1.GroupId", "sg-2"},
                       {"IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.0/8"}};
  EXPECT_EQ(params, expected);
}

TEST(RequestSerializer, JsonAndRestJson) {
  const WireRequest secret =
      serialize_request(service("secretsmanager"), op("secretsmanager", "get-secret-value"),
                        json::parse(R"({"SecretId": "s"})").as_object());
  EXPECT_EQ(secret.method, "POST");
  EXPECT_EQ(secret.content_type, "application/x-amz-json-1.1");
  EXPECT_EQ(secret.headers, (Pairs{{"x-amz-target", "secretsmanager.GetSecretValue"}}));
  EXPECT_EQ(secret.body, R"({"SecretId":"s"})");

  const WireRequest config =
      serialize_request(service("lambda"), op("lambda", "update-function-configuration"),
                        json::parse(R"({"FunctionName": "a b", "Timeout": 30})").as_object());
  EXPECT_EQ(config.method, "PUT");
  EXPECT_EQ(config.path, "/2015-03-31/functions/a%20b/configuration");
  EXPECT_EQ(config.body, R"({"Timeout":30})");
  const WireRequest get = serialize_request(
      service("lambda"), op("lambda", "get-function-configuration"),
      json::parse(R"({"FunctionName": "f", "Qualifier": "$LATEST"})").as_object());
  EXPECT_EQ(get.method, "GET");
  EXPECT_EQ(get.path, "/2015-03-31/functions/f/configuration?Qualifier=%24LATEST");
  EXPECT_EQ(get.body, "");
}

TEST(ResponseParser, QueryUnwrapsTheResultAndTypesByShape) {
  const std::string xml =
      R"(<DescribeDBProxiesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">
  <DescribeDBProxiesResult>
    <DBProxies><member>
      <RequireTLS>true</RequireTLS><DBProxyName>p</DBProxyName><IdleClientTimeout>1800</IdleClientTimeout>
      <VpcSubnetIds><member>a</member><member>b</member></VpcSubnetIds>
      <Auth><member><AuthScheme>SECRETS</AuthScheme></member></Auth>
      <Unmodelled>x</Unmodelled>
    </member></DBProxies>
  </DescribeDBProxiesResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</DescribeDBProxiesResponse>)";
  const json::object out = parse_response(service("rds"), op("rds", "describe-db-proxies"), xml);
  // Members come in the model's order, typed; unknown elements and the metadata are dropped.
  EXPECT_EQ(json::serialize(out),
            R"({"DBProxies":[{"DBProxyName":"p","VpcSubnetIds":["a","b"],)"
            R"("Auth":[{"AuthScheme":"SECRETS"}],"RequireTLS":true,"IdleClientTimeout":1800}]})");
}

TEST(ResponseParser, Ec2ItemsAndLowerCaseNames) {
  const std::string xml =
      R"(<AuthorizeSecurityGroupIngressResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r</requestId><return>true</return>
  <securityGroupRuleSet><item><groupId>sg-1</groupId><isEgress>false</isEgress><fromPort>5432</fromPort></item></securityGroupRuleSet>
</AuthorizeSecurityGroupIngressResponse>)";
  const json::object out =
      parse_response(service("ec2"), op("ec2", "authorize-security-group-ingress"), xml);
  EXPECT_EQ(json::serialize(out),
            R"({"Return":true,"SecurityGroupRules":[{"GroupId":"sg-1","IsEgress":false,)"
            R"("FromPort":5432}]})");
}

TEST(ResponseParser, IamPolicyDocumentsArriveDecoded) {
  const std::string xml = R"(<GetRoleResponse><GetRoleResult><Role><RoleName>r</RoleName>
    <AssumeRolePolicyDocument>%7B%22Version%22%3A%222012-10-17%22%7D</AssumeRolePolicyDocument>
    </Role></GetRoleResult></GetRoleResponse>)";
  const json::object out = parse_response(service("iam"), op("iam", "get-role"), xml);
  EXPECT_EQ(json::serialize(out),
            R"({"Role":{"RoleName":"r","AssumeRolePolicyDocument":{"Version":"2012-10-17"}}})");
}

TEST(ResponseParser, JsonKeepsModelledMembersInModelOrder) {
  const json::object out = parse_response(
      service("secretsmanager"), op("secretsmanager", "get-secret-value"),
      R"({"Name":"s","ARN":"arn:s","SecretString":"x","Extra":1,"CreatedDate":1.7e9})");
  EXPECT_EQ(json::serialize(out),
            R"({"ARN":"arn:s","Name":"s","SecretString":"x","CreatedDate":1.7E9})");
  EXPECT_THROW(parse_response(service("rds"), op("rds", "describe-db-proxies"), "<broken"),
               std::runtime_error);
  EXPECT_THROW(parse_response(service("lambda"), op("lambda", "get-function"), "[1]"),
               std::runtime_error);
}

TEST(JsonPrinter, AsPythonsJsonDumpsWithIndentFour) {
  EXPECT_EQ(aws_json(json::parse(R"({"a":[1,{"b":true}],"e":[],"o":{},"f":4.0,"g":0.5,"n":null})")),
            "{\n"
            "    \"a\": [\n"
            "        1,\n"
            "        {\n"
            "            \"b\": true\n"
            "        }\n"
            "    ],\n"
            "    \"e\": [],\n"
            "    \"o\": {},\n"
            "    \"f\": 4.0,\n"
            "    \"g\": 0.5,\n"
            "    \"n\": null\n"
            "}\n");
  EXPECT_EQ(aws_json(json::value("q\"\\\n\x01 é")), "\"q\\\"\\\\\\n\\u0001 é\"\n");
  EXPECT_EQ(aws_json(json::value(1e16)), "1e+16\n");
}

TEST(ServiceModels, EveryServiceAndItsProtocol) {
  std::vector<std::string> names;
  for (const auto& model : service_models()) names.push_back(model.name() + ":" + model.protocol());
  EXPECT_EQ(names,
            (std::vector<std::string>{"ec2:ec2", "iam:query", "lambda:rest-json", "logs:json",
                                      "rds:query", "secretsmanager:json", "sts:query"}));
  EXPECT_EQ(find_service("rds")->operation_names().size(), 20u);
  EXPECT_EQ(find_service("s3"), nullptr);
}

}  // namespace
}  // namespace sluice::cli
