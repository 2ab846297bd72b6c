// The target's health as RDS Proxy reports it (describe-db-proxy-targets' TargetHealth), judged
// from every login the proxy makes to the server: for clients and for the active probe alike.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/config.hpp"

namespace sluice::proxy {

enum class TargetState { kRegistering, kAvailable, kUnavailable };
enum class TargetHealthReason { kNone, kUnreachable, kConnectionFailed, kAuthFailure };

// The step at which a login to the server stopped.
enum class LoginStep { kResolve, kConnect, kTls, kLogin };

// One login to the server, as ServerConnection::open saw it.
struct LoginOutcome {
  bool ok = false;
  LoginStep step = LoginStep::kLogin;  // where it failed
  bool no_answer = false;              // nothing answered in time, or no route to the host
  std::string sqlstate;  // of the failure: the server's own when it sent an ErrorResponse
  std::string message;   // what went wrong; never carries a password
};

struct TargetHealthStatus {
  TargetState state = TargetState::kRegistering;
  TargetHealthReason reason = TargetHealthReason::kNone;
  std::string description;  // one sentence for people
};

// What one login says about the target. `user` is the role the proxy logged in as.
TargetHealthStatus classify_login(std::string_view user, const LoginOutcome& outcome);

std::string_view to_string(TargetState state);          // "AVAILABLE", as RDS spells it
std::string_view to_string(TargetHealthReason reason);  // "" for kNone

// The verdict of the latest login, whichever worker made it. Locked: it changes at server
// logins and is read by the probe and the metrics endpoint, never per message.
class TargetHealth {
 public:
  using Clock = std::chrono::system_clock;

  TargetHealth();
  // Logs only changes: a busy proxy logs in often.
  void record(TargetHealthStatus status, Clock::time_point at = Clock::now());
  TargetHealthStatus status() const {
    std::lock_guard lock(mutex_);
    return status_;
  }
  std::optional<Clock::time_point> checked_at() const {
    std::lock_guard lock(mutex_);
    return checked_at_;
  }

  // {"targets":[{"host":…,"port":…,"state":…,"reason":…,"description":…,"checked_at":…}]};
  // checked_at is null until the first login.
  std::string render_json(const HostPort& target) const;

 private:
  mutable std::mutex mutex_;
  TargetHealthStatus status_;
  std::optional<Clock::time_point> checked_at_;
};

}  // namespace sluice::proxy
