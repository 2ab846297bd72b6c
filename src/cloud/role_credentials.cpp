#include "cloud/role_credentials.hpp"

#include "auth/crypto.hpp"
#include "cloud/ids.hpp"

namespace sluice::cloud {
namespace {

// Expired sessions are kept this long, so their callers hear ExpiredToken rather than
// InvalidClientTokenId, then forgotten.
constexpr std::chrono::hours kKeepExpired{24};

constexpr std::string_view kKeyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr std::string_view kSecretAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

std::string RoleSession::assumed_role_arn() const {
  // arn:aws:iam::ACCOUNT:role/PATH/NAME -> arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION
  const size_t account_start = role_arn.find("::") + 2;
  const size_t account_end = role_arn.find(':', account_start);
  const std::string account = role_arn.substr(account_start, account_end - account_start);
  const std::string name = role_arn.substr(role_arn.rfind('/') + 1);
  return "arn:aws:sts::" + account + ":assumed-role/" + name + "/" + session_name;
}

RoleSession RoleCredentials::issue(const std::string& role_arn, const std::string& session_name,
                                   std::chrono::seconds lifetime) {
  const auto now = std::chrono::system_clock::now();
  const std::lock_guard lock(mutex_);
  std::erase_if(sessions_,
                [&](const auto& entry) { return entry.second.expiration + kKeepExpired < now; });
  RoleSession session;
  do {
    session.access_key_id = "ASIA" + random_chars(kKeyAlphabet, 16);
  } while (sessions_.contains(session.access_key_id));
  session.secret_access_key = random_chars(kSecretAlphabet, 40);
  // Opaque to callers, as AWS's are; long enough that guessing one is out of the question.
  session.session_token = auth::base64_encode(auth::random_bytes(192));
  session.role_arn = role_arn;
  session.session_name = session_name;
  session.expiration = now + lifetime;
  sessions_[session.access_key_id] = session;
  return session;
}

std::optional<RoleSession> RoleCredentials::find(std::string_view access_key_id) const {
  const std::lock_guard lock(mutex_);
  auto it = sessions_.find(access_key_id);
  if (it == sessions_.end()) return std::nullopt;
  return it->second;
}

void RoleCredentials::revoke(std::string_view access_key_id) {
  const std::lock_guard lock(mutex_);
  auto it = sessions_.find(access_key_id);
  if (it != sessions_.end()) sessions_.erase(it);
}

}  // namespace sluice::cloud
