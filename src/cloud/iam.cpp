#include "cloud/iam.hpp"

#include <map>

#include "cloud/ids.hpp"
#include "cloud/json_fields.hpp"

namespace sluice::cloud {
namespace json = boost::json;
namespace {

constexpr std::string_view kRole = "role";
constexpr std::string_view kPolicy = "policy";

std::string unique_id(std::string_view prefix) {
  return std::string(prefix) + random_chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 17);
}

void check_path(const std::string& path) {
  if (path.empty() || path.front() != '/' || path.back() != '/' || path.size() > 512)
    throw ApiError("ValidationError",
                   "The specified value for path is invalid. It must begin and end with / "
                   "and contain only alphanumeric characters and/or / characters.");
}

void check_entity_name(const std::string& name, std::string_view what, size_t limit) {
  bool ok = !name.empty() && name.size() <= limit;
  for (char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) ||
                std::string_view("+=,.@_-").find(c) != std::string_view::npos);
  if (!ok)
    throw ApiError("ValidationError",
                   "The specified value for " + std::string(what) +
                       " is invalid. It must contain "
                       "only alphanumeric characters and/or the following: +=,.@_-");
}

// AWS managed policies the guide's stacks use, with the statements that matter here.
std::optional<std::string> aws_managed_policy(std::string_view arn) {
  if (!arn.starts_with("arn:aws:iam::aws:policy/")) return std::nullopt;
  const std::string_view name = arn.substr(arn.rfind('/') + 1);
  if (name == "SecretsManagerReadWrite")
    return R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}]})";
  if (name == "AWSLambdaBasicExecutionRole" || name == "AWSLambdaVPCAccessExecutionRole")
    return R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:*","ec2:CreateNetworkInterface","ec2:DescribeNetworkInterfaces","ec2:DeleteNetworkInterface"],"Resource":"*"}]})";
  return R"({"Version":"2012-10-17","Statement":[]})";  // known to exist; grants nothing here
}

}  // namespace

json::object Iam::role(const std::string& name) {
  auto document = store_.get(kRole, name);
  if (!document)
    throw ApiError("NoSuchEntity", "The role with name " + name + " cannot be found.", 404);
  return json::parse(*document).as_object();
}

json::object Iam::policy(const std::string& arn) {
  if (auto managed = aws_managed_policy(arn)) {
    const std::string name = arn.substr(arn.rfind('/') + 1);
    return {{"PolicyName", name},
            {"Arn", arn},
            {"PolicyId", "ANPAAWSMANAGED" + name.substr(0, 7)},
            {"Path", "/"},
            {"Document", *managed},
            {"CreateDate", "2015-02-06T18:40:00Z"},
            {"Managed", true}};
  }
  auto document = store_.get(kPolicy, arn);
  if (!document)
    throw ApiError("NoSuchEntity", "Policy " + arn + " does not exist or is not attachable.", 404);
  return json::parse(*document).as_object();
}

void Iam::save_role(const json::object& role) {
  store_.put(kRole, text(role, "RoleName"), json::serialize(role));
}

std::string Iam::role_xml(const json::object& role) {
  Xml xml;
  xml.leaf("Path", text(role, "Path"))
      .leaf("RoleName", text(role, "RoleName"))
      .leaf("RoleId", text(role, "RoleId"))
      .leaf("Arn", text(role, "Arn"))
      .leaf("CreateDate", text(role, "CreateDate"))
      .leaf("AssumeRolePolicyDocument", percent_encode(text(role, "AssumeRolePolicyDocument")));
  if (role.contains("Description")) xml.leaf("Description", text(role, "Description"));
  xml.leaf("MaxSessionDuration",
           std::to_string(role.at("MaxSessionDuration").to_number<int64_t>()));
  xml.open("RoleLastUsed").close("RoleLastUsed");
  return xml.str();
}

std::string Iam::policy_xml(const json::object& policy) {
  int attachments = 0;
  for (const auto& [name, document] : store_.list(kRole)) {
    const json::value parsed = json::parse(document);  // kept alive for the loop
    for (const auto& a : parsed.as_object().at("AttachedPolicies").as_array())
      attachments += a.as_string() == text(policy, "Arn");
  }
  Xml xml;
  xml.leaf("PolicyName", text(policy, "PolicyName"))
      .leaf("PolicyId", text(policy, "PolicyId"))
      .leaf("Arn", text(policy, "Arn"))
      .leaf("Path", text(policy, "Path"))
      .leaf("DefaultVersionId", "v1")
      .leaf("AttachmentCount", std::to_string(attachments))
      .leaf("PermissionsBoundaryUsageCount", "0")
      .leaf("IsAttachable", "true");
  if (policy.contains("Description")) xml.leaf("Description", text(policy, "Description"));
  xml.leaf("CreateDate", text(policy, "CreateDate")).leaf("UpdateDate", text(policy, "CreateDate"));
  return xml.str();
}

std::string Iam::handle(std::string_view action, const QueryParams& params) {
  using Action = std::string (Iam::*)(const QueryParams&);
  static const std::map<std::string_view, Action> kActions{
      {"CreateRole", &Iam::create_role},
      {"GetRole", &Iam::get_role},
      {"ListRoles", &Iam::list_roles},
      {"DeleteRole", &Iam::delete_role},
      {"PutRolePolicy", &Iam::put_role_policy},
      {"GetRolePolicy", &Iam::get_role_policy},
      {"DeleteRolePolicy", &Iam::delete_role_policy},
      {"ListRolePolicies", &Iam::list_role_policies},
      {"CreatePolicy", &Iam::create_policy},
      {"GetPolicy", &Iam::get_policy},
      {"DeletePolicy", &Iam::delete_policy},
      {"ListAttachedRolePolicies", &Iam::list_attached_role_policies},
      {"AttachRolePolicy", &Iam::attach_role_policy},
      {"DetachRolePolicy", &Iam::detach_role_policy},
  };
  auto it = kActions.find(action);
  if (it == kActions.end())
    throw ApiError("InvalidAction", "sluice does not implement iam " + std::string(action) + ".");
  return (this->*it->second)(params);
}

std::string Iam::create_role(const QueryParams& params) {
  Xml xml;
  const std::string name = params.required("RoleName");
  check_entity_name(name, "roleName", 64);
  const std::string trust = params.required("AssumeRolePolicyDocument");
  check_policy_document(trust);
  const std::string path = params.get("Path").value_or("/");
  check_path(path);
  json::object role{
      {"RoleName", name},
      {"Path", path},
      {"RoleId", unique_id("AROA")},
      {"Arn", "arn:aws:iam::" + account_id_ + ":role" + path + name},
      {"CreateDate", iso8601_now()},
      {"AssumeRolePolicyDocument", trust},
      {"MaxSessionDuration", params.integer("MaxSessionDuration", 3600, 43200).value_or(3600)},
      {"InlinePolicies", json::object()},
      {"AttachedPolicies", json::array()}};
  if (auto description = params.get("Description")) role["Description"] = *description;
  if (!store_.insert(kRole, name, json::serialize(role)))
    throw ApiError("EntityAlreadyExists", "Role with name " + name + " already exists.", 409);
  return xml.open("Role").raw(role_xml(role)).close("Role").str();
}

std::string Iam::get_role(const QueryParams& params) {
  Xml xml;
  return xml.open("Role").raw(role_xml(role(params.required("RoleName")))).close("Role").str();
}

std::string Iam::list_roles(const QueryParams& /*params*/) {
  Xml xml;
  xml.open("Roles");
  for (const auto& [name, document] : store_.list(kRole))
    xml.open("member").raw(role_xml(json::parse(document).as_object())).close("member");
  return xml.close("Roles").leaf("IsTruncated", "false").str();
}

std::string Iam::delete_role(const QueryParams& params) {
  const std::string name = params.required("RoleName");
  json::object r = role(name);
  if (!r.at("AttachedPolicies").as_array().empty())
    throw ApiError("DeleteConflict", "Cannot delete entity, must detach all policies first.", 409);
  if (!r.at("InlinePolicies").as_object().empty())
    throw ApiError("DeleteConflict", "Cannot delete entity, must delete policies first.", 409);
  store_.remove(kRole, name);
  return "";
}

std::string Iam::put_role_policy(const QueryParams& params) {
  json::object r = role(params.required("RoleName"));
  const std::string name = params.required("PolicyName");
  check_entity_name(name, "policyName", 128);
  const std::string document = params.required("PolicyDocument");
  check_policy_document(document);
  r["InlinePolicies"].as_object()[name] = document;
  save_role(r);
  return "";
}

std::string Iam::get_role_policy(const QueryParams& params) {
  Xml xml;
  const std::string role_name = params.required("RoleName");
  json::object r = role(role_name);
  const std::string name = params.required("PolicyName");
  const auto& inline_policies = r.at("InlinePolicies").as_object();
  auto it = inline_policies.find(name);
  if (it == inline_policies.end())
    throw ApiError("NoSuchEntity", "The role policy with name " + name + " cannot be found.", 404);
  return xml.leaf("RoleName", role_name)
      .leaf("PolicyName", name)
      .leaf("PolicyDocument", percent_encode(it->value().as_string()))
      .str();
}

std::string Iam::delete_role_policy(const QueryParams& params) {
  json::object r = role(params.required("RoleName"));
  const std::string name = params.required("PolicyName");
  if (!r["InlinePolicies"].as_object().erase(name))
    throw ApiError("NoSuchEntity", "The role policy with name " + name + " cannot be found.", 404);
  save_role(r);
  return "";
}

std::string Iam::list_role_policies(const QueryParams& params) {
  Xml xml;
  json::object r = role(params.required("RoleName"));
  xml.open("PolicyNames");
  for (const auto& [name, document] : r.at("InlinePolicies").as_object()) xml.leaf("member", name);
  return xml.close("PolicyNames").leaf("IsTruncated", "false").str();
}

std::string Iam::create_policy(const QueryParams& params) {
  Xml xml;
  const std::string name = params.required("PolicyName");
  check_entity_name(name, "policyName", 128);
  const std::string document = params.required("PolicyDocument");
  check_policy_document(document);
  const std::string path = params.get("Path").value_or("/");
  check_path(path);
  const std::string arn = "arn:aws:iam::" + account_id_ + ":policy" + path + name;
  json::object p{{"PolicyName", name}, {"Arn", arn},           {"PolicyId", unique_id("ANPA")},
                 {"Path", path},       {"Document", document}, {"CreateDate", iso8601_now()}};
  if (auto description = params.get("Description")) p["Description"] = *description;
  if (!store_.insert(kPolicy, arn, json::serialize(p)))
    throw ApiError("EntityAlreadyExists",
                   "A policy called " + name + " already exists. Duplicate names are not allowed.",
                   409);
  return xml.open("Policy").raw(policy_xml(p)).close("Policy").str();
}

std::string Iam::get_policy(const QueryParams& params) {
  Xml xml;
  return xml.open("Policy")
      .raw(policy_xml(policy(params.required("PolicyArn"))))
      .close("Policy")
      .str();
}

std::string Iam::delete_policy(const QueryParams& params) {
  const std::string arn = params.required("PolicyArn");
  json::object p = policy(arn);
  if (p.contains("Managed"))
    throw ApiError("AccessDenied", "AWS managed policies cannot be deleted.", 403);
  for (const auto& [name, document] : store_.list(kRole)) {
    const json::value parsed = json::parse(document);  // kept alive for the loop
    for (const auto& a : parsed.as_object().at("AttachedPolicies").as_array())
      if (a.as_string() == arn)
        throw ApiError("DeleteConflict", "Cannot delete a policy attached to entities.", 409);
  }
  store_.remove(kPolicy, arn);
  return "";
}

std::string Iam::list_attached_role_policies(const QueryParams& params) {
  Xml xml;
  json::object r = role(params.required("RoleName"));
  xml.open("AttachedPolicies");
  for (const auto& a : r.at("AttachedPolicies").as_array()) {
    const std::string arn(a.as_string());
    xml.open("member")
        .leaf("PolicyName", arn.substr(arn.rfind('/') + 1))
        .leaf("PolicyArn", arn)
        .close("member");
  }
  return xml.close("AttachedPolicies").leaf("IsTruncated", "false").str();
}

std::string Iam::attach_role_policy(const QueryParams& params) {
  return change_attachment(params, true);
}

std::string Iam::detach_role_policy(const QueryParams& params) {
  return change_attachment(params, false);
}

std::string Iam::change_attachment(const QueryParams& params, bool attach) {
  json::object r = role(params.required("RoleName"));
  const std::string arn = params.required("PolicyArn");
  policy(arn);  // must exist
  json::array& attached = r["AttachedPolicies"].as_array();
  auto it = std::find(attached.begin(), attached.end(), json::value(arn));
  if (attach) {
    if (it == attached.end()) attached.emplace_back(arn);
  } else {
    if (it == attached.end())
      throw ApiError("NoSuchEntity", "Policy " + arn + " was not found.", 404);
    attached.erase(it);
  }
  save_role(r);
  return "";
}

Decision Iam::evaluate(std::string_view role_arn, std::string_view action,
                       std::string_view resource, std::string* why) {
  const size_t slash = role_arn.rfind('/');
  auto document = slash == std::string_view::npos ? std::nullopt
                                                  : store_.get(kRole, role_arn.substr(slash + 1));
  if (!document || text(json::parse(*document).as_object(), "Arn") != role_arn) {
    if (why) *why = "the role " + std::string(role_arn) + " does not exist";
    return Decision::kImplicitDeny;
  }
  const json::object r = json::parse(*document).as_object();
  std::vector<std::string> documents;
  for (const auto& [name, policy_document] : r.at("InlinePolicies").as_object())
    documents.emplace_back(policy_document.as_string());
  for (const auto& a : r.at("AttachedPolicies").as_array()) {
    try {
      documents.push_back(text(policy(std::string(a.as_string())), "Document"));
    } catch (const ApiError&) {
      // A policy deleted under an attachment grants nothing.
    }
  }
  const Decision decision = evaluate_policies(documents, action, resource);
  if (why) {
    if (decision == Decision::kExplicitDeny)
      *why = "an explicit Deny in the policies of " + std::string(role_arn) + " covers " +
             std::string(action) + " on " + std::string(resource);
    else if (decision == Decision::kImplicitDeny)
      *why = "no policy of " + std::string(role_arn) + " allows " + std::string(action) + " on " +
             std::string(resource);
  }
  return decision;
}

}  // namespace sluice::cloud
