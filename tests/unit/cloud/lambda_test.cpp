// Lambda's API beyond the configuration: paths, reserved concurrency, account settings, code
// updates, and the Hyperplane interfaces of functions in a VPC; and EC2's egress check.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "auth/crypto.hpp"
#include "cloud/ec2.hpp"
#include "cloud/lambda.hpp"

namespace sluice::cloud {
namespace {
namespace json = boost::json;

std::string tag_in(const std::string& xml, const std::string& tag) {
  const size_t at = xml.find("<" + tag + ">") + tag.size() + 2;
  return xml.substr(at, xml.find("</" + tag + ">", at) - at);
}

// A home folder with a store, EC2 and Lambda (an account limit of `concurrency`), and a VPC
// with two subnets and two groups.
class LambdaTest : public ::testing::Test {
 protected:
  explicit LambdaTest(int64_t concurrency = 1000)
      : dir_(make_dir()),
        store_(dir_ + "/state.db"),
        ec2_(store_, "123456789012"),
        lambda_(store_, ec2_, dir_ + "/functions", "123456789012", concurrency) {
    vpc_ = tag_in(ec2("CreateVpc", "CidrBlock=10.0.0.0%2F16"), "vpcId");
    for (const char* cidr : {"10.0.1.0%2F24", "10.0.2.0%2F24"})
      subnets_.push_back(
          tag_in(ec2("CreateSubnet", "VpcId=" + vpc_ + "&CidrBlock=" + cidr), "subnetId"));
    for (const char* name : {"app", "other"})
      groups_.push_back(tag_in(ec2("CreateSecurityGroup", std::string("GroupName=") + name +
                                                              "&GroupDescription=d&VpcId=" + vpc_),
                               "groupId"));
  }
  ~LambdaTest() override { std::filesystem::remove_all(dir_); }

  static std::string make_dir() {
    char pattern[] = "/tmp/sluice-lambda-test-XXXXXX";
    return ::mkdtemp(pattern);
  }
  std::string ec2(const std::string& action, const std::string& form) {
    return ec2_.handle(action, QueryParams::parse(form), "us-east-1");
  }
  // Status, error type (or "") and parsed body of one request.
  struct Reply {
    int status;
    std::string error;
    json::value body;
  };
  Reply call(const std::string& method, const std::string& target, const json::value& body = {}) {
    ApiRequest request;
    request.method = method;
    request.target = target;
    if (!body.is_null()) request.body = json::serialize(body);
    const ApiResponse response = lambda_.handle(request);
    Reply reply{response.status, "", json::value()};
    for (const auto& [name, value] : response.headers)
      if (name == "x-amzn-ErrorType") reply.error = value;
    if (!response.body.empty()) reply.body = json::parse(response.body);
    return reply;
  }
  static std::string zip_base64(const std::string& content) {
    return auth::base64_encode("PK\x03\x04" + content);
  }
  Reply create(const std::string& name, const json::value& vpc = {}) {
    json::object input{{"FunctionName", name},
                       {"Runtime", "provided.al2023"},
                       {"Handler", "bootstrap"},
                       {"Role", "arn:aws:iam::123456789012:role/r"},
                       {"Code", json::object{{"ZipFile", zip_base64(name)}}}};
    if (!vpc.is_null()) input["VpcConfig"] = vpc;
    return call("POST", "/2015-03-31/functions", input);
  }
  json::object vpc_config(std::vector<std::string> subnets, std::vector<std::string> groups) {
    json::array s, g;
    for (auto& id : subnets) s.emplace_back(id);
    for (auto& id : groups) g.emplace_back(id);
    return json::object{{"SubnetIds", s}, {"SecurityGroupIds", g}};
  }
  std::vector<Ec2::NetworkInterface> lambda_interfaces() {
    std::vector<Ec2::NetworkInterface> out;
    for (auto& eni : ec2_.interfaces())
      if (eni.interface_type == "lambda") out.push_back(eni);
    return out;
  }

  std::string dir_;
  Store store_;
  Ec2 ec2_;
  Lambda lambda_;
  std::string vpc_;
  std::vector<std::string> subnets_;
  std::vector<std::string> groups_;
};

class SmallAccount : public LambdaTest {
 protected:
  SmallAccount() : LambdaTest(50) {}
};

TEST(LambdaPaths, EveryDatedPrefixOfTheApiIsLambdas) {
  for (const char* path :
       {"/2015-03-31/functions", "/2015-03-31/functions/f/invocations",
        "/2015-03-31/event-source-mappings?FunctionName=f", "/2016-08-19/account-settings/",
        "/2017-10-31/functions/f/concurrency", "/2019-09-30/functions/f/concurrency",
        "/2021-10-31/functions/f/url", "/2018-10-31/layers", "/2020-04-22/code-signing-configs"})
    EXPECT_TRUE(Lambda::serves_path(path)) << path;
  for (const char* path : {"/", "/sluice/info", "/2015-03-310/x", "/1999-01-01/x", "/2015-03-3",
                           "/2015-03-31functions"})
    EXPECT_FALSE(Lambda::serves_path(path)) << path;
}

TEST_F(LambdaTest, UnservedOperationsGetLambdasJsonError) {
  const Reply reply = call("GET", "/2015-03-31/event-source-mappings");
  EXPECT_EQ(reply.status, 404);
  EXPECT_EQ(reply.error, "UnknownOperationException");
  EXPECT_EQ(reply.body.at("Type"), json::value("User"));
  EXPECT_TRUE(reply.body.at("message").is_string());
}

TEST_F(LambdaTest, ReservedConcurrencyAndAccountSettings) {
  ASSERT_EQ(create("f").status, 201);
  ASSERT_EQ(create("g").status, 201);
  EXPECT_EQ(call("GET", "/2019-09-30/functions/f/concurrency").body, json::object());
  Reply put = call("PUT", "/2017-10-31/functions/f/concurrency",
                   json::object{{"ReservedConcurrentExecutions", 300}});
  EXPECT_EQ(put.status, 200);
  EXPECT_EQ(put.body, json::parse(R"({"ReservedConcurrentExecutions": 300})"));
  EXPECT_EQ(call("GET", "/2019-09-30/functions/f/concurrency").body, put.body);
  EXPECT_EQ(call("GET", "/2015-03-31/functions/f").body.at("Concurrency"), put.body);
  EXPECT_FALSE(call("GET", "/2015-03-31/functions/f/configuration")
                   .body.as_object()
                   .contains("ReservedConcurrentExecutions"));
  EXPECT_EQ(lambda_.reserved_concurrency(lambda_.load("f")).value_or(0), 300);
  EXPECT_EQ(lambda_.unreserved_concurrency(), 700);

  // 1000 - 300 - 601 < 100: refused; 600 leaves exactly the minimum.
  Reply too_much = call("PUT", "/2017-10-31/functions/g/concurrency",
                        json::object{{"ReservedConcurrentExecutions", 601}});
  EXPECT_EQ(too_much.status, 400);
  EXPECT_EQ(too_much.error, "InvalidParameterValueException");
  EXPECT_EQ(too_much.body.at("message").as_string(),
            "Specified ReservedConcurrentExecutions for function decreases account's "
            "UnreservedConcurrentExecution below its minimum value of [100].");
  EXPECT_EQ(call("PUT", "/2017-10-31/functions/g/concurrency",
                 json::object{{"ReservedConcurrentExecutions", 600}})
                .status,
            200);
  // A function's own reservation does not count against its new one.
  EXPECT_EQ(call("PUT", "/2017-10-31/functions/f/concurrency",
                 json::object{{"ReservedConcurrentExecutions", 300}})
                .status,
            200);
  EXPECT_EQ(call("PUT", "/2017-10-31/functions/f/concurrency",
                 json::object{{"ReservedConcurrentExecutions", -1}})
                .error,
            "InvalidParameterValueException");
  EXPECT_EQ(call("PUT", "/2017-10-31/functions/nope/concurrency",
                 json::object{{"ReservedConcurrentExecutions", 1}})
                .status,
            404);

  const json::value settings = call("GET", "/2016-08-19/account-settings/").body;
  EXPECT_EQ(settings.at("AccountLimit").at("ConcurrentExecutions"), json::value(1000));
  EXPECT_EQ(settings.at("AccountLimit").at("UnreservedConcurrentExecutions"), json::value(100));
  EXPECT_EQ(settings.at("AccountLimit").at("CodeSizeZipped"), json::value(52428800));
  EXPECT_EQ(settings.at("AccountUsage").at("FunctionCount"), json::value(2));
  EXPECT_EQ(settings.at("AccountUsage").at("TotalCodeSize"),
            json::value(10));  // "PK\3\4f", "PK\3\4g"

  EXPECT_EQ(call("DELETE", "/2017-10-31/functions/g/concurrency").status, 204);
  EXPECT_EQ(call("GET", "/2019-09-30/functions/g/concurrency").body, json::object());
  EXPECT_FALSE(call("GET", "/2015-03-31/functions/g").body.as_object().contains("Concurrency"));
  EXPECT_EQ(call("GET", "/2016-08-19/account-settings")
                .body.at("AccountLimit")
                .at("UnreservedConcurrentExecutions"),
            json::value(700));
}

TEST_F(SmallAccount, TheMinimumIsATenthOfASmallLimit) {
  ASSERT_EQ(create("f").status, 201);
  EXPECT_EQ(call("PUT", "/2017-10-31/functions/f/concurrency",
                 json::object{{"ReservedConcurrentExecutions", 46}})
                .body.at("message")
                .as_string(),
            "Specified ReservedConcurrentExecutions for function decreases account's "
            "UnreservedConcurrentExecution below its minimum value of [5].");
  EXPECT_EQ(call("PUT", "/2017-10-31/functions/f/concurrency",
                 json::object{{"ReservedConcurrentExecutions", 45}})
                .status,
            200);
}

TEST_F(LambdaTest, UpdateFunctionCodeReplacesTheUpload) {
  const json::value created = create("f").body;
  const std::string first_file = lambda_.load("f").at("CodeFile").as_string().c_str();
  ASSERT_TRUE(std::filesystem::exists(first_file));
  Reply updated = call("PUT", "/2015-03-31/functions/f/code",
                       json::object{{"ZipFile", zip_base64("new code")}});
  ASSERT_EQ(updated.status, 200) << json::serialize(updated.body);
  EXPECT_NE(updated.body.at("CodeSha256"), created.at("CodeSha256"));
  EXPECT_EQ(updated.body.at("CodeSha256"),
            json::value(auth::base64_encode(auth::sha256(std::string("PK\x03\x04new code")))));
  EXPECT_EQ(updated.body.at("CodeSize"), json::value(12));
  EXPECT_NE(updated.body.at("RevisionId"), created.at("RevisionId"));
  const json::object stored = lambda_.load("f");
  const std::string new_file = stored.at("CodeFile").as_string().c_str();
  EXPECT_NE(new_file, first_file);
  EXPECT_FALSE(std::filesystem::exists(first_file)) << "the old upload is replaced";
  std::ifstream in(new_file, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "PK\x03\x04new code");

  // The same checks as CreateFunction, and the revision lock; nothing changes when refused.
  EXPECT_EQ(call("PUT", "/2015-03-31/functions/f/code",
                 json::object{{"ZipFile", auth::base64_encode("not a zip")}})
                .error,
            "InvalidParameterValueException");
  EXPECT_EQ(call("PUT", "/2015-03-31/functions/f/code", json::object{}).error,
            "InvalidParameterValueException");
  EXPECT_EQ(call("PUT", "/2015-03-31/functions/f/code",
                 json::object{{"S3Bucket", "bucket"}, {"S3Key", "/tmp"}})
                .error,
            "InvalidParameterValueException");
  Reply stale = call("PUT", "/2015-03-31/functions/f/code",
                     json::object{{"ZipFile", zip_base64("x")}, {"RevisionId", "old"}});
  EXPECT_EQ(stale.status, 412);
  EXPECT_EQ(stale.error, "PreconditionFailedException");
  EXPECT_EQ(lambda_.load("f").at("RevisionId"), stored.at("RevisionId"));

  // Code where it lies: the upload goes, the user's folder stays.
  Reply local = call("PUT", "/2015-03-31/functions/f/code",
                     json::object{{"S3Bucket", "sluice-local"}, {"S3Key", dir_ + "/functions"}});
  EXPECT_EQ(local.status, 200);
  EXPECT_FALSE(std::filesystem::exists(new_file));
  EXPECT_TRUE(lambda_.load("f").at("CodeIsLocal").as_bool());
  EXPECT_EQ(call("DELETE", "/2015-03-31/functions/f").status, 204);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/functions"));
}

TEST_F(LambdaTest, FunctionsInAVpcShareOneInterfacePerSubnetAndGroupSet) {
  const json::object both = vpc_config(subnets_, {groups_[1], groups_[0]});
  ASSERT_EQ(create("a", both).status, 201);
  auto enis = lambda_interfaces();
  ASSERT_EQ(enis.size(), 2u);
  for (const auto& eni : enis) {
    EXPECT_TRUE(eni.requester_managed);
    EXPECT_TRUE(eni.description.starts_with("AWS Lambda VPC ENI-a-")) << eni.description;
    EXPECT_EQ(eni.vpc_id, vpc_);
  }
  const json::object a = lambda_.load("a");
  EXPECT_EQ(Lambda::network_interfaces(a).size(), 2u);
  EXPECT_FALSE(call("GET", "/2015-03-31/functions/a/configuration")
                   .body.as_object()
                   .contains("NetworkInterfaces"));

  // The same groups in another order: the same interfaces.
  ASSERT_EQ(create("b", vpc_config(subnets_, {groups_[0], groups_[1]})).status, 201);
  EXPECT_EQ(lambda_interfaces().size(), 2u);
  EXPECT_EQ(Lambda::network_interfaces(lambda_.load("b")), Lambda::network_interfaces(a));
  // Another group set: its own interface.
  ASSERT_EQ(create("c", vpc_config({subnets_[0]}, {groups_[0]})).status, 201);
  EXPECT_EQ(lambda_interfaces().size(), 3u);

  // A group in use by a function's interface stays.
  EXPECT_THROW(ec2("DeleteSecurityGroup", "GroupId=" + groups_[1]), ApiError);
  // Users cannot delete a function's interface.
  EXPECT_THROW(ec2("DeleteNetworkInterface", "NetworkInterfaceId=" + enis[0].id), ApiError);

  EXPECT_EQ(call("DELETE", "/2015-03-31/functions/a").status, 204);
  EXPECT_EQ(lambda_interfaces().size(), 3u) << "b still uses them";
  // Leaving the VPC releases c's interface.
  EXPECT_EQ(call("PUT", "/2015-03-31/functions/c/configuration",
                 json::object{{"VpcConfig", vpc_config({}, {})}})
                .status,
            200);
  EXPECT_EQ(lambda_interfaces().size(), 2u);
  EXPECT_TRUE(Lambda::network_interfaces(lambda_.load("c")).empty());
  EXPECT_EQ(call("DELETE", "/2015-03-31/functions/b").status, 204);
  EXPECT_TRUE(lambda_interfaces().empty());
  ec2("DeleteSecurityGroup", "GroupId=" + groups_[1]);

  // A function refused half-way (its second subnet is full) leaves no interface behind.
  const std::string full =
      tag_in(ec2("CreateSubnet", "VpcId=" + vpc_ + "&CidrBlock=10.0.3.0%2F28"), "subnetId");
  for (int i = 0; i < 11; ++i) ec2("CreateNetworkInterface", "SubnetId=" + full);
  const Reply refused = create("d", vpc_config({subnets_[0], full}, {groups_[0]}));
  EXPECT_EQ(refused.error, "SubnetIPAddressLimitReachedException");
  EXPECT_TRUE(lambda_interfaces().empty());
  EXPECT_FALSE(store_.get("function", "d"));
  for (const auto& file : std::filesystem::directory_iterator(dir_ + "/functions"))
    EXPECT_FALSE(file.path().filename().string().starts_with("d-")) << "nor a package";
}

TEST_F(LambdaTest, EgressRulesLetConnectionsOut) {
  const std::string& client = groups_[0];
  const std::string& proxy = groups_[1];
  // A new group lets everything out.
  EXPECT_TRUE(ec2_.egress_allows({client}, {proxy}, "10.0.1.4", 5432));
  const std::string all_out =
      "GroupId=" + client +
      "&IpPermissions.1.IpProtocol=-1&IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0";
  ec2("RevokeSecurityGroupEgress", all_out);
  EXPECT_FALSE(ec2_.egress_allows({client}, {proxy}, "10.0.1.4", 5432));
  // To the proxy's group on 5432 only.
  ec2("AuthorizeSecurityGroupEgress",
      "GroupId=" + client +
          "&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=5432&IpPermissions.1.ToPort="
          "5432&IpPermissions.1.Groups.1.GroupId=" +
          proxy);
  EXPECT_TRUE(ec2_.egress_allows({client}, {proxy}, "10.0.1.4", 5432));
  EXPECT_FALSE(ec2_.egress_allows({client}, {proxy}, "10.0.1.4", 443));
  EXPECT_FALSE(ec2_.egress_allows({client}, {client}, "10.0.1.4", 5432));
  // By the destination's address.
  ec2("AuthorizeSecurityGroupEgress",
      "GroupId=" + client +
          "&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=5000&IpPermissions.1.ToPort="
          "6000&IpPermissions.1.IpRanges.1.CidrIp=10.0.1.0%2F24");
  EXPECT_TRUE(ec2_.egress_allows({client}, {}, "10.0.1.9", 5432));
  EXPECT_FALSE(ec2_.egress_allows({client}, {}, "10.0.2.9", 5432));
  // Any of the source's groups will do; none lets nothing out.
  EXPECT_TRUE(ec2_.egress_allows({client, proxy}, {}, "192.168.0.1", 5432));
  EXPECT_FALSE(ec2_.egress_allows({}, {proxy}, "10.0.1.4", 5432));
  ec2("AuthorizeSecurityGroupEgress", all_out);
  EXPECT_TRUE(ec2_.egress_allows({client}, {}, "192.168.0.1", 5432));
}

TEST_F(LambdaTest, DescribeNetworkInterfacesFiltersByType) {
  ASSERT_EQ(create("a", vpc_config({subnets_[0]}, {groups_[0]})).status, 201);
  ec2("CreateNetworkInterface", "SubnetId=" + subnets_[1]);
  const std::string lambda_only =
      ec2("DescribeNetworkInterfaces", "Filter.1.Name=interface-type&Filter.1.Value.1=lambda");
  EXPECT_NE(lambda_only.find("<interfaceType>lambda</interfaceType>"), std::string::npos);
  EXPECT_EQ(lambda_only.find("<interfaceType>interface</interfaceType>"), std::string::npos);
  EXPECT_NE(lambda_only.find("<requesterManaged>true</requesterManaged>"), std::string::npos);
  const std::string users =
      ec2("DescribeNetworkInterfaces", "Filter.1.Name=requester-managed&Filter.1.Value.1=false");
  EXPECT_NE(users.find("<interfaceType>interface</interfaceType>"), std::string::npos);
  EXPECT_EQ(users.find("<interfaceType>lambda</interfaceType>"), std::string::npos);
}

}  // namespace
}  // namespace sluice::cloud
