#include "cli/apply.hpp"

#include <toml++/toml.h>
#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "cli/api_client.hpp"

namespace sluice::cli {
namespace json = boost::json;
namespace {

constexpr const char* kEc2Version = "2016-11-15";
constexpr const char* kIamVersion = "2010-05-08";
constexpr const char* kRdsVersion = "2014-10-31";

// A bad stack file: `key` is the dotted path at fault.
struct StackError : std::runtime_error {
  StackError(const std::string& key, const std::string& why)
      : std::runtime_error(key + ": " + why) {}
};

std::string str(const toml::table& t, const std::string& key, const std::string& where,
                std::optional<std::string> fallback = std::nullopt) {
  if (auto v = t[key].value<std::string>()) return *v;
  if (t.contains(key)) throw StackError(where + key, "must be a string");
  if (fallback) return *fallback;
  throw StackError(where + key, "is required");
}

std::vector<std::string> strings(const toml::table& t, const std::string& key,
                                 const std::string& where) {
  std::vector<std::string> out;
  const toml::node* node = t.get(key);
  if (!node) return out;
  const toml::array* array = node->as_array();
  if (!array) throw StackError(where + key, "must be an array of strings");
  for (const auto& item : *array) {
    auto v = item.value<std::string>();
    if (!v) throw StackError(where + key, "must be an array of strings");
    out.push_back(*v);
  }
  return out;
}

std::vector<const toml::table*> tables(const toml::table& root, const std::string& key) {
  std::vector<const toml::table*> out;
  const toml::node* node = root.get(key);
  if (!node) return out;
  if (const toml::table* single = node->as_table()) return {single};
  const toml::array* array = node->as_array();
  if (!array) throw StackError(key, "must be a table or an array of tables");
  for (const auto& item : *array) {
    if (!item.as_table()) throw StackError(key, "entries must be tables");
    out.push_back(item.as_table());
  }
  return out;
}

json::value to_json(const toml::node& node) {
  if (auto t = node.as_table()) {
    json::object o;
    for (const auto& [k, v] : *t) o[std::string(k.str())] = to_json(v);
    return o;
  }
  if (auto a = node.as_array()) {
    json::array out;
    for (const auto& v : *a) out.push_back(to_json(v));
    return out;
  }
  if (auto v = node.value<std::string>()) return json::value(*v);
  if (node.is_integer()) return json::value(*node.value<int64_t>());
  if (node.is_floating_point()) return json::value(*node.value<double>());
  if (auto v = node.value<bool>()) return json::value(*v);
  return nullptr;
}

bool exists_already(const std::string& code) {
  return code.ends_with(".Duplicate") || code == "EntityAlreadyExists" ||
         code == "ResourceExistsException" || code == "ResourceConflictException" ||
         code.ends_with("AlreadyExistsFault") || code == "DBInstanceAlreadyExists";
}

class Applier {
 public:
  Applier(ApiClient& api, std::filesystem::path base) : api_(api), base_(std::move(base)) {}

  void run(const toml::table& root);

 private:
  // Reports one resource; throws on an error other than "it exists".
  bool report(const std::string& what, const std::string& id, const ApiResult& result) {
    if (dry_) return true;
    if (result.ok()) {
      std::printf("created  %-16s %s\n", what.c_str(), id.c_str());
      return true;
    }
    if (exists_already(result.error_code)) {
      std::printf("exists   %-16s %s\n", what.c_str(), id.c_str());
      return false;
    }
    throw std::runtime_error(what + " " + id + ": " + result.error_code + ": " +
                             result.error_message);
  }
  std::string ec2_id(const std::string& name) const {  // "self" and names of the stack's groups
    auto it = group_ids_.find(name);
    return it == group_ids_.end() ? name : it->second;
  }

  void vpc(const toml::table& t);
  void subnet(const toml::table& t, size_t n);
  void security_group(const toml::table& t, size_t n);
  void role(const toml::table& t, size_t n);
  void secret(const toml::table& t, size_t n);
  void cluster(const toml::table& t, size_t n);
  void function(const toml::table& t, size_t n);

  // A first pass checks the whole file without calling the API, so a mistake late in the file
  // leaves nothing half-created.
  ApiResult call_query(const std::string& service, const std::string& version,
                       const std::string& action, const FormParams& params) {
    return dry_ ? ApiResult{200, "", "", "", {}} : api_.query(service, version, action, params);
  }
  ApiResult call_json(const std::string& service, const std::string& prefix,
                      const std::string& operation, const std::string& body) {
    return dry_ ? ApiResult{200, "", "", "", {}} : api_.json_1_1(service, prefix, operation, body);
  }
  ApiResult call_rest(const std::string& service, const std::string& method,
                      const std::string& path, const std::string& body) {
    return dry_ ? ApiResult{200, "", "", "", {}} : api_.rest_json(service, method, path, body);
  }
  // The ID a create call returned (or, checking, a stand-in).
  std::string created_id(const ApiResult& r, const std::string& tag, const std::string& pinned) {
    if (!r.ok()) return pinned;
    if (dry_) return pinned.empty() ? "(" + tag + ")" : pinned;
    return xml_find(r.body, tag);
  }

 public:
  bool dry_ = false;

 private:
  ApiClient& api_;
  std::filesystem::path base_;
  std::string account_id_;
  std::string rds_region_id_;
  std::string vpc_id_;
  std::map<std::string, std::string> group_ids_;      // stack name -> ID
  std::map<std::string, std::string> role_arns_;      // role name -> ARN
  std::map<std::string, std::string> secret_values_;  // secret name -> SecretString
};

void Applier::run(const toml::table& root) {
  const ApiResult info = api_.get("/sluice/info");
  if (!info.ok())
    throw std::runtime_error("the API did not answer /sluice/info: " + info.error_code);
  const json::value parsed = json::parse(info.body);
  account_id_ = std::string(parsed.at("AccountId").as_string());
  if (auto wanted = root["account_id"].value<std::string>(); wanted && *wanted != account_id_)
    throw std::runtime_error("the stack is for account " + *wanted +
                             " but sluice serve runs account " + account_id_ +
                             ": start it with --account-id " + *wanted);
  rds_region_id_ = root["rds_region_id"].value_or(std::string());
  for (const auto* t : tables(root, "vpc")) vpc(*t);
  size_t n = 0;
  for (const auto* t : tables(root, "subnet")) subnet(*t, n++);
  n = 0;
  for (const auto* t : tables(root, "security_group")) security_group(*t, n++);
  n = 0;
  for (const auto* t : tables(root, "role")) role(*t, n++);
  n = 0;
  for (const auto* t : tables(root, "secret")) secret(*t, n++);
  n = 0;
  for (const auto* t : tables(root, "cluster")) cluster(*t, n++);
  n = 0;
  for (const auto* t : tables(root, "function")) function(*t, n++);
}

void Applier::vpc(const toml::table& t) {
  FormParams params{{"CidrBlock", str(t, "cidr_block", "vpc.")}};
  const std::string pinned = str(t, "id", "vpc.", "");
  if (!pinned.empty()) params.emplace_back("SluiceId", pinned);
  const ApiResult r = call_query("ec2", kEc2Version, "CreateVpc", params);
  vpc_id_ = created_id(r, "vpcId", pinned);
  report("vpc", vpc_id_.empty() ? "(unpinned)" : vpc_id_, r);
  if (vpc_id_.empty()) throw std::runtime_error("vpc: no ID came back");
}

void Applier::subnet(const toml::table& t, size_t n) {
  const std::string where = "subnet[" + std::to_string(n) + "].";
  if (vpc_id_.empty()) throw StackError(where, "a subnet needs the stack's [vpc]");
  FormParams params{{"VpcId", vpc_id_}, {"CidrBlock", str(t, "cidr_block", where)}};
  if (auto zone = t["availability_zone"].value<std::string>())
    params.emplace_back("AvailabilityZone", *zone);
  const std::string pinned = str(t, "id", where, "");
  if (!pinned.empty()) params.emplace_back("SluiceId", pinned);
  const ApiResult r = call_query("ec2", kEc2Version, "CreateSubnet", params);
  report("subnet", created_id(r, "subnetId", pinned), r);
}

void Applier::security_group(const toml::table& t, size_t n) {
  const std::string where = "security_group[" + std::to_string(n) + "].";
  if (vpc_id_.empty()) throw StackError(where, "a security group needs the stack's [vpc]");
  const std::string name = str(t, "name", where);
  FormParams params{{"GroupName", name},
                    {"GroupDescription", str(t, "description", where, name)},
                    {"VpcId", vpc_id_}};
  const std::string pinned = str(t, "id", where, "");
  if (!pinned.empty()) params.emplace_back("SluiceId", pinned);
  const ApiResult r = call_query("ec2", kEc2Version, "CreateSecurityGroup", params);
  const std::string id = created_id(r, "groupId", pinned);
  report("security-group", id, r);
  if (id.empty())
    throw StackError(where + "id", "pin the ID so that applying again finds the group");
  group_ids_[name] = id;
  size_t k = 0;
  for (const auto* rule : tables(t, "ingress")) {
    const std::string rw = where + "ingress[" + std::to_string(k++) + "].";
    const int64_t port = (*rule)["port"].value<int64_t>().value_or(-1);
    FormParams p{{"GroupId", id},
                 {"IpPermissions.1.IpProtocol", str(*rule, "protocol", rw, "tcp")},
                 {"IpPermissions.1.FromPort", std::to_string(port)},
                 {"IpPermissions.1.ToPort", std::to_string(port)}};
    if (auto source = (*rule)["source_group"].value<std::string>())
      p.emplace_back("IpPermissions.1.Groups.1.GroupId", *source == "self" ? id : ec2_id(*source));
    else
      p.emplace_back("IpPermissions.1.IpRanges.1.CidrIp", str(*rule, "cidr", rw));
    report("ingress-rule", id + " " + std::to_string(port),
           call_query("ec2", kEc2Version, "AuthorizeSecurityGroupIngress", p));
  }
}

void Applier::role(const toml::table& t, size_t n) {
  const std::string where = "role[" + std::to_string(n) + "].";
  const std::string name = str(t, "name", where);
  std::string trust = str(t, "trust_policy", where, "");
  if (trust.empty()) {
    const std::string service = str(t, "trust_service", where);
    trust = json::serialize(json::object{
        {"Version", "2012-10-17"},
        {"Statement", json::array{json::object{{"Effect", "Allow"},
                                               {"Principal", json::object{{"Service", service}}},
                                               {"Action", "sts:AssumeRole"}}}}});
  }
  FormParams params{{"RoleName", name}, {"AssumeRolePolicyDocument", trust}};
  if (auto d = t["description"].value<std::string>()) params.emplace_back("Description", *d);
  report("role", name, call_query("iam", kIamVersion, "CreateRole", params));
  role_arns_[name] = "arn:aws:iam::" + account_id_ + ":role/" + name;
  if (const toml::table* policies = t["policies"].as_table()) {
    for (const auto& [policy_name, document] : *policies) {
      std::string text;
      if (auto s = document.value<std::string>())
        text = *s;
      else if (document.is_table())
        text = json::serialize(to_json(document));
      else
        throw StackError(where + "policies." + std::string(policy_name.str()),
                         "must be a policy document (a JSON string or a table)");
      const ApiResult r = call_query("iam", kIamVersion, "PutRolePolicy",
                                     {{"RoleName", name},
                                      {"PolicyName", std::string(policy_name.str())},
                                      {"PolicyDocument", text}});
      if (!r.ok()) report("role-policy", std::string(policy_name.str()), r);
      if (!dry_)
        std::printf("put      %-16s %s/%s\n", "role-policy", name.c_str(),
                    std::string(policy_name.str()).c_str());
    }
  }
  for (const auto& arn : strings(t, "managed_policies", where)) {
    const ApiResult r = call_query("iam", kIamVersion, "AttachRolePolicy",
                                   {{"RoleName", name}, {"PolicyArn", arn}});
    if (!r.ok()) report("role-policy", arn, r);
  }
}

void Applier::secret(const toml::table& t, size_t n) {
  const std::string where = "secret[" + std::to_string(n) + "].";
  const std::string name = str(t, "name", where);
  const toml::node* value = t.get("value");
  if (!value) throw StackError(where + "value", "is required");
  const std::string text =
      value->is_table() ? json::serialize(to_json(*value)) : str(t, "value", where);
  secret_values_[name] = text;
  json::object input{{"Name", name}, {"SecretString", text}};
  if (auto d = t["description"].value<std::string>()) input["Description"] = *d;
  if (auto suffix = t["arn_suffix"].value<std::string>()) input["SluiceArnSuffix"] = *suffix;
  const ApiResult r =
      call_json("secretsmanager", "secretsmanager", "CreateSecret", json::serialize(input));
  std::string arn = name;
  if (r.ok() && !dry_) arn = std::string(json::parse(r.body).at("ARN").as_string());
  report("secret", arn, r);
}

void Applier::cluster(const toml::table& t, size_t n) {
  const std::string where = "cluster[" + std::to_string(n) + "].";
  const std::string id = str(t, "id", where);
  std::string password = str(t, "master_password", where, "");
  if (auto from = t["master_password_from_secret"].value<std::string>()) {
    auto it = secret_values_.find(*from);
    if (it == secret_values_.end())
      throw StackError(where + "master_password_from_secret",
                       "no secret " + *from + " in the stack");
    const json::value parsed = json::parse(it->second);
    password = std::string(parsed.at("password").as_string());
  }
  if (password.empty()) throw StackError(where + "master_password", "is required");
  FormParams params{{"DBClusterIdentifier", id},
                    {"Engine", str(t, "engine", where, "aurora-postgresql")},
                    {"MasterUsername", str(t, "master_username", where)},
                    {"MasterUserPassword", password}};
  if (auto db = t["database_name"].value<std::string>()) params.emplace_back("DatabaseName", *db);
  if (auto v = t["min_capacity"].value<double>())
    params.emplace_back("ServerlessV2ScalingConfiguration.MinCapacity", std::to_string(*v));
  if (auto v = t["max_capacity"].value<double>())
    params.emplace_back("ServerlessV2ScalingConfiguration.MaxCapacity", std::to_string(*v));
  int k = 1;
  for (const auto& group : strings(t, "security_groups", where))
    params.emplace_back("VpcSecurityGroupIds.VpcSecurityGroupId." + std::to_string(k++),
                        ec2_id(group));
  if (!rds_region_id_.empty()) params.emplace_back("SluiceRegionId", rds_region_id_);
  report("db-cluster", id, call_query("rds", kRdsVersion, "CreateDBCluster", params));
  const std::string instance = str(t, "instance_id", where, id + "-1");
  report("db-instance", instance,
         call_query("rds", kRdsVersion, "CreateDBInstance",
                    {{"DBInstanceIdentifier", instance},
                     {"DBClusterIdentifier", id},
                     {"Engine", str(t, "engine", where, "aurora-postgresql")},
                     {"DBInstanceClass", str(t, "instance_class", where, "db.serverless")}}));
}

void Applier::function(const toml::table& t, size_t n) {
  const std::string where = "function[" + std::to_string(n) + "].";
  const std::string name = str(t, "name", where);
  std::string role = str(t, "role", where);
  if (auto it = role_arns_.find(role); it != role_arns_.end()) role = it->second;
  const std::filesystem::path code = std::filesystem::absolute(base_ / str(t, "code", where));
  json::object input{
      {"FunctionName", name},
      {"Role", role},
      {"Runtime", str(t, "runtime", where, "provided.al2023")},
      {"Handler", str(t, "handler", where, "bootstrap")},
      {"Code", json::object{{"S3Bucket", "sluice-local"}, {"S3Key", code.string()}}}};
  if (auto v = t["description"].value<std::string>()) input["Description"] = *v;
  if (auto v = t["timeout"].value<int64_t>()) input["Timeout"] = *v;
  if (auto v = t["memory_size"].value<int64_t>()) input["MemorySize"] = *v;
  json::array subnets, groups;
  for (const auto& s : strings(t, "subnets", where)) subnets.push_back(json::value(s));
  for (const auto& g : strings(t, "security_groups", where))
    groups.push_back(json::value(ec2_id(g)));
  if (!subnets.empty())
    input["VpcConfig"] = json::object{{"SubnetIds", subnets}, {"SecurityGroupIds", groups}};
  if (const toml::node* env = t.get("environment")) {
    if (!env->is_table()) throw StackError(where + "environment", "must be a table of strings");
    input["Environment"] = json::object{{"Variables", to_json(*env)}};
  }
  report("function", name,
         call_rest("lambda", "POST", "/2015-03-31/functions", json::serialize(input)));
}

}  // namespace

int apply_stack(const std::string& file, const std::string& endpoint_url) {
  toml::table root;
  try {
    root = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    std::fprintf(stderr, "sluice apply: %s: %s (line %u)\n", file.c_str(),
                 std::string(e.description()).c_str(), e.source().begin.line);
    return 2;
  }
  try {
    ApiClient api(endpoint_url, root["region"].value_or(std::string("us-east-1")));
    const auto base = std::filesystem::path(file).parent_path();
    Applier check(api, base);
    check.dry_ = true;
    check.run(root);
    Applier(api, base).run(root);
  } catch (const StackError& e) {
    std::fprintf(stderr, "sluice apply: %s: %s\n", file.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice apply: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace sluice::cli
