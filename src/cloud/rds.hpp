// Amazon RDS (Query protocol), the Aurora part: DB clusters and their instances. A cluster is a
// PostgreSQL data directory (initdb at creation); its writer instance is a running PostgreSQL
// with TLS on, listening on the cluster's own loopback address. Proxies are in rds_proxy.hpp;
// this class routes their actions there.
#pragma once

#include <boost/json.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cloud/certificates.hpp"
#include "cloud/postgres_engine.hpp"
#include "cloud/query_protocol.hpp"
#include "cloud/rds_environment.hpp"
#include "cloud/records.hpp"

namespace sluice::cloud {

class RdsProxies;
class ClusterEndpoints;

// A cluster's writer as a proxy target sees it.
struct ClusterWriter {
  std::string cluster_id;
  std::string instance_id;
  std::string instance_arn;
  std::string resource_id;  // DbiResourceId
  std::string endpoint;     // the instance's hostname
  std::string address;
  int port = 5432;
  bool available = false;
};

class Rds {
 public:
  static constexpr std::string_view kXmlns = "http://rds.amazonaws.com/doc/2014-10-31/";

  explicit Rds(RdsEnvironment env);
  ~Rds();

  // The XML result of `action`. Throws ApiError.
  std::string handle(std::string_view action, const QueryParams& params, std::string_view region);
  // Moves resources along (creating → available), keeps their processes running and the
  // endpoint names published. Called a few times a second.
  void reconcile();
  // Gives every client network interface its namespace now (before `sluice exec` uses it).
  void reconcile_interfaces();
  // Stops every process and withdraws the names (state stays for the next start).
  void shutdown();

  RdsNames names(std::string_view region);
  void pin_region_id(std::string_view region, const std::string& id);
  // The region's server certificate (cert, key) for every endpoint name.
  std::pair<std::string, std::string> certificate(std::string_view region);
  // The PEM of the region's CA: what clients use as sslrootcert.
  std::string ca_bundle();
  std::optional<ClusterWriter> writer(const std::string& cluster_id);
  bool cluster_exists(const std::string& cluster_id);
  bool instance_exists(const std::string& instance_id);
  // The cluster an instance belongs to ("" if none).
  std::string cluster_of_instance(const std::string& instance_id);
  // Every address in use by a cluster or proxy endpoint.
  std::set<std::string> addresses_in_use();

 private:
  std::string create_cluster(const QueryParams& params, std::string_view region);
  std::string modify_cluster(const QueryParams& params);
  std::string delete_cluster(const QueryParams& params);
  std::string describe_clusters(const QueryParams& params);
  std::string create_instance(const QueryParams& params, std::string_view region);
  std::string delete_instance(const QueryParams& params);
  std::string reboot_instance(const QueryParams& params);
  std::string describe_instances(const QueryParams& params);

  void reconcile_cluster(ClusterRecord& cluster);
  void reconcile_instance(InstanceRecord& instance);
  // Creates the instance's database once its server is ready; whether it is there now.
  bool create_database(InstanceRecord& instance, const ClusterRecord& cluster, int port);
  void publish_names();

  ClusterRecord cluster(const std::string& id_or_arn);    // DBClusterNotFoundFault
  InstanceRecord instance(const std::string& id_or_arn);  // DBInstanceNotFound
  std::optional<ClusterRecord> find_cluster(const std::string& id);
  std::optional<InstanceRecord> find_instance(const std::string& id);
  std::vector<ClusterRecord> clusters();
  void save(const ClusterRecord& cluster);
  void save(const InstanceRecord& instance);
  std::string cluster_xml(const ClusterRecord& cluster);
  std::string instance_xml(const InstanceRecord& instance);
  PostgresEngine& engine();
  ClusterFiles files_of(const std::string& cluster_id) const;

  // Store kinds.
  static constexpr std::string_view kCluster = "rds-cluster";
  static constexpr std::string_view kInstance = "rds-instance";

  RdsEnvironment env_;
  std::unique_ptr<PostgresEngine> engine_;  // on first use: only clusters need PostgreSQL
  std::unique_ptr<LocalCertificateAuthority> ca_;
  std::unique_ptr<RdsProxies> proxies_;
  std::unique_ptr<ClusterEndpoints> cluster_endpoints_;
  bool starting_ = true;  // first reconcile after sluice serve started
};

}  // namespace sluice::cloud
