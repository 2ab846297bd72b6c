#include "cloud/sts.hpp"

#include <boost/json.hpp>
#include <ctime>

#include "auth/crypto.hpp"
#include "cloud/json_fields.hpp"

namespace sluice::cloud {
namespace json = boost::json;
namespace {

// IAM keeps roles as documents of this kind, by name (iam.cpp).
constexpr std::string_view kRoleKind = "role";
// DurationSeconds when the caller gives none, and the cap for a role session assuming a role.
constexpr int64_t kDefaultDuration = 3600;
constexpr int64_t kChainedMaximum = 3600;

std::string iso8601(std::chrono::system_clock::time_point when) {
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

std::string role_name(std::string_view role_arn) {
  return std::string(role_arn.substr(role_arn.rfind('/') + 1));
}

}  // namespace

std::string Sts::caller_arn(const RoleSession* caller) const {
  return caller ? caller->assumed_role_arn() : "arn:aws:iam::" + account_id_ + ":root";
}

std::string Sts::role_id(std::string_view role_arn) const {
  if (auto document = store_.get(kRoleKind, role_name(role_arn))) {
    const json::object role = json::parse(*document).as_object();
    if (text(role, "Arn") == role_arn && !text(role, "RoleId").empty()) return text(role, "RoleId");
  }
  // 17 characters of IAM's alphabet from the hash of the name.
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const std::string digest = auth::sha256(role_arn);
  std::string id = "AROA";
  for (size_t i = 0; i < 17; ++i) id += kAlphabet[static_cast<unsigned char>(digest[i]) % 32];
  return id;
}

std::string Sts::handle(std::string_view action, const QueryParams& params,
                        const RoleSession* caller) {
  if (action == "GetCallerIdentity") {
    Xml xml;
    xml.leaf("Arn", caller_arn(caller))
        .leaf("UserId",
              caller ? role_id(caller->role_arn) + ":" + caller->session_name : account_id_)
        .leaf("Account", account_id_);
    return xml.str();
  }
  if (action == "AssumeRole") return assume_role(params, caller);
  throw ApiError("InvalidAction",
                 "Could not find operation " + std::string(action) + " for version 2011-06-15");
}

std::string Sts::assume_role(const QueryParams& params, const RoleSession* caller) {
  const std::string role_arn = params.required("RoleArn");
  const std::string session_name = params.required("RoleSessionName");
  if (role_arn.size() < 20 || role_arn.size() > 2048 || !role_arn.starts_with("arn:aws:iam::") ||
      role_arn.find(":role/") == std::string::npos)
    throw ApiError("ValidationError", "Request ARN is invalid");
  bool session_name_ok = session_name.size() >= 2 && session_name.size() <= 64;
  for (char c : session_name)
    session_name_ok = session_name_ok && (std::isalnum(static_cast<unsigned char>(c)) ||
                                          std::string_view("_+=,.@-").find(c) != std::string::npos);
  if (!session_name_ok)
    throw ApiError("ValidationError",
                   "1 validation error detected: Value '" + session_name +
                       "' at 'roleSessionName' failed to satisfy constraint: Member must satisfy "
                       "regular expression pattern: [\\w+=,.@-]*");
  const int64_t duration = params.integer("DurationSeconds", 900, 43200).value_or(kDefaultDuration);

  // A role that does not exist (or is another account's) is refused as AWS refuses it: without
  // saying whether it exists.
  auto document = store_.get(kRoleKind, role_name(role_arn));
  const json::object role = document ? json::parse(*document).as_object() : json::object();
  if (!document || text(role, "Arn") != role_arn)
    throw ApiError("AccessDenied",
                   "User: " + caller_arn(caller) +
                       " is not authorized to perform: sts:AssumeRole on resource: " + role_arn,
                   403);
  if (caller && duration > kChainedMaximum)
    throw ApiError("ValidationError",
                   "The requested DurationSeconds exceeds the 1 hour session limit for roles "
                   "assumed by role chaining.");
  if (duration > whole(role, "MaxSessionDuration", kDefaultDuration))
    throw ApiError("ValidationError",
                   "The requested DurationSeconds exceeds the MaxSessionDuration set for this "
                   "role.");

  const RoleSession session =
      credentials_.issue(role_arn, session_name, std::chrono::seconds(duration));
  Xml xml;
  xml.open("Credentials")
      .leaf("AccessKeyId", session.access_key_id)
      .leaf("SecretAccessKey", session.secret_access_key)
      .leaf("SessionToken", session.session_token)
      .leaf("Expiration", iso8601(session.expiration))
      .close("Credentials")
      .open("AssumedRoleUser")
      .leaf("AssumedRoleId", role_id(role_arn) + ":" + session_name)
      .leaf("Arn", session.assumed_role_arn())
      .close("AssumedRoleUser");
  return xml.str();
}

}  // namespace sluice::cloud
