#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>

#include "cloud/ec2.hpp"

namespace sluice::cloud {
namespace {

TEST(Cidr, ParsesAndCanonicalizes) {
  auto cidr = parse_cidr("192.168.7.9/24");
  ASSERT_TRUE(cidr);
  EXPECT_EQ(cidr->first, 0xC0A80700u);
  EXPECT_EQ(cidr->second, 24);
  EXPECT_TRUE(parse_cidr("0.0.0.0/0"));
  for (const char* bad :
       {"10.0.0.0", "10.0.0.0/33", "10.0.0/8", "10.0.0.0/", "10.0.0.0/1x", "x/8", "10.0.0.0/008"})
    EXPECT_FALSE(parse_cidr(bad)) << bad;
}

// Builds groups through the API the CLI uses, then asks who may connect.
TEST(SecurityGroups, IngressChecks) {
  char pattern[] = "/tmp/sluice-ec2-test-XXXXXX";
  const std::string dir = ::mkdtemp(pattern);
  {
    Store store(dir + "/state.db");
    Ec2 ec2(store, "123456789012");
    auto id_in = [](const std::string& xml, const std::string& tag) {
      const size_t at = xml.find("<" + tag + ">") + tag.size() + 2;
      return xml.substr(at, xml.find("</" + tag + ">", at) - at);
    };
    const std::string vpc =
        id_in(ec2.handle("CreateVpc", QueryParams::parse("CidrBlock=10.0.0.0%2F16"), "us-east-1"),
              "vpcId");
    const std::string proxy_group =
        id_in(ec2.handle("CreateSecurityGroup",
                         QueryParams::parse("GroupName=proxy&GroupDescription=p&VpcId=" + vpc),
                         "us-east-1"),
              "groupId");
    const std::string app_group =
        id_in(ec2.handle("CreateSecurityGroup",
                         QueryParams::parse("GroupName=app&GroupDescription=a&VpcId=" + vpc),
                         "us-east-1"),
              "groupId");
    EXPECT_FALSE(ec2.ingress_allows({proxy_group}, {app_group}, "10.0.1.5", 5432)) << "no rule yet";
    ec2.handle("AuthorizeSecurityGroupIngress",
               QueryParams::parse("GroupId=" + proxy_group +
                                  "&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=5432"
                                  "&IpPermissions.1.ToPort=5432&IpPermissions.1.Groups.1.GroupId=" +
                                  app_group + "&IpPermissions.1.IpRanges.1.CidrIp=127.0.0.0%2F8"),
               "us-east-1");
    EXPECT_TRUE(ec2.ingress_allows({proxy_group}, {app_group}, "10.0.1.5", 5432));
    EXPECT_FALSE(ec2.ingress_allows({proxy_group}, {app_group}, "10.0.1.5", 5433))
        << "another port";
    EXPECT_FALSE(ec2.ingress_allows({proxy_group}, {proxy_group}, "10.0.1.5", 5432))
        << "another group";
    EXPECT_TRUE(ec2.ingress_allows({proxy_group}, {}, "127.0.0.1", 5432)) << "by CIDR";
    EXPECT_FALSE(ec2.ingress_allows({proxy_group}, {}, "192.168.0.1", 5432));
    EXPECT_FALSE(ec2.ingress_allows({"sg-missing"}, {app_group}, "127.0.0.1", 5432));
    try {
      ec2.handle("DeleteSecurityGroup", QueryParams::parse("GroupId=" + app_group), "us-east-1");
      FAIL() << "a referenced group was deleted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.code, "DependencyViolation");
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::cloud
