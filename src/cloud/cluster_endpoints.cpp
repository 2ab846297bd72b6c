#include "cloud/cluster_endpoints.hpp"

#include <spdlog/spdlog.h>

#include "cloud/json_fields.hpp"
#include "cloud/vpc_network.hpp"

namespace sluice::cloud {
namespace json = boost::json;

namespace {
int port_of(const json::object& cluster) {
  return static_cast<int>(whole(cluster, "Port", 5432));
}
}  // namespace

bool ClusterEndpoints::reconcile(json::object& cluster) {
  const auto groups = strings_of(cluster, "VpcSecurityGroupIds");
  if (!env_.vpc_network || groups.empty() || text(cluster, "Status") != "available") return false;
  bool changed = false;
  auto eni = env_.ec2.interface(text(cluster, "NetworkInterfaceId"));
  if (!eni) {
    const std::string vpc = env_.ec2.vpc_of_group(groups.front());
    const auto subnets = env_.ec2.subnets_of(vpc);
    if (subnets.empty()) return false;  // a VPC without subnets: nowhere to put it yet
    eni = env_.ec2.create_interface(subnets.front(), groups, "RDSNetworkInterface",
                                    /*requester_managed=*/true);
    cluster["NetworkInterfaceId"] = eni->id;
    changed = true;
    spdlog::info("DB cluster {}: endpoint {} in {}", text(cluster, "DBClusterIdentifier"), eni->ip,
                 eni->vpc_id);
  }
  const int port = port_of(cluster);
  const int listener = env_.vpc_network->listener(eni->vpc_id, eni->ip, port);
  const auto sources = env_.ec2.admitted_sources(eni->vpc_id, groups, eni->ip, port);
  Applied now{text(cluster, "Address"), {sources.begin(), sources.end()}};
  if (applied_[listener] != now) {
    const boost::asio::ip::tcp::endpoint target(boost::asio::ip::make_address(now.target),
                                                static_cast<unsigned short>(port));
    relay_.relay(listener, target, now.admitted);
    applied_[listener] = std::move(now);
  }
  return changed;
}

void ClusterEndpoints::remove(const json::object& cluster) {
  auto eni = env_.ec2.interface(text(cluster, "NetworkInterfaceId"));
  if (!eni) return;
  if (env_.vpc_network) {
    const int port = port_of(cluster);
    const int listener = env_.vpc_network->listener(eni->vpc_id, eni->ip, port);
    relay_.stop(listener);
    applied_.erase(listener);
    env_.vpc_network->close_listener(eni->vpc_id, eni->ip, port);
  }
  env_.ec2.delete_interface(eni->id);
}

void ClusterEndpoints::add_names(const json::object& cluster, const RdsNames& names,
                                 std::map<std::string, HostsEntries>& by_vpc) {
  auto eni = env_.ec2.interface(text(cluster, "NetworkInterfaceId"));
  if (!eni) return;
  const std::string id = text(cluster, "DBClusterIdentifier");
  HostsEntries& entries = by_vpc[eni->vpc_id];
  entries.emplace_back(eni->ip, names.cluster(id));
  entries.emplace_back(eni->ip, names.cluster_reader(id));
  if (!text(cluster, "WriterInstance").empty())
    entries.emplace_back(eni->ip, names.instance(text(cluster, "WriterInstance")));
}

}  // namespace sluice::cloud
