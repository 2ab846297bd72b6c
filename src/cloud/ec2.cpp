#include "cloud/ec2.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <tuple>

#include "cloud/ec2_support.hpp"
#include "cloud/ids.hpp"
#include "cloud/json_fields.hpp"

namespace sluice::cloud {
namespace json = boost::json;
using namespace ec2_support;
namespace {

// `sluice apply` may pin an ID (SluiceId=vpc-…, a parameter the AWS SDKs never send), so a stack
// reproduces an account's IDs exactly; otherwise a new random one.
std::string pinned_or_new(const QueryParams& params, std::string_view prefix, Store& store,
                          std::string_view kind, const std::string& duplicate_code) {
  const auto pinned = params.get("SluiceId");
  if (!pinned) return resource_id(prefix);
  const std::string want = std::string(prefix) + "-";
  bool ok = pinned->starts_with(want) && pinned->size() >= want.size() + 8 &&
            pinned->size() <= want.size() + 17;
  for (size_t i = want.size(); ok && i < pinned->size(); ++i)
    ok = std::isxdigit(static_cast<unsigned char>((*pinned)[i])) &&
         !std::isupper(static_cast<unsigned char>((*pinned)[i]));
  if (!ok)
    throw ApiError("InvalidParameterValue",
                   "SluiceId " + *pinned + " is not a " + want + "<8 to 17 hex digits> ID.");
  if (store.get(kind, *pinned))
    throw ApiError(duplicate_code, "The ID '" + *pinned + "' already exists.");
  return *pinned;
}

// Tags from TagSpecification.N (for `resource_type`) as a JSON list of {Key, Value}.
json::array tags_for(const QueryParams& params, std::string_view resource_type) {
  json::array tags;
  for (int i = 1;; ++i) {
    const std::string spec = "TagSpecification." + std::to_string(i);
    auto type = params.get(spec + ".ResourceType");
    if (!type) break;
    if (*type != resource_type) continue;
    for (int j = 1;; ++j) {
      const std::string tag = spec + ".Tag." + std::to_string(j);
      auto key = params.get(tag + ".Key");
      if (!key) break;
      tags.push_back(
          json::object{{"Key", *key}, {"Value", params.get(tag + ".Value").value_or("")}});
    }
  }
  return tags;
}

void tags_xml(Xml& xml, const json::object& resource) {
  auto it = resource.find("Tags");
  if (it == resource.end() || it->value().as_array().empty()) return;
  xml.open("tagSet");
  for (const auto& t : it->value().as_array())
    xml.open("item")
        .leaf("key", text(t.as_object(), "Key"))
        .leaf("value", text(t.as_object(), "Value"))
        .close("item");
  xml.close("tagSet");
}

std::string protocol_name(const std::string& protocol) {
  return protocol == "-1" ? "ALL" : [&] {
    std::string upper = protocol;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return upper;
  }();
}

// One rule per (permission, source) as the API's SecurityGroupRule sees them.
struct Rule {
  std::string protocol;
  int64_t from = -1;
  int64_t to = -1;
  std::string cidr;   // or
  std::string group;  // a referenced security group
  std::string description;
  bool same(const json::object& r) const {
    return text(r, "IpProtocol") == protocol && number(r, "FromPort") == from &&
           number(r, "ToPort") == to && text(r, "CidrIpv4") == cidr &&
           text(r, "ReferencedGroupId") == group;
  }
};

// The rules a request names: IpPermissions.N.* or the flat CidrIp/IpProtocol/FromPort/ToPort form.
std::vector<Rule> rules_of(const QueryParams& params) {
  std::vector<Rule> rules;
  auto port = [](const std::optional<std::string>& v) -> int64_t {
    if (!v) return -1;
    int64_t parsed = 0;
    const auto [end, error] = std::from_chars(v->data(), v->data() + v->size(), parsed);
    if (error != std::errc() || end != v->data() + v->size() || parsed < -1 || parsed > 65535)
      throw ApiError("InvalidParameterValue", "Invalid value '" + *v + "' for port.");
    return parsed;
  };

  auto normalized = [](Rule rule) {
    std::string& p = rule.protocol;
    for (char& c : p) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (p == "6") p = "tcp";
    if (p == "17") p = "udp";
    if (p == "all") p = "-1";
    if (p != "tcp" && p != "udp" && p != "icmp" && p != "-1")
      throw ApiError("InvalidParameterValue",
                     "Invalid value '" + p + "' for IP protocol. Unknown protocol.");
    if (p == "-1")
      rule.from = rule.to = -1;
    else if ((p == "tcp" || p == "udp") &&
             (rule.from < 0 || rule.to > 65535 || rule.from > rule.to))
      throw ApiError("InvalidParameterValue", "Invalid port range " + std::to_string(rule.from) +
                                                  "-" + std::to_string(rule.to) + ".");
    if (!rule.cidr.empty()) {
      auto cidr = parse_cidr(rule.cidr);
      if (!cidr)
        throw ApiError("InvalidParameterValue", "CIDR block " + rule.cidr + " is malformed");
      rule.cidr = cidr_text(cidr->first, cidr->second);
    }
    return rule;
  };
  for (int i = 1;; ++i) {
    const std::string permission = "IpPermissions." + std::to_string(i);
    auto protocol = params.get(permission + ".IpProtocol");
    if (!protocol) break;
    Rule base{*protocol,
              port(params.get(permission + ".FromPort")),
              port(params.get(permission + ".ToPort")),
              "",
              "",
              ""};
    for (int j = 1;; ++j) {
      const std::string range = permission + ".IpRanges." + std::to_string(j);
      auto cidr = params.get(range + ".CidrIp");
      if (!cidr) break;
      Rule r = base;
      r.cidr = *cidr;
      r.description = params.get(range + ".Description").value_or("");
      rules.push_back(normalized(r));
    }
    for (int j = 1;; ++j) {
      const std::string pair = permission + ".Groups." + std::to_string(j);
      auto group = params.get(pair + ".GroupId");
      if (!group) break;
      Rule r = base;
      r.group = *group;
      r.description = params.get(pair + ".Description").value_or("");
      rules.push_back(normalized(r));
    }
  }
  if (auto cidr = params.get("CidrIp")) {
    Rule r{params.get("IpProtocol").value_or("-1"),
           port(params.get("FromPort")),
           port(params.get("ToPort")),
           *cidr,
           "",
           ""};
    rules.push_back(normalized(r));
  }
  return rules;
}

std::string rule_text(const Rule& rule) {
  const std::string peer = rule.cidr.empty() ? rule.group : rule.cidr;
  return "peer: " + peer + ", " + protocol_name(rule.protocol) +
         ", from port: " + std::to_string(rule.from) + ", to port: " + std::to_string(rule.to) +
         ", ALLOW";
}

void rule_xml(Xml& xml, const json::object& rule, const std::string& group_id,
              const std::string& owner, bool egress) {
  xml.open("item")
      .leaf("securityGroupRuleId", text(rule, "SecurityGroupRuleId"))
      .leaf("groupId", group_id)
      .leaf("groupOwnerId", owner)
      .leaf("isEgress", egress ? "true" : "false")
      .leaf("ipProtocol", text(rule, "IpProtocol"))
      .leaf("fromPort", std::to_string(number(rule, "FromPort")))
      .leaf("toPort", std::to_string(number(rule, "ToPort")));
  if (!text(rule, "CidrIpv4").empty()) xml.leaf("cidrIpv4", text(rule, "CidrIpv4"));
  if (!text(rule, "ReferencedGroupId").empty())
    xml.open("referencedGroupInfo")
        .leaf("groupId", text(rule, "ReferencedGroupId"))
        .leaf("userId", owner)
        .close("referencedGroupInfo");
  if (!text(rule, "Description").empty()) xml.leaf("description", text(rule, "Description"));
  xml.close("item");
}

// ipPermissions: rules grouped by (protocol, ports), with their ranges and groups.
void permissions_xml(Xml& xml, std::string_view tag, const json::array& rules,
                     const std::string& owner) {
  std::map<std::tuple<std::string, int64_t, int64_t>, std::vector<const json::object*>> grouped;
  std::vector<std::tuple<std::string, int64_t, int64_t>> order;
  for (const auto& r : rules) {
    const json::object& rule = r.as_object();
    auto key =
        std::make_tuple(text(rule, "IpProtocol"), number(rule, "FromPort"), number(rule, "ToPort"));
    if (!grouped.contains(key)) order.push_back(key);
    grouped[key].push_back(&rule);
  }
  xml.open(tag);
  for (const auto& key : order) {
    const auto& [protocol, from, to] = key;
    xml.open("item").leaf("ipProtocol", protocol);
    if (protocol != "-1")
      xml.leaf("fromPort", std::to_string(from)).leaf("toPort", std::to_string(to));
    xml.open("groups");
    for (const auto* rule : grouped[key])
      if (!text(*rule, "ReferencedGroupId").empty()) {
        xml.open("item").leaf("groupId", text(*rule, "ReferencedGroupId")).leaf("userId", owner);
        if (!text(*rule, "Description").empty())
          xml.leaf("description", text(*rule, "Description"));
        xml.close("item");
      }
    xml.close("groups").open("ipRanges");
    for (const auto* rule : grouped[key])
      if (!text(*rule, "CidrIpv4").empty()) {
        xml.open("item").leaf("cidrIp", text(*rule, "CidrIpv4"));
        if (!text(*rule, "Description").empty())
          xml.leaf("description", text(*rule, "Description"));
        xml.close("item");
      }
    xml.close("ipRanges")
        .open("ipv6Ranges")
        .close("ipv6Ranges")
        .open("prefixListIds")
        .close("prefixListIds")
        .close("item");
  }
  xml.close(tag);
}

}  // namespace

std::optional<std::pair<uint32_t, int>> parse_cidr(std::string_view cidr) {
  const size_t slash = cidr.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string address(cidr.substr(0, slash));
  const std::string_view prefix_text = cidr.substr(slash + 1);
  if (prefix_text.empty() || prefix_text.size() > 2) return std::nullopt;
  int prefix = 0;
  for (char c : prefix_text) {
    if (c < '0' || c > '9') return std::nullopt;
    prefix = prefix * 10 + (c - '0');
  }
  in_addr parsed{};
  if (prefix > 32 || inet_pton(AF_INET, address.c_str(), &parsed) != 1) return std::nullopt;
  return std::make_pair(ntohl(parsed.s_addr) & mask_of(prefix), prefix);
}

json::object Ec2::load(std::string_view kind, const std::string& id) {
  auto document = store_.get(kind, id);
  if (!document) {
    if (kind == kVpc)
      throw ApiError("InvalidVpcID.NotFound", "The vpc ID '" + id + "' does not exist");
    if (kind == kSubnet)
      throw ApiError("InvalidSubnetID.NotFound", "The subnet ID '" + id + "' does not exist");
    throw ApiError("InvalidGroup.NotFound", "The security group '" + id + "' does not exist");
  }
  return json::parse(*document).as_object();
}

void Ec2::save(std::string_view kind, const json::object& resource) {
  const char* key = kind == kVpc ? "VpcId" : kind == kSubnet ? "SubnetId" : "GroupId";
  store_.put(kind, text(resource, key), json::serialize(resource));
}

std::string Ec2::vpc_of_subnet(const std::string& subnet_id) {
  auto document = store_.get(kSubnet, subnet_id);
  return document ? text(json::parse(*document).as_object(), "VpcId") : "";
}

std::vector<std::string> Ec2::admitted_sources(const std::string& vpc_id,
                                               const std::vector<std::string>& destination_groups,
                                               const std::string& destination_ip, int port) {
  std::vector<std::string> sources;
  for (const auto& eni : interfaces())
    if (eni.is_client() && eni.vpc_id == vpc_id &&
        ingress_allows(destination_groups, eni.groups, eni.ip, port) &&
        egress_allows(eni.groups, destination_groups, destination_ip, port))
      sources.push_back(eni.ip);
  return sources;
}

std::string Ec2::vpc_of_group(const std::string& group_id) {
  auto document = store_.get(kGroup, group_id);
  return document ? text(json::parse(*document).as_object(), "VpcId") : "";
}

std::vector<std::string> Ec2::subnets_of(const std::string& vpc_id) {
  std::vector<std::string> subnets;
  for (const auto& [id, document] : store_.list(kSubnet))
    if (text(json::parse(document).as_object(), "VpcId") == vpc_id) subnets.push_back(id);
  return subnets;
}

bool Ec2::group_in_vpc(const std::string& group_id, const std::string& vpc_id) {
  auto document = store_.get(kGroup, group_id);
  return document &&
         (vpc_id.empty() || text(json::parse(*document).as_object(), "VpcId") == vpc_id);
}

std::string Ec2::handle(std::string_view action, const QueryParams& params,
                        std::string_view region) {
  if (action == "CreateVpc") return create_vpc(params);
  if (action == "CreateSubnet") return create_subnet(params, region);
  if (action == "CreateSecurityGroup") return create_security_group(params);
  if (action == "AuthorizeSecurityGroupIngress") return change_rules(params, false, true);
  if (action == "AuthorizeSecurityGroupEgress") return change_rules(params, true, true);
  if (action == "RevokeSecurityGroupIngress") return change_rules(params, false, false);
  if (action == "RevokeSecurityGroupEgress") return change_rules(params, true, false);
  if (action == "DescribeVpcs") return describe(kVpc, params);
  if (action == "DescribeSubnets") return describe(kSubnet, params);
  if (action == "DescribeSecurityGroups") return describe(kGroup, params);
  if (action == "DescribeSecurityGroupRules") return describe_rules(params);
  if (action == "DeleteVpc") return remove(kVpc, need(params, "VpcId"));
  if (action == "DeleteSubnet") return remove(kSubnet, need(params, "SubnetId"));
  if (action == "DeleteSecurityGroup") return remove(kGroup, need(params, "GroupId"));
  if (action == "CreateNetworkInterface") return create_network_interface(params);
  if (action == "DescribeNetworkInterfaces") return describe_network_interfaces(params);
  if (action == "DeleteNetworkInterface")
    return delete_network_interface(need(params, "NetworkInterfaceId"));
  throw ApiError("InvalidAction",
                 "The action " + std::string(action) + " is not valid for this web service.");
}

std::string Ec2::make_security_group(const std::string& vpc_id, const std::string& name,
                                     const std::string& description, bool self_ingress,
                                     const std::string& pinned_id) {
  const std::string id = pinned_id.empty() ? resource_id("sg") : pinned_id;
  json::array ingress;
  if (self_ingress)  // the default group admits its own members, as in AWS
    ingress.push_back(json::object{{"SecurityGroupRuleId", resource_id("sgr")},
                                   {"IpProtocol", "-1"},
                                   {"FromPort", -1},
                                   {"ToPort", -1},
                                   {"ReferencedGroupId", id}});
  json::array egress{json::object{{"SecurityGroupRuleId", resource_id("sgr")},
                                  {"IpProtocol", "-1"},
                                  {"FromPort", -1},
                                  {"ToPort", -1},
                                  {"CidrIpv4", "0.0.0.0/0"}}};
  json::object group{{"GroupId", id},    {"GroupName", name},      {"Description", description},
                     {"VpcId", vpc_id},  {"OwnerId", account_id_}, {"Ingress", ingress},
                     {"Egress", egress}, {"Tags", json::array()}};
  store_.insert(kGroup, id, json::serialize(group));
  return id;
}

std::string Ec2::create_vpc(const QueryParams& params) {
  const std::string cidr_param = need(params, "CidrBlock");
  auto cidr = parse_cidr(cidr_param);
  if (!cidr || cidr->second < 16 || cidr->second > 28)
    throw ApiError("InvalidVpc.Range", "The CIDR '" + cidr_param + "' is invalid.");
  json::object vpc{{"VpcId", pinned_or_new(params, "vpc", store_, kVpc, "InvalidVpcID.Duplicate")},
                   {"CidrBlock", cidr_text(cidr->first, cidr->second)},
                   {"State", "available"},
                   {"OwnerId", account_id_},
                   {"DhcpOptionsId", "dopt-00000000000000000"},
                   {"InstanceTenancy", params.get("InstanceTenancy").value_or("default")},
                   {"Tags", tags_for(params, "vpc")}};
  save(kVpc, vpc);
  make_security_group(text(vpc, "VpcId"), "default", "default VPC security group", true);
  Xml xml;
  xml.open("vpc")
      .leaf("vpcId", text(vpc, "VpcId"))
      .leaf("state", "available")
      .leaf("cidrBlock", text(vpc, "CidrBlock"))
      .leaf("dhcpOptionsId", text(vpc, "DhcpOptionsId"))
      .leaf("instanceTenancy", text(vpc, "InstanceTenancy"))
      .leaf("isDefault", "false")
      .leaf("ownerId", account_id_);
  tags_xml(xml, vpc);
  return xml.close("vpc").str();
}

namespace {

void vpc_xml(Xml& xml, const json::object& vpc) {
  xml.open("item")
      .leaf("vpcId", text(vpc, "VpcId"))
      .leaf("state", text(vpc, "State"))
      .leaf("cidrBlock", text(vpc, "CidrBlock"))
      .leaf("dhcpOptionsId", text(vpc, "DhcpOptionsId"))
      .leaf("instanceTenancy", text(vpc, "InstanceTenancy"))
      .leaf("isDefault", "false")
      .leaf("ownerId", text(vpc, "OwnerId"));
  tags_xml(xml, vpc);
  xml.close("item");
}

void subnet_xml(Xml& xml, std::string_view tag, const json::object& subnet) {
  xml.open(tag)
      .leaf("subnetId", text(subnet, "SubnetId"))
      .leaf("subnetArn", text(subnet, "SubnetArn"))
      .leaf("state", "available")
      .leaf("vpcId", text(subnet, "VpcId"))
      .leaf("cidrBlock", text(subnet, "CidrBlock"))
      .leaf("availableIpAddressCount", std::to_string(number(subnet, "AvailableIpAddressCount")))
      .leaf("availabilityZone", text(subnet, "AvailabilityZone"))
      .leaf("availabilityZoneId", text(subnet, "AvailabilityZoneId"))
      .leaf("defaultForAz", "false")
      .leaf("mapPublicIpOnLaunch", "false")
      .leaf("ownerId", text(subnet, "OwnerId"));
  tags_xml(xml, subnet);
  xml.close(tag);
}

}  // namespace

std::string Ec2::create_subnet(const QueryParams& params, std::string_view region) {
  const std::string vpc_id = need(params, "VpcId");
  const std::string cidr_param = need(params, "CidrBlock");
  json::object vpc = load(kVpc, vpc_id);
  auto cidr = parse_cidr(cidr_param);
  auto vpc_cidr = parse_cidr(text(vpc, "CidrBlock"));
  if (!cidr || cidr->second < vpc_cidr->second || cidr->second > 28 ||
      (cidr->first & mask_of(vpc_cidr->second)) != vpc_cidr->first)
    throw ApiError("InvalidSubnet.Range", "The CIDR '" + cidr_param + "' is invalid.");
  const std::string id =
      pinned_or_new(params, "subnet", store_, kSubnet, "InvalidSubnetID.Duplicate");
  for (const auto& [other_id, document] : store_.list(kSubnet)) {
    const json::object other = json::parse(document).as_object();
    if (text(other, "VpcId") != vpc_id) continue;
    auto taken = parse_cidr(text(other, "CidrBlock"));
    const int shorter = std::min(taken->second, cidr->second);
    if ((taken->first & mask_of(shorter)) == (cidr->first & mask_of(shorter)))
      throw ApiError("InvalidSubnet.Conflict",
                     "The CIDR '" + cidr_param + "' conflicts with another subnet");
  }
  const std::string zone = params.get("AvailabilityZone").value_or(std::string(region) + "a");
  json::object subnet{
      {"SubnetId", id},
      {"VpcId", vpc_id},
      {"CidrBlock", cidr_text(cidr->first, cidr->second)},
      {"AvailabilityZone", zone},
      {"AvailabilityZoneId", "use1-az" + std::to_string(zone.back() - 'a' + 1)},
      {"AvailableIpAddressCount", (int64_t{1} << (32 - cidr->second)) - 5},  // AWS reserves 5
      {"OwnerId", account_id_},
      {"SubnetArn", "arn:aws:ec2:" + std::string(region) + ":" + account_id_ + ":subnet/" + id},
      {"Tags", tags_for(params, "subnet")}};
  save(kSubnet, subnet);
  Xml xml;
  subnet_xml(xml, "subnet", subnet);
  return xml.str();
}

std::string Ec2::create_security_group(const QueryParams& params) {
  const std::string name = need(params, "GroupName");
  const std::string description = need(params, "GroupDescription");
  const std::string vpc_id = need(params, "VpcId");  // no EC2-Classic, no default VPC here
  load(kVpc, vpc_id);
  if (name == "default" || name.starts_with("sg-"))
    throw ApiError("InvalidParameterValue",
                   "Group names may not be in the format sg-* or named default.");
  for (const auto& [id, document] : store_.list(kGroup)) {
    const json::object other = json::parse(document).as_object();
    if (text(other, "VpcId") == vpc_id && text(other, "GroupName") == name)
      throw ApiError("InvalidGroup.Duplicate",
                     "The security group '" + name + "' already exists for VPC '" + vpc_id + "'");
  }
  const std::string id =
      make_security_group(vpc_id, name, description, false,
                          pinned_or_new(params, "sg", store_, kGroup, "InvalidGroup.Duplicate"));
  json::object group = load(kGroup, id);
  group["Tags"] = tags_for(params, "security-group");
  save(kGroup, group);
  Xml xml;
  xml.leaf("return", "true").leaf("groupId", id);
  tags_xml(xml, group);
  return xml.str();
}

std::string Ec2::change_rules(const QueryParams& params, bool egress, bool authorize) {
  json::object group = load(kGroup, need(params, "GroupId"));
  const std::string group_id = text(group, "GroupId");
  json::array& rules = group[egress ? "Egress" : "Ingress"].as_array();
  Xml xml;
  if (!authorize) {
    // By rule ID, or by the rule's description.
    auto ids = params.list("SecurityGroupRuleId");
    auto wanted = rules_of(params);
    if (ids.empty() && wanted.empty()) throw ApiError("MissingParameter", missing("IpPermissions"));
    for (const auto& id : ids) {
      auto it = std::find_if(rules.begin(), rules.end(), [&](const json::value& r) {
        return text(r.as_object(), "SecurityGroupRuleId") == id;
      });
      if (it == rules.end())
        throw ApiError("InvalidSecurityGroupRuleId.NotFound",
                       "The security group rule ID '" + id + "' does not exist");
      rules.erase(it);
    }
    for (const auto& rule : wanted) {
      auto it = std::find_if(rules.begin(), rules.end(),
                             [&](const json::value& r) { return rule.same(r.as_object()); });
      if (it == rules.end())
        throw ApiError("InvalidPermission.NotFound",
                       "The specified rule does not exist in this security group.");
      rules.erase(it);
    }
    save(kGroup, group);
    return xml.leaf("return", "true").str();
  }
  auto wanted = rules_of(params);
  if (wanted.empty()) throw ApiError("MissingParameter", missing("IpPermissions"));
  xml.leaf("return", "true").open("securityGroupRuleSet");
  for (const auto& rule : wanted) {
    if (!rule.group.empty()) load(kGroup, rule.group);  // must exist
    for (const auto& r : rules)
      if (rule.same(r.as_object()))
        throw ApiError("InvalidPermission.Duplicate",
                       "the specified rule \"" + rule_text(rule) + "\" already exists");
    json::object stored{{"SecurityGroupRuleId", resource_id("sgr")},
                        {"IpProtocol", rule.protocol},
                        {"FromPort", rule.from},
                        {"ToPort", rule.to}};
    if (!rule.cidr.empty()) stored["CidrIpv4"] = rule.cidr;
    if (!rule.group.empty()) stored["ReferencedGroupId"] = rule.group;
    if (!rule.description.empty()) stored["Description"] = rule.description;
    rules.push_back(stored);
    rule_xml(xml, stored, group_id, account_id_, egress);
  }
  save(kGroup, group);  // all or nothing: saved only when every rule passed
  return xml.close("securityGroupRuleSet").str();
}

std::string Ec2::describe(std::string_view kind, const QueryParams& params) {
  const auto filters = filters_of(params);
  const char* id_param = kind == kVpc ? "VpcId" : kind == kSubnet ? "SubnetId" : "GroupId";
  const auto ids = params.list(id_param);
  const auto names = kind == kGroup ? params.list("GroupName") : std::vector<std::string>{};
  for (const auto& id : ids) load(kind, id);  // an unknown ID is an error, as in EC2
  Xml xml;
  const char* set = kind == kVpc ? "vpcSet" : kind == kSubnet ? "subnetSet" : "securityGroupInfo";
  xml.open(set);
  for (const auto& [id, document] : store_.list(kind)) {
    const json::object resource = json::parse(document).as_object();
    if (!ids.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
    if (!names.empty() &&
        std::find(names.begin(), names.end(), text(resource, "GroupName")) == names.end())
      continue;
    std::map<std::string, std::string> fields;
    if (kind == kVpc)
      fields = {{"vpc-id", id},
                {"cidr", text(resource, "CidrBlock")},
                {"cidr-block", text(resource, "CidrBlock")},
                {"state", "available"}};
    if (kind == kSubnet)
      fields = {{"subnet-id", id},
                {"vpc-id", text(resource, "VpcId")},
                {"cidr-block", text(resource, "CidrBlock")},
                {"availability-zone", text(resource, "AvailabilityZone")},
                {"state", "available"}};
    if (kind == kGroup)
      fields = {{"group-id", id},
                {"group-name", text(resource, "GroupName")},
                {"vpc-id", text(resource, "VpcId")},
                {"description", text(resource, "Description")}};
    for (const auto& t : resource.at("Tags").as_array())
      fields["tag:" + text(t.as_object(), "Key")] = text(t.as_object(), "Value");
    if (!passes(filters, fields)) continue;
    if (kind == kVpc) vpc_xml(xml, resource);
    if (kind == kSubnet) subnet_xml(xml, "item", resource);
    if (kind == kGroup) {
      xml.open("item")
          .leaf("ownerId", text(resource, "OwnerId"))
          .leaf("groupId", id)
          .leaf("groupName", text(resource, "GroupName"))
          .leaf("groupDescription", text(resource, "Description"))
          .leaf("vpcId", text(resource, "VpcId"));
      permissions_xml(xml, "ipPermissions", resource.at("Ingress").as_array(), account_id_);
      permissions_xml(xml, "ipPermissionsEgress", resource.at("Egress").as_array(), account_id_);
      tags_xml(xml, resource);
      xml.close("item");
    }
  }
  return xml.close(set).str();
}

std::string Ec2::describe_rules(const QueryParams& params) {
  const auto filters = filters_of(params);
  const auto ids = params.list("SecurityGroupRuleId");
  Xml xml;
  xml.open("securityGroupRuleSet");
  for (const auto& [group_id, document] : store_.list(kGroup)) {
    const json::object group = json::parse(document).as_object();
    for (bool egress : {false, true})
      for (const auto& r : group.at(egress ? "Egress" : "Ingress").as_array()) {
        const json::object& rule = r.as_object();
        const std::string rule_id = text(rule, "SecurityGroupRuleId");
        if (!ids.empty() && std::find(ids.begin(), ids.end(), rule_id) == ids.end()) continue;
        if (!passes(filters, {{"group-id", group_id}, {"security-group-rule-id", rule_id}}))
          continue;
        rule_xml(xml, rule, group_id, account_id_, egress);
      }
  }
  return xml.close("securityGroupRuleSet").str();
}

std::string Ec2::remove(std::string_view kind, const std::string& id) {
  json::object resource = load(kind, id);
  if (kind == kVpc) {
    for (const auto& [other, document] : store_.list(kSubnet))
      if (text(json::parse(document).as_object(), "VpcId") == id)
        throw ApiError("DependencyViolation",
                       "The vpc '" + id + "' has dependencies and cannot be deleted.");
    std::vector<std::string> default_groups;
    for (const auto& [group_id, document] : store_.list(kGroup)) {
      const json::object group = json::parse(document).as_object();
      if (text(group, "VpcId") != id) continue;
      if (text(group, "GroupName") != "default")
        throw ApiError("DependencyViolation",
                       "The vpc '" + id + "' has dependencies and cannot be deleted.");
      default_groups.push_back(group_id);
    }
    for (const auto& group_id : default_groups) store_.remove(kGroup, group_id);
  }
  for (const auto& eni : interfaces()) {
    const bool uses = kind == kSubnet ? eni.subnet_id == id
                      : kind == kGroup
                          ? std::find(eni.groups.begin(), eni.groups.end(), id) != eni.groups.end()
                          : eni.vpc_id == id;
    if (uses)
      throw ApiError("DependencyViolation",
                     "resource " + id + " has a dependent object (" + eni.id + ")");
  }
  if (kind == kGroup) {
    if (text(resource, "GroupName") == "default")
      throw ApiError("CannotDelete", "the specified group: \"" + id +
                                         "\" name: \"default\" cannot be deleted by a user");
    for (const auto& [other, document] : store_.list(kGroup)) {
      if (other == id) continue;
      const json::object group = json::parse(document).as_object();
      for (const char* side : {"Ingress", "Egress"})
        for (const auto& r : group.at(side).as_array())
          if (text(r.as_object(), "ReferencedGroupId") == id)
            throw ApiError("DependencyViolation", "resource " + id + " has a dependent object");
    }
  }
  store_.remove(kind, id);
  return Xml().leaf("return", "true").str();
}

}  // namespace sluice::cloud
