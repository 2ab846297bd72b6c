// Temporary credentials for an IAM role, as STS's AssumeRole hands them out: what Lambda gives
// each execution environment of a function (AWS_ACCESS_KEY_ID "ASIA…", AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN). Calls signed with them act as
// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION and are allowed only what the role's policies
// allow. Kept in memory: they die with the sluice serve that issued them, as the environments do.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::cloud {

struct RoleSession {
  std::string access_key_id;      // ASIA + 16 upper-case letters and digits
  std::string secret_access_key;  // 40 characters
  std::string session_token;
  std::string role_arn;      // arn:aws:iam::ACCOUNT:role/NAME
  std::string session_name;  // the function's name, for Lambda
  std::chrono::system_clock::time_point expiration;

  // arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION
  std::string assumed_role_arn() const;
};

class RoleCredentials {
 public:
  explicit RoleCredentials(std::string account_id) : account_id_(std::move(account_id)) {}

  // New credentials for `role_arn`, valid for `lifetime`.
  RoleSession issue(const std::string& role_arn, const std::string& session_name,
                    std::chrono::seconds lifetime = std::chrono::hours(12));
  // The session an access key belongs to (expired ones too: the caller says ExpiredToken).
  std::optional<RoleSession> find(std::string_view access_key_id) const;
  // Forgets a session (an environment that ended).
  void revoke(std::string_view access_key_id);

 private:
  std::string account_id_;
  // The function host may issue from another thread than the API's.
  mutable std::mutex mutex_;
  std::map<std::string, RoleSession, std::less<>> sessions_;
};

}  // namespace sluice::cloud
