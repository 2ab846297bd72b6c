#include "cloud/secretsmanager.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>

#include "auth/crypto.hpp"
#include "cloud/api.hpp"
#include "cloud/ids.hpp"

namespace sluice::cloud {
namespace json = boost::json;
namespace {

constexpr std::string_view kKind = "secret";

double now_seconds() {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  return static_cast<double>(ms) / 1000.0;
}

// A string parameter, or nothing; a parameter of another type is the caller's error.
std::optional<std::string> text(const json::object& input, std::string_view name) {
  auto it = input.find(name);
  if (it == input.end() || it->value().is_null()) return std::nullopt;
  if (!it->value().is_string())
    throw ApiError("InvalidParameterException",
                   "The parameter " + std::string(name) + " must be a string.");
  return std::string(it->value().as_string());
}

std::string required(const json::object& input, std::string_view name) {
  auto value = text(input, name);
  if (!value || value->empty())
    throw ApiError("InvalidParameterException",
                   "You must provide a value for the " + std::string(name) + " parameter.");
  return *value;
}

// Secret names: 1-512 of letters, digits and /_+=.@-, as Secrets Manager allows.
void check_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 512;
  for (char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) ||
                std::string_view("/_+=.@-").find(c) != std::string_view::npos);
  if (!ok)
    throw ApiError(
        "InvalidParameterException",
        "Invalid name. Must be a valid name containing alphanumeric characters, or any of "
        "the following: -/_+=.@!");
}

std::string random_suffix() {
  return random_chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 6);
}

json::array stages_of(const json::object& version) {
  return version.at("Stages").as_array();
}

bool has_stage(const json::object& version, std::string_view stage) {
  for (const auto& s : version.at("Stages").as_array())
    if (s.as_string() == stage) return true;
  return false;
}

constexpr std::string_view kCurrent = "AWSCURRENT";
constexpr std::string_view kPrevious = "AWSPREVIOUS";
constexpr size_t kMaxVersions = 100;  // Secrets Manager drops deprecated versions beyond it
constexpr size_t kMaxStagesPerVersion = 20;

void check_stage(const std::string& stage) {
  if (stage.empty() || stage.size() > 256)
    throw ApiError("InvalidParameterException",
                   "A staging label must be 1 to 256 characters long.");
}

// Where a staging label is, or nullptr.
json::object* holder_of(json::array& versions, std::string_view stage) {
  for (auto& v : versions)
    if (has_stage(v.as_object(), stage)) return &v.as_object();
  return nullptr;
}

void remove_stage(json::object& version, std::string_view stage) {
  json::array kept;
  for (const auto& s : version.at("Stages").as_array())
    if (s.as_string() != stage) kept.push_back(s);
  version["Stages"] = kept;
}

// Attaches `stage` to `target`, taking it off whichever version has it. Moving AWSCURRENT moves
// AWSPREVIOUS to the version it left, and records when that one stopped being current (the
// proxies accept a previous password for a grace period from then).
void attach_stage(json::array& versions, json::object& target, const std::string& stage,
                  double now) {
  json::object* holder = holder_of(versions, stage);
  if (holder == &target) return;
  if (holder) remove_stage(*holder, stage);
  if (target.at("Stages").as_array().size() >= kMaxStagesPerVersion)
    throw ApiError("LimitExceededException",
                   "A version can have at most 20 staging labels attached.");
  target["Stages"].as_array().emplace_back(stage);
  if (stage != kCurrent) return;
  target.erase("DemotedDate");
  if (holder) {
    attach_stage(versions, *holder, std::string(kPrevious), now);
    (*holder)["DemotedDate"] = now;
  }
}

// Versions without a label are deprecated: kept (GetSecretValue by VersionId still finds them)
// up to kMaxVersions in all, the oldest deprecated ones going first.
void drop_old_versions(json::array& versions) {
  while (versions.size() > kMaxVersions) {
    auto oldest = versions.end();
    for (auto it = versions.begin(); it != versions.end(); ++it)
      if (it->as_object().at("Stages").as_array().empty()) {
        oldest = it;
        break;  // versions are in creation order
      }
    if (oldest == versions.end()) return;
    versions.erase(oldest);
  }
}

// Pages: MaxResults at a time, NextToken an opaque offset, as the service hands them out.
std::pair<json::array, std::optional<std::string>> page_of(const json::array& entries,
                                                           const json::object& input) {
  size_t start = 0;
  if (const auto* token = input.if_contains("NextToken")) {
    const auto decoded =
        token->is_string() ? auth::base64_decode(token->as_string()) : std::nullopt;
    char* end = nullptr;
    const unsigned long offset = decoded ? std::strtoul(decoded->c_str(), &end, 10) : 0;
    if (!decoded || decoded->empty() || *end != '\0' || offset > entries.size())
      throw ApiError("InvalidNextTokenException", "The NextToken value is invalid.");
    start = offset;
  }
  size_t page = entries.size();
  if (const auto* max = input.if_contains("MaxResults")) {
    if (!max->is_int64() || max->as_int64() < 1 || max->as_int64() > 100)
      throw ApiError("InvalidParameterException", "MaxResults must be between 1 and 100.");
    page = static_cast<size_t>(max->as_int64());
  }
  json::array slice;
  for (size_t i = start; i < entries.size() && i < start + page; ++i) slice.push_back(entries[i]);
  std::optional<std::string> next;
  if (start + page < entries.size()) next = auth::base64_encode(std::to_string(start + page));
  return {slice, next};
}

}  // namespace

json::object SecretsManager::handle(std::string_view operation, const json::object& input,
                                    std::string_view region) {
  if (operation == "CreateSecret") return create(input, region);
  if (operation == "GetSecretValue") return get_value(input);
  if (operation == "PutSecretValue") return put_value(input);
  if (operation == "DescribeSecret") return describe(input);
  if (operation == "ListSecrets") return list(input);
  if (operation == "DeleteSecret") return remove(input);
  if (operation == "UpdateSecretVersionStage") return update_stage(input);
  if (operation == "ListSecretVersionIds") return list_versions(input);
  throw ApiError("UnknownOperationException",
                 "sluice does not implement secretsmanager " + std::string(operation) + ".");
}

json::object SecretsManager::find(std::string_view id, bool deleted_ok) {
  std::string name(id);
  // An ARN names the secret by its name plus the random suffix.
  if (id.starts_with("arn:")) {
    const size_t at = id.find(":secret:");
    if (at == std::string_view::npos)
      throw ApiError("ResourceNotFoundException",
                     "Secrets Manager can't find the specified secret.");
    name = std::string(id.substr(at + 8));
    if (name.size() > 7 && name[name.size() - 7] == '-') name.resize(name.size() - 7);
  }
  auto document = store_.get(kKind, name);
  if (!document)
    throw ApiError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
  json::object secret = json::parse(*document).as_object();
  if (id.starts_with("arn:") && secret.at("ARN").as_string() != id)
    throw ApiError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
  if (!deleted_ok && secret.contains("DeletedDate"))
    throw ApiError(
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.");
  return secret;
}

void SecretsManager::save(const json::object& secret) {
  store_.put(kKind, std::string(secret.at("Name").as_string()), json::serialize(secret));
}

std::string SecretsManager::add_version(json::object& secret, const json::object& input) {
  auto string_value = text(input, "SecretString");
  auto binary_value = text(input, "SecretBinary");  // base64 on the wire
  if (string_value && binary_value)
    throw ApiError("InvalidParameterException",
                   "You can't specify both a binary secret value and a string secret value in the "
                   "same secret.");
  if (!string_value && !binary_value)
    throw ApiError("InvalidRequestException",
                   "You must provide either SecretString or SecretBinary.");
  std::string plaintext = string_value ? *string_value : "";
  if (binary_value) {
    auto raw = auth::base64_decode(*binary_value);
    if (!raw) throw ApiError("InvalidParameterException", "SecretBinary is not valid base64.");
    plaintext = std::move(*raw);
  }
  if (plaintext.size() > 65536)
    throw ApiError("InvalidParameterException", "The secret value exceeds the 65536-byte limit.");
  const std::string version_id = text(input, "ClientRequestToken").value_or(uuid4());
  // VersionStages: the labels the new version gets; by default AWSCURRENT.
  std::vector<std::string> stages;
  if (const auto* given = input.if_contains("VersionStages"); given && !given->is_null()) {
    if (!given->is_array() || given->as_array().empty() ||
        given->as_array().size() > kMaxStagesPerVersion)
      throw ApiError("InvalidParameterException",
                     "VersionStages must be a list of 1 to 20 staging labels.");
    for (const auto& stage : given->as_array()) {
      if (!stage.is_string())
        throw ApiError("InvalidParameterException", "A staging label must be a string.");
      stages.emplace_back(stage.as_string());
      check_stage(stages.back());
    }
  } else {
    stages.emplace_back(kCurrent);
  }
  json::array& versions = secret["Versions"].as_array();
  // A secret's first version is current whatever else it is staged as.
  if (!holder_of(versions, kCurrent) &&
      std::find(stages.begin(), stages.end(), kCurrent) == stages.end())
    stages.emplace_back(kCurrent);
  const std::string arn(secret.at("ARN").as_string());
  for (auto& v : versions) {
    json::object& version = v.as_object();
    if (version.at("VersionId").as_string() != version_id) continue;
    // The same request again (same token, same value) succeeds and changes nothing.
    auto sealed = auth::base64_decode(version.at("Sealed").as_string());
    auto stored = sealed ? key_.open(*sealed, arn + "/" + version_id) : std::nullopt;
    if (stored && *stored == plaintext &&
        version.at("Binary").as_bool() == binary_value.has_value())
      return version_id;
    throw ApiError("ResourceExistsException",
                   "You can't modify an existing version, you can only create new versions.");
  }
  const double now = now_seconds();
  json::object added;
  added["VersionId"] = version_id;
  added["Stages"] = json::array();
  added["CreatedDate"] = now;
  added["Binary"] = binary_value.has_value();
  added["Sealed"] = auth::base64_encode(key_.seal(plaintext, arn + "/" + version_id));
  versions.push_back(added);
  json::object& version = versions.back().as_object();
  for (const auto& stage : stages) attach_stage(versions, version, stage, now);
  drop_old_versions(versions);
  secret["LastChangedDate"] = now;
  return version_id;
}

json::object SecretsManager::create(const json::object& input, std::string_view region) {
  const std::string name = required(input, "Name");
  check_name(name);
  if (store_.get(kKind, name))
    throw ApiError("ResourceExistsException",
                   "The operation failed because the secret " + name + " already exists.");
  // `sluice apply` may pin the ARN's suffix (SluiceArnSuffix, never sent by the SDKs).
  std::string suffix = random_suffix();
  if (auto pinned = text(input, "SluiceArnSuffix")) {
    bool ok = pinned->size() == 6;
    for (char c : *pinned) ok = ok && std::isalnum(static_cast<unsigned char>(c));
    if (!ok)
      throw ApiError("InvalidParameterException",
                     "SluiceArnSuffix must be 6 letters or digits, as Secrets Manager's are.");
    suffix = *pinned;
  }
  json::object secret;
  secret["Name"] = name;
  secret["ARN"] = "arn:aws:secretsmanager:" + std::string(region) + ":" + account_id_ +
                  ":secret:" + name + "-" + suffix;
  if (auto description = text(input, "Description")) secret["Description"] = *description;
  if (auto it = input.find("Tags"); it != input.end() && it->value().is_array())
    secret["Tags"] = it->value();
  secret["CreatedDate"] = now_seconds();
  secret["LastChangedDate"] = secret["CreatedDate"];
  secret["Versions"] = json::array();
  json::object out{{"ARN", secret["ARN"]}, {"Name", name}};
  // A secret may be created without a value; its first version comes with PutSecretValue.
  if (input.contains("SecretString") || input.contains("SecretBinary"))
    out["VersionId"] = add_version(secret, input);
  if (!store_.insert(kKind, name, json::serialize(secret)))
    throw ApiError("ResourceExistsException",
                   "The operation failed because the secret " + name + " already exists.");
  return out;
}

json::object SecretsManager::get_value(const json::object& input) {
  json::object secret = find(required(input, "SecretId"));
  const auto version_id = text(input, "VersionId");
  const std::string stage = text(input, "VersionStage").value_or(version_id ? "" : "AWSCURRENT");
  for (const auto& v : secret.at("Versions").as_array()) {
    const json::object& version = v.as_object();
    if ((version_id && version.at("VersionId").as_string() != *version_id) ||
        (!stage.empty() && !has_stage(version, stage)))
      continue;
    const std::string arn(secret.at("ARN").as_string());
    auto sealed = auth::base64_decode(version.at("Sealed").as_string());
    auto plaintext =
        sealed ? key_.open(*sealed, arn + "/" + std::string(version.at("VersionId").as_string()))
               : std::nullopt;
    if (!plaintext)
      throw ApiError(
          "DecryptionFailure",
          "Secrets Manager can't decrypt the protected secret text using the provided KMS key.");
    json::object out{{"ARN", arn},
                     {"Name", secret.at("Name")},
                     {"VersionId", version.at("VersionId")},
                     {"VersionStages", stages_of(version)},
                     {"CreatedDate", version.at("CreatedDate")}};
    if (version.at("Binary").as_bool())
      out["SecretBinary"] = auth::base64_encode(*plaintext);
    else
      out["SecretString"] = *plaintext;
    return out;
  }
  throw ApiError(
      "ResourceNotFoundException",
      "Secrets Manager can't find the specified secret value for " +
          std::string(version_id ? "VersionId: " + *version_id : "staging label: " + stage));
}

json::object SecretsManager::put_value(const json::object& input) {
  json::object secret = find(required(input, "SecretId"));
  const std::string version_id = add_version(secret, input);
  save(secret);
  json::array stages;
  for (const auto& v : secret.at("Versions").as_array())
    if (v.as_object().at("VersionId").as_string() == version_id) stages = stages_of(v.as_object());
  json::object out{
      {"ARN", secret.at("ARN")}, {"Name", secret.at("Name")}, {"VersionId", version_id}};
  if (!stages.empty()) out["VersionStages"] = stages;
  return out;
}

json::object SecretsManager::update_stage(const json::object& input) {
  json::object secret = find(required(input, "SecretId"));
  const std::string stage = required(input, "VersionStage");
  check_stage(stage);
  const auto move_to = text(input, "MoveToVersionId");
  const auto remove_from = text(input, "RemoveFromVersionId");
  json::array& versions = secret["Versions"].as_array();
  auto version = [&](const std::string& id) -> json::object& {
    for (auto& v : versions)
      if (v.as_object().at("VersionId").as_string() == id) return v.as_object();
    throw ApiError("ResourceNotFoundException",
                   "Secrets Manager can't find the specified secret version: " + id);
  };
  if (!move_to && !remove_from)
    throw ApiError("InvalidParameterException",
                   "You must specify MoveToVersionId, RemoveFromVersionId or both.");
  json::object* holder = holder_of(versions, stage);
  if (remove_from) {
    json::object& from = version(*remove_from);
    if (!has_stage(from, stage))
      throw ApiError(
          "InvalidParameterException",
          "The staging label " + stage + " is not attached to version " + *remove_from + ".");
  }
  if (move_to) {
    json::object& to = version(*move_to);
    // Taking a label from another version must be said: it may be in use.
    if (holder && holder != &to && !remove_from)
      throw ApiError("InvalidParameterException",
                     "The staging label " + stage + " is attached to version " +
                         std::string(holder->at("VersionId").as_string()) +
                         ": you must specify it in RemoveFromVersionId to move the label.");
    attach_stage(versions, to, stage, now_seconds());
  } else {
    if (stage == kCurrent)
      throw ApiError("InvalidParameterException",
                     "You can only move staging label AWSCURRENT to a different secret "
                     "version. It can't be completely removed.");
    remove_stage(*holder, stage);  // holder is RemoveFromVersionId's version, checked above
  }
  drop_old_versions(versions);
  secret["LastChangedDate"] = now_seconds();
  save(secret);
  return {{"ARN", secret.at("ARN")}, {"Name", secret.at("Name")}};
}

json::object SecretsManager::list_versions(const json::object& input) {
  const json::object secret = find(required(input, "SecretId"));
  const auto* deprecated = input.if_contains("IncludeDeprecated");
  const bool include_deprecated = deprecated && deprecated->is_bool() && deprecated->as_bool();
  json::array entries;
  for (const auto& v : secret.at("Versions").as_array()) {
    const json::object& version = v.as_object();
    json::object entry{{"VersionId", version.at("VersionId")},
                       {"CreatedDate", version.at("CreatedDate")}};
    if (!version.at("Stages").as_array().empty())
      entry["VersionStages"] = version.at("Stages");
    else if (!include_deprecated)
      continue;
    entries.push_back(entry);
  }
  auto [slice, next] = page_of(entries, input);
  json::object out{{"Versions", slice}, {"ARN", secret.at("ARN")}, {"Name", secret.at("Name")}};
  if (next) out["NextToken"] = *next;
  return out;
}

namespace {

json::object described(const json::object& secret) {
  json::object out{{"ARN", secret.at("ARN")},
                   {"Name", secret.at("Name")},
                   {"CreatedDate", secret.at("CreatedDate")},
                   {"LastChangedDate", secret.at("LastChangedDate")}};
  for (std::string_view key : {"Description", "Tags", "DeletedDate"})
    if (auto it = secret.find(key); it != secret.end()) out[key] = it->value();
  json::object stages;
  for (const auto& v : secret.at("Versions").as_array())
    if (!v.as_object().at("Stages").as_array().empty())  // deprecated versions are not shown
      stages[v.as_object().at("VersionId").as_string()] = v.as_object().at("Stages");
  out["VersionIdsToStages"] = stages;
  return out;
}

}  // namespace

json::object SecretsManager::describe(const json::object& input) {
  return described(find(required(input, "SecretId"), /*deleted_ok=*/true));
}

json::object SecretsManager::list(const json::object& input) {
  const bool include_deleted = input.contains("IncludePlannedDeletion") &&
                               input.at("IncludePlannedDeletion").is_bool() &&
                               input.at("IncludePlannedDeletion").as_bool();
  json::array entries;
  for (const auto& [name, document] : store_.list(kKind)) {
    json::object secret = json::parse(document).as_object();
    if (secret.contains("DeletedDate") && !include_deleted) continue;
    json::object entry = described(secret);
    entry["SecretVersionsToStages"] = entry["VersionIdsToStages"];
    entry.erase("VersionIdsToStages");
    entries.push_back(entry);
  }
  auto [slice, next] = page_of(entries, input);
  json::object out{{"SecretList", slice}};
  if (next) out["NextToken"] = *next;
  return out;
}

json::object SecretsManager::remove(const json::object& input) {
  json::object secret = find(required(input, "SecretId"), /*deleted_ok=*/true);
  const bool force = input.contains("ForceDeleteWithoutRecovery") &&
                     input.at("ForceDeleteWithoutRecovery").is_bool() &&
                     input.at("ForceDeleteWithoutRecovery").as_bool();
  const bool has_window = input.contains("RecoveryWindowInDays");
  if (force && has_window)
    throw ApiError(
        "InvalidParameterException",
        "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.");
  int64_t days = 30;
  if (has_window) {
    const auto& window = input.at("RecoveryWindowInDays");
    if (!window.is_number() || (days = window.to_number<int64_t>()) < 7 || days > 30)
      throw ApiError("InvalidParameterException",
                     "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).");
  }
  const double now = now_seconds();
  json::object out{{"ARN", secret.at("ARN")}, {"Name", secret.at("Name")}};
  if (force) {
    store_.remove(kKind, std::string(secret.at("Name").as_string()));
    out["DeletionDate"] = now;
    return out;
  }
  if (secret.contains("DeletedDate"))
    throw ApiError(
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.");
  secret["DeletedDate"] = now;
  secret["DeletionDate"] = now + static_cast<double>(days) * 86400.0;
  save(secret);
  out["DeletionDate"] = secret["DeletionDate"];
  return out;
}

std::vector<SecretsManager::StagedString> SecretsManager::staged_strings(
    std::string_view secret_id) {
  std::vector<StagedString> staged;
  try {
    const json::object secret = find(secret_id);
    const std::string arn(secret.at("ARN").as_string());
    for (const auto& v : secret.at("Versions").as_array()) {
      const json::object& version = v.as_object();
      if (version.at("Stages").as_array().empty() || version.at("Binary").as_bool()) continue;
      const std::string id(version.at("VersionId").as_string());
      auto sealed = auth::base64_decode(version.at("Sealed").as_string());
      auto plaintext = sealed ? key_.open(*sealed, arn + "/" + id) : std::nullopt;
      if (!plaintext) continue;
      StagedString entry;
      entry.version_id = id;
      for (const auto& s : version.at("Stages").as_array())
        entry.stages.emplace_back(s.as_string());
      entry.secret_string = std::move(*plaintext);
      entry.created = version.at("CreatedDate").to_number<double>();
      if (const auto* demoted = version.if_contains("DemotedDate"))
        entry.demoted = demoted->to_number<double>();
      staged.push_back(std::move(entry));
    }
  } catch (const ApiError&) {
  }
  return staged;
}

std::optional<std::string> SecretsManager::current_string(std::string_view secret_id) {
  try {
    json::object out = get_value({{"SecretId", secret_id}});
    if (auto it = out.find("SecretString"); it != out.end())
      return std::string(it->value().as_string());
  } catch (const ApiError&) {
  }
  return std::nullopt;
}

}  // namespace sluice::cloud
