#include "cloud/records.hpp"

#include <algorithm>

namespace sluice::cloud {
namespace json = boost::json;

// ---- reading ----

void RecordReader::fail(std::string_view key, std::string_view problem) const {
  throw RecordError("a stored " + kind_ + " record " + std::string(problem) + " \"" +
                    std::string(key) + "\"");
}

const json::value* RecordReader::find(std::string_view key, bool required, std::string_view type) {
  read_.emplace_back(key);
  const json::value* v = document_.if_contains(key);
  if (!v && required) fail(key, "lacks the " + std::string(type));
  return v;
}

std::string RecordReader::text(std::string_view key) {
  const json::value* v = find(key, true, "string");
  if (!v->is_string()) fail(key, "has a non-string");
  return std::string(v->as_string());
}

std::string RecordReader::text(std::string_view key, const std::string& otherwise) {
  return maybe_text(key).value_or(otherwise);
}

std::optional<std::string> RecordReader::maybe_text(std::string_view key) {
  const json::value* v = find(key, false, "string");
  if (!v) return std::nullopt;
  if (!v->is_string()) fail(key, "has a non-string");
  return std::string(v->as_string());
}

bool RecordReader::flag(std::string_view key) {
  const json::value* v = find(key, true, "boolean");
  if (!v->is_bool()) fail(key, "has a non-boolean");
  return v->as_bool();
}

bool RecordReader::flag(std::string_view key, bool otherwise) {
  const json::value* v = find(key, false, "boolean");
  if (!v) return otherwise;
  if (!v->is_bool()) fail(key, "has a non-boolean");
  return v->as_bool();
}

int64_t RecordReader::whole(std::string_view key) {
  const json::value* v = find(key, true, "number");
  if (!v->is_number()) fail(key, "has a non-number");
  return v->to_number<int64_t>();
}

int64_t RecordReader::whole(std::string_view key, int64_t otherwise) {
  const json::value* v = find(key, false, "number");
  if (!v) return otherwise;
  if (!v->is_number()) fail(key, "has a non-number");
  return v->to_number<int64_t>();
}

double RecordReader::decimal(std::string_view key) {
  const json::value* v = find(key, true, "number");
  if (!v->is_number()) fail(key, "has a non-number");
  return v->to_number<double>();
}

std::vector<std::string> RecordReader::strings(std::string_view key) {
  const json::value* v = find(key, true, "list of strings");
  std::vector<std::string> out;
  if (!v->is_array()) fail(key, "has a non-list");
  for (const auto& s : v->as_array()) {
    if (!s.is_string()) fail(key, "has a non-string in the list");
    out.emplace_back(s.as_string());
  }
  return out;
}

std::vector<std::string> RecordReader::strings(std::string_view key,
                                               std::vector<std::string> otherwise) {
  if (!document_.contains(key)) {
    read_.emplace_back(key);
    return otherwise;
  }
  return strings(key);
}

const json::array& RecordReader::objects(std::string_view key) {
  const json::value* v = find(key, true, "list");
  if (!v->is_array()) fail(key, "has a non-list");
  for (const auto& o : v->as_array())
    if (!o.is_object()) fail(key, "has a non-object in the list");
  return v->as_array();
}

const json::object& RecordReader::object(std::string_view key) {
  const json::value* v = find(key, true, "object");
  if (!v->is_object()) fail(key, "has a non-object");
  return v->as_object();
}

const json::array& RecordReader::array(std::string_view key) {
  const json::value* v = find(key, true, "list");
  if (!v->is_array()) fail(key, "has a non-list");
  return v->as_array();
}

json::object RecordReader::rest() const {
  json::object out;
  for (const auto& [key, value] : document_)
    if (std::find(read_.begin(), read_.end(), key) == read_.end()) out.emplace(key, value);
  return out;
}

void append_extra(json::object& out, const json::object& extra) {
  for (const auto& [key, value] : extra)
    if (!out.contains(key)) out.emplace(key, value);
}

json::array json_strings(const std::vector<std::string>& values) {
  json::array out;
  for (const auto& v : values) out.emplace_back(v);
  return out;
}

// ---- RDS Proxy ----

ProxyAuthRecord ProxyAuthRecord::from_json(const json::object& o) {
  RecordReader r(o, "DB proxy Auth");
  ProxyAuthRecord a;
  a.auth_scheme = r.text("AuthScheme", "SECRETS");
  a.secret_arn = r.text("SecretArn");
  a.iam_auth = r.text("IAMAuth", "DISABLED");
  a.client_password_auth_type = r.text("ClientPasswordAuthType", "POSTGRES_SCRAM_SHA_256");
  a.description = r.maybe_text("Description");
  a.user_name = r.maybe_text("UserName");
  a.extra = r.rest();
  return a;
}

json::object ProxyAuthRecord::to_json() const {
  json::object o{{"AuthScheme", auth_scheme},
                 {"SecretArn", secret_arn},
                 {"IAMAuth", iam_auth},
                 {"ClientPasswordAuthType", client_password_auth_type}};
  if (description) o["Description"] = *description;
  if (user_name) o["UserName"] = *user_name;
  append_extra(o, extra);
  return o;
}

ProxyRecord ProxyRecord::from_json(const json::object& o) {
  RecordReader r(o, "DB proxy");
  ProxyRecord p;
  p.name = r.text("DBProxyName");
  p.region = r.text("Region");
  p.arn = r.text("DBProxyArn");
  p.status = r.text("Status");
  p.engine_family = r.text("EngineFamily", "POSTGRESQL");
  p.vpc_id = r.text("VpcId", "");
  p.security_groups = r.strings("VpcSecurityGroupIds", {});
  p.subnets = r.strings("VpcSubnetIds");
  for (const auto& a : r.objects("Auth"))
    p.auth.push_back(ProxyAuthRecord::from_json(a.as_object()));
  p.role_arn = r.text("RoleArn");
  p.require_tls = r.flag("RequireTLS", false);
  p.idle_client_timeout = r.whole("IdleClientTimeout", 1800);
  p.debug_logging = r.flag("DebugLogging", false);
  p.created = r.text("CreatedDate");
  p.updated = r.text("UpdatedDate", p.created);
  p.address = r.text("Address");
  p.metrics_port = r.whole("MetricsPort");
  TargetGroupRecord& g = p.target_group;
  g.arn = r.text("TargetGroupArn");
  g.target_cluster = r.text("TargetCluster", "");
  g.max_connections_percent = r.whole("MaxConnectionsPercent", 100);
  g.max_idle_connections_percent = r.whole("MaxIdleConnectionsPercent", 50);
  g.connection_borrow_timeout = r.whole("ConnectionBorrowTimeout", 120);
  g.init_query = r.text("InitQuery", "");
  p.network_interface_id = r.text("NetworkInterfaceId", "");
  p.extra = r.rest();
  return p;
}

json::object ProxyRecord::to_json() const {
  json::array auth_entries;
  for (const auto& a : auth) auth_entries.push_back(a.to_json());
  json::object o{{"DBProxyName", name},
                 {"Region", region},
                 {"DBProxyArn", arn},
                 {"Status", status},
                 {"EngineFamily", engine_family},
                 {"VpcId", vpc_id},
                 {"VpcSecurityGroupIds", json_strings(security_groups)},
                 {"VpcSubnetIds", json_strings(subnets)},
                 {"Auth", std::move(auth_entries)},
                 {"RoleArn", role_arn},
                 {"RequireTLS", require_tls},
                 {"IdleClientTimeout", idle_client_timeout},
                 {"DebugLogging", debug_logging},
                 {"CreatedDate", created},
                 {"UpdatedDate", updated},
                 {"Address", address},
                 {"MetricsPort", metrics_port},
                 {"TargetGroupArn", target_group.arn},
                 {"TargetCluster", target_group.target_cluster},
                 {"MaxConnectionsPercent", target_group.max_connections_percent},
                 {"MaxIdleConnectionsPercent", target_group.max_idle_connections_percent},
                 {"ConnectionBorrowTimeout", target_group.connection_borrow_timeout},
                 {"InitQuery", target_group.init_query}};
  if (!network_interface_id.empty()) o["NetworkInterfaceId"] = network_interface_id;
  append_extra(o, extra);
  return o;
}

ProxyEndpointRecord ProxyEndpointRecord::from_json(const json::object& o) {
  RecordReader r(o, "DB proxy endpoint");
  ProxyEndpointRecord e;
  e.name = r.text("DBProxyEndpointName");
  e.proxy_name = r.text("DBProxyName");
  e.region = r.text("Region");
  e.arn = r.text("DBProxyEndpointArn");
  e.status = r.text("Status");
  e.vpc_id = r.text("VpcId", "");
  e.security_groups = r.strings("VpcSecurityGroupIds", {});
  e.subnets = r.strings("VpcSubnetIds");
  e.target_role = r.text("TargetRole", "READ_WRITE");
  e.created = r.text("CreatedDate");
  e.address = r.text("Address");
  e.network_interface_id = r.text("NetworkInterfaceId", "");
  e.extra = r.rest();
  return e;
}

json::object ProxyEndpointRecord::to_json() const {
  json::object o{{"DBProxyEndpointName", name},
                 {"DBProxyName", proxy_name},
                 {"Region", region},
                 {"DBProxyEndpointArn", arn},
                 {"Status", status},
                 {"VpcId", vpc_id},
                 {"VpcSecurityGroupIds", json_strings(security_groups)},
                 {"VpcSubnetIds", json_strings(subnets)},
                 {"TargetRole", target_role},
                 {"CreatedDate", created},
                 {"Address", address}};
  if (!network_interface_id.empty()) o["NetworkInterfaceId"] = network_interface_id;
  append_extra(o, extra);
  return o;
}

// ---- RDS clusters and instances ----

ClusterRecord ClusterRecord::from_json(const json::object& o) {
  RecordReader r(o, "DB cluster");
  ClusterRecord c;
  c.id = r.text("DBClusterIdentifier");
  c.region = r.text("Region");
  c.arn = r.text("DBClusterArn");
  c.resource_id = r.text("DbClusterResourceId");
  c.engine = r.text("Engine");
  c.engine_version = r.text("EngineVersion");
  c.status = r.text("Status");
  c.master_username = r.text("MasterUsername");
  c.database_name = r.text("DatabaseName", "");
  c.port = r.whole("Port", 5432);
  c.min_capacity = r.decimal("MinCapacity");
  c.max_capacity = r.decimal("MaxCapacity");
  c.security_groups = r.strings("VpcSecurityGroupIds", {});
  c.subnet_group = r.text("DBSubnetGroup", "default");
  c.deletion_protection = r.flag("DeletionProtection", false);
  c.storage_encrypted = r.flag("StorageEncrypted", false);
  c.created = r.text("ClusterCreateTime");
  c.address = r.text("Address");
  c.writer_instance = r.text("WriterInstance", "");
  c.master_password = r.text("MasterPassword");
  c.network_interface_id = r.text("NetworkInterfaceId", "");
  c.extra = r.rest();
  return c;
}

json::object ClusterRecord::to_json() const {
  json::object o{{"DBClusterIdentifier", id},
                 {"Region", region},
                 {"DBClusterArn", arn},
                 {"DbClusterResourceId", resource_id},
                 {"Engine", engine},
                 {"EngineVersion", engine_version},
                 {"Status", status},
                 {"MasterUsername", master_username},
                 {"DatabaseName", database_name},
                 {"Port", port},
                 {"MinCapacity", min_capacity},
                 {"MaxCapacity", max_capacity},
                 {"VpcSecurityGroupIds", json_strings(security_groups)},
                 {"DBSubnetGroup", subnet_group},
                 {"DeletionProtection", deletion_protection},
                 {"StorageEncrypted", storage_encrypted},
                 {"ClusterCreateTime", created},
                 {"Address", address},
                 {"WriterInstance", writer_instance},
                 {"MasterPassword", master_password}};
  if (!network_interface_id.empty()) o["NetworkInterfaceId"] = network_interface_id;
  append_extra(o, extra);
  return o;
}

InstanceRecord InstanceRecord::from_json(const json::object& o) {
  RecordReader r(o, "DB instance");
  InstanceRecord i;
  i.id = r.text("DBInstanceIdentifier");
  i.region = r.text("Region");
  i.arn = r.text("DBInstanceArn");
  i.resource_id = r.text("DbiResourceId");
  i.instance_class = r.text("DBInstanceClass");
  i.engine = r.text("Engine");
  i.cluster_id = r.text("DBClusterIdentifier");
  i.status = r.text("DBInstanceStatus");
  i.created = r.text("InstanceCreateTime");
  i.max_connections = r.whole("MaxConnections", 189);
  i.database_created = r.flag("DatabaseCreated", false);
  i.extra = r.rest();
  return i;
}

json::object InstanceRecord::to_json() const {
  json::object o{{"DBInstanceIdentifier", id},
                 {"Region", region},
                 {"DBInstanceArn", arn},
                 {"DbiResourceId", resource_id},
                 {"DBInstanceClass", instance_class},
                 {"Engine", engine},
                 {"DBClusterIdentifier", cluster_id},
                 {"DBInstanceStatus", status},
                 {"InstanceCreateTime", created},
                 {"MaxConnections", max_connections},
                 {"DatabaseCreated", database_created}};
  append_extra(o, extra);
  return o;
}

// ---- EC2 ----

NetworkInterfaceRecord NetworkInterfaceRecord::from_json(const json::object& o) {
  RecordReader r(o, "network interface");
  NetworkInterfaceRecord eni;
  eni.id = r.text("NetworkInterfaceId");
  eni.subnet_id = r.text("SubnetId");
  eni.vpc_id = r.text("VpcId");
  eni.zone = r.text("AvailabilityZone", "");
  eni.ip = r.text("PrivateIpAddress");
  eni.description = r.text("Description", "");
  eni.groups = r.strings("Groups");
  eni.requester_managed = r.flag("RequesterManaged", false);
  eni.interface_type = r.text("InterfaceType", "interface");
  if (eni.interface_type.empty()) eni.interface_type = "interface";
  eni.owner_id = r.text("OwnerId", "");
  eni.extra = r.rest();
  return eni;
}

json::object NetworkInterfaceRecord::to_json() const {
  json::object o{{"NetworkInterfaceId", id},
                 {"SubnetId", subnet_id},
                 {"VpcId", vpc_id},
                 {"AvailabilityZone", zone},
                 {"PrivateIpAddress", ip},
                 {"Description", description},
                 {"Groups", json_strings(groups)},
                 {"RequesterManaged", requester_managed},
                 {"InterfaceType", interface_type},
                 {"OwnerId", owner_id}};
  append_extra(o, extra);
  return o;
}

// ---- EC2's resources ----

namespace {

std::vector<TagRecord> tags_from(RecordReader& r, const json::object& o, std::string_view kind) {
  std::vector<TagRecord> tags;
  if (!o.contains("Tags")) return tags;
  for (const auto& t : r.objects("Tags")) {
    RecordReader tag(t.as_object(), std::string(kind) + " tag");
    tags.push_back({tag.text("Key"), tag.text("Value", "")});
  }
  return tags;
}

json::array tags_json(const std::vector<TagRecord>& tags) {
  json::array out;
  for (const auto& t : tags) out.push_back(json::object{{"Key", t.key}, {"Value", t.value}});
  return out;
}

std::vector<SecurityGroupRuleRecord> rules_from(RecordReader& r, std::string_view side) {
  std::vector<SecurityGroupRuleRecord> rules;
  for (const auto& rule : r.objects(side))
    rules.push_back(SecurityGroupRuleRecord::from_json(rule.as_object()));
  return rules;
}

json::array rules_json(const std::vector<SecurityGroupRuleRecord>& rules) {
  json::array out;
  for (const auto& rule : rules) out.push_back(rule.to_json());
  return out;
}

}  // namespace

VpcRecord VpcRecord::from_json(const json::object& o) {
  RecordReader r(o, "VPC");
  VpcRecord v;
  v.id = r.text("VpcId");
  v.cidr_block = r.text("CidrBlock");
  v.state = r.text("State", "available");
  v.owner_id = r.text("OwnerId", "");
  v.dhcp_options_id = r.text("DhcpOptionsId", "dopt-00000000000000000");
  v.instance_tenancy = r.text("InstanceTenancy", "default");
  v.tags = tags_from(r, o, "VPC");
  v.extra = r.rest();
  return v;
}

json::object VpcRecord::to_json() const {
  json::object o{{"VpcId", id},
                 {"CidrBlock", cidr_block},
                 {"State", state},
                 {"OwnerId", owner_id},
                 {"DhcpOptionsId", dhcp_options_id},
                 {"InstanceTenancy", instance_tenancy},
                 {"Tags", tags_json(tags)}};
  append_extra(o, extra);
  return o;
}

SubnetRecord SubnetRecord::from_json(const json::object& o) {
  RecordReader r(o, "subnet");
  SubnetRecord s;
  s.id = r.text("SubnetId");
  s.vpc_id = r.text("VpcId");
  s.cidr_block = r.text("CidrBlock");
  s.zone = r.text("AvailabilityZone");
  s.zone_id = r.text("AvailabilityZoneId", "");
  s.available_addresses = r.whole("AvailableIpAddressCount", 0);
  s.owner_id = r.text("OwnerId", "");
  s.arn = r.text("SubnetArn", "");
  s.tags = tags_from(r, o, "subnet");
  s.extra = r.rest();
  return s;
}

json::object SubnetRecord::to_json() const {
  json::object o{{"SubnetId", id},
                 {"VpcId", vpc_id},
                 {"CidrBlock", cidr_block},
                 {"AvailabilityZone", zone},
                 {"AvailabilityZoneId", zone_id},
                 {"AvailableIpAddressCount", available_addresses},
                 {"OwnerId", owner_id},
                 {"SubnetArn", arn},
                 {"Tags", tags_json(tags)}};
  append_extra(o, extra);
  return o;
}

SecurityGroupRuleRecord SecurityGroupRuleRecord::from_json(const json::object& o) {
  RecordReader r(o, "security group rule");
  SecurityGroupRuleRecord rule;
  rule.id = r.text("SecurityGroupRuleId");
  rule.protocol = r.text("IpProtocol");
  rule.from_port = r.whole("FromPort");
  rule.to_port = r.whole("ToPort");
  rule.cidr = r.text("CidrIpv4", "");
  rule.referenced_group = r.text("ReferencedGroupId", "");
  rule.description = r.text("Description", "");
  rule.extra = r.rest();
  return rule;
}

json::object SecurityGroupRuleRecord::to_json() const {
  json::object o{{"SecurityGroupRuleId", id},
                 {"IpProtocol", protocol},
                 {"FromPort", from_port},
                 {"ToPort", to_port}};
  if (!cidr.empty()) o["CidrIpv4"] = cidr;
  if (!referenced_group.empty()) o["ReferencedGroupId"] = referenced_group;
  if (!description.empty()) o["Description"] = description;
  append_extra(o, extra);
  return o;
}

SecurityGroupRecord SecurityGroupRecord::from_json(const json::object& o) {
  RecordReader r(o, "security group");
  SecurityGroupRecord g;
  g.id = r.text("GroupId");
  g.name = r.text("GroupName");
  g.description = r.text("Description", "");
  g.vpc_id = r.text("VpcId");
  g.owner_id = r.text("OwnerId", "");
  g.ingress = rules_from(r, "Ingress");
  g.egress = rules_from(r, "Egress");
  g.tags = tags_from(r, o, "security group");
  g.extra = r.rest();
  return g;
}

json::object SecurityGroupRecord::to_json() const {
  json::object o{{"GroupId", id},
                 {"GroupName", name},
                 {"Description", description},
                 {"VpcId", vpc_id},
                 {"OwnerId", owner_id},
                 {"Ingress", rules_json(ingress)},
                 {"Egress", rules_json(egress)},
                 {"Tags", tags_json(tags)}};
  append_extra(o, extra);
  return o;
}

// ---- Lambda ----

FunctionVpcConfig FunctionVpcConfig::from_json(const json::object& o) {
  RecordReader r(o, "Lambda function VpcConfig");
  FunctionVpcConfig v;
  v.subnets = r.strings("SubnetIds");
  v.groups = r.strings("SecurityGroupIds");
  v.vpc_id = r.text("VpcId", "");
  v.ipv6_allowed_for_dual_stack = r.flag("Ipv6AllowedForDualStack", false);
  return v;
}

json::object FunctionVpcConfig::to_json() const {
  return {{"SubnetIds", json_strings(subnets)},
          {"SecurityGroupIds", json_strings(groups)},
          {"VpcId", vpc_id},
          {"Ipv6AllowedForDualStack", ipv6_allowed_for_dual_stack}};
}

std::vector<std::string> FunctionRecord::interface_ids() const {
  std::vector<std::string> out;
  if (interfaces)
    for (const auto& i : *interfaces) out.push_back(i.interface_id);
  return out;
}

FunctionRecord FunctionRecord::from_json(const json::object& o) {
  RecordReader r(o, "Lambda function");
  FunctionRecord f;
  f.name = r.text("FunctionName");
  f.arn = r.text("FunctionArn");
  f.runtime = r.text("Runtime");
  f.role = r.text("Role");
  f.handler = r.text("Handler");
  f.code_size = r.whole("CodeSize", 0);
  f.description = r.text("Description", "");
  f.timeout = r.whole("Timeout", 3);
  f.memory_size = r.whole("MemorySize", 128);
  f.last_modified = r.text("LastModified");
  f.code_sha256 = r.text("CodeSha256");
  f.version = r.text("Version", "$LATEST");
  f.vpc_config = FunctionVpcConfig::from_json(r.object("VpcConfig"));
  if (const auto* variables = r.object("Environment").if_contains("Variables"))
    f.variables = *variables;
  f.tracing_config = r.object("TracingConfig");
  f.revision_id = r.text("RevisionId");
  f.state = r.text("State", "Active");
  f.last_update_status = r.text("LastUpdateStatus", "Successful");
  f.package_type = r.text("PackageType", "Zip");
  f.architectures = r.array("Architectures");
  f.ephemeral_storage = r.object("EphemeralStorage");
  f.snap_start = r.object("SnapStart");
  {
    RecordReader logging(r.object("LoggingConfig"), "Lambda function LoggingConfig");
    f.log_format = logging.text("LogFormat", "Text");
    f.log_group = logging.text("LogGroup");
  }
  f.code_file = r.text("CodeFile", "");
  f.code_is_local = r.flag("CodeIsLocal", false);
  if (o.contains("NetworkInterfaces")) {
    f.interfaces.emplace();
    for (const auto& a : r.objects("NetworkInterfaces")) {
      RecordReader attached(a.as_object(), "Lambda function NetworkInterfaces");
      f.interfaces->push_back({attached.text("SubnetId"), attached.text("NetworkInterfaceId")});
    }
  }
  if (o.contains("ReservedConcurrentExecutions"))
    f.reserved_concurrency = r.whole("ReservedConcurrentExecutions");
  f.extra = r.rest();
  return f;
}

json::object FunctionRecord::to_json() const {
  json::object o{
      {"FunctionName", name},
      {"FunctionArn", arn},
      {"Runtime", runtime},
      {"Role", role},
      {"Handler", handler},
      {"CodeSize", code_size},
      {"Description", description},
      {"Timeout", timeout},
      {"MemorySize", memory_size},
      {"LastModified", last_modified},
      {"CodeSha256", code_sha256},
      {"Version", version},
      {"VpcConfig", vpc_config.to_json()},
      {"Environment", json::object{{"Variables", variables}}},
      {"TracingConfig", tracing_config},
      {"RevisionId", revision_id},
      {"State", state},
      {"LastUpdateStatus", last_update_status},
      {"PackageType", package_type},
      {"Architectures", architectures},
      {"EphemeralStorage", ephemeral_storage},
      {"SnapStart", snap_start},
      {"LoggingConfig", json::object{{"LogFormat", log_format}, {"LogGroup", log_group}}},
      {"CodeFile", code_file},
      {"CodeIsLocal", code_is_local}};
  if (interfaces) {
    json::array attached;
    for (const auto& i : *interfaces)
      attached.push_back(
          json::object{{"SubnetId", i.subnet_id}, {"NetworkInterfaceId", i.interface_id}});
    o["NetworkInterfaces"] = std::move(attached);
  }
  if (reserved_concurrency) o["ReservedConcurrentExecutions"] = *reserved_concurrency;
  append_extra(o, extra);
  return o;
}

json::object FunctionRecord::configuration() const {
  json::object out = to_json();
  for (const std::string_view own : kOwnKeys) out.erase(own);
  return out;
}

}  // namespace sluice::cloud
