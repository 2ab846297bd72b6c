#include "cloud/cluster_endpoints.hpp"

#include <spdlog/spdlog.h>

#include "cloud/vpc_network.hpp"

namespace sluice::cloud {

bool ClusterEndpoints::reconcile(ClusterRecord& cluster) {
  const auto& groups = cluster.security_groups;
  if (!env_.vpc_network || groups.empty() || cluster.status != "available") return false;
  bool changed = false;
  auto eni = env_.ec2.interface(cluster.network_interface_id);
  if (!eni) {
    const std::string vpc = env_.ec2.vpc_of_group(groups.front());
    const auto subnets = env_.ec2.subnets_of(vpc);
    if (subnets.empty()) return false;  // a VPC without subnets: nowhere to put it yet
    eni = env_.ec2.create_interface(subnets.front(), groups, "RDSNetworkInterface",
                                    /*requester_managed=*/true);
    cluster.network_interface_id = eni->id;
    changed = true;
    spdlog::info("DB cluster {}: endpoint {} in {}", cluster.id, eni->ip, eni->vpc_id);
  }
  const int port = static_cast<int>(cluster.port);
  const int listener = env_.vpc_network->listener(eni->vpc_id, eni->ip, port);
  const auto sources = env_.ec2.admitted_sources(eni->vpc_id, groups, eni->ip, port);
  Applied now{cluster.address, {sources.begin(), sources.end()}};
  if (applied_[listener] != now) {
    const boost::asio::ip::tcp::endpoint target(boost::asio::ip::make_address(now.target),
                                                static_cast<unsigned short>(port));
    relay_.relay(listener, target, now.admitted);
    applied_[listener] = std::move(now);
  }
  return changed;
}

void ClusterEndpoints::remove(const ClusterRecord& cluster) {
  auto eni = env_.ec2.interface(cluster.network_interface_id);
  if (!eni) return;
  if (env_.vpc_network) {
    const int port = static_cast<int>(cluster.port);
    const int listener = env_.vpc_network->listener(eni->vpc_id, eni->ip, port);
    relay_.stop(listener);
    applied_.erase(listener);
    env_.vpc_network->close_listener(eni->vpc_id, eni->ip, port);
  }
  env_.ec2.delete_interface(eni->id);
}

void ClusterEndpoints::add_names(const ClusterRecord& cluster, const RdsNames& names,
                                 std::map<std::string, HostsEntries>& by_vpc) {
  auto eni = env_.ec2.interface(cluster.network_interface_id);
  if (!eni) return;
  HostsEntries& entries = by_vpc[eni->vpc_id];
  entries.emplace_back(eni->ip, names.cluster(cluster.id));
  entries.emplace_back(eni->ip, names.cluster_reader(cluster.id));
  if (!cluster.writer_instance.empty())
    entries.emplace_back(eni->ip, names.instance(cluster.writer_instance));
}

}  // namespace sluice::cloud
