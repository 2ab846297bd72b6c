// The local network model: each VPC is a Linux network namespace; each network interface (ENI)
// another namespace joined to its VPC's by a veth pair, with its private address on `eth0`.
// A proxy endpoint is a listening socket that sluice serve opens inside the VPC's namespace on
// the proxy's ENI address and hands to sluice-proxy, so a connection's source address is the
// client's ENI: what the proxy's security groups are checked against. Names resolve inside an
// interface through /etc/netns/NAMESPACE/hosts (`ip netns exec` mounts it as /etc/hosts).
// Needs root and iproute2; without them the model is off and only loopback endpoints exist.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "cloud/ec2.hpp"
#include "cloud/local_network.hpp"

namespace sluice::cloud {

class VpcNetwork {
 public:
  // `tag` keeps this sluice serve's namespaces apart from another's (a hash of its home).
  explicit VpcNetwork(std::string tag) : tag_(std::move(tag)) {}
  ~VpcNetwork();
  VpcNetwork(const VpcNetwork&) = delete;
  VpcNetwork& operator=(const VpcNetwork&) = delete;

  // Whether namespaces can be made here (root, iproute2); probed once.
  bool available();
  std::string vpc_namespace(const std::string& vpc_id) const;
  std::string interface_namespace(const std::string& eni_id) const;

  // A TCP socket listening on address:port inside the VPC's namespace (created, with the address
  // on its loopback, on first use). The descriptor stays ours; children inherit a duplicate.
  int listener(const std::string& vpc_id, const std::string& address, int port);
  void close_listener(const std::string& vpc_id, const std::string& address, int port);
  // The VPC's namespace, with `address` on its loopback (both made on first use), for a process
  // that opens its own listening socket there (sluice-proxy's netns:NAME/HOST:PORT).
  std::string listener_namespace(const std::string& vpc_id, const std::string& address);
  // The interface's namespace, wired to its VPC, with `hosts` as its /etc/hosts.
  void ensure_interface(const Ec2::NetworkInterface& eni, const HostsEntries& hosts);
  void remove_interface(const std::string& eni_id);
  // The interfaces made so far (to remove those that are gone).
  std::vector<std::string> interfaces() const;
  // Removes every namespace and listener this instance made.
  void remove_all();

 private:
  void ensure_vpc(const std::string& vpc_id);
  void write_hosts(const std::string& ns, const HostsEntries& hosts);

  std::string tag_;
  int available_ = -1;  // unknown
  std::set<std::string> vpcs_;
  std::map<std::string, std::string> interfaces_;  // eni -> its VPC
  std::map<std::string, HostsEntries> hosts_;      // eni -> its hosts file
  std::map<std::string, int> listeners_;           // "vpc address port" -> fd
  std::set<std::string> addresses_;                // "vpc address" on the VPC's loopback
};

// Runs `ip ARGS…` (iproute2) and waits; throws std::runtime_error with the command and its
// message when it fails.
void run_ip(const std::vector<std::string>& args);

}  // namespace sluice::cloud
