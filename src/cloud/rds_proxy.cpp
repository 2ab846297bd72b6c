// RDS Proxy's API actions: proxies, their default target group and targets, extra endpoints.
// The running proxies (reconcile, supervision, probes) are in rds_proxy_runtime.cpp.
#include <spdlog/spdlog.h>

#include <filesystem>

#include "cloud/ids.hpp"
#include "cloud/rds.hpp"
#include "cloud/rds_proxy.hpp"
#include "cloud/sockets.hpp"

namespace sluice::cloud {
namespace json = boost::json;
namespace fs = std::filesystem;
namespace {

std::string hex_id() {
  return random_chars("0123456789abcdef", 17);
}

// IDs given as one comma-separated value ("subnet-a,subnet-b", as the guide passes them, which the
// aws CLI sends as one member) are split: an ID never holds a comma.
std::vector<std::string> ids(const QueryParams& params, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& value : params.list(name)) {
    size_t start = 0;
    for (size_t comma; (comma = value.find(',', start)) != std::string::npos; start = comma + 1)
      if (comma > start) out.push_back(value.substr(start, comma - start));
    if (start < value.size()) out.push_back(value.substr(start));
  }
  return out;
}

void check_role_arn(const std::string& role) {
  if (!role.starts_with("arn:aws:iam::") || role.find(":role/") == std::string::npos)
    throw ApiError("InvalidParameterValue", "RoleArn " + role + " is not an IAM role ARN.");
}

void member_list(Xml& xml, std::string_view tag, const std::vector<std::string>& values) {
  xml.open(tag);
  for (const auto& v : values) xml.leaf("member", v);
  xml.close(tag);
}

}  // namespace

ProxyRecord RdsProxies::proxy(const std::string& name) {
  auto doc = env_.store.get(kProxy, lower_case(name));
  if (!doc) throw ApiError("DBProxyNotFoundFault", "DBProxy " + name + " not found.", 404);
  return parse_record<ProxyRecord>(*doc);
}

std::vector<ProxyRecord> RdsProxies::proxies() {
  std::vector<ProxyRecord> out;
  for (const auto& [id, doc] : env_.store.list(kProxy))
    out.push_back(parse_record<ProxyRecord>(doc));
  return out;
}

void RdsProxies::save(const ProxyRecord& p) {
  env_.store.put(kProxy, p.name, serialize_record(p));
}

void RdsProxies::save(const ProxyEndpointRecord& e) {
  env_.store.put(kEndpoint, e.name, serialize_record(e));
}

std::vector<ProxyEndpointRecord> RdsProxies::endpoints() {
  std::vector<ProxyEndpointRecord> out;
  for (const auto& [id, doc] : env_.store.list(kEndpoint))
    out.push_back(parse_record<ProxyEndpointRecord>(doc));
  return out;
}

std::vector<ProxyEndpointRecord> RdsProxies::endpoints_of(const std::string& proxy_name) {
  std::vector<ProxyEndpointRecord> out;
  for (auto& e : endpoints())
    if (e.proxy_name == proxy_name) out.push_back(std::move(e));
  return out;
}

std::set<std::string> RdsProxies::addresses_in_use() {
  std::set<std::string> out;
  for (const auto& p : proxies()) out.insert(p.address);
  for (const auto& e : endpoints()) out.insert(e.address);
  return out;
}

HostsEntries RdsProxies::hosts_entries() {
  HostsEntries entries;
  for (const auto& p : proxies())
    entries.emplace_back(p.address, rds_.names(p.region).proxy(p.name));
  for (const auto& e : endpoints())
    entries.emplace_back(e.address, rds_.names(e.region).proxy_endpoint(e.name));
  return entries;
}

bool RdsProxies::cluster_registered(const std::string& cluster_id) {
  for (const auto& p : proxies())
    if (p.target_group.target_cluster == cluster_id) return true;
  return false;
}

std::optional<std::string> RdsProxies::handle(std::string_view action, const QueryParams& params,
                                              std::string_view region) {
  if (action == "CreateDBProxy") return create_proxy(params, region);
  if (action == "ModifyDBProxy") return modify_proxy(params);
  if (action == "DeleteDBProxy") return delete_proxy(params);
  if (action == "DescribeDBProxies") return describe_proxies(params);
  if (action == "RegisterDBProxyTargets") return register_targets(params);
  if (action == "DeregisterDBProxyTargets") return deregister_targets(params);
  if (action == "DescribeDBProxyTargets") return describe_targets(params);
  if (action == "DescribeDBProxyTargetGroups") return describe_target_groups(params);
  if (action == "ModifyDBProxyTargetGroup") return modify_target_group(params);
  if (action == "CreateDBProxyEndpoint") return create_endpoint(params);
  if (action == "DeleteDBProxyEndpoint") return delete_endpoint(params);
  if (action == "DescribeDBProxyEndpoints") return describe_endpoints(params);
  return std::nullopt;
}

std::string RdsProxies::vpc_of(const std::vector<std::string>& subnets) {
  if (subnets.empty())
    throw ApiError("InvalidParameterValue", "The parameter VpcSubnetIds must be provided.");
  std::string vpc;
  for (const auto& subnet : subnets) {
    const std::string of = env_.ec2.vpc_of_subnet(subnet);
    if (of.empty()) throw ApiError("InvalidSubnet", "The subnet " + subnet + " does not exist.");
    if (!vpc.empty() && of != vpc)
      throw ApiError("InvalidSubnet", "The subnets must all be in one VPC (" + subnet + " is in " +
                                          of + ", not " + vpc + ").");
    vpc = of;
  }
  return vpc;
}

void RdsProxies::check_groups(const std::vector<std::string>& groups, const std::string& vpc) {
  for (const auto& group : groups)
    if (!env_.ec2.group_in_vpc(group, vpc))
      throw ApiError("InvalidParameterValue",
                     "The security group " + group + " does not exist in VPC " + vpc + ".");
}

std::vector<ProxyAuthRecord> RdsProxies::parse_auth(const QueryParams& params) {
  const int count = params.structure_count("Auth");
  if (count == 0)
    throw ApiError("InvalidParameterValue",
                   "The parameter Auth must be provided: at least one UserAuthConfig with a "
                   "SecretArn.");
  if (count > 200)
    throw ApiError("InvalidParameterValue", "A DB proxy can have at most 200 Auth entries.");
  std::vector<ProxyAuthRecord> auth;
  for (int n = 1; n <= count; ++n) {
    const std::string prefix = "Auth.member." + std::to_string(n) + ".";
    const std::string scheme = params.get(prefix + "AuthScheme").value_or("SECRETS");
    if (scheme != "SECRETS")
      throw ApiError("InvalidParameterValue",
                     "Invalid AuthScheme " + scheme + ": the only scheme is SECRETS.");
    const std::string arn = params.get(prefix + "SecretArn").value_or("");
    if (!arn.starts_with("arn:aws:secretsmanager:") || arn.find(":secret:") == std::string::npos)
      throw ApiError("InvalidParameterValue",
                     "Auth entry " + std::to_string(n) +
                         " needs a SecretArn of a Secrets Manager secret "
                         "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX).");
    const std::string iam = params.get(prefix + "IAMAuth").value_or("DISABLED");
    if (iam == "REQUIRED" || iam == "ENABLED")
      throw ApiError("InvalidParameterValue",
                     "IAMAuth " + iam +
                         " is not supported by sluice: clients log in with the secret's password "
                         "(IAMAuth=DISABLED).");
    if (iam != "DISABLED") throw ApiError("InvalidParameterValue", "Invalid IAMAuth " + iam + ".");
    const std::string type =
        params.get(prefix + "ClientPasswordAuthType").value_or("POSTGRES_SCRAM_SHA_256");
    if (type != "POSTGRES_SCRAM_SHA_256" && type != "POSTGRES_MD5")
      throw ApiError("InvalidParameterValue",
                     "ClientPasswordAuthType " + type +
                         " does not apply to engine family POSTGRESQL: use POSTGRES_SCRAM_SHA_256 "
                         "or POSTGRES_MD5.");
    ProxyAuthRecord entry;
    entry.auth_scheme = scheme;
    entry.secret_arn = arn;
    entry.iam_auth = iam;
    entry.client_password_auth_type = type;
    entry.description = params.get(prefix + "Description");
    entry.user_name = params.get(prefix + "UserName");
    auth.push_back(std::move(entry));
  }
  return auth;
}

std::string RdsProxies::create_proxy(const QueryParams& params, std::string_view region) {
  const std::string raw_name = params.get("DBProxyName").value_or("");
  const std::string name = rds_identifier(raw_name, "DBProxyName");
  const std::string family = params.required("EngineFamily");
  if (family != "POSTGRESQL")
    throw ApiError("InvalidParameterValue",
                   "Invalid EngineFamily " + family + ": sluice runs POSTGRESQL proxies.");
  const std::string role = params.required("RoleArn");
  check_role_arn(role);
  std::vector<ProxyAuthRecord> auth = parse_auth(params);
  const auto subnets = ids(params, "VpcSubnetIds");
  const std::string vpc = vpc_of(subnets);
  const auto groups = ids(params, "VpcSecurityGroupIds");
  check_groups(groups, vpc);
  const int idle = static_cast<int>(params.integer("IdleClientTimeout", 1, 28800).value_or(1800));
  if (env_.store.get(kProxy, name))
    throw ApiError(
        "DBProxyAlreadyExistsFault",
        "Cannot create the DBProxy because a DBProxy with the name " + name + " already exists.");
  const std::string region_name(region);
  const std::string now = iso8601_now();
  const std::string arn_prefix = "arn:aws:rds:" + region_name + ":" + env_.account_id;
  ProxyRecord p;
  p.name = name;
  p.region = region_name;
  p.arn = arn_prefix + ":db-proxy:prx-" + hex_id();
  p.status = "creating";
  p.engine_family = family;
  p.vpc_id = vpc;
  p.security_groups = groups;
  p.subnets = subnets;
  p.auth = std::move(auth);
  p.role_arn = role;
  p.require_tls = params.boolean("RequireTLS").value_or(false);
  p.idle_client_timeout = idle;
  p.debug_logging = params.boolean("DebugLogging").value_or(false);
  p.created = p.updated = now;
  p.address = env_.network.allocate_address(rds_.addresses_in_use(), kProxyPort);
  p.metrics_port = free_local_port();
  p.target_group.arn = arn_prefix + ":target-group:prx-tg-" + hex_id();
  if (!env_.store.insert(kProxy, name, serialize_record(p)))
    throw ApiError(
        "DBProxyAlreadyExistsFault",
        "Cannot create the DBProxy because a DBProxy with the name " + name + " already exists.");
  spdlog::info("DB proxy {} created", name);
  return "<DBProxy>" + proxy_xml(p) + "</DBProxy>";
}

std::string RdsProxies::modify_proxy(const QueryParams& params) {
  ProxyRecord p = proxy(params.required("DBProxyName"));
  if (params.get("NewDBProxyName"))
    throw ApiError("InvalidParameterCombination", "sluice does not rename DB proxies yet.");
  std::vector<ProxyAuthRecord> auth;
  if (params.structure_count("Auth") > 0) auth = parse_auth(params);
  const auto idle = params.integer("IdleClientTimeout", 1, 28800);
  const auto groups = ids(params, "SecurityGroups");
  check_groups(groups, p.vpc_id);
  if (auto role = params.get("RoleArn")) {
    check_role_arn(*role);
    p.role_arn = *role;
  }
  if (!auth.empty()) p.auth = std::move(auth);
  if (idle) p.idle_client_timeout = *idle;
  if (!groups.empty()) p.security_groups = groups;
  if (auto v = params.boolean("RequireTLS")) p.require_tls = *v;
  if (auto v = params.boolean("DebugLogging")) p.debug_logging = *v;
  p.updated = iso8601_now();
  save(p);
  return "<DBProxy>" + proxy_xml(p) + "</DBProxy>";
}

std::string RdsProxies::delete_proxy(const QueryParams& params) {
  ProxyRecord p = proxy(params.required("DBProxyName"));
  const std::string name = p.name;
  env_.supervisor.stop("proxy:" + name);
  for (const auto& e : endpoints_of(name)) release_interface(e.network_interface_id);
  release_interface(p.network_interface_id);
  for (const auto& e : endpoints_of(name)) env_.store.remove(kEndpoint, e.name);
  env_.store.remove(kProxy, name);
  std::error_code ec;
  fs::remove_all(dir_of(name), ec);
  credential_problems_.erase(name);
  forget_report(name);
  next_check_.erase(name);
  p.status = "deleting";
  spdlog::info("DB proxy {} deleted", name);
  return "<DBProxy>" + proxy_xml(p) + "</DBProxy>";
}

void RdsProxies::release_interface(const std::string& interface_id) {
  if (auto eni = env_.ec2.interface(interface_id)) {
    if (env_.vpc_network) env_.vpc_network->close_listener(eni->vpc_id, eni->ip, kProxyPort);
    env_.ec2.delete_interface(eni->id);
  }
}

std::string RdsProxies::describe_proxies(const QueryParams& params) {
  std::string members;
  if (auto name = params.get("DBProxyName")) {
    members = "<member>" + proxy_xml(proxy(*name)) + "</member>";
  } else {
    for (const auto& p : proxies()) members += "<member>" + proxy_xml(p) + "</member>";
  }
  return "<DBProxies>" + members + "</DBProxies>";
}

std::string RdsProxies::proxy_xml(const ProxyRecord& p) {
  Xml xml;
  xml.leaf("DBProxyName", p.name)
      .leaf("DBProxyArn", p.arn)
      .leaf("Status", p.status)
      .leaf("EngineFamily", p.engine_family)
      .leaf("VpcId", p.vpc_id);
  member_list(xml, "VpcSecurityGroupIds", p.security_groups);
  member_list(xml, "VpcSubnetIds", p.subnets);
  xml.open("Auth");
  for (const auto& entry : p.auth) {
    xml.open("member");
    if (entry.description) xml.leaf("Description", *entry.description);
    if (entry.user_name) xml.leaf("UserName", *entry.user_name);
    xml.leaf("AuthScheme", entry.auth_scheme)
        .leaf("SecretArn", entry.secret_arn)
        .leaf("IAMAuth", entry.iam_auth)
        .leaf("ClientPasswordAuthType", entry.client_password_auth_type)
        .close("member");
  }
  xml.close("Auth")
      .leaf("RoleArn", p.role_arn)
      .leaf("Endpoint", rds_.names(p.region).proxy(p.name))
      .leaf("RequireTLS", p.require_tls ? "true" : "false")
      .leaf("IdleClientTimeout", std::to_string(p.idle_client_timeout))
      .leaf("DebugLogging", p.debug_logging ? "true" : "false")
      .leaf("CreatedDate", p.created)
      .leaf("UpdatedDate", p.updated)
      .leaf("EndpointNetworkType", "IPV4")
      .leaf("TargetConnectionNetworkType", "IPV4");
  return xml.str();
}

// ---- target group and targets ----

void RdsProxies::check_target_group(const ProxyRecord& p, const QueryParams& params) {
  const std::string group = params.get("TargetGroupName").value_or("default");
  if (group != "default")
    throw ApiError("DBProxyTargetGroupNotFoundFault",
                   "DBProxy " + p.name + " has no target group " + group + " (only \"default\").",
                   404);
}

std::string RdsProxies::target_group_xml(const ProxyRecord& p) {
  const TargetGroupRecord& g = p.target_group;
  Xml xml;
  xml.leaf("DBProxyName", p.name)
      .leaf("TargetGroupName", "default")
      .leaf("TargetGroupArn", g.arn)
      .leaf("IsDefault", "true")
      .leaf("Status", "available")
      .open("ConnectionPoolConfig")
      .leaf("MaxConnectionsPercent", std::to_string(g.max_connections_percent))
      .leaf("MaxIdleConnectionsPercent", std::to_string(g.max_idle_connections_percent))
      .leaf("ConnectionBorrowTimeout", std::to_string(g.connection_borrow_timeout))
      .open("SessionPinningFilters")
      .close("SessionPinningFilters");
  if (!g.init_query.empty()) xml.leaf("InitQuery", g.init_query);
  xml.close("ConnectionPoolConfig").leaf("CreatedDate", p.created).leaf("UpdatedDate", p.updated);
  return xml.str();
}

std::string RdsProxies::describe_target_groups(const QueryParams& params) {
  const ProxyRecord p = proxy(params.required("DBProxyName"));
  check_target_group(p, params);
  return "<TargetGroups><member>" + target_group_xml(p) + "</member></TargetGroups>";
}

std::string RdsProxies::modify_target_group(const QueryParams& params) {
  ProxyRecord p = proxy(params.required("DBProxyName"));
  check_target_group(p, params);
  if (params.get("NewName"))
    throw ApiError("InvalidParameterValue", "The default target group cannot be renamed.");
  TargetGroupRecord& g = p.target_group;
  const std::string prefix = "ConnectionPoolConfig.";
  const int64_t max_percent =
      params.integer(prefix + "MaxConnectionsPercent", 1, 100).value_or(g.max_connections_percent);
  const auto idle_given = params.integer(prefix + "MaxIdleConnectionsPercent", 0, 100);
  int64_t idle_percent = idle_given.value_or(g.max_idle_connections_percent);
  if (!idle_given) idle_percent = std::min(idle_percent, max_percent);
  if (idle_percent > max_percent)
    throw ApiError("InvalidParameterValue",
                   "MaxIdleConnectionsPercent (" + std::to_string(idle_percent) +
                       ") must not be greater than MaxConnectionsPercent (" +
                       std::to_string(max_percent) + ").");
  const auto borrow = params.integer(prefix + "ConnectionBorrowTimeout", 0, 300);
  const auto init = params.get(prefix + "InitQuery");
  if (!params.list(prefix + "SessionPinningFilters").empty())
    throw ApiError("InvalidParameterValue",
                   "SessionPinningFilters apply to MySQL only; sluice tracks PostgreSQL session "
                   "state instead of pinning.");
  g.max_connections_percent = max_percent;
  g.max_idle_connections_percent = idle_percent;
  if (borrow) g.connection_borrow_timeout = *borrow;
  if (init) g.init_query = *init;
  p.updated = iso8601_now();
  save(p);
  return "<DBProxyTargetGroup>" + target_group_xml(p) + "</DBProxyTargetGroup>";
}

std::string RdsProxies::register_targets(const QueryParams& params) {
  ProxyRecord p = proxy(params.required("DBProxyName"));
  check_target_group(p, params);
  const auto clusters = params.list("DBClusterIdentifiers");
  const auto instances = params.list("DBInstanceIdentifiers");
  if (clusters.empty() && instances.empty())
    throw ApiError("InvalidParameterValue",
                   "Pass DBClusterIdentifiers (or DBInstanceIdentifiers) to register.");
  for (const auto& instance : instances) {
    if (!rds_.instance_exists(instance))
      throw ApiError("DBInstanceNotFound", "DBInstance " + instance + " not found.", 404);
    throw ApiError("InvalidDBInstanceState",
                   "DB instance " + instance + " belongs to DB cluster " +
                       rds_.cluster_of_instance(instance) +
                       "; register the cluster (DBClusterIdentifiers) instead.");
  }
  const std::string& registered = p.target_group.target_cluster;
  if (clusters.size() > 1 || !registered.empty())
    throw ApiError("DBProxyTargetAlreadyRegisteredFault",
                   "A target group has one target cluster; " +
                       (registered.empty() ? std::string("register one.")
                                           : registered + " is registered already."));
  const std::string cluster = lower_case(clusters.front());
  if (!rds_.cluster_exists(cluster))
    throw ApiError("DBClusterNotFoundFault", "DBCluster " + cluster + " not found.", 404);
  p.target_group.target_cluster = cluster;
  p.updated = iso8601_now();
  save(p);
  forget_report(p.name);
  return "<DBProxyTargets>" + targets_xml(p) + "</DBProxyTargets>";
}

std::string RdsProxies::deregister_targets(const QueryParams& params) {
  ProxyRecord p = proxy(params.required("DBProxyName"));
  check_target_group(p, params);
  const auto clusters = params.list("DBClusterIdentifiers");
  const auto instances = params.list("DBInstanceIdentifiers");
  const std::string& registered = p.target_group.target_cluster;
  for (const auto& c : clusters)
    if (lower_case(c) != registered)
      throw ApiError("DBProxyTargetNotFoundFault",
                     "DB cluster " + c + " is not a target of DBProxy " + p.name + ".", 404);
  for (const auto& i : instances)
    if (registered.empty() || rds_.cluster_of_instance(i) != registered)
      throw ApiError("DBProxyTargetNotFoundFault",
                     "DB instance " + i + " is not a target of DBProxy " + p.name + ".", 404);
  if (clusters.empty() && instances.empty())
    throw ApiError("InvalidParameterValue", "Pass DBClusterIdentifiers to deregister.");
  p.target_group.target_cluster = "";
  p.updated = iso8601_now();
  save(p);
  return "";
}

std::string RdsProxies::describe_targets(const QueryParams& params) {
  const ProxyRecord p = proxy(params.required("DBProxyName"));
  check_target_group(p, params);
  return "<Targets>" + targets_xml(p) + "</Targets>";
}

std::string RdsProxies::targets_xml(const ProxyRecord& p) {
  const std::string& cluster = p.target_group.target_cluster;
  if (cluster.empty()) return "";
  const auto writer = rds_.writer(cluster);
  if (!writer) return "";
  Xml xml;
  xml.open("member")
      .leaf("TrackedClusterId", cluster)
      .leaf("RdsResourceId", cluster)
      .leaf("Port", std::to_string(writer->port))
      .leaf("Type", "TRACKED_CLUSTER")
      .leaf("Role", "UNKNOWN")
      .close("member");
  if (!writer->instance_id.empty()) {
    const TargetHealthReport health = health_of(p);
    xml.open("member")
        .leaf("TargetArn", writer->instance_arn)
        .leaf("Endpoint", writer->endpoint)
        .leaf("TrackedClusterId", cluster)
        .leaf("RdsResourceId", writer->instance_id)
        .leaf("Port", std::to_string(writer->port))
        .leaf("Type", "RDS_INSTANCE")
        .leaf("Role", "READ_WRITE")
        .open("TargetHealth")
        .leaf("State", health.state);
    if (!health.reason.empty()) xml.leaf("Reason", health.reason);
    if (!health.description.empty()) xml.leaf("Description", health.description);
    xml.close("TargetHealth").close("member");
  }
  return xml.str();
}

TargetHealthReport RdsProxies::health_of(const ProxyRecord& p) {
  const auto writer = rds_.writer(p.target_group.target_cluster);
  if (!writer || writer->instance_id.empty())
    return {"UNAVAILABLE", "CONNECTION_FAILED", "The target DB cluster has no writer instance."};
  if (!writer->available) return {"REGISTERING", "", ""};
  if (auto problem = credential_problems_.find(p.name);
      problem != credential_problems_.end() && !problem->second.empty())
    return {"UNAVAILABLE", "AUTH_FAILURE", problem->second};
  if (auto reported = reported_.find(p.name); reported != reported_.end()) return reported->second;
  return {"REGISTERING", "", ""};
}

// ---- endpoints ----

std::string RdsProxies::endpoint_xml(const ProxyEndpointRecord& e, const ProxyRecord& p,
                                     bool is_default) {
  const RdsNames n = rds_.names(p.region);
  Xml xml;
  xml.leaf("DBProxyEndpointName", e.name)
      .leaf("DBProxyEndpointArn", e.arn)
      .leaf("DBProxyName", p.name)
      .leaf("Status", e.status)
      .leaf("VpcId", e.vpc_id);
  member_list(xml, "VpcSecurityGroupIds", e.security_groups);
  member_list(xml, "VpcSubnetIds", e.subnets);
  xml.leaf("Endpoint", is_default ? n.proxy(p.name) : n.proxy_endpoint(e.name))
      .leaf("CreatedDate", e.created)
      .leaf("TargetRole", e.target_role)
      .leaf("IsDefault", is_default ? "true" : "false")
      .leaf("EndpointNetworkType", "IPV4");
  return xml.str();
}

std::string RdsProxies::create_endpoint(const QueryParams& params) {
  const ProxyRecord p = proxy(params.required("DBProxyName"));
  const std::string raw_name = params.get("DBProxyEndpointName").value_or("");
  const std::string name = rds_identifier(raw_name, "DBProxyEndpointName");
  const std::string role = params.get("TargetRole").value_or("READ_WRITE");
  if (role == "READ_ONLY")
    throw ApiError("InvalidParameterValue",
                   "sluice's clusters have no reader instances, so a READ_ONLY endpoint would "
                   "have no target; use READ_WRITE.");
  if (role != "READ_WRITE")
    throw ApiError("InvalidParameterValue", "Invalid TargetRole " + role + ".");
  const auto subnets = ids(params, "VpcSubnetIds");
  const std::string vpc = vpc_of(subnets);
  auto groups = ids(params, "VpcSecurityGroupIds");
  check_groups(groups, vpc);
  if (groups.empty()) groups = p.security_groups;
  if (env_.store.get(kEndpoint, name) || env_.store.get(kProxy, name))
    throw ApiError("DBProxyEndpointAlreadyExistsFault",
                   "A DB proxy endpoint named " + name + " already exists.");
  ProxyEndpointRecord e;
  e.name = name;
  e.proxy_name = p.name;
  e.region = p.region;
  e.arn = "arn:aws:rds:" + p.region + ":" + env_.account_id + ":db-proxy-endpoint:prx-endpoint-" +
          hex_id();
  e.status = "creating";
  e.vpc_id = vpc;
  e.security_groups = groups;
  e.subnets = subnets;
  e.target_role = role;
  e.created = iso8601_now();
  e.address = env_.network.allocate_address(rds_.addresses_in_use(), kProxyPort);
  if (!env_.store.insert(kEndpoint, name, serialize_record(e)))
    throw ApiError("DBProxyEndpointAlreadyExistsFault",
                   "A DB proxy endpoint named " + name + " already exists.");
  return "<DBProxyEndpoint>" + endpoint_xml(e, p, false) + "</DBProxyEndpoint>";
}

std::string RdsProxies::delete_endpoint(const QueryParams& params) {
  const std::string name = lower_case(params.required("DBProxyEndpointName"));
  auto doc = env_.store.get(kEndpoint, name);
  if (!doc) {
    if (env_.store.get(kProxy, name))
      throw ApiError("InvalidDBProxyEndpointStateFault",
                     "The default endpoint of a DB proxy cannot be deleted; delete the proxy.");
    throw ApiError("DBProxyEndpointNotFoundFault", "DBProxyEndpoint " + name + " not found.", 404);
  }
  ProxyEndpointRecord e = parse_record<ProxyEndpointRecord>(*doc);
  const ProxyRecord p = proxy(e.proxy_name);
  release_interface(e.network_interface_id);
  env_.store.remove(kEndpoint, name);
  e.status = "deleting";
  return "<DBProxyEndpoint>" + endpoint_xml(e, p, false) + "</DBProxyEndpoint>";
}

std::string RdsProxies::describe_endpoints(const QueryParams& params) {
  const auto proxy_name = params.get("DBProxyName");
  const auto endpoint_name = params.get("DBProxyEndpointName");
  const std::vector<ProxyRecord> listed =
      proxy_name ? std::vector<ProxyRecord>{proxy(*proxy_name)} : proxies();
  std::string members;
  bool found = false;
  for (const auto& p : listed) {
    // The default endpoint is listed too, named after the proxy, as RDS does.
    std::vector<std::pair<ProxyEndpointRecord, bool>> listed_endpoints{{default_endpoint(p), true}};
    for (auto& e : endpoints_of(p.name)) listed_endpoints.emplace_back(std::move(e), false);
    for (const auto& [e, is_default] : listed_endpoints) {
      if (endpoint_name && lower_case(*endpoint_name) != e.name) continue;
      found = true;
      members += "<member>" + endpoint_xml(e, p, is_default) + "</member>";
    }
  }
  if (endpoint_name && !found)
    throw ApiError("DBProxyEndpointNotFoundFault",
                   "DBProxyEndpoint " + *endpoint_name + " not found.", 404);
  return "<DBProxyEndpoints>" + members + "</DBProxyEndpoints>";
}

ProxyEndpointRecord RdsProxies::default_endpoint(const ProxyRecord& p) {
  ProxyEndpointRecord e;
  e.name = p.name;
  e.proxy_name = p.name;
  e.region = p.region;
  e.arn = p.arn;
  e.status = p.status;
  e.vpc_id = p.vpc_id;
  e.security_groups = p.security_groups;
  e.subnets = p.subnets;
  e.target_role = "READ_WRITE";
  e.created = p.created;
  e.address = p.address;
  return e;
}

}  // namespace sluice::cloud
