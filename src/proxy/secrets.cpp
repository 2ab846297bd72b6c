#include "proxy/secrets.hpp"

#include <openssl/hmac.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "auth/crypto.hpp"
#include "auth/md5.hpp"

namespace sluice::proxy {

bool parse_secret_json(std::string_view text, std::string& username, std::string& password,
                       std::string& error) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(text, ec);
  if (ec || !doc.is_object()) {
    error = "is not a JSON object";
    return false;
  }
  const auto& obj = doc.as_object();
  const auto* user = obj.if_contains("username");
  const auto* pass = obj.if_contains("password");
  if (!user || !user->is_string() || user->as_string().empty()) {
    error = "has no \"username\" string";
    return false;
  }
  if (!pass || !pass->is_string()) {
    error = "has no \"password\" string";
    return false;
  }
  username = std::string(user->as_string());
  password = std::string(pass->as_string());
  return true;
}

namespace {

constexpr std::string_view kCurrent = "AWSCURRENT";
constexpr std::string_view kPending = "AWSPENDING";
constexpr std::string_view kPrevious = "AWSPREVIOUS";

bool has_stage(const boost::json::array& stages, std::string_view stage) {
  for (const auto& s : stages)
    if (s.is_string() && s.as_string() == stage) return true;
  return false;
}

// The staged form: {"versions": [{"stages": [...], "secret_string": "...", "demoted": N}, ...]}.
bool parse_versions(const boost::json::array& versions, SecretFileContents& out,
                    std::string& error) {
  const boost::json::object* staged[3] = {};  // current, pending, previous
  const std::string_view names[3] = {kCurrent, kPending, kPrevious};
  for (size_t i = 0; i < versions.size(); ++i) {
    const std::string where = "versions[" + std::to_string(i) + "]";
    if (!versions[i].is_object()) {
      error = where + " is not an object";
      return false;
    }
    const auto& version = versions[i].as_object();
    const auto* stages = version.if_contains("stages");
    const auto* value = version.if_contains("secret_string");
    if (!stages || !stages->is_array()) {
      error = where + " has no \"stages\" array";
      return false;
    }
    if (!value || !value->is_string()) {
      error = where + " has no \"secret_string\" string";
      return false;
    }
    for (size_t s = 0; s < 3; ++s) {
      if (!has_stage(stages->as_array(), names[s])) continue;
      if (staged[s]) {
        error = "has " + std::string(names[s]) + " on two versions";
        return false;
      }
      staged[s] = &version;
    }
  }
  if (!staged[0]) {
    error = "has no version staged AWSCURRENT";
    return false;
  }
  std::string password;
  if (!parse_secret_json(staged[0]->at("secret_string").as_string(), out.username, out.current,
                         error)) {
    error = "version staged AWSCURRENT " + error;
    return false;
  }
  for (size_t s = 1; s < 3; ++s) {
    if (!staged[s] || staged[s] == staged[0]) continue;  // both labels on one version: current
    std::string user, why;
    if (!parse_secret_json(staged[s]->at("secret_string").as_string(), user, password, why)) {
      out.warnings.push_back("the version staged " + std::string(names[s]) + " " + why);
      continue;
    }
    if (user != out.username) {
      out.warnings.push_back("the version staged " + std::string(names[s]) +
                             " names another user than AWSCURRENT does");
      continue;
    }
    (s == 1 ? out.pending : out.previous) = password;
  }
  if (out.previous) {
    if (const auto* demoted = staged[2]->if_contains("demoted")) {
      if (!demoted->is_number() || demoted->to_number<double>() < 0 ||
          !std::isfinite(demoted->to_number<double>())) {
        error = "version staged AWSPREVIOUS has a \"demoted\" that is not seconds since 1970";
        return false;
      }
      out.previous_demoted = SystemTime(std::chrono::duration_cast<SystemTime::duration>(
          std::chrono::duration<double>(demoted->to_number<double>())));
    }
  }
  return true;
}

}  // namespace

bool parse_secret_file(std::string_view text, SecretFileContents& out, std::string& error) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(text, ec);
  if (!ec && doc.is_object() && !doc.as_object().contains("username")) {
    if (const auto* versions = doc.as_object().if_contains("versions")) {
      if (!versions->is_array()) {
        error = "has a \"versions\" that is not an array";
        return false;
      }
      return parse_versions(versions->as_array(), out, error);
    }
  }
  return parse_secret_json(text, out.username, out.current, error);
}

std::string_view stage_name(Stage stage) {
  switch (stage) {
    case Stage::kCurrent:
      return kCurrent;
    case Stage::kPending:
      return kPending;
    case Stage::kPrevious:
      return kPrevious;
  }
  return "?";
}

bool Credential::accepts_previous(SystemTime now, std::chrono::seconds grace) const {
  return previous && now < previous_demoted + grace;
}

size_t Credential::client_passwords(
    SystemTime now, std::chrono::seconds grace,
    std::array<const StagedPassword*, auth::kMaxScramCandidates>& out) const {
  out.fill(this);
  if (!accepts_previous(now, grace)) return 1;
  out[1] = &*previous;
  return 2;
}

std::optional<size_t> Credential::check_md5(const std::array<uint8_t, 4>& salt,
                                            std::string_view response, SystemTime now,
                                            std::chrono::seconds grace) const {
  std::array<const StagedPassword*, auth::kMaxScramCandidates> passwords;
  const size_t count = client_passwords(now, grace, passwords);
  std::optional<size_t> matched;
  for (size_t i = 0; i < passwords.size(); ++i) {  // padded: the last one again
    const bool ok = auth::md5_verify(passwords[i]->md5_hash, salt, response);
    if (ok && i < count && !matched) matched = i;
  }
  return matched;
}

const StagedPassword* Credential::staged(Stage stage) const {
  switch (stage) {
    case Stage::kCurrent:
      return this;
    case Stage::kPending:
      return pending ? &*pending : nullptr;
    case Stage::kPrevious:
      return previous ? &*previous : nullptr;
  }
  return nullptr;
}

std::vector<std::pair<Stage, const StagedPassword*>> Credential::server_attempts() const {
  std::vector<std::pair<Stage, const StagedPassword*>> attempts;
  const Stage order[] = {server_stage->load(std::memory_order_relaxed), Stage::kCurrent,
                         Stage::kPending, Stage::kPrevious};
  for (Stage stage : order) {
    const StagedPassword* candidate = staged(stage);
    if (!candidate) continue;
    bool seen = false;
    for (const auto& [s, p] : attempts) seen = seen || p->password == candidate->password;
    if (!seen) attempts.emplace_back(stage, candidate);
  }
  return attempts;
}

namespace {

StagedPassword derive(const std::string& username, std::string password, const std::string& salt) {
  StagedPassword staged;
  staged.scram = auth::derive_scram_verifier(password, salt, auth::kDefaultScramIterations);
  staged.md5_hash = auth::md5_stored_hash(username, password);
  staged.password = std::move(password);
  return staged;
}

}  // namespace

SecretStore SecretStore::load(const std::vector<AuthConfig>& entries, const SecretStore* previous) {
  SecretStore store;
  // The decoy key survives reloads: an unknown user's salt must not change with them, or a
  // reload would tell which users are real.
  store.decoy_key_ = previous ? previous->decoy_key_ : auth::random_bytes(32);
  bool first = true;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!entries[i].unavailable_reason.empty()) {
      store.unavailable_.push_back(entries[i].unavailable_reason);
      continue;
    }
    const std::string key = "auth[" + std::to_string(i) + "].secret_file";
    const std::string& path = entries[i].secret_file;
    std::ifstream in(path);
    if (!in) throw ConfigError(key, "cannot read " + path);
    std::stringstream text;
    text << in.rdbuf();
    SecretFileContents contents;
    std::string error;
    if (!parse_secret_file(text.str(), contents, error)) throw ConfigError(key, path + " " + error);
    for (const auto& warning : contents.warnings)
      store.warnings_.push_back(path + ": " + warning + "; it is left out");
    auto cred = std::make_shared<Credential>();
    cred->username = contents.username;
    cred->client_auth = entries[i].client_password_auth_type;
    cred->source = text.str();
    if (first) store.default_auth_ = cred->client_auth;
    first = false;
    if (store.by_user_.contains(cred->username))
      throw ConfigError(key, "a secret for user \"" + cred->username + "\" is already configured");
    if (previous)
      if (auto kept = previous->find_shared(cred->username);
          kept && kept->source == cred->source && kept->client_auth == cred->client_auth) {
        store.by_user_.emplace(cred->username, std::move(kept));
        continue;
      }
    const std::string salt = auth::random_bytes(16);  // one for all of this user's passwords
    static_cast<StagedPassword&>(*cred) = derive(cred->username, std::move(contents.current), salt);
    if (contents.pending) {
      // Never accepted from clients: no verifier needed, only what a server login uses.
      cred->pending.emplace();
      cred->pending->md5_hash = auth::md5_stored_hash(cred->username, *contents.pending);
      cred->pending->password = std::move(*contents.pending);
    }
    if (contents.previous) {
      cred->previous = derive(cred->username, std::move(*contents.previous), salt);
      if (contents.previous_demoted) {
        cred->previous_demoted = *contents.previous_demoted;
      } else {
        // Not recorded: the file was written when it was demoted, as far as we know.
        std::error_code ec;
        const auto written = std::filesystem::last_write_time(path, ec);
        cred->previous_demoted = ec ? std::chrono::system_clock::now()
                                    : std::chrono::time_point_cast<SystemTime::duration>(
                                          std::chrono::file_clock::to_sys(written));
      }
    }
    store.by_user_.emplace(cred->username, std::move(cred));
  }
  return store;
}

const Credential* SecretStore::find(std::string_view username) const {
  auto it = by_user_.find(std::string(username));
  return it == by_user_.end() ? nullptr : it->second.get();
}

std::shared_ptr<const Credential> SecretStore::find_shared(std::string_view username) const {
  auto it = by_user_.find(std::string(username));
  return it == by_user_.end() ? nullptr : it->second;
}

std::vector<const Credential*> SecretStore::credentials() const {
  std::vector<const Credential*> all;
  for (const auto& [name, cred] : by_user_) all.push_back(cred.get());
  std::sort(all.begin(), all.end(),
            [](const Credential* a, const Credential* b) { return a->username < b->username; });
  return all;
}

Credential SecretStore::decoy(std::string_view username) const {
  // Made afresh for each attempt, never kept: names come from the network, and an attacker
  // inventing them must not grow memory. The salt is a keyed hash of the name, so repeated
  // attempts see the same salt, as they would for a real user.
  unsigned char mac[32];
  unsigned int len = sizeof mac;
  HMAC(EVP_sha256(), decoy_key_.data(), static_cast<int>(decoy_key_.size()),
       reinterpret_cast<const unsigned char*>(username.data()), username.size(), mac, &len);
  Credential decoy;
  decoy.username = std::string(username);
  decoy.client_auth = default_auth_;
  // Random keys: no password can match, and no PBKDF2 work is spent on made-up names.
  decoy.scram.salt.assign(reinterpret_cast<char*>(mac), 16);
  decoy.scram.iterations = auth::kDefaultScramIterations;
  const std::string keys = auth::random_bytes(64);
  std::copy_n(keys.begin(), 32, decoy.scram.stored_key.begin());
  std::copy_n(keys.begin() + 32, 32, decoy.scram.server_key.begin());
  decoy.md5_hash = auth::md5_stored_hash(decoy.username, auth::random_bytes(24));
  return decoy;
}

}  // namespace sluice::proxy
