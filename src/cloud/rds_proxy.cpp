#include "cloud/rds_proxy.hpp"

#include "cloud/sockets.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cloud/ids.hpp"
#include "cloud/json_fields.hpp"
#include "cloud/rds.hpp"
#include "proxy/secrets.hpp"

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

json::object RdsProxies::proxy(const std::string& name) {
  auto doc = env_.store.get(kProxy, lower_case(name));
  if (!doc) throw ApiError("DBProxyNotFoundFault", "DBProxy " + name + " not found.", 404);
  return json::parse(*doc).as_object();
}

void RdsProxies::save(const json::object& p) {
  env_.store.put(kProxy, text(p, "DBProxyName"), json::serialize(p));
}

std::vector<json::object> RdsProxies::endpoints_of(const std::string& proxy_name) {
  std::vector<json::object> out;
  for (const auto& [id, doc] : env_.store.list(kEndpoint)) {
    json::object e = json::parse(doc).as_object();
    if (text(e, "DBProxyName") == proxy_name) out.push_back(std::move(e));
  }
  return out;
}

std::set<std::string> RdsProxies::addresses_in_use() {
  std::set<std::string> out;
  for (std::string_view kind : {kProxy, kEndpoint})
    for (const auto& [id, doc] : env_.store.list(kind)) {
      const json::value parsed = json::parse(doc);
      out.insert(text(parsed.as_object(), "Address"));
    }
  return out;
}

HostsEntries RdsProxies::hosts_entries() {
  HostsEntries entries;
  for (const auto& [id, doc] : env_.store.list(kProxy)) {
    const json::value parsed = json::parse(doc);
    const json::object& p = parsed.as_object();
    entries.emplace_back(text(p, "Address"), rds_.names(text(p, "Region")).proxy(id));
  }
  for (const auto& [id, doc] : env_.store.list(kEndpoint)) {
    const json::value parsed = json::parse(doc);
    const json::object& e = parsed.as_object();
    entries.emplace_back(text(e, "Address"), rds_.names(text(e, "Region")).proxy_endpoint(id));
  }
  return entries;
}

bool RdsProxies::cluster_registered(const std::string& cluster_id) {
  for (const auto& [id, doc] : env_.store.list(kProxy)) {
    const json::value parsed = json::parse(doc);
    if (text(parsed.as_object(), "TargetCluster") == cluster_id) return true;
  }
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

json::array RdsProxies::parse_auth(const QueryParams& params) {
  const int count = params.structure_count("Auth");
  if (count == 0)
    throw ApiError("InvalidParameterValue",
                   "The parameter Auth must be provided: at least one UserAuthConfig with a "
                   "SecretArn.");
  if (count > 200)
    throw ApiError("InvalidParameterValue", "A DB proxy can have at most 200 Auth entries.");
  json::array auth;
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
    json::object entry{{"AuthScheme", scheme},
                       {"SecretArn", arn},
                       {"IAMAuth", iam},
                       {"ClientPasswordAuthType", type}};
    if (auto d = params.get(prefix + "Description")) entry["Description"] = *d;
    if (auto u = params.get(prefix + "UserName")) entry["UserName"] = *u;
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
  json::array auth = parse_auth(params);
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
  json::object p{{"DBProxyName", name},
                 {"Region", region_name},
                 {"DBProxyArn", arn_prefix + ":db-proxy:prx-" + hex_id()},
                 {"Status", "creating"},
                 {"EngineFamily", family},
                 {"VpcId", vpc},
                 {"VpcSecurityGroupIds", strings(groups)},
                 {"VpcSubnetIds", strings(subnets)},
                 {"Auth", std::move(auth)},
                 {"RoleArn", role},
                 {"RequireTLS", params.boolean("RequireTLS").value_or(false)},
                 {"IdleClientTimeout", idle},
                 {"DebugLogging", params.boolean("DebugLogging").value_or(false)},
                 {"CreatedDate", now},
                 {"UpdatedDate", now},
                 {"Address", env_.network.allocate_address(rds_.addresses_in_use(), kProxyPort)},
                 {"MetricsPort", free_local_port()},
                 {"TargetGroupArn", arn_prefix + ":target-group:prx-tg-" + hex_id()},
                 {"TargetCluster", ""},
                 {"MaxConnectionsPercent", 100},
                 {"MaxIdleConnectionsPercent", 50},
                 {"ConnectionBorrowTimeout", 120},
                 {"InitQuery", ""}};
  if (!env_.store.insert(kProxy, name, json::serialize(p)))
    throw ApiError(
        "DBProxyAlreadyExistsFault",
        "Cannot create the DBProxy because a DBProxy with the name " + name + " already exists.");
  spdlog::info("DB proxy {} created", name);
  return "<DBProxy>" + proxy_xml(p) + "</DBProxy>";
}

std::string RdsProxies::modify_proxy(const QueryParams& params) {
  json::object p = proxy(params.required("DBProxyName"));
  if (params.get("NewDBProxyName"))
    throw ApiError("InvalidParameterCombination", "sluice does not rename DB proxies yet.");
  json::array auth;
  if (params.structure_count("Auth") > 0) auth = parse_auth(params);
  const auto idle = params.integer("IdleClientTimeout", 1, 28800);
  const auto groups = ids(params, "SecurityGroups");
  check_groups(groups, text(p, "VpcId"));
  if (auto role = params.get("RoleArn")) {
    check_role_arn(*role);
    p["RoleArn"] = *role;
  }
  if (!auth.empty()) p["Auth"] = std::move(auth);
  if (idle) p["IdleClientTimeout"] = *idle;
  if (!groups.empty()) p["VpcSecurityGroupIds"] = strings(groups);
  if (auto v = params.boolean("RequireTLS")) p["RequireTLS"] = *v;
  if (auto v = params.boolean("DebugLogging")) p["DebugLogging"] = *v;
  p["UpdatedDate"] = iso8601_now();
  save(p);
  return "<DBProxy>" + proxy_xml(p) + "</DBProxy>";
}

std::string RdsProxies::delete_proxy(const QueryParams& params) {
  json::object p = proxy(params.required("DBProxyName"));
  const std::string name = text(p, "DBProxyName");
  env_.supervisor.stop("proxy:" + name);
  for (auto& e : endpoints_of(name)) release_interface(e);
  release_interface(p);
  for (const auto& e : endpoints_of(name))
    env_.store.remove(kEndpoint, text(e, "DBProxyEndpointName"));
  env_.store.remove(kProxy, name);
  std::error_code ec;
  fs::remove_all(dir_of(name), ec);
  credential_problems_.erase(name);
  reported_.erase(name);
  next_check_.erase(name);
  p["Status"] = "deleting";
  spdlog::info("DB proxy {} deleted", name);
  return "<DBProxy>" + proxy_xml(p) + "</DBProxy>";
}

void RdsProxies::release_interface(const json::object& resource) {
  if (auto eni = env_.ec2.interface(text(resource, "NetworkInterfaceId"))) {
    if (env_.vpc_network) env_.vpc_network->close_listener(eni->vpc_id, eni->ip, kProxyPort);
    env_.ec2.delete_interface(eni->id);
  }
}

std::string RdsProxies::describe_proxies(const QueryParams& params) {
  std::string members;
  if (auto name = params.get("DBProxyName")) {
    members = "<member>" + proxy_xml(proxy(*name)) + "</member>";
  } else {
    for (const auto& [id, doc] : env_.store.list(kProxy))
      members += "<member>" + proxy_xml(json::parse(doc).as_object()) + "</member>";
  }
  return "<DBProxies>" + members + "</DBProxies>";
}

std::string RdsProxies::proxy_xml(const json::object& p) {
  Xml xml;
  xml.leaf("DBProxyName", text(p, "DBProxyName"))
      .leaf("DBProxyArn", text(p, "DBProxyArn"))
      .leaf("Status", text(p, "Status"))
      .leaf("EngineFamily", text(p, "EngineFamily"))
      .leaf("VpcId", text(p, "VpcId"));
  member_list(xml, "VpcSecurityGroupIds", strings_of(p, "VpcSecurityGroupIds"));
  member_list(xml, "VpcSubnetIds", strings_of(p, "VpcSubnetIds"));
  xml.open("Auth");
  for (const auto& a : p.at("Auth").as_array()) {
    const json::object& entry = a.as_object();
    xml.open("member");
    if (entry.contains("Description")) xml.leaf("Description", text(entry, "Description"));
    if (entry.contains("UserName")) xml.leaf("UserName", text(entry, "UserName"));
    xml.leaf("AuthScheme", text(entry, "AuthScheme"))
        .leaf("SecretArn", text(entry, "SecretArn"))
        .leaf("IAMAuth", text(entry, "IAMAuth"))
        .leaf("ClientPasswordAuthType", text(entry, "ClientPasswordAuthType"))
        .close("member");
  }
  xml.close("Auth")
      .leaf("RoleArn", text(p, "RoleArn"))
      .leaf("Endpoint", rds_.names(text(p, "Region")).proxy(text(p, "DBProxyName")))
      .leaf("RequireTLS", flag(p, "RequireTLS") ? "true" : "false")
      .leaf("IdleClientTimeout", std::to_string(whole(p, "IdleClientTimeout", 1800)))
      .leaf("DebugLogging", flag(p, "DebugLogging") ? "true" : "false")
      .leaf("CreatedDate", text(p, "CreatedDate"))
      .leaf("UpdatedDate", text(p, "UpdatedDate"))
      .leaf("EndpointNetworkType", "IPV4")
      .leaf("TargetConnectionNetworkType", "IPV4");
  return xml.str();
}

// ---- target group and targets ----

void RdsProxies::check_target_group(const json::object& p, const QueryParams& params) {
  const std::string group = params.get("TargetGroupName").value_or("default");
  if (group != "default")
    throw ApiError("DBProxyTargetGroupNotFoundFault",
                   "DBProxy " + text(p, "DBProxyName") + " has no target group " + group +
                       " (only \"default\").",
                   404);
}

std::string RdsProxies::target_group_xml(const json::object& p) {
  Xml xml;
  xml.leaf("DBProxyName", text(p, "DBProxyName"))
      .leaf("TargetGroupName", "default")
      .leaf("TargetGroupArn", text(p, "TargetGroupArn"))
      .leaf("IsDefault", "true")
      .leaf("Status", "available")
      .open("ConnectionPoolConfig")
      .leaf("MaxConnectionsPercent", std::to_string(whole(p, "MaxConnectionsPercent", 100)))
      .leaf("MaxIdleConnectionsPercent", std::to_string(whole(p, "MaxIdleConnectionsPercent", 50)))
      .leaf("ConnectionBorrowTimeout", std::to_string(whole(p, "ConnectionBorrowTimeout", 120)))
      .open("SessionPinningFilters")
      .close("SessionPinningFilters");
  if (!text(p, "InitQuery").empty()) xml.leaf("InitQuery", text(p, "InitQuery"));
  xml.close("ConnectionPoolConfig")
      .leaf("CreatedDate", text(p, "CreatedDate"))
      .leaf("UpdatedDate", text(p, "UpdatedDate"));
  return xml.str();
}

std::string RdsProxies::describe_target_groups(const QueryParams& params) {
  const json::object p = proxy(params.required("DBProxyName"));
  check_target_group(p, params);
  return "<TargetGroups><member>" + target_group_xml(p) + "</member></TargetGroups>";
}

std::string RdsProxies::modify_target_group(const QueryParams& params) {
  json::object p = proxy(params.required("DBProxyName"));
  check_target_group(p, params);
  if (params.get("NewName"))
    throw ApiError("InvalidParameterValue", "The default target group cannot be renamed.");
  const std::string prefix = "ConnectionPoolConfig.";
  const int64_t max_percent = params.integer(prefix + "MaxConnectionsPercent", 1, 100)
                                  .value_or(whole(p, "MaxConnectionsPercent", 100));
  const auto idle_given = params.integer(prefix + "MaxIdleConnectionsPercent", 0, 100);
  int64_t idle_percent = idle_given.value_or(whole(p, "MaxIdleConnectionsPercent", 50));
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
  p["MaxConnectionsPercent"] = max_percent;
  p["MaxIdleConnectionsPercent"] = idle_percent;
  if (borrow) p["ConnectionBorrowTimeout"] = *borrow;
  if (init) p["InitQuery"] = *init;
  p["UpdatedDate"] = iso8601_now();
  save(p);
  return "<DBProxyTargetGroup>" + target_group_xml(p) + "</DBProxyTargetGroup>";
}

std::string RdsProxies::register_targets(const QueryParams& params) {
  json::object p = proxy(params.required("DBProxyName"));
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
  if (clusters.size() > 1 || !text(p, "TargetCluster").empty())
    throw ApiError("DBProxyTargetAlreadyRegisteredFault",
                   "A target group has one target cluster; " +
                       (text(p, "TargetCluster").empty()
                            ? std::string("register one.")
                            : text(p, "TargetCluster") + " is registered already."));
  const std::string cluster = lower_case(clusters.front());
  if (!rds_.cluster_exists(cluster))
    throw ApiError("DBClusterNotFoundFault", "DBCluster " + cluster + " not found.", 404);
  p["TargetCluster"] = cluster;
  p["UpdatedDate"] = iso8601_now();
  save(p);
  reported_.erase(text(p, "DBProxyName"));
  return "<DBProxyTargets>" + targets_xml(p) + "</DBProxyTargets>";
}

std::string RdsProxies::deregister_targets(const QueryParams& params) {
  json::object p = proxy(params.required("DBProxyName"));
  check_target_group(p, params);
  const auto clusters = params.list("DBClusterIdentifiers");
  const auto instances = params.list("DBInstanceIdentifiers");
  for (const auto& c : clusters)
    if (lower_case(c) != text(p, "TargetCluster"))
      throw ApiError(
          "DBProxyTargetNotFoundFault",
          "DB cluster " + c + " is not a target of DBProxy " + text(p, "DBProxyName") + ".", 404);
  for (const auto& i : instances)
    if (text(p, "TargetCluster").empty() || rds_.cluster_of_instance(i) != text(p, "TargetCluster"))
      throw ApiError(
          "DBProxyTargetNotFoundFault",
          "DB instance " + i + " is not a target of DBProxy " + text(p, "DBProxyName") + ".", 404);
  if (clusters.empty() && instances.empty())
    throw ApiError("InvalidParameterValue", "Pass DBClusterIdentifiers to deregister.");
  p["TargetCluster"] = "";
  p["UpdatedDate"] = iso8601_now();
  save(p);
  return "";
}

std::string RdsProxies::describe_targets(const QueryParams& params) {
  const json::object p = proxy(params.required("DBProxyName"));
  check_target_group(p, params);
  return "<Targets>" + targets_xml(p) + "</Targets>";
}

std::string RdsProxies::targets_xml(const json::object& p) {
  const std::string cluster = text(p, "TargetCluster");
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

TargetHealthReport RdsProxies::health_of(const json::object& p) {
  const std::string name = text(p, "DBProxyName");
  const auto writer = rds_.writer(text(p, "TargetCluster"));
  if (!writer || writer->instance_id.empty())
    return {"UNAVAILABLE", "CONNECTION_FAILED", "The target DB cluster has no writer instance."};
  if (!writer->available) return {"REGISTERING", "", ""};
  if (auto problem = credential_problems_.find(name);
      problem != credential_problems_.end() && !problem->second.empty())
    return {"UNAVAILABLE", "AUTH_FAILURE", problem->second};
  if (auto reported = reported_.find(name); reported != reported_.end()) return reported->second;
  return {"REGISTERING", "", ""};
}

// ---- endpoints ----

std::string RdsProxies::endpoint_xml(const json::object& e, const json::object& p) {
  const bool is_default = flag(e, "IsDefault");
  const RdsNames n = rds_.names(text(p, "Region"));
  Xml xml;
  xml.leaf("DBProxyEndpointName", text(e, "DBProxyEndpointName"))
      .leaf("DBProxyEndpointArn", text(e, "DBProxyEndpointArn"))
      .leaf("DBProxyName", text(p, "DBProxyName"))
      .leaf("Status", text(e, "Status"))
      .leaf("VpcId", text(e, "VpcId"));
  member_list(xml, "VpcSecurityGroupIds", strings_of(e, "VpcSecurityGroupIds"));
  member_list(xml, "VpcSubnetIds", strings_of(e, "VpcSubnetIds"));
  xml.leaf("Endpoint", is_default ? n.proxy(text(p, "DBProxyName"))
                                  : n.proxy_endpoint(text(e, "DBProxyEndpointName")))
      .leaf("CreatedDate", text(e, "CreatedDate"))
      .leaf("TargetRole", text(e, "TargetRole"))
      .leaf("IsDefault", is_default ? "true" : "false")
      .leaf("EndpointNetworkType", "IPV4");
  return xml.str();
}

std::string RdsProxies::create_endpoint(const QueryParams& params) {
  json::object p = proxy(params.required("DBProxyName"));
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
  if (groups.empty()) groups = strings_of(p, "VpcSecurityGroupIds");
  if (env_.store.get(kEndpoint, name) || env_.store.get(kProxy, name))
    throw ApiError("DBProxyEndpointAlreadyExistsFault",
                   "A DB proxy endpoint named " + name + " already exists.");
  json::object e{{"DBProxyEndpointName", name},
                 {"DBProxyName", text(p, "DBProxyName")},
                 {"Region", text(p, "Region")},
                 {"DBProxyEndpointArn", "arn:aws:rds:" + text(p, "Region") + ":" + env_.account_id +
                                            ":db-proxy-endpoint:prx-endpoint-" + hex_id()},
                 {"Status", "creating"},
                 {"VpcId", vpc},
                 {"VpcSecurityGroupIds", strings(groups)},
                 {"VpcSubnetIds", strings(subnets)},
                 {"TargetRole", role},
                 {"CreatedDate", iso8601_now()},
                 {"Address", env_.network.allocate_address(rds_.addresses_in_use(), kProxyPort)}};
  if (!env_.store.insert(kEndpoint, name, json::serialize(e)))
    throw ApiError("DBProxyEndpointAlreadyExistsFault",
                   "A DB proxy endpoint named " + name + " already exists.");
  return "<DBProxyEndpoint>" + endpoint_xml(e, p) + "</DBProxyEndpoint>";
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
  json::object e = json::parse(*doc).as_object();
  const json::object p = proxy(text(e, "DBProxyName"));
  release_interface(e);
  env_.store.remove(kEndpoint, name);
  e["Status"] = "deleting";
  return "<DBProxyEndpoint>" + endpoint_xml(e, p) + "</DBProxyEndpoint>";
}

std::string RdsProxies::describe_endpoints(const QueryParams& params) {
  const auto proxy_name = params.get("DBProxyName");
  const auto endpoint_name = params.get("DBProxyEndpointName");
  std::vector<json::object> proxies;
  if (proxy_name) {
    proxies.push_back(proxy(*proxy_name));
  } else {
    for (const auto& [id, doc] : env_.store.list(kProxy))
      proxies.push_back(json::parse(doc).as_object());
  }
  std::string members;
  bool found = false;
  for (const auto& p : proxies) {
    std::vector<json::object> endpoints;
    // The default endpoint is listed too, named after the proxy, as RDS does.
    endpoints.push_back(json::object{{"DBProxyEndpointName", text(p, "DBProxyName")},
                                     {"DBProxyEndpointArn", text(p, "DBProxyArn")},
                                     {"Status", text(p, "Status")},
                                     {"VpcId", text(p, "VpcId")},
                                     {"VpcSecurityGroupIds", p.at("VpcSecurityGroupIds")},
                                     {"VpcSubnetIds", p.at("VpcSubnetIds")},
                                     {"TargetRole", "READ_WRITE"},
                                     {"CreatedDate", text(p, "CreatedDate")},
                                     {"IsDefault", true}});
    for (auto& e : endpoints_of(text(p, "DBProxyName"))) endpoints.push_back(std::move(e));
    for (const auto& e : endpoints) {
      if (endpoint_name && lower_case(*endpoint_name) != text(e, "DBProxyEndpointName")) continue;
      found = true;
      members += "<member>" + endpoint_xml(e, p) + "</member>";
    }
  }
  if (endpoint_name && !found)
    throw ApiError("DBProxyEndpointNotFoundFault",
                   "DBProxyEndpoint " + *endpoint_name + " not found.", 404);
  return "<DBProxyEndpoints>" + members + "</DBProxyEndpoints>";
}

}  // namespace sluice::cloud
