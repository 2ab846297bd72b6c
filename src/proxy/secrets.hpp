// The credentials the proxy checks clients against and logs in to servers with, loaded from
// Secrets Manager-style files. Verifiers are derived once per secret, at load time.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/scram.hpp"
#include "proxy/config.hpp"

namespace sluice::proxy {

struct Credential {
  std::string username;
  std::string password;  // needed to log in to servers; never logged
  AuthType client_auth = AuthType::kScramSha256;
  auth::ScramVerifier scram;
  std::string md5_hash;  // "md5…"
  // The server's SCRAM salt and what PBKDF2 made of the password with it: new server
  // connections after the first skip the iterations (any worker's; it locks).
  std::shared_ptr<auth::SaltedPasswordCache> server_salted =
      std::make_shared<auth::SaltedPasswordCache>();
  // The secret file's text as loaded (it holds the password: never logged). A reload whose file
  // and auth type are unchanged keeps this very credential: no new verifier, no PBKDF2 work.
  std::string source;
};

// Immutable once loaded: a reload makes a new store, and sessions, logins and pools that began
// with the old one keep what they hold (credentials are shared).
class SecretStore {
 public:
  // Throws ConfigError naming the auth entry when a file is unreadable or malformed. With
  // `previous` (a reload), unchanged secrets keep their credential.
  static SecretStore load(const std::vector<AuthConfig>& entries,
                          const SecretStore* previous = nullptr);

  const Credential* find(std::string_view username) const;
  std::shared_ptr<const Credential> find_shared(std::string_view username) const;
  // Every configured credential, by user name.
  std::vector<const Credential*> credentials() const;
  // Why secrets the proxy is configured with cannot be had ([[auth]] unavailable_reason).
  const std::vector<std::string>& unavailable() const { return unavailable_; }
  // A stand-in for unknown users, so a failed login looks the same whether or not the user
  // exists: same exchange, stable per-name salt. Made afresh for each attempt and never kept,
  // so names invented by the thousand grow no memory.
  Credential decoy(std::string_view username) const;
  AuthType default_auth() const { return default_auth_; }

 private:
  std::unordered_map<std::string, std::shared_ptr<const Credential>> by_user_;
  std::vector<std::string> unavailable_;
  std::string decoy_key_;
  AuthType default_auth_ = AuthType::kScramSha256;
};

// Parses {"username": "...", "password": "..."}; other keys are ignored, as RDS Proxy does.
bool parse_secret_json(std::string_view text, std::string& username, std::string& password,
                       std::string& error);

}  // namespace sluice::proxy
