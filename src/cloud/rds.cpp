#include "cloud/rds.hpp"

#include "cloud/cluster_endpoints.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cmath>
#include <filesystem>

#include "auth/crypto.hpp"
#include "cloud/ids.hpp"
#include "cloud/json_fields.hpp"
#include "cloud/rds_proxy.hpp"

namespace sluice::cloud {
namespace json = boost::json;
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kRegion = "rds-region";
constexpr std::string_view kEngine = "aurora-postgresql";
constexpr std::string_view kEngineVersion = "15.4";

// RDS identifiers: a letter first, then letters, digits and single hyphens, at most 63, not
// ending in a hyphen. RDS keeps them in lower case.
std::string identifier(const QueryParams& params, const std::string& name) {
  return rds_identifier(params.get(name).value_or(""), name);
}

// "arn:aws:rds:us-east-1:123:cluster:name" or "name" → "name".
std::string id_from(const std::string& id_or_arn) {
  std::string id =
      id_or_arn.starts_with("arn:") ? id_or_arn.substr(id_or_arn.rfind(':') + 1) : id_or_arn;
  return lower_case(id);
}

std::string capacity_text(double acus) {
  return fmt::format("{:.1f}", acus);
}

void security_groups_xml(Xml& xml, const std::vector<std::string>& groups) {
  xml.open("VpcSecurityGroups");
  for (const auto& group : groups)
    xml.open("VpcSecurityGroupMembership")
        .leaf("VpcSecurityGroupId", group)
        .leaf("Status", "active")
        .close("VpcSecurityGroupMembership");
  xml.close("VpcSecurityGroups");
}

std::string master_username(const QueryParams& params) {
  const std::string user = params.get("MasterUsername").value_or("");
  if (user.empty())
    throw ApiError("InvalidParameterValue",
                   "The parameter MasterUsername must be provided and must not be blank.");
  bool user_ok = user.size() <= 63 && std::isalpha(static_cast<unsigned char>(user[0]));
  for (char c : user)
    user_ok = user_ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (!user_ok || user == "postgres" || user == "rdsadmin")
    throw ApiError("InvalidParameterValue",
                   "MasterUsername " + user +
                       " cannot be used: it must start with a letter, contain only letters, "
                       "digits and underscores, and not be a reserved word.");
  return user;
}

std::string master_password(const QueryParams& params) {
  if (params.boolean("ManageMasterUserPassword").value_or(false))
    throw ApiError("InvalidParameterCombination",
                   "sluice does not manage master passwords in Secrets Manager yet; pass "
                   "MasterUserPassword.");
  const std::string password = params.get("MasterUserPassword").value_or("");
  if (password.size() < 8 || password.size() > 128)
    throw ApiError("InvalidParameterValue",
                   "The parameter MasterUserPassword is not a valid password because it is " +
                       std::string(password.empty() ? "missing" : "not 8 to 128 characters long") +
                       ".");
  for (char c : password)
    if (c == '/' || c == '"' || c == '@' || c == ' ' || static_cast<unsigned char>(c) < 0x21)
      throw ApiError("InvalidParameterValue",
                     "The parameter MasterUserPassword is not a valid password. Only printable "
                     "ASCII characters besides '/', '@', '\"', ' ' may be used.");
  return password;
}

std::string database_name(const QueryParams& params) {
  const std::string database = params.get("DatabaseName").value_or("");
  if (database.empty()) return database;
  bool ok = database.size() <= 63 && std::isalpha(static_cast<unsigned char>(database[0]));
  for (char c : database) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (!ok)
    throw ApiError("InvalidParameterValue",
                   "The parameter DatabaseName must begin with a letter and contain only "
                   "letters, digits and underscores (at most 63).");
  return database;
}

void check_capacity(double acus, const std::string& name) {
  if (std::fmod(acus * 2, 1.0) != 0)
    throw ApiError(
        "InvalidParameterValue",
        "The " + name + " must be a multiple of 0.5 ACUs, not " + capacity_text(acus) + ".");
}

}  // namespace

Rds::Rds(RdsEnvironment env) : env_(std::move(env)) {
  proxies_ = std::make_unique<RdsProxies>(env_, *this);
  cluster_endpoints_ = std::make_unique<ClusterEndpoints>(env_);
}

Rds::~Rds() = default;

PostgresEngine& Rds::engine() {
  if (!engine_) {
    try {
      engine_ = std::make_unique<PostgresEngine>(env_.postgres_bin);
    } catch (const std::exception& e) {
      throw ApiError("InsufficientDBInstanceCapacity", e.what());
    }
    // PostgreSQL runs as its own user, which must be able to reach its folders under ours.
    if (!engine_->run_as().empty()) {
      ::chmod(env_.home.c_str(), 0711);
      fs::create_directories(env_.home + "/rds");
      ::chmod((env_.home + "/rds").c_str(), 0711);
    }
  }
  return *engine_;
}

ClusterFiles Rds::files_of(const std::string& cluster_id) const {
  return {env_.home + "/rds/" + cluster_id};
}

RdsNames Rds::names(std::string_view region) {
  const std::string key(region);
  std::string id;
  if (auto doc = env_.store.get(kRegion, key)) {
    const json::value parsed = json::parse(*doc);
    id = text(parsed.as_object(), "Id");
  }
  if (id.empty()) {
    id = random_chars("abcdefghijklmnopqrstuvwxyz0123456789", 12);
    env_.store.put(kRegion, key, json::serialize(json::object{{"Id", id}}));
  }
  return {key, id, env_.domain};
}

std::string Rds::ca_bundle() {
  if (!ca_) {
    fs::create_directories(env_.home + "/ca");
    ca_ = std::make_unique<LocalCertificateAuthority>(
        LocalCertificateAuthority::load_or_create(env_.home + "/ca"));
  }
  return ca_->bundle_pem();
}

void Rds::pin_region_id(std::string_view region, const std::string& id) {
  bool ok = id.size() == 12;
  for (char c : id)
    ok = ok && (std::islower(static_cast<unsigned char>(c)) ||
                std::isdigit(static_cast<unsigned char>(c)));
  if (!ok)
    throw ApiError("InvalidParameterValue",
                   "SluiceRegionId must be 12 lower-case letters or digits, as RDS's are.");
  if (auto doc = env_.store.get(kRegion, std::string(region))) {
    const json::value parsed = json::parse(*doc);
    const std::string current = text(parsed.as_object(), "Id");
    if (current == id) return;
    if (!env_.store.list(kCluster).empty() || !proxies_->addresses_in_use().empty())
      throw ApiError("InvalidParameterCombination",
                     "The region's endpoint identifier is " + current +
                         " and endpoints use it already; SluiceRegionId " + id +
                         " can only be set in an empty region.");
  }
  env_.store.put(kRegion, std::string(region), json::serialize(json::object{{"Id", id}}));
}

std::pair<std::string, std::string> Rds::certificate(std::string_view region) {
  ca_bundle();  // the CA first
  return ca_->server_certificate("rds-" + std::string(region), names(region).certificate_names(),
                                 {});
}

void Rds::save(const ClusterRecord& c) {
  env_.store.put(kCluster, c.id, serialize_record(c));
}

void Rds::save(const InstanceRecord& i) {
  env_.store.put(kInstance, i.id, serialize_record(i));
}

std::optional<ClusterRecord> Rds::find_cluster(const std::string& id) {
  auto doc = env_.store.get(kCluster, id);
  if (!doc) return std::nullopt;
  return parse_record<ClusterRecord>(*doc);
}

std::optional<InstanceRecord> Rds::find_instance(const std::string& id) {
  auto doc = env_.store.get(kInstance, id);
  if (!doc) return std::nullopt;
  return parse_record<InstanceRecord>(*doc);
}

std::vector<ClusterRecord> Rds::clusters() {
  std::vector<ClusterRecord> out;
  for (const auto& [id, doc] : env_.store.list(kCluster))
    out.push_back(parse_record<ClusterRecord>(doc));
  return out;
}

ClusterRecord Rds::cluster(const std::string& id_or_arn) {
  const std::string id = id_from(id_or_arn);
  auto found = find_cluster(id);
  if (!found) throw ApiError("DBClusterNotFoundFault", "DBCluster " + id + " not found.", 404);
  return std::move(*found);
}

InstanceRecord Rds::instance(const std::string& id_or_arn) {
  const std::string id = id_from(id_or_arn);
  auto found = find_instance(id);
  if (!found) throw ApiError("DBInstanceNotFound", "DBInstance " + id + " not found.", 404);
  return std::move(*found);
}

bool Rds::cluster_exists(const std::string& id) {
  return env_.store.get(kCluster, id_from(id)).has_value();
}
bool Rds::instance_exists(const std::string& id) {
  return env_.store.get(kInstance, id_from(id)).has_value();
}

std::string Rds::cluster_of_instance(const std::string& instance_id) {
  const auto i = find_instance(id_from(instance_id));
  return i ? i->cluster_id : "";
}

std::set<std::string> Rds::addresses_in_use() {
  std::set<std::string> out;
  for (const auto& c : clusters()) out.insert(c.address);
  for (const auto& address : proxies_->addresses_in_use()) out.insert(address);
  return out;
}

std::optional<ClusterWriter> Rds::writer(const std::string& cluster_id) {
  const auto c = find_cluster(id_from(cluster_id));
  if (!c) return std::nullopt;
  ClusterWriter w;
  w.cluster_id = c->id;
  w.address = c->address;
  w.port = static_cast<int>(c->port);
  if (const auto i = find_instance(c->writer_instance)) {
    w.instance_id = i->id;
    w.instance_arn = i->arn;
    w.resource_id = i->resource_id;
    w.endpoint = names(i->region).instance(i->id);
    w.available = i->status == "available";
  }
  return w;
}

std::string Rds::handle(std::string_view action, const QueryParams& params,
                        std::string_view region) {
  if (action == "CreateDBCluster") return create_cluster(params, region);
  if (action == "ModifyDBCluster") return modify_cluster(params);
  if (action == "DeleteDBCluster") return delete_cluster(params);
  if (action == "DescribeDBClusters") return describe_clusters(params);
  if (action == "CreateDBInstance") return create_instance(params, region);
  if (action == "DeleteDBInstance") return delete_instance(params);
  if (action == "RebootDBInstance") return reboot_instance(params);
  if (action == "DescribeDBInstances") return describe_instances(params);
  if (auto result = proxies_->handle(action, params, region)) return *result;
  throw ApiError("InvalidAction", "sluice's RDS does not support " + std::string(action) + ".");
}

// ---- clusters ----

std::string Rds::create_cluster(const QueryParams& params, std::string_view region) {
  const std::string id = identifier(params, "DBClusterIdentifier");
  const std::string engine_name = params.required("Engine");
  if (engine_name != kEngine)
    throw ApiError("InvalidParameterValue",
                   "Invalid DB engine: " + engine_name +
                       ". sluice runs Aurora PostgreSQL clusters (engine aurora-postgresql).");
  const std::string user = master_username(params);
  const std::string password = master_password(params);
  const int port = static_cast<int>(params.integer("Port", 1150, 65535).value_or(5432));
  const std::string database = database_name(params);
  const double min_acus =
      params.number("ServerlessV2ScalingConfiguration.MinCapacity", 0, 256).value_or(0.5);
  const double max_acus =
      params.number("ServerlessV2ScalingConfiguration.MaxCapacity", 1, 256).value_or(16);
  check_capacity(min_acus, "MinCapacity");
  check_capacity(max_acus, "MaxCapacity");
  if (min_acus > max_acus)
    throw ApiError("InvalidParameterValue", "The MinCapacity (" + capacity_text(min_acus) +
                                                ") must not be greater than the MaxCapacity (" +
                                                capacity_text(max_acus) + ").");
  const auto groups = params.list("VpcSecurityGroupIds", "VpcSecurityGroupId");
  for (const auto& group : groups)
    if (!env_.ec2.group_in_vpc(group, ""))
      throw ApiError("InvalidParameterValue",
                     "Invalid security group: groupId " + group + " does not exist.");
  if (env_.store.get(kCluster, id))
    throw ApiError("DBClusterAlreadyExistsFault", "DB Cluster already exists");
  // `sluice apply` may pin the region's endpoint identifier (SluiceRegionId, never sent by the
  // SDKs), e.g. the guide's "cczg0cscuj55"; only before it is in use.
  if (auto pinned = params.get("SluiceRegionId")) pin_region_id(region, *pinned);

  const std::string region_name(region);
  ClusterRecord c;
  c.id = id;
  c.region = region_name;
  c.arn = "arn:aws:rds:" + region_name + ":" + env_.account_id + ":cluster:" + id;
  c.resource_id = "cluster-" + random_chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 26);
  c.engine = std::string(kEngine);
  c.engine_version = params.get("EngineVersion").value_or(std::string(kEngineVersion));
  c.status = "creating";
  c.master_username = user;
  c.database_name = database;
  c.port = port;
  c.min_capacity = min_acus;
  c.max_capacity = max_acus;
  c.security_groups = groups;
  c.subnet_group = params.get("DBSubnetGroupName").value_or("default");
  c.deletion_protection = params.boolean("DeletionProtection").value_or(false);
  c.storage_encrypted = params.boolean("StorageEncrypted").value_or(false);
  c.created = iso8601_now();
  c.address = env_.network.allocate_address(addresses_in_use(), port);
  engine();  // refuse now, not later, when PostgreSQL is not installed
  c.master_password = auth::base64_encode(env_.key.seal(password, c.arn));
  if (!env_.store.insert(kCluster, id, serialize_record(c)))
    throw ApiError("DBClusterAlreadyExistsFault", "DB Cluster already exists");
  spdlog::info("DB cluster {} created", id);
  return "<DBCluster>" + cluster_xml(c) + "</DBCluster>";
}

std::string Rds::modify_cluster(const QueryParams& params) {
  ClusterRecord c = cluster(params.required("DBClusterIdentifier"));
  auto min_acus = params.number("ServerlessV2ScalingConfiguration.MinCapacity", 0, 256);
  auto max_acus = params.number("ServerlessV2ScalingConfiguration.MaxCapacity", 1, 256);
  const double new_min = min_acus.value_or(c.min_capacity);
  const double new_max = max_acus.value_or(c.max_capacity);
  check_capacity(new_min, "MinCapacity");
  check_capacity(new_max, "MaxCapacity");
  if (new_min > new_max)
    throw ApiError("InvalidParameterValue",
                   "The MinCapacity must not be greater than the MaxCapacity.");
  const auto groups = params.list("VpcSecurityGroupIds", "VpcSecurityGroupId");
  for (const auto& group : groups)
    if (!env_.ec2.group_in_vpc(group, ""))
      throw ApiError("InvalidParameterValue",
                     "Invalid security group: groupId " + group + " does not exist.");
  if (params.get("NewDBClusterIdentifier"))
    throw ApiError("InvalidParameterCombination", "sluice does not rename DB clusters.");
  if (params.get("MasterUserPassword"))
    throw ApiError("InvalidParameterCombination",
                   "sluice does not change master passwords yet; use ALTER ROLE.");
  // max_connections follows MaxCapacity at the next reboot, as in Aurora.
  c.min_capacity = new_min;
  c.max_capacity = new_max;
  if (!groups.empty()) c.security_groups = groups;
  if (auto protection = params.boolean("DeletionProtection")) c.deletion_protection = *protection;
  save(c);
  return "<DBCluster>" + cluster_xml(c) + "</DBCluster>";
}

std::string Rds::delete_cluster(const QueryParams& params) {
  ClusterRecord c = cluster(params.required("DBClusterIdentifier"));
  const std::string id = c.id;
  if (c.deletion_protection)
    throw ApiError("InvalidParameterCombination",
                   "Cannot delete protected Cluster, please disable deletion protection and try "
                   "again.");
  if (!c.writer_instance.empty())
    throw ApiError("InvalidDBClusterStateFault",
                   "Cluster cannot be deleted, it still contains DB instances in non-deleting "
                   "state.");
  if (!params.boolean("SkipFinalSnapshot").value_or(false))
    throw ApiError(
        "InvalidParameterCombination",
        "sluice does not take snapshots: pass SkipFinalSnapshot (--skip-final-snapshot).");
  if (proxies_->cluster_registered(id))
    throw ApiError(
        "InvalidDBClusterStateFault",
        "Cluster " + id + " is registered as a target of a DB proxy; deregister it first.");
  env_.supervisor.stop("initdb:" + id);
  cluster_endpoints_->remove(c);
  std::error_code ec;
  fs::remove_all(files_of(id).dir, ec);
  env_.store.remove(kCluster, id);
  c.status = "deleting";
  spdlog::info("DB cluster {} deleted", id);
  publish_names();
  return "<DBCluster>" + cluster_xml(c) + "</DBCluster>";
}

std::string Rds::describe_clusters(const QueryParams& params) {
  std::string members;
  if (auto id = params.get("DBClusterIdentifier")) {
    members = "<DBCluster>" + cluster_xml(cluster(*id)) + "</DBCluster>";
  } else {
    for (const auto& c : clusters()) members += "<DBCluster>" + cluster_xml(c) + "</DBCluster>";
  }
  return "<DBClusters>" + members + "</DBClusters>";
}

std::string Rds::cluster_xml(const ClusterRecord& c) {
  const RdsNames n = names(c.region);
  Xml xml;
  xml.leaf("AllocatedStorage", "1")
      .open("AvailabilityZones")
      .leaf("AvailabilityZone", c.region + "a")
      .close("AvailabilityZones")
      .leaf("BackupRetentionPeriod", "1");
  if (!c.database_name.empty()) xml.leaf("DatabaseName", c.database_name);
  xml.leaf("DBClusterIdentifier", c.id)
      .leaf("DBClusterParameterGroup", "default.aurora-postgresql15")
      .leaf("DBSubnetGroup", c.subnet_group)
      .leaf("Status", c.status)
      .leaf("Endpoint", n.cluster(c.id))
      .leaf("ReaderEndpoint", n.cluster_reader(c.id))
      .leaf("MultiAZ", "false")
      .leaf("Engine", c.engine)
      .leaf("EngineVersion", c.engine_version)
      .leaf("Port", std::to_string(c.port))
      .leaf("MasterUsername", c.master_username)
      .open("DBClusterMembers");
  if (!c.writer_instance.empty())
    xml.open("DBClusterMember")
        .leaf("DBInstanceIdentifier", c.writer_instance)
        .leaf("IsClusterWriter", "true")
        .leaf("DBClusterParameterGroupStatus", "in-sync")
        .leaf("PromotionTier", "1")
        .close("DBClusterMember");
  xml.close("DBClusterMembers");
  security_groups_xml(xml, c.security_groups);
  xml.leaf("HostedZoneId", "Z2R2ITUGPM61AM")
      .leaf("StorageEncrypted", c.storage_encrypted ? "true" : "false")
      .leaf("DbClusterResourceId", c.resource_id)
      .leaf("DBClusterArn", c.arn)
      .leaf("IAMDatabaseAuthenticationEnabled", "false")
      .leaf("ClusterCreateTime", c.created)
      .leaf("EngineMode", "provisioned")
      .leaf("DeletionProtection", c.deletion_protection ? "true" : "false")
      .leaf("HttpEndpointEnabled", "false")
      .leaf("CopyTagsToSnapshot", "false")
      .leaf("CrossAccountClone", "false")
      .leaf("NetworkType", "IPV4")
      .open("ServerlessV2ScalingConfiguration")
      .leaf("MinCapacity", capacity_text(c.min_capacity))
      .leaf("MaxCapacity", capacity_text(c.max_capacity))
      .close("ServerlessV2ScalingConfiguration");
  return xml.str();
}

// ---- instances ----

std::string Rds::create_instance(const QueryParams& params, std::string_view region) {
  const std::string id = identifier(params, "DBInstanceIdentifier");
  const std::string instance_class = params.required("DBInstanceClass");
  if (!instance_class.starts_with("db."))
    throw ApiError("InvalidParameterValue", "Invalid DB Instance class: " + instance_class);
  const std::string engine_name = params.required("Engine");
  const std::string cluster_id = params.get("DBClusterIdentifier").value_or("");
  if (cluster_id.empty())
    throw ApiError("InvalidParameterCombination",
                   "sluice runs DB instances inside an Aurora DB cluster: pass "
                   "DBClusterIdentifier (create the cluster with CreateDBCluster first).");
  ClusterRecord c = cluster(cluster_id);
  if (engine_name != c.engine)
    throw ApiError("InvalidParameterCombination",
                   "The engine name requested for your DB instance (" + engine_name +
                       ") doesn't match the engine name of your DB cluster (" + c.engine + ").");
  if (env_.store.get(kInstance, id))
    throw ApiError("DBInstanceAlreadyExists", "DB instance already exists");
  if (!c.writer_instance.empty())
    throw ApiError("InvalidParameterCombination",
                   "DB cluster " + c.id + " already has its writer (" + c.writer_instance +
                       "); sluice runs one instance per cluster.");
  if (c.status == "deleting")
    throw ApiError("InvalidDBClusterStateFault", "DB cluster is being deleted.");
  const std::string region_name(region);
  InstanceRecord i;
  i.id = id;
  i.region = region_name;
  i.arn = "arn:aws:rds:" + region_name + ":" + env_.account_id + ":db:" + id;
  i.resource_id = "db-" + random_chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 26);
  i.instance_class = instance_class;
  i.engine = engine_name;
  i.cluster_id = c.id;
  i.status = "creating";
  i.created = iso8601_now();
  i.max_connections = aurora_max_connections(c.max_capacity);
  i.database_created = c.database_name.empty();
  if (!env_.store.insert(kInstance, id, serialize_record(i)))
    throw ApiError("DBInstanceAlreadyExists", "DB instance already exists");
  c.writer_instance = id;
  save(c);
  spdlog::info("DB instance {} created in cluster {}", id, c.id);
  return "<DBInstance>" + instance_xml(i) + "</DBInstance>";
}

std::string Rds::delete_instance(const QueryParams& params) {
  InstanceRecord i = instance(params.required("DBInstanceIdentifier"));
  const std::string id = i.id;
  const std::string cluster_id = i.cluster_id;
  env_.supervisor.stop("postgres:" + cluster_id);
  env_.supervisor.stop("createdb:" + cluster_id);
  if (auto c = find_cluster(cluster_id)) {
    c->writer_instance = "";
    save(*c);
  }
  env_.store.remove(kInstance, id);
  i.status = "deleting";
  spdlog::info("DB instance {} deleted", id);
  publish_names();
  return "<DBInstance>" + instance_xml(i) + "</DBInstance>";
}

std::string Rds::reboot_instance(const QueryParams& params) {
  InstanceRecord i = instance(params.required("DBInstanceIdentifier"));
  if (i.status != "available")
    throw ApiError("InvalidDBInstanceState", "DB instance is not in available state.");
  env_.supervisor.stop("postgres:" + i.cluster_id);
  // A reboot takes the cluster's current capacity, as Aurora does.
  const ClusterRecord c = cluster(i.cluster_id);
  i.max_connections = aurora_max_connections(c.max_capacity);
  i.status = "rebooting";
  save(i);
  return "<DBInstance>" + instance_xml(i) + "</DBInstance>";
}

std::string Rds::describe_instances(const QueryParams& params) {
  std::string members;
  if (auto id = params.get("DBInstanceIdentifier")) {
    members = "<DBInstance>" + instance_xml(instance(*id)) + "</DBInstance>";
  } else {
    for (const auto& [id, doc] : env_.store.list(kInstance))
      members += "<DBInstance>" + instance_xml(parse_record<InstanceRecord>(doc)) + "</DBInstance>";
  }
  return "<DBInstances>" + members + "</DBInstances>";
}

std::string Rds::instance_xml(const InstanceRecord& i) {
  // The cluster's settings; none once it is gone.
  const ClusterRecord c = find_cluster(i.cluster_id).value_or(ClusterRecord{});
  Xml xml;
  xml.leaf("DBInstanceIdentifier", i.id)
      .leaf("DBInstanceClass", i.instance_class)
      .leaf("Engine", i.engine)
      .leaf("DBInstanceStatus", i.status)
      .leaf("MasterUsername", c.master_username);
  if (!c.database_name.empty()) xml.leaf("DBName", c.database_name);
  if (i.status != "creating")
    xml.open("Endpoint")
        .leaf("Address", names(i.region).instance(i.id))
        .leaf("Port", std::to_string(c.port))
        .leaf("HostedZoneId", "Z2R2ITUGPM61AM")
        .close("Endpoint");
  xml.leaf("AllocatedStorage", "1")
      .leaf("InstanceCreateTime", i.created)
      .leaf("BackupRetentionPeriod", "1");
  security_groups_xml(xml, c.security_groups);
  xml.leaf("AvailabilityZone", i.region + "a")
      .leaf("MultiAZ", "false")
      .leaf("EngineVersion", c.engine_version)
      .leaf("AutoMinorVersionUpgrade", "true")
      .leaf("LicenseModel", "postgresql-license")
      .leaf("PubliclyAccessible", "false")
      .leaf("StorageType", "aurora")
      .leaf("DbInstancePort", "0")
      .leaf("DBClusterIdentifier", i.cluster_id)
      .leaf("StorageEncrypted", c.storage_encrypted ? "true" : "false")
      .leaf("DbiResourceId", i.resource_id)
      .leaf("CACertificateIdentifier", "sluice-local-ca")
      .leaf("PromotionTier", "1")
      .leaf("DBInstanceArn", i.arn)
      .leaf("IAMDatabaseAuthenticationEnabled", "false")
      .leaf("DeletionProtection", "false")
      .leaf("NetworkType", "IPV4");
  return xml.str();
}

}  // namespace sluice::cloud
