#include "proxy/secrets.hpp"

#include <openssl/hmac.h>

#include <algorithm>
#include <boost/json.hpp>
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
    std::ifstream in(entries[i].secret_file);
    if (!in) throw ConfigError(key, "cannot read " + entries[i].secret_file);
    std::stringstream text;
    text << in.rdbuf();
    auto cred = std::make_shared<Credential>();
    std::string error;
    if (!parse_secret_json(text.str(), cred->username, cred->password, error))
      throw ConfigError(key, entries[i].secret_file + " " + error);
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
    cred->scram = auth::derive_scram_verifier(cred->password, auth::random_bytes(16),
                                              auth::kDefaultScramIterations);
    cred->md5_hash = auth::md5_stored_hash(cred->username, cred->password);
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
