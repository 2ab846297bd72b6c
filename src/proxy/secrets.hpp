// The credentials the proxy checks clients against and logs in to servers with, loaded from
// Secrets Manager-style files. Verifiers are derived once per secret, at load time.
//
// A file holds one SecretString, or the staged versions of a secret during a rotation (format in
// README.md, "Secret rotation"): AWSCURRENT, AWSPENDING (tried for server logins, never
// accepted from clients) and AWSPREVIOUS (accepted from clients for rotation_grace_seconds after
// it stopped being current).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "auth/scram.hpp"
#include "proxy/config.hpp"

namespace sluice::proxy {

// One password of a user and what the proxy derives from it.
struct StagedPassword {
  std::string password;  // needed to log in to servers; never logged
  // All of one user's staged passwords share a salt and iteration count, so one SCRAM exchange
  // can check a client's proof against each.
  auth::ScramVerifier scram;
  std::string md5_hash;  // "md5…"
  // The server's SCRAM salt and what PBKDF2 made of the password with it: new server
  // connections after the first skip the iterations (any worker's; it locks).
  std::shared_ptr<auth::SaltedPasswordCache> server_salted =
      std::make_shared<auth::SaltedPasswordCache>();
};

// The stages a server login may use, in the order they are tried.
enum class Stage : uint8_t { kCurrent, kPending, kPrevious };
std::string_view stage_name(Stage stage);  // "AWSCURRENT", …

using SystemTime = std::chrono::system_clock::time_point;

// The current password is the StagedPassword part.
struct Credential : StagedPassword {
  std::string username;
  AuthType client_auth = AuthType::kScramSha256;
  std::optional<StagedPassword> pending;
  std::optional<StagedPassword> previous;
  SystemTime previous_demoted{};  // when `previous` stopped being current
  // The stage of the last server login that worked, shared by all workers, so later logins go
  // straight to it. A reload that changes the secret file makes a new credential: it starts
  // at current again.
  std::shared_ptr<std::atomic<Stage>> server_stage =
      std::make_shared<std::atomic<Stage>>(Stage::kCurrent);
  // The secret file's text as loaded (it holds the password: never logged). A reload whose file
  // and auth type are unchanged keeps this very credential: no new verifier, no PBKDF2 work.
  std::string source;

  // Clients may log in with the previous password until `grace` after it was demoted.
  bool accepts_previous(SystemTime now, std::chrono::seconds grace) const;
  // What a client may log in with at `now`: current, then previous within the grace period.
  // The count is 1 or 2; the rest of the array repeats the last.
  size_t client_passwords(SystemTime now, std::chrono::seconds grace,
                          std::array<const StagedPassword*, auth::kMaxScramCandidates>& out) const;
  // An MD5 response checked against client_passwords(): the index of the one it matches. The
  // same work whether there are one or two, or this is an unknown user's decoy.
  std::optional<size_t> check_md5(const std::array<uint8_t, 4>& salt, std::string_view response,
                                  SystemTime now, std::chrono::seconds grace) const;
  const StagedPassword* staged(Stage stage) const;
  // The passwords a server login tries, in order: the remembered stage, then current, pending
  // and previous; a password equal to one already listed is skipped.
  std::vector<std::pair<Stage, const StagedPassword*>> server_attempts() const;
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
  // Staged versions that were left out (unparsable, another user's), one line each, to log.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::unordered_map<std::string, std::shared_ptr<const Credential>> by_user_;
  std::vector<std::string> unavailable_;
  std::string decoy_key_;
  AuthType default_auth_ = AuthType::kScramSha256;
  std::vector<std::string> warnings_;
};

// Parses {"username": "...", "password": "..."}; other keys are ignored, as RDS Proxy does.
bool parse_secret_json(std::string_view text, std::string& username, std::string& password,
                       std::string& error);

// The passwords of one secret file, before anything is derived from them.
struct SecretFileContents {
  std::string username;
  std::string current;
  std::optional<std::string> pending;
  std::optional<std::string> previous;
  std::optional<SystemTime> previous_demoted;  // absent: the caller decides (file time)
  std::vector<std::string> warnings;           // staged versions left out, and why
};

// Parses a secret file: a SecretString, or {"versions": [{"stages": [...], "secret_string":
// "...", "demoted": epoch seconds}, ...]}. Pure, for tests.
bool parse_secret_file(std::string_view text, SecretFileContents& out, std::string& error);

}  // namespace sluice::proxy
