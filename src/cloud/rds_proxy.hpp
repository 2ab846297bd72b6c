// Amazon RDS Proxy (Query protocol): proxies, their default target group, targets and extra
// endpoints. Each proxy is a running sluice-proxy, configured from the proxy's settings, the
// secrets its role may read and the writer of its target cluster; its endpoints are loopback
// addresses on port 5432 (local_network.hpp). Target health comes from the running proxy.
// Threading: everything here runs on the API's thread except the probes of running proxies
// (their GET /targets, whether their address accepts connections), which run on `probes_` and
// whose results reconcile() applies (probe_worker.hpp).
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/local_network.hpp"
#include "cloud/probe_worker.hpp"
#include "cloud/query_protocol.hpp"
#include "cloud/rds_environment.hpp"
#include "cloud/records.hpp"
#include "cloud/secretsmanager.hpp"

namespace sluice::cloud {

class Rds;
struct ClusterWriter;

struct TargetHealthReport {
  std::string state = "REGISTERING";  // REGISTERING | AVAILABLE | UNAVAILABLE
  std::string reason;                 // UNREACHABLE | CONNECTION_FAILED | AUTH_FAILURE | …
  std::string description;
};

// What one sluice-proxy runs with: rendered into its TOML configuration.
struct ProxyRuntime {
  std::string name;
  std::vector<std::string> listen;  // HOST:PORT, the default endpoint's first
  bool require_tls = true;
  int idle_client_timeout = 1800;
  bool debug_logging = false;
  std::string cert_file, key_file;
  std::vector<std::pair<std::string, std::string>> auth;  // (secret file, client auth type)
  // Secrets the proxy may not have, each with why (the proxy answers logins with it).
  std::vector<std::string> unavailable;
  std::string target_host;
  int target_port = 5432;
  int max_connections_percent = 100;
  int max_idle_connections_percent = 50;
  int connection_borrow_timeout = 120;
  std::string init_query;
  std::string metrics_listen;
  std::string admission_file;
  int health_check_interval = 5;
};
std::string render_proxy_config(const ProxyRuntime& runtime);

// A proxy's secret file from a secret's staged versions: the AWSCURRENT SecretString as it is
// when that is all, otherwise {"versions": [...]} with AWSCURRENT, AWSPENDING and AWSPREVIOUS
// (and when AWSPREVIOUS stopped being current), as sluice-proxy reads it during a rotation.
// Nothing without an AWSCURRENT version.
std::optional<std::string> render_secret_file(
    const std::vector<SecretsManager::StagedString>& versions);

// TargetHealth from a sluice-proxy's GET /targets body; nothing when it is not that.
std::optional<TargetHealthReport> parse_proxy_targets(std::string_view body);

class RdsProxies {
 public:
  RdsProxies(RdsEnvironment& env, Rds& rds) : env_(env), rds_(rds) {}

  // The XML result of a proxy `action`, or nothing when `action` is not one. Throws ApiError.
  std::optional<std::string> handle(std::string_view action, const QueryParams& params,
                                    std::string_view region);
  void reconcile();
  // Client interfaces (not a service's own) get their namespaces, with the VPC's endpoint names.
  // Namespaces for client interfaces, with the VPC's names: the proxies' and `extra_names`
  // (VPC ID → entries, the clusters' endpoints).
  void reconcile_interfaces(const std::map<std::string, HostsEntries>& extra_names);
  // Deletes a proxy's or endpoint's interface and closes its socket.
  void release_interface(const std::string& interface_id);
  std::set<std::string> addresses_in_use();
  HostsEntries hosts_entries();
  bool cluster_registered(const std::string& cluster_id);

 private:
  std::string create_proxy(const QueryParams& params, std::string_view region);
  std::string modify_proxy(const QueryParams& params);
  std::string delete_proxy(const QueryParams& params);
  std::string describe_proxies(const QueryParams& params);
  std::string register_targets(const QueryParams& params);
  std::string deregister_targets(const QueryParams& params);
  std::string describe_targets(const QueryParams& params);
  std::string describe_target_groups(const QueryParams& params);
  std::string modify_target_group(const QueryParams& params);
  std::string create_endpoint(const QueryParams& params);
  std::string delete_endpoint(const QueryParams& params);
  std::string describe_endpoints(const QueryParams& params);

  ProxyRecord proxy(const std::string& name);  // DBProxyNotFoundFault
  std::vector<ProxyRecord> proxies();
  std::vector<ProxyEndpointRecord> endpoints();
  std::vector<ProxyEndpointRecord> endpoints_of(const std::string& proxy_name);
  // The proxy's default endpoint, as DescribeDBProxyEndpoints lists it (not stored).
  static ProxyEndpointRecord default_endpoint(const ProxyRecord& proxy);
  void check_target_group(const ProxyRecord& proxy, const QueryParams& params);
  void save(const ProxyRecord& proxy);
  void save(const ProxyEndpointRecord& endpoint);
  std::vector<ProxyAuthRecord> parse_auth(const QueryParams& params);
  // The one VPC of `subnets` (InvalidSubnet otherwise).
  std::string vpc_of(const std::vector<std::string>& subnets);
  void check_groups(const std::vector<std::string>& groups, const std::string& vpc);
  std::string proxy_xml(const ProxyRecord& proxy);
  std::string target_group_xml(const ProxyRecord& proxy);
  std::string targets_xml(const ProxyRecord& proxy);
  std::string endpoint_xml(const ProxyEndpointRecord& endpoint, const ProxyRecord& proxy,
                           bool is_default);

  // Brings the proxy's process in line with its settings, secrets and target.
  void reconcile_proxy(ProxyRecord& proxy);
  // Writes proxy.toml and the admission rules and keeps the process running with them; `changed`
  // (the secrets changed) restarts it.
  void run_proxy(ProxyRecord& proxy, const ClusterWriter& writer,
                 const std::vector<std::pair<std::string, std::string>>& auth,
                 const std::vector<std::string>& unavailable, bool changed);
  // The proxy's listeners inside the VPC, its own and its endpoints' (their interfaces made on
  // first need): netns:NAME/ADDRESS:5432 listen addresses, opened by the proxy itself.
  struct VpcListener;
  std::vector<VpcListener> vpc_listeners(ProxyRecord& proxy,
                                         std::vector<ProxyEndpointRecord>& endpoints);
  // Why the proxy's secrets cannot be used (empty: all can), joined, and each in `unavailable`;
  // also writes the usable ones.
  std::string prepare_secrets(const ProxyRecord& proxy, const std::string& dir,
                              std::vector<std::pair<std::string, std::string>>& auth,
                              std::vector<std::string>& unavailable, bool& changed);
  TargetHealthReport health_of(const ProxyRecord& proxy);
  // Probes of a running proxy, at most one of each kind in flight; their results are applied
  // when reconcile() delivers them. What its process reports, at most once a second:
  void probe_health(const std::string& name, int metrics_port);
  // Whether it listens: then the proxy and its endpoints still creating become available.
  void probe_listening(const std::string& name, const std::string& address);
  void mark_available(const std::string& name);
  // Forgets what the proxy's process reported (it restarts, stops or is gone); a probe of it
  // still in flight is then ignored.
  void forget_report(const std::string& name);
  std::string dir_of(const std::string& name) const { return env_.home + "/proxies/" + name; }
  // The proxy's (or an endpoint's) interface in its first subnet, made (and saved) on first need.
  Ec2::NetworkInterface interface_of(ProxyRecord& proxy);
  Ec2::NetworkInterface interface_of(ProxyEndpointRecord& endpoint);
  // The interface `id` names, or a new one (then `id` is set to it).
  Ec2::NetworkInterface ensure_interface(std::string& id, const std::vector<std::string>& subnets,
                                         const std::vector<std::string>& groups,
                                         const std::string& description);
  // A listener inside the VPC: its label in proxy.toml (fd:N), its interface's address and the
  // security groups that guard it.
  struct VpcListener {
    std::string label;
    std::string address;
    std::vector<std::string> groups;
  };
  // "LISTENER SOURCE" lines: the host exception, then each client interface (users' and
  // functions') that the listener's groups admit on 5432 and whose own groups let it out there.
  std::string admission_rules(const std::vector<VpcListener>& vpc_listeners,
                              const std::vector<std::string>& host_listeners,
                              const std::string& vpc_id);

  // Store kinds, and the port RDS Proxy listens on whatever the database's port.
  static constexpr std::string_view kProxy = "rds-proxy";
  static constexpr std::string_view kEndpoint = "rds-proxy-endpoint";
  static constexpr int kProxyPort = 5432;

  RdsEnvironment& env_;
  Rds& rds_;
  // Per proxy: why its credentials cannot be used, and what its process last reported.
  std::map<std::string, std::string> credential_problems_;
  std::map<std::string, TargetHealthReport> reported_;
  std::map<std::string, std::chrono::steady_clock::time_point> next_check_;
  std::map<std::string, uint64_t> report_epoch_;  // bumped by forget_report()
  uint64_t report_epochs_ = 0;
  std::set<std::string> probing_;  // "health:NAME", "listening:NAME" in flight
  ProbeWorker probes_;             // last: its threads end before the rest goes
};

}  // namespace sluice::cloud
