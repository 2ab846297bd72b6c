#include "cli/arguments.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "cli/service_model.hpp"

namespace sluice::cli {
namespace {
namespace json = boost::json;

json::object parse(const std::string& service, const std::string& operation,
                   const std::vector<std::string>& args) {
  const ServiceModel* model = find_service(service);
  EXPECT_NE(model, nullptr);
  const json::object* op = model->operation(operation);
  EXPECT_NE(op, nullptr) << operation;
  return parse_operation_arguments(*model, *op, args);
}

TEST(Arguments, TheGuidesCreateDbProxy) {
  const auto input =
      parse("rds", "create-db-proxy",
            {"--db-proxy-name", "meal-planner-proxy", "--engine-family", "POSTGRESQL", "--role-arn",
             "arn:aws:iam::512662829295:role/rds-proxy-role-meal-planner", "--vpc-subnet-ids",
             "subnet-0aea07bbb011a0bab,subnet-054c26c1e75b269e1", "--vpc-security-group-ids",
             "sg-0fd605efde80bd711", "--auth",
             "AuthScheme=SECRETS,SecretArn=arn:s,IAMAuth=DISABLED", "--require-tls"});
  EXPECT_EQ(json::value(input), json::parse(R"({
    "DBProxyName": "meal-planner-proxy", "EngineFamily": "POSTGRESQL",
    "RoleArn": "arn:aws:iam::512662829295:role/rds-proxy-role-meal-planner",
    "VpcSubnetIds": ["subnet-0aea07bbb011a0bab,subnet-054c26c1e75b269e1"],
    "VpcSecurityGroupIds": ["sg-0fd605efde80bd711"],
    "Auth": [{"AuthScheme": "SECRETS", "SecretArn": "arn:s", "IAMAuth": "DISABLED"}],
    "RequireTLS": true})"));
}

TEST(Arguments, ListsTakeEveryValueBooleansNegateNumbersAreTyped) {
  const auto input =
      parse("rds", "create-db-cluster",
            {"--db-cluster-identifier", "c", "--engine", "aurora-postgresql",
             "--vpc-security-group-ids", "sg-1", "sg-2", "--no-storage-encrypted", "--port=5433",
             "--serverless-v2-scaling-configuration", "MinCapacity=0.5,MaxCapacity=4"});
  EXPECT_EQ(input.at("VpcSecurityGroupIds"), json::parse(R"(["sg-1","sg-2"])"));
  EXPECT_EQ(input.at("StorageEncrypted"), json::value(false));
  EXPECT_EQ(input.at("Port"), json::value(5433));
  EXPECT_EQ(input.at("ServerlessV2ScalingConfiguration"),
            json::parse(R"({"MinCapacity":0.5,"MaxCapacity":4.0})"));
}

TEST(Arguments, JsonValuesAndFiles) {
  const std::string path = ::testing::TempDir() + "/environment.json";
  std::ofstream(path) << R"({"Variables": {"DB_HOST": "h"}})";
  const auto input = parse("lambda", "update-function-configuration",
                           {"--function-name", "f", "--environment", "file://" + path,
                            "--vpc-config", R"({"SubnetIds": ["s-1"], "SecurityGroupIds": []})"});
  EXPECT_EQ(input.at("Environment"), json::parse(R"({"Variables":{"DB_HOST":"h"}})"));
  EXPECT_EQ(input.at("VpcConfig"), json::parse(R"({"SubnetIds":["s-1"],"SecurityGroupIds":[]})"));
  std::remove(path.c_str());
}

TEST(Arguments, CliInputJsonIsTypedAndFlagsWin) {
  const auto input = parse("rds", "modify-db-proxy-target-group",
                           {"--cli-input-json",
                            R"({"DBProxyName": "p", "TargetGroupName": "default",
                                "ConnectionPoolConfig": {"MaxConnectionsPercent": "50"}})",
                            "--db-proxy-name", "q"});
  EXPECT_EQ(input.at("DBProxyName"), json::value("q"));
  EXPECT_EQ(input.at("ConnectionPoolConfig"), json::parse(R"({"MaxConnectionsPercent":50})"));
}

TEST(Arguments, SecurityGroupShortcutsBecomeOneRule) {
  const auto input = parse("ec2", "authorize-security-group-ingress",
                           {"--group-id", "sg-0fd605efde80bd711", "--protocol", "tcp", "--port",
                            "5432", "--source-group", "sg-0fd605efde80bd711"});
  EXPECT_EQ(input.at("IpPermissions"), json::parse(R"([{"IpProtocol":"tcp","FromPort":5432,
      "ToPort":5432,"UserIdGroupPairs":[{"GroupId":"sg-0fd605efde80bd711"}]}])"));
  const auto range = parse(
      "ec2", "revoke-security-group-ingress",
      {"--group-id", "sg-1", "--protocol", "all", "--port", "1000-2000", "--cidr", "10.0.0.0/8"});
  EXPECT_EQ(range.at("IpPermissions"), json::parse(R"([{"IpProtocol":"-1","FromPort":1000,
      "ToPort":2000,"IpRanges":[{"CidrIp":"10.0.0.0/8"}]}])"));
  EXPECT_THROW(parse("ec2", "authorize-security-group-ingress",
                     {"--group-id", "sg-1", "--port", "5432", "--cidr", "10.0.0.0/8"}),
               ArgumentError);
  EXPECT_THROW(parse("ec2", "authorize-security-group-ingress",
                     {"--group-id", "sg-1", "--protocol", "tcp", "--port", "99999"}),
               ArgumentError);
}

TEST(Arguments, ZipFileIsTheCodesBase64) {
  const std::string path = ::testing::TempDir() + "/code.zip";
  std::ofstream(path, std::ios::binary) << std::string("PK\x03\x04\x00\xff", 6);
  const auto input =
      parse("lambda", "create-function",
            {"--function-name", "f", "--role", "arn:r", "--zip-file", "fileb://" + path});
  EXPECT_EQ(input.at("Code"), json::parse(R"({"ZipFile":"UEsDBAD/"})"));
  std::remove(path.c_str());
}

TEST(Arguments, IdempotencyTokensAreMadeUp) {
  const auto input = parse("secretsmanager", "create-secret", {"--name", "s"});
  ASSERT_TRUE(input.contains("ClientRequestToken"));
  EXPECT_EQ(input.at("ClientRequestToken").as_string().size(), 36u);
}

TEST(Arguments, MistakesAreNamed) {
  const auto message = [](const std::vector<std::string>& args) {
    try {
      parse("rds", "create-db-proxy", args);
    } catch (const ArgumentError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(message({"--db-proxy-name", "p"}),
            "the following arguments are required: --engine-family, --role-arn, "
            "--vpc-subnet-ids");
  EXPECT_EQ(message({"--db-proxy-nam", "p"}), "Unknown options: --db-proxy-nam");
  EXPECT_EQ(message({"--db-proxy-name"}), "argument --db-proxy-name: expected one argument");
  EXPECT_EQ(message({"--no-db-proxy-name"}), "Unknown options: --no-db-proxy-name");
  EXPECT_NE(message({"--auth", "AuthScheme=SECRETS,Bogus=1"}).find("Unknown parameter in Auth[0]"),
            std::string::npos);
  EXPECT_NE(message({"--idle-client-timeout", "soon"}).find("expected an integer"),
            std::string::npos);
  EXPECT_NE(message({"--auth", "AuthScheme"}).find("Error parsing parameter '--auth'"),
            std::string::npos);
  EXPECT_NE(message({"--tags", "{not json"}).find("Invalid JSON"), std::string::npos);
  EXPECT_NE(message({"--auth", "file:///nonexistent/x"}).find("Unable to load paramfile"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::cli
