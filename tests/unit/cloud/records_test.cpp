// The typed records of stored resources: documents written by earlier versions of sluice read
// and written back byte for byte, optional keys defaulted, unknown keys kept, and a missing or
// misspelt required key an error naming it rather than an empty string.
#include "cloud/records.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sluice::cloud {
namespace {
namespace json = boost::json;

// Documents as sluice serve stored them before the records existed (a proxy with an extra
// endpoint and a registered cluster, in a VPC).
const std::string kProxy =
    R"json({"DBProxyName":"meal-planner-proxy","Region":"us-east-1","DBProxyArn":"arn:aws:rds:us-east)json"
    R"json(-1:000000000000:db-proxy:prx-0dce5dc84a801eac0","Status":"available","EngineFamily":"POSTG)json"
    R"json(RESQL","VpcId":"vpc-219489e3be8610cd0","VpcSecurityGroupIds":["sg-97027eca149f5128b"],"Vpc)json"
    R"json(SubnetIds":["subnet-fd609eb4d3975e9ef","subnet-2fb10678262d35376"],"Auth":[{"AuthScheme":")json"
    R"json(SECRETS","SecretArn":"arn:aws:secretsmanager:us-east-1:000000000000:secret:rds-proxy-secre)json"
    R"json(t-meal-planner-C5p8XN","IAMAuth":"DISABLED","ClientPasswordAuthType":"POSTGRES_SCRAM_SHA_2)json"
    R"json(56"}],"RoleArn":"arn:aws:iam::000000000000:role/rds-proxy-role-meal-planner","RequireTLS":)json"
    R"json(true,"IdleClientTimeout":1800,"DebugLogging":false,"CreatedDate":"2026-12-05T15:44:03Z","U)json"
    R"json(pdatedDate":"2026-12-05T15:44:05Z","Address":"127.78.173.242","MetricsPort":55437,"TargetG)json"
    R"json(roupArn":"arn:aws:rds:us-east-1:000000000000:target-group:prx-tg-07b203a0f6e9f8ab0","Targe)json"
    R"json(tCluster":"meal-planner-db","MaxConnectionsPercent":100,"MaxIdleConnectionsPercent":50,"Co)json"
    R"json(nnectionBorrowTimeout":120,"InitQuery":"","NetworkInterfaceId":"eni-d71bd8ee89b86c096"})json";
const std::string kEndpoint =
    R"json({"DBProxyEndpointName":"writer","DBProxyName":"meal-planner-proxy","Region":"us-east-1","D)json"
    R"json(BProxyEndpointArn":"arn:aws:rds:us-east-1:000000000000:db-proxy-endpoint:prx-endpoint-560e)json"
    R"json(92e10d2086582","Status":"available","VpcId":"vpc-219489e3be8610cd0","VpcSecurityGroupIds":)json"
    R"json(["sg-97027eca149f5128b"],"VpcSubnetIds":["subnet-fd609eb4d3975e9ef","subnet-2fb10678262d35)json"
    R"json(376"],"TargetRole":"READ_WRITE","CreatedDate":"2026-12-05T15:44:04Z","Address":"127.112.10)json"
    R"json(0.46","NetworkInterfaceId":"eni-fe50133e42f7d1400"})json";
const std::string kCluster =
    R"json({"DBClusterIdentifier":"meal-planner-db","Region":"us-east-1","DBClusterArn":"arn:aws:rds:)json"
    R"json(us-east-1:000000000000:cluster:meal-planner-db","DbClusterResourceId":"cluster-BPQV6IU8LI7)json"
    R"json(6WXVITY02TGGJSY","Engine":"aurora-postgresql","EngineVersion":"15.4","Status":"available",)json"
    R"json("MasterUsername":"app","DatabaseName":"meals","Port":5432,"MinCapacity":5E-1,"MaxCapacity")json"
    R"json(:1E0,"VpcSecurityGroupIds":["sg-97027eca149f5128b"],"DBSubnetGroup":"default","DeletionPro)json"
    R"json(tection":false,"StorageEncrypted":false,"ClusterCreateTime":"2026-12-05T15:43:59Z","Addres)json"
    R"json(s":"127.114.146.153","WriterInstance":"meal-planner-db-1","MasterPassword":"okGCiRuT9g0p8W)json"
    R"json(/PBXZvGmKR1ltcf2QD+4QIhXWhqUGIhl7KlQFv4gHP7mZKLw==","NetworkInterfaceId":"eni-d974b69c383c)json"
    R"json(63c96"})json";
const std::string kInstance =
    R"json({"DBInstanceIdentifier":"meal-planner-db-1","Region":"us-east-1","DBInstanceArn":"arn:aws:)json"
    R"json(rds:us-east-1:000000000000:db:meal-planner-db-1","DbiResourceId":"db-ZXJ9NUII1LYNC99QLXNWY)json"
    R"json(JY0DG","DBInstanceClass":"db.serverless","Engine":"aurora-postgresql","DBClusterIdentifier)json"
    R"json(":"meal-planner-db","DBInstanceStatus":"available","InstanceCreateTime":"2026-12-05T15:44:)json"
    R"json(00Z","MaxConnections":189,"DatabaseCreated":true})json";
const std::string kInterface =
    R"json({"NetworkInterfaceId":"eni-d71bd8ee89b86c096","SubnetId":"subnet-fd609eb4d3975e9ef","VpcId)json"
    R"json(":"vpc-219489e3be8610cd0","AvailabilityZone":"us-east-1a","PrivateIpAddress":"10.0.1.4","D)json"
    R"json(escription":"RDS Proxy meal-planner-proxy","Groups":["sg-97027eca149f5128b"],"RequesterMan)json"
    R"json(aged":true,"InterfaceType":"interface","OwnerId":"000000000000"})json";

// Two functions: one in a VPC with variables, a reservation and a changed timeout, one plain.
const std::string kFunction =
    R"json({"FunctionName":"f","FunctionArn":"arn:aws:lambda:us-east-1:000000000000:function:f","Runt)json"
    R"json(ime":"provided.al2023","Role":"arn:aws:iam::000000000000:role/r","Handler":"h","CodeSize":)json"
    R"json(18,"Description":"a function","Timeout":30,"MemorySize":128,"LastModified":"2026-12-05T15:)json"
    R"json(50:25.091+0000","CodeSha256":"vosDI1fSVX/BxdKzltYGImgo3sSKDg2FhusSdFvalRg=","Version":"$LA)json"
    R"json(TEST","VpcConfig":{"SubnetIds":["subnet-ca802f333954fbf8e"],"SecurityGroupIds":["sg-502640)json"
    R"json(9824f028569"],"VpcId":"vpc-0f2f2d0582666db46","Ipv6AllowedForDualStack":false},"Environmen)json"
    R"json(t":{"Variables":{"A":"1","B":"two"}},"TracingConfig":{"Mode":"PassThrough"},"RevisionId":")json"
    R"json(435c3912-ff54-46eb-9fbe-c8cbd0e2aab7","State":"Active","LastUpdateStatus":"Successful","Pa)json"
    R"json(ckageType":"Zip","Architectures":["x86_64"],"EphemeralStorage":{"Size":512},"SnapStart":{")json"
    R"json(ApplyOn":"None","OptimizationStatus":"Off"},"LoggingConfig":{"LogFormat":"Text","LogGroup")json"
    R"json(:"/aws/lambda/f"},"CodeFile":"/tmp/fn","CodeIsLocal":true,"NetworkInterfaces":[{"SubnetId")json"
    R"json(:"subnet-ca802f333954fbf8e","NetworkInterfaceId":"eni-3668df3e864449844"}],"ReservedConcur)json"
    R"json(rentExecutions":5})json";
const std::string kPlainFunction =
    R"json({"FunctionName":"g","FunctionArn":"arn:aws:lambda:us-east-1:000000000000:function:g","Runt)json"
    R"json(ime":"provided.al2023","Role":"arn:aws:iam::000000000000:role/r","Handler":"h","CodeSize":)json"
    R"json(18,"Description":"","Timeout":3,"MemorySize":128,"LastModified":"2026-12-05T15:50:24.069+0)json"
    R"json(000","CodeSha256":"vosDI1fSVX/BxdKzltYGImgo3sSKDg2FhusSdFvalRg=","Version":"$LATEST","VpcC)json"
    R"json(onfig":{"SubnetIds":[],"SecurityGroupIds":[],"VpcId":"","Ipv6AllowedForDualStack":false},")json"
    R"json(Environment":{"Variables":{}},"TracingConfig":{"Mode":"PassThrough"},"RevisionId":"fcaa554)json"
    R"json(6-92a7-4569-b267-27a048d19fa4","State":"Active","LastUpdateStatus":"Successful","PackageTy)json"
    R"json(pe":"Zip","Architectures":["x86_64"],"EphemeralStorage":{"Size":512},"SnapStart":{"ApplyOn)json"
    R"json(":"None","OptimizationStatus":"Off"},"LoggingConfig":{"LogFormat":"Text","LogGroup":"/aws/)json"
    R"json(lambda/g"},"CodeFile":"/tmp/fn","CodeIsLocal":true,"NetworkInterfaces":[]})json";

// EC2's: a tagged VPC and subnet, a group with a CIDR rule and a group rule, a VPC's default group.
const std::string kVpc =
    R"json({"VpcId":"vpc-41ec5727faf0c0fc8","CidrBlock":"10.1.0.0/16","State":"available","OwnerId":")json"
    R"json(000000000000","DhcpOptionsId":"dopt-00000000000000000","InstanceTenancy":"default","Tags":)json"
    R"json([{"Key":"Name","Value":"tagged"}]})json";
const std::string kSubnet =
    R"json({"SubnetId":"subnet-d4929647e6e3273cc","VpcId":"vpc-41ec5727faf0c0fc8","CidrBlock":"10.1.2)json"
    R"json(.0/24","AvailabilityZone":"us-east-1a","AvailabilityZoneId":"use1-az1","AvailableIpAddress)json"
    R"json(Count":251,"OwnerId":"000000000000","SubnetArn":"arn:aws:ec2:us-east-1:000000000000:subnet)json"
    R"json(/subnet-d4929647e6e3273cc","Tags":[{"Key":"Name","Value":"s"}]})json";
const std::string kGroup =
    R"json({"GroupId":"sg-c649f5bd1abcb1b74","GroupName":"web","Description":"web tier","VpcId":"vpc-)json"
    R"json(41ec5727faf0c0fc8","OwnerId":"000000000000","Ingress":[{"SecurityGroupRuleId":"sgr-154c4c4)json"
    R"json(083ebfa2df","IpProtocol":"tcp","FromPort":5432,"ToPort":5432,"CidrIpv4":"10.1.0.0/24","Des)json"
    R"json(cription":"db"},{"SecurityGroupRuleId":"sgr-b6817607616337541","IpProtocol":"tcp","FromPor)json"
    R"json(t":443,"ToPort":443,"ReferencedGroupId":"sg-c649f5bd1abcb1b74"}],"Egress":[{"SecurityGroup)json"
    R"json(RuleId":"sgr-499653cbee7680e74","IpProtocol":"-1","FromPort":-1,"ToPort":-1,"CidrIpv4":"0.)json"
    R"json(0.0.0/0"}],"Tags":[{"Key":"tier","Value":"web"}]})json";
const std::string kDefaultGroup =
    R"json({"GroupId":"sg-0b66f71f4225647fb","GroupName":"default","Description":"default VPC securit)json"
    R"json(y group","VpcId":"vpc-41ec5727faf0c0fc8","OwnerId":"000000000000","Ingress":[{"SecurityGro)json"
    R"json(upRuleId":"sgr-45a7119c735675880","IpProtocol":"-1","FromPort":-1,"ToPort":-1,"ReferencedG)json"
    R"json(roupId":"sg-0b66f71f4225647fb"}],"Egress":[{"SecurityGroupRuleId":"sgr-6ebb41f96544321d8",)json"
    R"json("IpProtocol":"-1","FromPort":-1,"ToPort":-1,"CidrIpv4":"0.0.0.0/0"}],"Tags":[]})json";

template <typename Record>
void expect_round_trip(const std::string& document) {
  const Record record = parse_record<Record>(document);
  EXPECT_EQ(serialize_record(record), document);
  EXPECT_EQ(Record::from_json(record.to_json()), record);
}

// The document without `key`, or with `key` renamed to `renamed`.
std::string without(const std::string& document, std::string_view key,
                    std::string_view renamed = {}) {
  json::object o = json::parse(document).as_object();
  json::value v = o.at(key);
  o.erase(key);
  if (!renamed.empty()) o[renamed] = v;
  return json::serialize(o);
}

template <typename Record>
std::string error_of(const std::string& document) {
  try {
    parse_record<Record>(document);
  } catch (const RecordError& e) {
    EXPECT_EQ(e.code, "InternalFailure");
    EXPECT_EQ(e.status, 500);
    return e.what();
  }
  return "no error";
}

TEST(Records, StoredDocumentsRoundTripByteForByte) {
  expect_round_trip<ProxyRecord>(kProxy);
  expect_round_trip<ProxyEndpointRecord>(kEndpoint);
  expect_round_trip<ClusterRecord>(kCluster);
  expect_round_trip<InstanceRecord>(kInstance);
  expect_round_trip<NetworkInterfaceRecord>(kInterface);
  expect_round_trip<FunctionRecord>(kFunction);
  expect_round_trip<FunctionRecord>(kPlainFunction);
  expect_round_trip<VpcRecord>(kVpc);
  expect_round_trip<SubnetRecord>(kSubnet);
  expect_round_trip<SecurityGroupRecord>(kGroup);
  expect_round_trip<SecurityGroupRecord>(kDefaultGroup);
}

TEST(Records, SecurityGroupsKeepTheirRulesAndTags) {
  const auto g = parse_record<SecurityGroupRecord>(kGroup);
  EXPECT_EQ(g.name, "web");
  ASSERT_EQ(g.ingress.size(), 2u);
  EXPECT_EQ(g.ingress[0].protocol, "tcp");
  EXPECT_EQ(g.ingress[0].from_port, 5432);
  EXPECT_EQ(g.ingress[0].cidr, "10.1.0.0/24");
  EXPECT_EQ(g.ingress[0].description, "db");
  EXPECT_EQ(g.ingress[1].referenced_group, g.id);
  ASSERT_EQ(g.egress.size(), 1u);
  EXPECT_EQ(g.egress[0].protocol, "-1");
  EXPECT_EQ(g.egress[0].from_port, -1);
  ASSERT_EQ(g.tags.size(), 1u);
  EXPECT_EQ(g.tags[0].key, "tier");
  const auto vpc = parse_record<VpcRecord>(kVpc);
  EXPECT_EQ(vpc.cidr_block, "10.1.0.0/16");
  EXPECT_EQ(vpc.tags.at(0).value, "tagged");
  const auto subnet = parse_record<SubnetRecord>(kSubnet);
  EXPECT_EQ(subnet.vpc_id, vpc.id);
  EXPECT_EQ(subnet.available_addresses, 251);
  json::object no_port = json::parse(kGroup).as_object();
  no_port["Ingress"].as_array()[0].as_object().erase("FromPort");
  EXPECT_EQ(error_of<SecurityGroupRecord>(json::serialize(no_port)),
            "a stored security group rule record lacks the number \"FromPort\"");
  EXPECT_EQ(error_of<SubnetRecord>(without(kSubnet, "VpcId", "VPCId")),
            "a stored subnet record lacks the string \"VpcId\"");
}

TEST(Records, AFunctionsConfigurationLeavesOutSluicesOwnKeys) {
  const auto f = parse_record<FunctionRecord>(kFunction);
  EXPECT_EQ(f.name, "f");
  EXPECT_EQ(f.timeout, 30);
  EXPECT_EQ(f.reserved_concurrency, 5);
  EXPECT_TRUE(f.code_is_local);
  EXPECT_EQ(f.code_file, "/tmp/fn");
  ASSERT_EQ(f.interface_ids().size(), 1u);
  EXPECT_EQ(f.vpc_config.subnets.size(), 1u);
  EXPECT_EQ(json::serialize(f.variables), R"({"A":"1","B":"two"})");
  EXPECT_EQ(f.log_group, "/aws/lambda/f");
  // What the API showed: the stored document without CodeFile, CodeIsLocal,
  // ReservedConcurrentExecutions and NetworkInterfaces, in the same order.
  json::object view = json::parse(kFunction).as_object();
  for (const auto key : FunctionRecord::kOwnKeys) view.erase(key);
  EXPECT_EQ(json::serialize(f.configuration()), json::serialize(view));
  const auto g = parse_record<FunctionRecord>(kPlainFunction);
  EXPECT_FALSE(g.reserved_concurrency);
  EXPECT_TRUE(g.interface_ids().empty());
  EXPECT_TRUE(g.vpc_config.subnets.empty());
}

TEST(Records, ReadTheFieldsTheServicesUse) {
  const auto p = parse_record<ProxyRecord>(kProxy);
  EXPECT_EQ(p.name, "meal-planner-proxy");
  EXPECT_EQ(p.status, "available");
  EXPECT_TRUE(p.require_tls);
  EXPECT_EQ(p.idle_client_timeout, 1800);
  ASSERT_EQ(p.auth.size(), 1u);
  EXPECT_EQ(p.auth[0].client_password_auth_type, "POSTGRES_SCRAM_SHA_256");
  EXPECT_FALSE(p.auth[0].description);
  EXPECT_EQ(p.subnets.size(), 2u);
  EXPECT_EQ(p.target_group.target_cluster, "meal-planner-db");
  EXPECT_EQ(p.target_group.max_connections_percent, 100);
  EXPECT_EQ(p.target_group.init_query, "");
  EXPECT_FALSE(p.network_interface_id.empty());
  EXPECT_GT(p.metrics_port, 0);

  const auto c = parse_record<ClusterRecord>(kCluster);
  EXPECT_EQ(c.id, "meal-planner-db");
  EXPECT_EQ(c.port, 5432);
  EXPECT_EQ(c.min_capacity, 0.5);
  EXPECT_EQ(c.max_capacity, 1.0);
  EXPECT_EQ(c.writer_instance, "meal-planner-db-1");
  const auto i = parse_record<InstanceRecord>(kInstance);
  EXPECT_EQ(i.cluster_id, "meal-planner-db");
  EXPECT_EQ(i.max_connections, 189);
  EXPECT_TRUE(i.database_created);
  const auto eni = parse_record<NetworkInterfaceRecord>(kInterface);
  EXPECT_TRUE(eni.requester_managed);
  EXPECT_FALSE(eni.is_client());
  EXPECT_EQ(eni.groups.size(), 1u);
}

TEST(Records, AMissingOrMisspeltRequiredKeyIsAnErrorNamingIt) {
  EXPECT_EQ(error_of<ProxyRecord>(without(kProxy, "DBProxyName")),
            "a stored DB proxy record lacks the string \"DBProxyName\"");
  EXPECT_EQ(error_of<ProxyRecord>(without(kProxy, "Address", "Adress")),
            "a stored DB proxy record lacks the string \"Address\"");
  EXPECT_EQ(error_of<ProxyRecord>(without(kProxy, "MetricsPort")),
            "a stored DB proxy record lacks the number \"MetricsPort\"");
  EXPECT_NE(error_of<ProxyEndpointRecord>(without(kEndpoint, "DBProxyName")).find("DBProxyName"),
            std::string::npos);
  EXPECT_NE(error_of<ClusterRecord>(without(kCluster, "MasterPassword")).find("MasterPassword"),
            std::string::npos);
  EXPECT_NE(
      error_of<InstanceRecord>(without(kInstance, "DBClusterIdentifier", "DbClusterIdentifier"))
          .find("\"DBClusterIdentifier\""),
      std::string::npos);
  EXPECT_NE(error_of<NetworkInterfaceRecord>(without(kInterface, "Groups")).find("Groups"),
            std::string::npos);
  // A key of the wrong type is no better than a missing one.
  json::object wrong = json::parse(kCluster).as_object();
  wrong["Status"] = 1;
  EXPECT_EQ(error_of<ClusterRecord>(json::serialize(wrong)),
            "a stored DB cluster record has a non-string \"Status\"");
  json::object auth = json::parse(kProxy).as_object();
  auth["Auth"].as_array()[0].as_object().erase("SecretArn");
  EXPECT_NE(error_of<ProxyRecord>(json::serialize(auth)).find("SecretArn"), std::string::npos);
  EXPECT_EQ(error_of<FunctionRecord>(without(kFunction, "Handler", "handler")),
            "a stored Lambda function record lacks the string \"Handler\"");
  json::object logging = json::parse(kFunction).as_object();
  logging["LoggingConfig"].as_object().erase("LogGroup");
  EXPECT_EQ(error_of<FunctionRecord>(json::serialize(logging)),
            "a stored Lambda function LoggingConfig record lacks the string \"LogGroup\"");
  EXPECT_EQ(error_of<ProxyRecord>("[]"), "a stored document is not a JSON object");
}

TEST(Records, KeysOlderVersionsDidNotWriteTakeTheirDefaults) {
  std::string old = kProxy;
  for (const char* key : {"NetworkInterfaceId", "VpcId", "MaxConnectionsPercent",
                          "MaxIdleConnectionsPercent", "ConnectionBorrowTimeout", "InitQuery",
                          "TargetCluster", "IdleClientTimeout", "DebugLogging"})
    old = without(old, key);
  const auto p = parse_record<ProxyRecord>(old);
  EXPECT_EQ(p.network_interface_id, "");
  EXPECT_EQ(p.vpc_id, "");
  EXPECT_EQ(p.target_group.max_connections_percent, 100);
  EXPECT_EQ(p.target_group.max_idle_connections_percent, 50);
  EXPECT_EQ(p.target_group.connection_borrow_timeout, 120);
  EXPECT_EQ(p.target_group.target_cluster, "");
  EXPECT_EQ(p.idle_client_timeout, 1800);
  // Written back, without an interface it never had.
  EXPECT_FALSE(p.to_json().contains("NetworkInterfaceId"));

  const auto c =
      parse_record<ClusterRecord>(without(without(kCluster, "NetworkInterfaceId"), "Port"));
  EXPECT_EQ(c.port, 5432);
  EXPECT_EQ(c.network_interface_id, "");
  const auto eni = parse_record<NetworkInterfaceRecord>(without(kInterface, "InterfaceType"));
  EXPECT_EQ(eni.interface_type, "interface");
  const auto i = parse_record<InstanceRecord>(without(kInstance, "MaxConnections"));
  EXPECT_EQ(i.max_connections, 189);
}

TEST(Records, KeysARecordDoesNotKnowAreKept) {
  json::object newer = json::parse(kProxy).as_object();
  newer["SomethingNewer"] = json::object{{"a", 1}};
  const std::string document = json::serialize(newer);
  const auto p = parse_record<ProxyRecord>(document);
  EXPECT_EQ(p.extra.size(), 1u);
  EXPECT_EQ(serialize_record(p), document);
  json::object auth = json::parse(kProxy).as_object();
  auth["Auth"].as_array()[0].as_object()["Extra"] = true;
  EXPECT_EQ(serialize_record(parse_record<ProxyRecord>(json::serialize(auth))),
            json::serialize(auth));
}

TEST(Records, NewRecordsWriteTheKeysInTheServicesOrder) {
  ProxyRecord p;
  p.name = "p";
  p.region = "us-east-1";
  p.auth.push_back(ProxyAuthRecord{});
  p.auth[0].description = "d";
  const json::object o = p.to_json();
  std::vector<std::string> keys;
  for (const auto& [key, value] : o) keys.emplace_back(key);
  EXPECT_EQ(keys.front(), "DBProxyName");
  EXPECT_EQ(keys.back(), "InitQuery");  // no interface yet
  EXPECT_EQ(json::serialize(o.at("Auth").as_array()[0]),
            R"({"AuthScheme":"SECRETS","SecretArn":"","IAMAuth":"DISABLED",)"
            R"("ClientPasswordAuthType":"POSTGRES_SCRAM_SHA_256","Description":"d"})");
}

}  // namespace
}  // namespace sluice::cloud
