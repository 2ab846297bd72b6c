// EC2's network interfaces (Create/Describe/DeleteNetworkInterface and the ones services make for
// themselves) and the reachability checks the local network enforces: which sources a security
// group's ingress rules admit, and where their own egress rules let them go.
#include <arpa/inet.h>

#include <algorithm>
#include <set>

#include "cloud/ec2.hpp"
#include "cloud/ec2_support.hpp"
#include "cloud/json_fields.hpp"

namespace sluice::cloud {
namespace json = boost::json;
using namespace ec2_support;

namespace {
Ec2::NetworkInterface interface_from(const json::object& o) {
  Ec2::NetworkInterface eni;
  eni.id = text(o, "NetworkInterfaceId");
  eni.subnet_id = text(o, "SubnetId");
  eni.vpc_id = text(o, "VpcId");
  eni.zone = text(o, "AvailabilityZone");
  eni.ip = text(o, "PrivateIpAddress");
  eni.description = text(o, "Description");
  eni.requester_managed = flag(o, "RequesterManaged");
  if (const std::string type = text(o, "InterfaceType"); !type.empty()) eni.interface_type = type;
  for (const auto& g : o.at("Groups").as_array()) eni.groups.emplace_back(g.as_string());
  return eni;
}
}  // namespace

std::vector<Ec2::NetworkInterface> Ec2::interfaces() {
  std::vector<NetworkInterface> out;
  for (const auto& [id, document] : store_.list(kInterface)) {
    const json::value parsed = json::parse(document);
    out.push_back(interface_from(parsed.as_object()));
  }
  return out;
}

std::optional<Ec2::NetworkInterface> Ec2::interface(const std::string& id) {
  auto document = store_.get(kInterface, id);
  if (!document) return std::nullopt;
  const json::value parsed = json::parse(*document);
  return interface_from(parsed.as_object());
}

Ec2::NetworkInterface Ec2::create_interface(const std::string& subnet_id,
                                            const std::vector<std::string>& groups,
                                            const std::string& description, bool requester_managed,
                                            const std::string& wanted_ip,
                                            const std::string& interface_type) {
  const json::object subnet = load(kSubnet, subnet_id);
  const std::string vpc_id = text(subnet, "VpcId");
  for (const auto& group : groups) {
    const json::object g = load(kGroup, group);
    if (text(g, "VpcId") != vpc_id)
      throw ApiError("InvalidParameterValue",
                     "The security group " + group + " does not belong to VPC " + vpc_id + ".");
  }
  const auto cidr = parse_cidr(text(subnet, "CidrBlock"));
  std::set<uint32_t> taken;
  for (const auto& eni : interfaces()) {
    in_addr a{};
    if (inet_pton(AF_INET, eni.ip.c_str(), &a) == 1) taken.insert(ntohl(a.s_addr));
  }
  // AWS keeps the first four addresses of a subnet and its last one.
  const uint32_t first = cidr->first + 4;
  const uint32_t last = cidr->first + (~mask_of(cidr->second)) - 1;
  uint32_t ip = 0;
  if (!wanted_ip.empty()) {
    in_addr a{};
    if (inet_pton(AF_INET, wanted_ip.c_str(), &a) != 1 || ntohl(a.s_addr) < first ||
        ntohl(a.s_addr) > last)
      throw ApiError("InvalidParameterValue",
                     "Address " + wanted_ip + " does not fall within the subnet's address range");
    if (taken.contains(ntohl(a.s_addr)))
      throw ApiError("InvalidIPAddress.InUse", "Address " + wanted_ip + " is in use.");
    ip = ntohl(a.s_addr);
  } else {
    for (uint32_t candidate = first; candidate <= last && ip == 0; ++candidate)
      if (!taken.contains(candidate)) ip = candidate;
    if (ip == 0)
      throw ApiError("InsufficientFreeAddressesInSubnet",
                     "The specified subnet does not have enough free addresses.");
  }
  std::string address = cidr_text(ip, 32);
  address.resize(address.find('/'));
  json::array group_ids;
  for (const auto& g : groups) group_ids.emplace_back(g);
  json::object eni{{"NetworkInterfaceId", resource_id("eni")},
                   {"SubnetId", subnet_id},
                   {"VpcId", vpc_id},
                   {"AvailabilityZone", text(subnet, "AvailabilityZone")},
                   {"PrivateIpAddress", address},
                   {"Description", description},
                   {"Groups", group_ids},
                   {"RequesterManaged", requester_managed},
                   {"InterfaceType", interface_type},
                   {"OwnerId", account_id_}};
  store_.put(kInterface, text(eni, "NetworkInterfaceId"), json::serialize(eni));
  return interface_from(eni);
}

void Ec2::delete_interface(const std::string& id) {
  store_.remove(kInterface, id);
}

void Ec2::interface_xml(Xml& xml, std::string_view tag, const NetworkInterface& eni) {
  xml.open(tag)
      .leaf("networkInterfaceId", eni.id)
      .leaf("subnetId", eni.subnet_id)
      .leaf("vpcId", eni.vpc_id)
      .leaf("availabilityZone", eni.zone)
      .leaf("description", eni.description)
      .leaf("ownerId", account_id_)
      .leaf("requesterManaged", eni.requester_managed ? "true" : "false")
      .leaf("status", "in-use")
      .leaf("privateIpAddress", eni.ip)
      .leaf("sourceDestCheck", "true")
      .leaf("interfaceType", eni.interface_type)
      .open("groupSet");
  for (const auto& group : eni.groups) {
    std::string name;
    if (auto document = store_.get(kGroup, group))
      name = text(json::parse(*document).as_object(), "GroupName");
    xml.open("item").leaf("groupId", group).leaf("groupName", name).close("item");
  }
  xml.close("groupSet")
      .open("privateIpAddressesSet")
      .open("item")
      .leaf("privateIpAddress", eni.ip)
      .leaf("primary", "true")
      .close("item")
      .close("privateIpAddressesSet")
      .close(tag);
}

std::string Ec2::create_network_interface(const QueryParams& params) {
  const std::string subnet = need(params, "SubnetId");
  auto groups = params.list("SecurityGroupId");
  if (groups.empty()) {
    // As in EC2: without groups, the VPC's default group.
    const std::string vpc = vpc_of_subnet(subnet);
    for (const auto& [id, document] : store_.list(kGroup)) {
      const json::object g = json::parse(document).as_object();
      if (text(g, "VpcId") == vpc && text(g, "GroupName") == "default") groups.push_back(id);
    }
  }
  const NetworkInterface eni =
      create_interface(subnet, groups, params.get("Description").value_or(""), false,
                       params.get("PrivateIpAddress").value_or(""));
  Xml xml;
  interface_xml(xml, "networkInterface", eni);
  return xml.str();
}

std::string Ec2::describe_network_interfaces(const QueryParams& params) {
  auto filters = filters_of(params);
  // group-id matches any of an interface's groups.
  std::vector<std::string> wanted_groups;
  if (auto it = filters.find("group-id"); it != filters.end()) {
    wanted_groups = it->second;
    filters.erase(it);
  }
  const auto ids = params.list("NetworkInterfaceId");
  for (const auto& id : ids)
    if (!interface(id))
      throw ApiError("InvalidNetworkInterfaceID.NotFound",
                     "The networkInterface ID '" + id + "' does not exist");
  Xml xml;
  xml.open("networkInterfaceSet");
  for (const auto& eni : interfaces()) {
    if (!ids.empty() && std::find(ids.begin(), ids.end(), eni.id) == ids.end()) continue;
    const std::map<std::string, std::string> fields{
        {"network-interface-id", eni.id},
        {"subnet-id", eni.subnet_id},
        {"vpc-id", eni.vpc_id},
        {"private-ip-address", eni.ip},
        {"description", eni.description},
        {"requester-managed", eni.requester_managed ? "true" : "false"},
        {"interface-type", eni.interface_type}};
    if (!passes(filters, fields)) continue;
    if (!wanted_groups.empty() &&
        std::none_of(eni.groups.begin(), eni.groups.end(), [&](const std::string& g) {
          return std::find(wanted_groups.begin(), wanted_groups.end(), g) != wanted_groups.end();
        }))
      continue;
    interface_xml(xml, "item", eni);
  }
  return xml.close("networkInterfaceSet").str();
}

std::string Ec2::delete_network_interface(const std::string& id) {
  const auto eni = interface(id);
  if (!eni)
    throw ApiError("InvalidNetworkInterfaceID.NotFound",
                   "The networkInterface ID '" + id + "' does not exist");
  if (eni->requester_managed)
    throw ApiError("InvalidParameterValue",
                   "Network interface " + id + " is in use by a service and cannot be deleted.");
  delete_interface(id);
  return Xml().leaf("return", "true").str();
}

bool Ec2::ingress_allows(const std::vector<std::string>& groups,
                         const std::vector<std::string>& source_groups,
                         std::string_view source_ipv4, int port) {
  return rules_allow(groups, "Ingress", source_groups, source_ipv4, port);
}

bool Ec2::egress_allows(const std::vector<std::string>& source_groups,
                        const std::vector<std::string>& destination_groups,
                        std::string_view destination_ipv4, int port) {
  return rules_allow(source_groups, "Egress", destination_groups, destination_ipv4, port);
}

bool Ec2::rules_allow(const std::vector<std::string>& groups, std::string_view side,
                      const std::vector<std::string>& peer_groups, std::string_view peer_ipv4,
                      int port) {
  in_addr parsed{};
  const std::string peer(peer_ipv4);
  const bool has_ip = inet_pton(AF_INET, peer.c_str(), &parsed) == 1;
  const uint32_t ip = ntohl(parsed.s_addr);
  for (const auto& group_id : groups) {
    auto document = store_.get(kGroup, group_id);
    if (!document) continue;
    const json::value stored = json::parse(*document);  // kept alive for the loop
    const auto* rules = stored.as_object().if_contains(side);
    if (!rules || !rules->is_array()) continue;
    for (const auto& r : rules->as_array()) {
      const json::object& rule = r.as_object();
      const std::string protocol = text(rule, "IpProtocol");
      if (protocol != "-1" &&
          (protocol != "tcp" || port < number(rule, "FromPort") || port > number(rule, "ToPort")))
        continue;
      const std::string referenced = text(rule, "ReferencedGroupId");
      if (!referenced.empty() &&
          std::find(peer_groups.begin(), peer_groups.end(), referenced) != peer_groups.end())
        return true;
      if (auto cidr = parse_cidr(text(rule, "CidrIpv4"));
          cidr && has_ip && (ip & mask_of(cidr->second)) == cidr->first)
        return true;
    }
  }
  return false;
}

}  // namespace sluice::cloud
