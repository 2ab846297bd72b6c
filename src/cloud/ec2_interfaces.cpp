// EC2's network interfaces (Create/Describe/DeleteNetworkInterface and the ones services make for
// themselves) and the reachability checks the local network enforces: which sources a security
// group's ingress rules admit, and where their own egress rules let them go.
#include <arpa/inet.h>

#include <algorithm>
#include <set>

#include "cloud/ec2.hpp"
#include "cloud/ec2_support.hpp"

namespace sluice::cloud {
using namespace ec2_support;

std::vector<Ec2::NetworkInterface> Ec2::interfaces() {
  std::vector<NetworkInterface> out;
  for (const auto& [id, document] : store_.list(kInterface)) {
    out.push_back(parse_record<NetworkInterface>(document));
  }
  return out;
}

std::optional<Ec2::NetworkInterface> Ec2::interface(const std::string& id) {
  auto document = store_.get(kInterface, id);
  if (!document) return std::nullopt;
  return parse_record<NetworkInterface>(*document);
}

Ec2::NetworkInterface Ec2::create_interface(const std::string& subnet_id,
                                            const std::vector<std::string>& groups,
                                            const std::string& description, bool requester_managed,
                                            const std::string& wanted_ip,
                                            const std::string& interface_type) {
  const SubnetRecord subnet = this->subnet(subnet_id);
  const std::string& vpc_id = subnet.vpc_id;
  for (const auto& group : groups) {
    if (this->group(group).vpc_id != vpc_id)
      throw ApiError("InvalidParameterValue",
                     "The security group " + group + " does not belong to VPC " + vpc_id + ".");
  }
  const auto cidr = parse_cidr(subnet.cidr_block);
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
  NetworkInterface eni;
  eni.id = resource_id("eni");
  eni.subnet_id = subnet_id;
  eni.vpc_id = vpc_id;
  eni.zone = subnet.zone;
  eni.ip = address;
  eni.description = description;
  eni.groups = groups;
  eni.requester_managed = requester_managed;
  eni.interface_type = interface_type;
  eni.owner_id = account_id_;
  store_.put(kInterface, eni.id, serialize_record(eni));
  return eni;
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
      name = parse_record<SecurityGroupRecord>(*document).name;
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
    for (const auto& g : this->groups())
      if (g.vpc_id == vpc && g.name == "default") groups.push_back(g.id);
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
    const SecurityGroupRecord group = parse_record<SecurityGroupRecord>(*document);
    for (const auto& rule : side == "Egress" ? group.egress : group.ingress) {
      if (rule.protocol != "-1" &&
          (rule.protocol != "tcp" || port < rule.from_port || port > rule.to_port))
        continue;
      if (!rule.referenced_group.empty() && std::find(peer_groups.begin(), peer_groups.end(),
                                                      rule.referenced_group) != peer_groups.end())
        return true;
      if (auto cidr = parse_cidr(rule.cidr);
          cidr && has_ip && (ip & mask_of(cidr->second)) == cidr->first)
        return true;
    }
  }
  return false;
}

}  // namespace sluice::cloud
