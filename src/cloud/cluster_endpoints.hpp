// Aurora clusters inside their VPC. A cluster with security groups gets a requester-managed
// interface in the first subnet of their VPC ("RDSNetworkInterface", as RDS names its own); inside
// the VPC its writer, reader and instance names resolve to that interface's address, and
// connections there reach its PostgreSQL through the relay, admitted by the cluster's security
// groups and the sources' egress rules. From the host the names keep resolving to loopback.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <set>
#include <string>

#include "cloud/endpoint_relay.hpp"
#include "cloud/local_network.hpp"
#include "cloud/rds_environment.hpp"
#include "cloud/records.hpp"

namespace sluice::cloud {

class ClusterEndpoints {
 public:
  explicit ClusterEndpoints(RdsEnvironment& env) : env_(env) {}

  // Brings an available cluster's VPC endpoint in line with its groups. Returns true when the
  // stored document changed (it gained its NetworkInterfaceId) and must be saved.
  bool reconcile(ClusterRecord& cluster);
  // Releases a deleted cluster's interface and listener.
  void remove(const ClusterRecord& cluster);
  // The cluster's names inside its VPC (VPC ID → address and name), to publish there.
  void add_names(const ClusterRecord& cluster, const RdsNames& names,
                 std::map<std::string, HostsEntries>& by_vpc);
  void shutdown() { relay_.shutdown(); }

 private:
  struct Applied {
    std::string target;
    std::set<std::string> admitted;
    bool operator==(const Applied&) const = default;
  };

  RdsEnvironment& env_;
  EndpointRelay relay_;
  std::map<int, Applied> applied_;  // by listening descriptor: what the relay was last given
};

}  // namespace sluice::cloud
