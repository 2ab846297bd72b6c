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
};

class SecretStore {
 public:
  // Throws ConfigError naming the auth entry when a file is unreadable or malformed.
  static SecretStore load(const std::vector<AuthConfig>& entries);

  const Credential* find(std::string_view username) const;
  // Every configured credential, by user name.
  std::vector<const Credential*> credentials() const;
  // A stand-in for unknown users, so a failed login looks the same whether or not the user
  // exists: same exchange, stable per-name salt. Made afresh for each attempt and never kept,
  // so names invented by the thousand grow no memory.
  Credential decoy(std::string_view username) const;
  AuthType default_auth() const { return default_auth_; }

 private:
  std::unordered_map<std::string, std::unique_ptr<Credential>> by_user_;
  std::string decoy_key_;
  AuthType default_auth_ = AuthType::kScramSha256;
};

// Parses {"username": "...", "password": "..."}; other keys are ignored, as RDS Proxy does.
bool parse_secret_json(std::string_view text, std::string& username, std::string& password,
                       std::string& error);

}  // namespace sluice::proxy
