// Amazon EC2's network pieces (EC2 query protocol): VPCs, subnets and security groups with their
// rules. The rules are data here; `ingress_allows` and `egress_allows` are the checks the local
// network enforces for whoever connects to a resource in a group (a proxy endpoint): the
// destination's groups must admit the source, and the source's groups must let it out.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/api.hpp"
#include "cloud/query_protocol.hpp"
#include "cloud/records.hpp"
#include "cloud/store.hpp"

namespace sluice::cloud {

class Ec2 {
 public:
  static constexpr std::string_view kXmlns = "http://ec2.amazonaws.com/doc/2016-11-15/";

  Ec2(Store& store, std::string account_id) : store_(store), account_id_(std::move(account_id)) {}

  // The XML members of `action`'s response (after requestId). Throws ApiError.
  std::string handle(std::string_view action, const QueryParams& params, std::string_view region);

  // Whether one of `groups` admits TCP to `port` from a source in `source_groups` (its own
  // security groups) or at `source_ipv4`.
  bool ingress_allows(const std::vector<std::string>& groups,
                      const std::vector<std::string>& source_groups, std::string_view source_ipv4,
                      int port);
  // Whether one of `source_groups` lets TCP to `port` out to a destination in
  // `destination_groups` or at `destination_ipv4`. A new group lets everything out (its default
  // rule -1 to 0.0.0.0/0) until that rule is revoked, as in EC2.
  bool egress_allows(const std::vector<std::string>& source_groups,
                     const std::vector<std::string>& destination_groups,
                     std::string_view destination_ipv4, int port);

  // The addresses of the client interfaces in `vpc_id` that may open TCP `port` to something at
  // `destination_ip` in `destination_groups`: its groups' ingress admits them, and their own
  // groups' egress lets the connection out.
  std::vector<std::string> admitted_sources(const std::string& vpc_id,
                                            const std::vector<std::string>& destination_groups,
                                            const std::string& destination_ip, int port);

  // An elastic network interface: where something sits in a VPC (a proxy endpoint, a function's
  // environment, a command run with `sluice exec`), with its address and security groups.
  // A network interface as stored (records.hpp).
  using NetworkInterface = NetworkInterfaceRecord;
  // A new interface with the next free address of the subnet (or `ip`). Throws ApiError.
  NetworkInterface create_interface(const std::string& subnet_id,
                                    const std::vector<std::string>& groups,
                                    const std::string& description, bool requester_managed,
                                    const std::string& ip = {},
                                    const std::string& interface_type = "interface");
  std::vector<NetworkInterface> interfaces();
  std::optional<NetworkInterface> interface(const std::string& id);
  void delete_interface(const std::string& id);

  // The VPC of a subnet (for Lambda's VpcConfig), or "" when the subnet does not exist.
  std::string vpc_of_subnet(const std::string& subnet_id);
  // Whether the security group exists (in `vpc_id`, unless that is empty).
  bool group_in_vpc(const std::string& group_id, const std::string& vpc_id);
  // The VPC of a security group, or "" when the group does not exist.
  std::string vpc_of_group(const std::string& group_id);
  // The subnets of a VPC, in creation order.
  std::vector<std::string> subnets_of(const std::string& vpc_id);

 private:
  std::string create_vpc(const QueryParams& params);
  std::string create_subnet(const QueryParams& params, std::string_view region);
  std::string create_security_group(const QueryParams& params);
  std::string change_rules(const QueryParams& params, bool egress, bool authorize);
  std::string describe(std::string_view kind, const QueryParams& params);
  // One resource of `kind` as DescribeVpcs/Subnets/SecurityGroups lists it, if it passes the
  // request's names and filters.
  void describe_item(Xml& xml, std::string_view kind, const std::string& document,
                     const std::vector<std::string>& names,
                     const std::map<std::string, std::vector<std::string>>& filters);
  std::string describe_rules(const QueryParams& params);
  std::string remove(std::string_view kind, const std::string& id);
  std::string create_network_interface(const QueryParams& params);
  std::string describe_network_interfaces(const QueryParams& params);
  std::string delete_network_interface(const std::string& id);
  void interface_xml(Xml& xml, std::string_view tag, const NetworkInterface& eni);
  // Whether a rule on `side` ("Ingress" or "Egress") of one of `groups` matches TCP `port` with
  // a peer in `peer_groups` or at `peer_ipv4`.
  bool rules_allow(const std::vector<std::string>& groups, std::string_view side,
                   const std::vector<std::string>& peer_groups, std::string_view peer_ipv4,
                   int port);

  // The stored resources (records.hpp); not found: EC2's NotFound error for the kind.
  VpcRecord vpc(const std::string& id);
  SubnetRecord subnet(const std::string& id);
  SecurityGroupRecord group(const std::string& id);
  std::vector<SubnetRecord> subnets();
  std::vector<SecurityGroupRecord> groups();
  void save(const VpcRecord& vpc);
  void save(const SubnetRecord& subnet);
  void save(const SecurityGroupRecord& group);
  std::string make_security_group(const std::string& vpc_id, const std::string& name,
                                  const std::string& description, bool self_ingress,
                                  const std::string& pinned_id = {});

  Store& store_;
  std::string account_id_;
};

// A dotted IPv4 CIDR as (network address, prefix length), or nothing when malformed.
std::optional<std::pair<uint32_t, int>> parse_cidr(std::string_view cidr);

}  // namespace sluice::cloud
