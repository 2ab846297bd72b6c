#include "cloud/ec2.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <tuple>

#include "cloud/ec2_support.hpp"
#include "cloud/ids.hpp"

namespace sluice::cloud {
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

// Tags from TagSpecification.N (for `resource_type`).
std::vector<TagRecord> tags_for(const QueryParams& params, std::string_view resource_type) {
  std::vector<TagRecord> tags;
  for (int i = 1;; ++i) {
    const std::string spec = "TagSpecification." + std::to_string(i);
    auto type = params.get(spec + ".ResourceType");
    if (!type) break;
    if (*type != resource_type) continue;
    for (int j = 1;; ++j) {
      const std::string tag = spec + ".Tag." + std::to_string(j);
      auto key = params.get(tag + ".Key");
      if (!key) break;
      tags.push_back({*key, params.get(tag + ".Value").value_or("")});
    }
  }
  return tags;
}

void tags_xml(Xml& xml, const std::vector<TagRecord>& tags) {
  if (tags.empty()) return;
  xml.open("tagSet");
  for (const auto& t : tags)
    xml.open("item").leaf("key", t.key).leaf("value", t.value).close("item");
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
  bool same(const SecurityGroupRuleRecord& r) const {
    return r.protocol == protocol && r.from_port == from && r.to_port == to && r.cidr == cidr &&
           r.referenced_group == group;
  }
};

// A port parameter (absent: -1). Throws ApiError.
int64_t port_of(const std::optional<std::string>& v) {
  if (!v) return -1;
  int64_t parsed = 0;
  const auto [end, error] = std::from_chars(v->data(), v->data() + v->size(), parsed);
  if (error != std::errc() || end != v->data() + v->size() || parsed < -1 || parsed > 65535)
    throw ApiError("InvalidParameterValue", "Invalid value '" + *v + "' for port.");
  return parsed;
}

// A rule as EC2 keeps it: the protocol by name, no ports for "all", a canonical CIDR.
Rule normalized(Rule rule) {
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
  else if ((p == "tcp" || p == "udp") && (rule.from < 0 || rule.to > 65535 || rule.from > rule.to))
    throw ApiError("InvalidParameterValue", "Invalid port range " + std::to_string(rule.from) +
                                                "-" + std::to_string(rule.to) + ".");
  if (!rule.cidr.empty()) {
    auto cidr = parse_cidr(rule.cidr);
    if (!cidr) throw ApiError("InvalidParameterValue", "CIDR block " + rule.cidr + " is malformed");
    rule.cidr = cidr_text(cidr->first, cidr->second);
  }
  return rule;
}

// The rules a request names: IpPermissions.N.* or the flat CidrIp/IpProtocol/FromPort/ToPort form.
std::vector<Rule> rules_of(const QueryParams& params) {
  std::vector<Rule> rules;
  const auto port = port_of;
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

void rule_xml(Xml& xml, const SecurityGroupRuleRecord& rule, const std::string& group_id,
              const std::string& owner, bool egress) {
  xml.open("item")
      .leaf("securityGroupRuleId", rule.id)
      .leaf("groupId", group_id)
      .leaf("groupOwnerId", owner)
      .leaf("isEgress", egress ? "true" : "false")
      .leaf("ipProtocol", rule.protocol)
      .leaf("fromPort", std::to_string(rule.from_port))
      .leaf("toPort", std::to_string(rule.to_port));
  if (!rule.cidr.empty()) xml.leaf("cidrIpv4", rule.cidr);
  if (!rule.referenced_group.empty())
    xml.open("referencedGroupInfo")
        .leaf("groupId", rule.referenced_group)
        .leaf("userId", owner)
        .close("referencedGroupInfo");
  if (!rule.description.empty()) xml.leaf("description", rule.description);
  xml.close("item");
}

// ipPermissions: rules grouped by (protocol, ports), with their ranges and groups.
void permissions_xml(Xml& xml, std::string_view tag,
                     const std::vector<SecurityGroupRuleRecord>& rules, const std::string& owner) {
  using Key = std::tuple<std::string, int64_t, int64_t>;
  std::map<Key, std::vector<const SecurityGroupRuleRecord*>> grouped;
  std::vector<Key> order;
  for (const auto& rule : rules) {
    auto key = std::make_tuple(rule.protocol, rule.from_port, rule.to_port);
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
      if (!rule->referenced_group.empty()) {
        xml.open("item").leaf("groupId", rule->referenced_group).leaf("userId", owner);
        if (!rule->description.empty()) xml.leaf("description", rule->description);
        xml.close("item");
      }
    xml.close("groups").open("ipRanges");
    for (const auto* rule : grouped[key])
      if (!rule->cidr.empty()) {
        xml.open("item").leaf("cidrIp", rule->cidr);
        if (!rule->description.empty()) xml.leaf("description", rule->description);
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

VpcRecord Ec2::vpc(const std::string& id) {
  auto document = store_.get(kVpc, id);
  if (!document) throw ApiError("InvalidVpcID.NotFound", "The vpc ID '" + id + "' does not exist");
  return parse_record<VpcRecord>(*document);
}

SubnetRecord Ec2::subnet(const std::string& id) {
  auto document = store_.get(kSubnet, id);
  if (!document)
    throw ApiError("InvalidSubnetID.NotFound", "The subnet ID '" + id + "' does not exist");
  return parse_record<SubnetRecord>(*document);
}

SecurityGroupRecord Ec2::group(const std::string& id) {
  auto document = store_.get(kGroup, id);
  if (!document)
    throw ApiError("InvalidGroup.NotFound", "The security group '" + id + "' does not exist");
  return parse_record<SecurityGroupRecord>(*document);
}

std::vector<SubnetRecord> Ec2::subnets() {
  std::vector<SubnetRecord> out;
  for (const auto& [id, document] : store_.list(kSubnet))
    out.push_back(parse_record<SubnetRecord>(document));
  return out;
}

std::vector<SecurityGroupRecord> Ec2::groups() {
  std::vector<SecurityGroupRecord> out;
  for (const auto& [id, document] : store_.list(kGroup))
    out.push_back(parse_record<SecurityGroupRecord>(document));
  return out;
}

void Ec2::save(const VpcRecord& vpc) {
  store_.put(kVpc, vpc.id, serialize_record(vpc));
}

void Ec2::save(const SubnetRecord& subnet) {
  store_.put(kSubnet, subnet.id, serialize_record(subnet));
}

void Ec2::save(const SecurityGroupRecord& group) {
  store_.put(kGroup, group.id, serialize_record(group));
}

std::string Ec2::vpc_of_subnet(const std::string& subnet_id) {
  auto document = store_.get(kSubnet, subnet_id);
  return document ? parse_record<SubnetRecord>(*document).vpc_id : "";
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
  return document ? parse_record<SecurityGroupRecord>(*document).vpc_id : "";
}

std::vector<std::string> Ec2::subnets_of(const std::string& vpc_id) {
  std::vector<std::string> out;
  for (const auto& s : subnets())
    if (s.vpc_id == vpc_id) out.push_back(s.id);
  return out;
}

bool Ec2::group_in_vpc(const std::string& group_id, const std::string& vpc_id) {
  auto document = store_.get(kGroup, group_id);
  return document &&
         (vpc_id.empty() || parse_record<SecurityGroupRecord>(*document).vpc_id == vpc_id);
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
  SecurityGroupRecord group;
  group.id = pinned_id.empty() ? resource_id("sg") : pinned_id;
  group.name = name;
  group.description = description;
  group.vpc_id = vpc_id;
  group.owner_id = account_id_;
  SecurityGroupRuleRecord all;
  all.protocol = "-1";
  if (self_ingress) {  // the default group admits its own members, as in AWS
    SecurityGroupRuleRecord members = all;
    members.id = resource_id("sgr");
    members.referenced_group = group.id;
    group.ingress.push_back(members);
  }
  SecurityGroupRuleRecord out = all;
  out.id = resource_id("sgr");
  out.cidr = "0.0.0.0/0";
  group.egress.push_back(out);
  store_.insert(kGroup, group.id, serialize_record(group));
  return group.id;
}

std::string Ec2::create_vpc(const QueryParams& params) {
  const std::string cidr_param = need(params, "CidrBlock");
  auto cidr = parse_cidr(cidr_param);
  if (!cidr || cidr->second < 16 || cidr->second > 28)
    throw ApiError("InvalidVpc.Range", "The CIDR '" + cidr_param + "' is invalid.");
  VpcRecord vpc;
  vpc.id = pinned_or_new(params, "vpc", store_, kVpc, "InvalidVpcID.Duplicate");
  vpc.cidr_block = cidr_text(cidr->first, cidr->second);
  vpc.owner_id = account_id_;
  vpc.instance_tenancy = params.get("InstanceTenancy").value_or("default");
  vpc.tags = tags_for(params, "vpc");
  save(vpc);
  make_security_group(vpc.id, "default", "default VPC security group", true);
  Xml xml;
  xml.open("vpc")
      .leaf("vpcId", vpc.id)
      .leaf("state", "available")
      .leaf("cidrBlock", vpc.cidr_block)
      .leaf("dhcpOptionsId", vpc.dhcp_options_id)
      .leaf("instanceTenancy", vpc.instance_tenancy)
      .leaf("isDefault", "false")
      .leaf("ownerId", account_id_);
  tags_xml(xml, vpc.tags);
  return xml.close("vpc").str();
}

namespace {

void vpc_xml(Xml& xml, const VpcRecord& vpc) {
  xml.open("item")
      .leaf("vpcId", vpc.id)
      .leaf("state", vpc.state)
      .leaf("cidrBlock", vpc.cidr_block)
      .leaf("dhcpOptionsId", vpc.dhcp_options_id)
      .leaf("instanceTenancy", vpc.instance_tenancy)
      .leaf("isDefault", "false")
      .leaf("ownerId", vpc.owner_id);
  tags_xml(xml, vpc.tags);
  xml.close("item");
}

void subnet_xml(Xml& xml, std::string_view tag, const SubnetRecord& subnet) {
  xml.open(tag)
      .leaf("subnetId", subnet.id)
      .leaf("subnetArn", subnet.arn)
      .leaf("state", "available")
      .leaf("vpcId", subnet.vpc_id)
      .leaf("cidrBlock", subnet.cidr_block)
      .leaf("availableIpAddressCount", std::to_string(subnet.available_addresses))
      .leaf("availabilityZone", subnet.zone)
      .leaf("availabilityZoneId", subnet.zone_id)
      .leaf("defaultForAz", "false")
      .leaf("mapPublicIpOnLaunch", "false")
      .leaf("ownerId", subnet.owner_id);
  tags_xml(xml, subnet.tags);
  xml.close(tag);
}

void group_xml(Xml& xml, const SecurityGroupRecord& group, const std::string& account_id) {
  xml.open("item")
      .leaf("ownerId", group.owner_id)
      .leaf("groupId", group.id)
      .leaf("groupName", group.name)
      .leaf("groupDescription", group.description)
      .leaf("vpcId", group.vpc_id);
  permissions_xml(xml, "ipPermissions", group.ingress, account_id);
  permissions_xml(xml, "ipPermissionsEgress", group.egress, account_id);
  tags_xml(xml, group.tags);
  xml.close("item");
}

}  // namespace

std::string Ec2::create_subnet(const QueryParams& params, std::string_view region) {
  const std::string vpc_id = need(params, "VpcId");
  const std::string cidr_param = need(params, "CidrBlock");
  const VpcRecord vpc = this->vpc(vpc_id);
  auto cidr = parse_cidr(cidr_param);
  auto vpc_cidr = parse_cidr(vpc.cidr_block);
  if (!cidr || cidr->second < vpc_cidr->second || cidr->second > 28 ||
      (cidr->first & mask_of(vpc_cidr->second)) != vpc_cidr->first)
    throw ApiError("InvalidSubnet.Range", "The CIDR '" + cidr_param + "' is invalid.");
  const std::string id =
      pinned_or_new(params, "subnet", store_, kSubnet, "InvalidSubnetID.Duplicate");
  for (const auto& other : subnets()) {
    if (other.vpc_id != vpc_id) continue;
    auto taken = parse_cidr(other.cidr_block);
    const int shorter = std::min(taken->second, cidr->second);
    if ((taken->first & mask_of(shorter)) == (cidr->first & mask_of(shorter)))
      throw ApiError("InvalidSubnet.Conflict",
                     "The CIDR '" + cidr_param + "' conflicts with another subnet");
  }
  SubnetRecord subnet;
  subnet.id = id;
  subnet.vpc_id = vpc_id;
  subnet.cidr_block = cidr_text(cidr->first, cidr->second);
  subnet.zone = params.get("AvailabilityZone").value_or(std::string(region) + "a");
  subnet.zone_id = "use1-az" + std::to_string(subnet.zone.back() - 'a' + 1);
  subnet.available_addresses = (int64_t{1} << (32 - cidr->second)) - 5;  // AWS reserves 5
  subnet.owner_id = account_id_;
  subnet.arn = "arn:aws:ec2:" + std::string(region) + ":" + account_id_ + ":subnet/" + id;
  subnet.tags = tags_for(params, "subnet");
  save(subnet);
  Xml xml;
  subnet_xml(xml, "subnet", subnet);
  return xml.str();
}

std::string Ec2::create_security_group(const QueryParams& params) {
  const std::string name = need(params, "GroupName");
  const std::string description = need(params, "GroupDescription");
  const std::string vpc_id = need(params, "VpcId");  // no EC2-Classic, no default VPC here
  vpc(vpc_id);
  if (name == "default" || name.starts_with("sg-"))
    throw ApiError("InvalidParameterValue",
                   "Group names may not be in the format sg-* or named default.");
  for (const auto& other : groups())
    if (other.vpc_id == vpc_id && other.name == name)
      throw ApiError("InvalidGroup.Duplicate",
                     "The security group '" + name + "' already exists for VPC '" + vpc_id + "'");
  const std::string id =
      make_security_group(vpc_id, name, description, false,
                          pinned_or_new(params, "sg", store_, kGroup, "InvalidGroup.Duplicate"));
  SecurityGroupRecord group = this->group(id);
  group.tags = tags_for(params, "security-group");
  save(group);
  Xml xml;
  xml.leaf("return", "true").leaf("groupId", id);
  tags_xml(xml, group.tags);
  return xml.str();
}

std::string Ec2::change_rules(const QueryParams& params, bool egress, bool authorize) {
  SecurityGroupRecord group = this->group(need(params, "GroupId"));
  std::vector<SecurityGroupRuleRecord>& rules = egress ? group.egress : group.ingress;
  Xml xml;
  if (!authorize) {
    // By rule ID, or by the rule's description.
    auto ids = params.list("SecurityGroupRuleId");
    auto wanted = rules_of(params);
    if (ids.empty() && wanted.empty()) throw ApiError("MissingParameter", missing("IpPermissions"));
    for (const auto& id : ids) {
      auto it = std::find_if(rules.begin(), rules.end(),
                             [&](const SecurityGroupRuleRecord& r) { return r.id == id; });
      if (it == rules.end())
        throw ApiError("InvalidSecurityGroupRuleId.NotFound",
                       "The security group rule ID '" + id + "' does not exist");
      rules.erase(it);
    }
    for (const auto& rule : wanted) {
      auto it = std::find_if(rules.begin(), rules.end(),
                             [&](const SecurityGroupRuleRecord& r) { return rule.same(r); });
      if (it == rules.end())
        throw ApiError("InvalidPermission.NotFound",
                       "The specified rule does not exist in this security group.");
      rules.erase(it);
    }
    save(group);
    return xml.leaf("return", "true").str();
  }
  auto wanted = rules_of(params);
  if (wanted.empty()) throw ApiError("MissingParameter", missing("IpPermissions"));
  xml.leaf("return", "true").open("securityGroupRuleSet");
  for (const auto& rule : wanted) {
    if (!rule.group.empty()) this->group(rule.group);  // must exist
    for (const auto& r : rules)
      if (rule.same(r))
        throw ApiError("InvalidPermission.Duplicate",
                       "the specified rule \"" + rule_text(rule) + "\" already exists");
    SecurityGroupRuleRecord stored;
    stored.id = resource_id("sgr");
    stored.protocol = rule.protocol;
    stored.from_port = rule.from;
    stored.to_port = rule.to;
    stored.cidr = rule.cidr;
    stored.referenced_group = rule.group;
    stored.description = rule.description;
    rules.push_back(stored);
    rule_xml(xml, stored, group.id, account_id_, egress);
  }
  save(group);  // all or nothing: saved only when every rule passed
  return xml.close("securityGroupRuleSet").str();
}

std::string Ec2::describe(std::string_view kind, const QueryParams& params) {
  const auto filters = filters_of(params);
  const char* id_param = kind == kVpc ? "VpcId" : kind == kSubnet ? "SubnetId" : "GroupId";
  const auto ids = params.list(id_param);
  const auto names = kind == kGroup ? params.list("GroupName") : std::vector<std::string>{};
  for (const auto& id : ids) {  // an unknown ID is an error, as in EC2
    if (kind == kVpc) vpc(id);
    if (kind == kSubnet) subnet(id);
    if (kind == kGroup) group(id);
  }
  Xml xml;
  const char* set = kind == kVpc ? "vpcSet" : kind == kSubnet ? "subnetSet" : "securityGroupInfo";
  xml.open(set);
  for (const auto& [id, document] : store_.list(kind)) {
    if (!ids.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
    describe_item(xml, kind, document, names, filters);
  }
  return xml.close(set).str();
}

void Ec2::describe_item(Xml& xml, std::string_view kind, const std::string& document,
                        const std::vector<std::string>& names,
                        const std::map<std::string, std::vector<std::string>>& filters) {
  std::map<std::string, std::string> fields;
  const auto add_tags = [&](const std::vector<TagRecord>& tags) {
    for (const auto& t : tags) fields["tag:" + t.key] = t.value;
  };
  if (kind == kVpc) {
    const auto vpc = parse_record<VpcRecord>(document);
    fields = {{"vpc-id", vpc.id},
              {"cidr", vpc.cidr_block},
              {"cidr-block", vpc.cidr_block},
              {"state", "available"}};
    add_tags(vpc.tags);
    if (passes(filters, fields)) vpc_xml(xml, vpc);
  } else if (kind == kSubnet) {
    const auto subnet = parse_record<SubnetRecord>(document);
    fields = {{"subnet-id", subnet.id},
              {"vpc-id", subnet.vpc_id},
              {"cidr-block", subnet.cidr_block},
              {"availability-zone", subnet.zone},
              {"state", "available"}};
    add_tags(subnet.tags);
    if (passes(filters, fields)) subnet_xml(xml, "item", subnet);
  } else {
    const auto group = parse_record<SecurityGroupRecord>(document);
    if (!names.empty() && std::find(names.begin(), names.end(), group.name) == names.end()) return;
    fields = {{"group-id", group.id},
              {"group-name", group.name},
              {"vpc-id", group.vpc_id},
              {"description", group.description}};
    add_tags(group.tags);
    if (passes(filters, fields)) group_xml(xml, group, account_id_);
  }
}

std::string Ec2::describe_rules(const QueryParams& params) {
  const auto filters = filters_of(params);
  const auto ids = params.list("SecurityGroupRuleId");
  Xml xml;
  xml.open("securityGroupRuleSet");
  for (const auto& group : groups())
    for (bool egress : {false, true})
      for (const auto& rule : egress ? group.egress : group.ingress) {
        if (!ids.empty() && std::find(ids.begin(), ids.end(), rule.id) == ids.end()) continue;
        if (!passes(filters, {{"group-id", group.id}, {"security-group-rule-id", rule.id}}))
          continue;
        rule_xml(xml, rule, group.id, account_id_, egress);
      }
  return xml.close("securityGroupRuleSet").str();
}

std::string Ec2::remove(std::string_view kind, const std::string& id) {
  std::optional<SecurityGroupRecord> removed_group;
  if (kind == kVpc) vpc(id);
  if (kind == kSubnet) subnet(id);
  if (kind == kGroup) removed_group = group(id);
  if (kind == kVpc) {
    for (const auto& s : subnets())
      if (s.vpc_id == id)
        throw ApiError("DependencyViolation",
                       "The vpc '" + id + "' has dependencies and cannot be deleted.");
    std::vector<std::string> default_groups;
    for (const auto& g : groups()) {
      if (g.vpc_id != id) continue;
      if (g.name != "default")
        throw ApiError("DependencyViolation",
                       "The vpc '" + id + "' has dependencies and cannot be deleted.");
      default_groups.push_back(g.id);
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
  if (removed_group) {
    if (removed_group->name == "default")
      throw ApiError("CannotDelete", "the specified group: \"" + id +
                                         "\" name: \"default\" cannot be deleted by a user");
    for (const auto& g : groups()) {
      if (g.id == id) continue;
      for (const auto* side : {&g.ingress, &g.egress})
        for (const auto& rule : *side)
          if (rule.referenced_group == id)
            throw ApiError("DependencyViolation", "resource " + id + " has a dependent object");
    }
  }
  store_.remove(kind, id);
  return Xml().leaf("return", "true").str();
}

}  // namespace sluice::cloud
