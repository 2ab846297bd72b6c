// Typed records of the control plane's stored resources: RDS proxies (with their default target
// group) and proxy endpoints, DB clusters and instances, EC2's VPCs, subnets, security groups and
// network interfaces, Lambda functions.
// Each is stored as a JSON document (store.hpp); `from_json` reads one and `to_json` writes it
// back.
//
// - A required key that is missing, or of the wrong type, is a RecordError (an ApiError
//   InternalFailure, 500): never a silent "" as text() gives.
// - Optional keys (those older versions of sluice did not write) take the defaults the code
//   always assumed for them.
// - `to_json` writes the keys in the order the services always wrote them, so documents and API
//   output stay byte for byte what they were; keys a record does not know are kept (`extra`) and
//   written back after its own.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/api.hpp"

namespace sluice::cloud {

// A stored document that lacks what its record needs: damaged state or a bug, never the caller's
// doing, so the API answers InternalFailure.
struct RecordError : ApiError {
  explicit RecordError(const std::string& message) : ApiError("InternalFailure", message, 500) {}
};

// Reads the keys of one stored document, remembering which it read: the others are `rest()`.
class RecordReader {
 public:
  RecordReader(const boost::json::object& document, std::string_view kind)
      : document_(document), kind_(kind) {}

  std::string text(std::string_view key);  // required
  std::string text(std::string_view key, const std::string& otherwise);
  std::optional<std::string> maybe_text(std::string_view key);
  bool flag(std::string_view key);  // required
  bool flag(std::string_view key, bool otherwise);
  int64_t whole(std::string_view key);  // required
  int64_t whole(std::string_view key, int64_t otherwise);
  double decimal(std::string_view key);                    // required
  std::vector<std::string> strings(std::string_view key);  // required
  std::vector<std::string> strings(std::string_view key, std::vector<std::string> otherwise);
  // A required array of objects.
  const boost::json::array& objects(std::string_view key);
  const boost::json::object& object(std::string_view key);  // required
  const boost::json::array& array(std::string_view key);    // required
  // The keys not read.
  boost::json::object rest() const;

 private:
  const boost::json::value* find(std::string_view key, bool required, std::string_view type);
  [[noreturn]] void fail(std::string_view key, std::string_view problem) const;

  const boost::json::object& document_;
  std::string kind_;
  std::vector<std::string> read_;
};

// Appends the keys of `extra` not in `out` (what a newer or older version stored).
void append_extra(boost::json::object& out, const boost::json::object& extra);
boost::json::array json_strings(const std::vector<std::string>& values);

// ---- RDS Proxy ----

struct ProxyAuthRecord {
  std::string auth_scheme = "SECRETS";
  std::string secret_arn;
  std::string iam_auth = "DISABLED";
  std::string client_password_auth_type = "POSTGRES_SCRAM_SHA_256";
  std::optional<std::string> description;
  std::optional<std::string> user_name;
  boost::json::object extra;

  static ProxyAuthRecord from_json(const boost::json::object& o);
  boost::json::object to_json() const;
  bool operator==(const ProxyAuthRecord&) const = default;
};

// A proxy's one target group ("default"), stored in the proxy's document.
struct TargetGroupRecord {
  std::string arn;             // TargetGroupArn
  std::string target_cluster;  // "" when no target is registered
  int64_t max_connections_percent = 100;
  int64_t max_idle_connections_percent = 50;
  int64_t connection_borrow_timeout = 120;
  std::string init_query;
  bool operator==(const TargetGroupRecord&) const = default;
};

struct ProxyRecord {
  std::string name;  // DBProxyName
  std::string region;
  std::string arn;  // DBProxyArn
  std::string status;
  std::string engine_family = "POSTGRESQL";
  std::string vpc_id;
  std::vector<std::string> security_groups;  // VpcSecurityGroupIds
  std::vector<std::string> subnets;          // VpcSubnetIds
  std::vector<ProxyAuthRecord> auth;
  std::string role_arn;
  bool require_tls = false;
  int64_t idle_client_timeout = 1800;
  bool debug_logging = false;
  std::string created, updated;  // CreatedDate, UpdatedDate
  std::string address;           // its loopback address
  int64_t metrics_port = 0;      // its sluice-proxy's metrics listener on 127.0.0.1
  TargetGroupRecord target_group;
  std::string network_interface_id;  // in its first subnet, once made ("" before)
  boost::json::object extra;

  static ProxyRecord from_json(const boost::json::object& o);
  boost::json::object to_json() const;
  bool operator==(const ProxyRecord&) const = default;
};

struct ProxyEndpointRecord {
  std::string name;  // DBProxyEndpointName
  std::string proxy_name;
  std::string region;
  std::string arn;
  std::string status;
  std::string vpc_id;
  std::vector<std::string> security_groups;
  std::vector<std::string> subnets;
  std::string target_role = "READ_WRITE";
  std::string created;
  std::string address;
  std::string network_interface_id;
  boost::json::object extra;

  static ProxyEndpointRecord from_json(const boost::json::object& o);
  boost::json::object to_json() const;
  bool operator==(const ProxyEndpointRecord&) const = default;
};

// ---- RDS clusters and instances ----

struct ClusterRecord {
  std::string id;  // DBClusterIdentifier
  std::string region;
  std::string arn;
  std::string resource_id;  // DbClusterResourceId
  std::string engine;
  std::string engine_version;
  std::string status;
  std::string master_username;
  std::string database_name;
  int64_t port = 5432;
  double min_capacity = 0.5, max_capacity = 16;
  std::vector<std::string> security_groups;
  std::string subnet_group = "default";
  bool deletion_protection = false;
  bool storage_encrypted = false;
  std::string created;  // ClusterCreateTime
  std::string address;
  std::string writer_instance;  // "" when it has none
  std::string master_password;  // sealed, base64
  std::string network_interface_id;
  boost::json::object extra;

  static ClusterRecord from_json(const boost::json::object& o);
  boost::json::object to_json() const;
  bool operator==(const ClusterRecord&) const = default;
};

struct InstanceRecord {
  std::string id;  // DBInstanceIdentifier
  std::string region;
  std::string arn;
  std::string resource_id;  // DbiResourceId
  std::string instance_class;
  std::string engine;
  std::string cluster_id;
  std::string status;   // DBInstanceStatus
  std::string created;  // InstanceCreateTime
  int64_t max_connections = 189;
  bool database_created = false;
  boost::json::object extra;

  static InstanceRecord from_json(const boost::json::object& o);
  boost::json::object to_json() const;
  bool operator==(const InstanceRecord&) const = default;
};

// ---- EC2 ----

struct NetworkInterfaceRecord {
  std::string id;
  std::string subnet_id;
  std::string vpc_id;
  std::string zone;
  std::string ip;
  std::string description;
  std::vector<std::string> groups;
  bool requester_managed = false;            // made by a service (a proxy), not deletable by users
  std::string interface_type = "interface";  // or "lambda": a function's Hyperplane ENI
  std::string owner_id;
  boost::json::object extra;

  // Whether clients run inside it (a user's interface, a function's): it gets a namespace of
  // its own. A service's interface (a proxy's, a cluster's) is only an address it listens on.
  bool is_client() const { return !requester_managed || interface_type == "lambda"; }

  static NetworkInterfaceRecord from_json(const boost::json::object& o);
  boost::json::object to_json() const;
  bool operator==(const NetworkInterfaceRecord&) const = default;
};

// EC2's resources as data: VPCs, subnets, security groups and their rules.
struct TagRecord {
  std::string key, value;
  bool operator==(const TagRecord&) const = default;
};

struct VpcRecord {
  std::string id;  // VpcId
  std::string cidr_block;
  std::string state = "available";
  std::string owner_id;
  std::string dhcp_options_id = "dopt-00000000000000000";
  std::string instance_tenancy = "default";
  std::vector<TagRecord> tags;
  boost::json::object extra;

  static VpcRecord from_json(const boost::json::object& o);
  boost::json::object to_json() const;
  bool operator==(const VpcRecord&) const = default;
};

struct SubnetRecord {
  std::string id;  // SubnetId
  std::string vpc_id;
  std::string cidr_block;
  std::string zone;                 // AvailabilityZone
  std::string zone_id;              // AvailabilityZoneId
  int64_t available_addresses = 0;  // AvailableIpAddressCount
  std::string owner_id;
  std::string arn;  // SubnetArn
  std::vector<TagRecord> tags;
  boost::json::object extra;

  static SubnetRecord from_json(const boost::json::object& o);
  boost::json::object to_json() const;
  bool operator==(const SubnetRecord&) const = default;
};

// One rule of a security group: a protocol and port range, and a peer (a CIDR or a group).
struct SecurityGroupRuleRecord {
  std::string id;        // SecurityGroupRuleId
  std::string protocol;  // IpProtocol: tcp, udp, icmp or -1
  int64_t from_port = -1, to_port = -1;
  std::string cidr;              // CidrIpv4 ("" when the peer is a group)
  std::string referenced_group;  // ReferencedGroupId
  std::string description;
  boost::json::object extra;

  static SecurityGroupRuleRecord from_json(const boost::json::object& o);
  boost::json::object to_json() const;
  bool operator==(const SecurityGroupRuleRecord&) const = default;
};

struct SecurityGroupRecord {
  std::string id;  // GroupId
  std::string name;
  std::string description;
  std::string vpc_id;
  std::string owner_id;
  std::vector<SecurityGroupRuleRecord> ingress, egress;
  std::vector<TagRecord> tags;
  boost::json::object extra;

  static SecurityGroupRecord from_json(const boost::json::object& o);
  boost::json::object to_json() const;
  bool operator==(const SecurityGroupRecord&) const = default;
};

// ---- Lambda ----

// A function's VpcConfig, as Lambda reports it.
struct FunctionVpcConfig {
  std::vector<std::string> subnets;  // SubnetIds
  std::vector<std::string> groups;   // SecurityGroupIds
  std::string vpc_id;
  bool ipv6_allowed_for_dual_stack = false;

  static FunctionVpcConfig from_json(const boost::json::object& o);
  boost::json::object to_json() const;
  bool operator==(const FunctionVpcConfig&) const = default;
};

// One of a function's Hyperplane interfaces (sluice's own key, not in the API's view).
struct FunctionInterface {
  std::string subnet_id;
  std::string interface_id;  // NetworkInterfaceId
  bool operator==(const FunctionInterface&) const = default;
};

// A function: its configuration as Lambda reports it (to_json() minus kOwnKeys), then sluice's
// own keys. What sluice never reads itself (TracingConfig, EphemeralStorage, SnapStart, the
// variables, the architectures) is kept as the API gave or made it.
struct FunctionRecord {
  // The keys that are sluice's, not the configuration's.
  static constexpr std::string_view kOwnKeys[] = {
      "CodeFile", "CodeIsLocal", "ReservedConcurrentExecutions", "NetworkInterfaces"};
  std::string name;  // FunctionName
  std::string arn;   // FunctionArn
  std::string runtime;
  std::string role;
  std::string handler;
  int64_t code_size = 0;
  std::string description;
  int64_t timeout = 3;
  int64_t memory_size = 128;
  std::string last_modified;
  std::string code_sha256;
  std::string version = "$LATEST";
  FunctionVpcConfig vpc_config;
  boost::json::value variables = boost::json::object();  // Environment.Variables
  boost::json::object tracing_config{{"Mode", "PassThrough"}};
  std::string revision_id;
  std::string state = "Active";
  std::string last_update_status = "Successful";
  std::string package_type = "Zip";
  boost::json::array architectures{"x86_64"};
  boost::json::object ephemeral_storage{{"Size", 512}};
  boost::json::object snap_start{{"ApplyOn", "None"}, {"OptimizationStatus", "Off"}};
  std::string log_format = "Text";
  std::string log_group;  // LoggingConfig.LogGroup
  // sluice's own:
  std::string code_file;       // the package (a zip or a folder)
  bool code_is_local = false;  // the user's own code where it lies, not an upload
  std::optional<std::vector<FunctionInterface>> interfaces;  // NetworkInterfaces
  std::optional<int64_t> reserved_concurrency;               // ReservedConcurrentExecutions
  boost::json::object extra;

  std::vector<std::string> interface_ids() const;
  static FunctionRecord from_json(const boost::json::object& o);
  boost::json::object to_json() const;
  // The configuration (GetFunctionConfiguration), without sluice's own keys.
  boost::json::object configuration() const;
  bool operator==(const FunctionRecord&) const = default;
};

// A record from a stored document's text.
template <typename Record>
Record parse_record(std::string_view document) {
  boost::system::error_code ec;
  const boost::json::value parsed = boost::json::parse(document, ec);
  if (ec || !parsed.is_object()) throw RecordError("a stored document is not a JSON object");
  return Record::from_json(parsed.as_object());
}
template <typename Record>
std::string serialize_record(const Record& record) {
  return boost::json::serialize(record.to_json());
}

}  // namespace sluice::cloud
