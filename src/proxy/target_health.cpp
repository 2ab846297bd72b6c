#include "proxy/target_health.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <ctime>

namespace sluice::proxy {
namespace {

std::string utc_timestamp(TargetHealth::Clock::time_point at) {
  const std::time_t seconds = TargetHealth::Clock::to_time_t(at);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace

TargetHealthStatus classify_login(std::string_view user, const LoginOutcome& outcome) {
  const std::string as_user = " as user \"" + std::string(user) + "\"";
  if (outcome.ok)
    return {TargetState::kAvailable, TargetHealthReason::kNone,
            "The proxy logged in to the database" + as_user + "."};
  // Too many connections: the server answered and knows the role, so it is there.
  if (outcome.sqlstate == "53300")
    return {TargetState::kAvailable, TargetHealthReason::kNone,
            "The database is reachable but had no connection slot free for user \"" +
                std::string(user) + "\": " + outcome.message};
  if (outcome.step == LoginStep::kResolve ||
      (outcome.step == LoginStep::kConnect && outcome.no_answer))
    return {TargetState::kUnavailable, TargetHealthReason::kUnreachable,
            "The proxy could not reach the database: " + outcome.message};
  if (outcome.step == LoginStep::kLogin && outcome.sqlstate.starts_with("28"))
    return {TargetState::kUnavailable, TargetHealthReason::kAuthFailure,
            "The proxy could not log in to the database" + as_user + ": " + outcome.message};
  return {TargetState::kUnavailable, TargetHealthReason::kConnectionFailed,
          "The proxy could not connect to the database" + as_user + ": " + outcome.message};
}

std::string_view to_string(TargetState state) {
  switch (state) {
    case TargetState::kRegistering:
      return "REGISTERING";
    case TargetState::kAvailable:
      return "AVAILABLE";
    case TargetState::kUnavailable:
      return "UNAVAILABLE";
  }
  return "UNAVAILABLE";
}

std::string_view to_string(TargetHealthReason reason) {
  switch (reason) {
    case TargetHealthReason::kNone:
      return "";
    case TargetHealthReason::kUnreachable:
      return "UNREACHABLE";
    case TargetHealthReason::kConnectionFailed:
      return "CONNECTION_FAILED";
    case TargetHealthReason::kAuthFailure:
      return "AUTH_FAILURE";
  }
  return "";
}

TargetHealth::TargetHealth() {
  status_.description = "The proxy has not logged in to the database yet.";
}

void TargetHealth::record(TargetHealthStatus status, Clock::time_point at) {
  std::lock_guard lock(mutex_);
  if (status.state != status_.state || status.reason != status_.reason) {
    if (status.state == TargetState::kAvailable)
      spdlog::info("target health: AVAILABLE ({})", status.description);
    else
      spdlog::warn("target health: {} {} ({})", to_string(status.state), to_string(status.reason),
                   status.description);
  }
  status_ = std::move(status);
  checked_at_ = at;
}

std::string TargetHealth::render_json(const HostPort& target) const {
  std::lock_guard lock(mutex_);
  boost::json::object entry;
  entry["host"] = target.host;
  entry["port"] = target.port;
  entry["state"] = to_string(status_.state);
  entry["reason"] = to_string(status_.reason);
  entry["description"] = status_.description;
  if (checked_at_)
    entry["checked_at"] = utc_timestamp(*checked_at_);
  else
    entry["checked_at"] = nullptr;
  boost::json::object body;
  body["targets"] = boost::json::array{std::move(entry)};
  return boost::json::serialize(body);
}

}  // namespace sluice::proxy
