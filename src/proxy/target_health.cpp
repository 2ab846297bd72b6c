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
    case TargetHealthReason::kInvalidReplicationState:
      return "INVALID_REPLICATION_STATE";
  }
  return "";
}

std::string_view to_string(HostRole role) {
  switch (role) {
    case HostRole::kPrimary:
      return "primary";
    case HostRole::kStandby:
      return "standby";
    case HostRole::kFenced:
      return "fenced";
    case HostRole::kUnknown:
      return "unknown";
  }
  return "unknown";
}

HostRole role_from(const std::optional<std::string>& in_hot_standby,
                   const std::optional<std::string>& in_recovery) {
  if (in_hot_standby) {
    if (*in_hot_standby == "on") return HostRole::kStandby;
    if (*in_hot_standby == "off") return HostRole::kPrimary;
  }
  if (in_recovery) {
    if (*in_recovery == "t") return HostRole::kStandby;
    if (*in_recovery == "f") return HostRole::kPrimary;
  }
  return HostRole::kUnknown;
}

std::optional<uint32_t> timeline_from(std::string_view walfile_prefix) {
  if (walfile_prefix.size() != 8) return std::nullopt;
  uint32_t timeline = 0;
  for (char c : walfile_prefix) {
    uint32_t digit = 0;
    if (c >= '0' && c <= '9')
      digit = static_cast<uint32_t>(c - '0');
    else if (c >= 'A' && c <= 'F')
      digit = static_cast<uint32_t>(c - 'A' + 10);
    else if (c >= 'a' && c <= 'f')
      digit = static_cast<uint32_t>(c - 'a' + 10);
    else
      return std::nullopt;
    timeline = timeline * 16 + digit;
  }
  return timeline;
}

PrimaryChoice choose_primary(const std::vector<HostStanding>& hosts, int current,
                             uint32_t newest_seen) {
  PrimaryChoice choice;
  choice.newest_timeline = newest_seen;
  choice.fenced.assign(hosts.size(), false);
  for (const HostStanding& host : hosts)
    if (host.writable && host.timeline)
      choice.newest_timeline = std::max(choice.newest_timeline, *host.timeline);
  auto eligible = [&](size_t i) {
    return hosts[i].writable && hosts[i].timeline.value_or(0) == choice.newest_timeline;
  };
  if (current >= 0 && static_cast<size_t>(current) < hosts.size() &&
      eligible(static_cast<size_t>(current)))
    choice.primary = current;
  for (size_t i = 0; i < hosts.size() && choice.primary < 0; ++i)
    if (eligible(i)) choice.primary = static_cast<int>(i);
  for (size_t i = 0; i < hosts.size(); ++i)
    choice.fenced[i] = hosts[i].writable && static_cast<int>(i) != choice.primary;
  return choice;
}

TargetHealth::TargetHealth(std::vector<HostPort> hosts, bool roles_matter) {
  reset(std::move(hosts), roles_matter);
}

void TargetHealth::reset(std::vector<HostPort> hosts, bool roles_matter) {
  std::lock_guard lock(mutex_);
  roles_matter_ = roles_matter;
  hosts_.clear();
  for (auto& address : hosts) {
    Host host;
    host.address = std::move(address);
    host.status.description = "The proxy has not logged in to the database yet.";
    hosts_.push_back(std::move(host));
  }
  if (hosts_.empty()) hosts_.emplace_back();
  latest_ = 0;
  newest_timeline_ = 0;
  primary_.store(-1);
  fenced_mask_.store(0);
  fence_epoch_.fetch_add(1);
}

void TargetHealth::record(size_t index, TargetHealthStatus status, HostRole role,
                          std::optional<uint32_t> timeline, Clock::time_point at) {
  std::lock_guard lock(mutex_);
  if (index >= hosts_.size()) return;
  Host& host = hosts_[index];
  const std::string name = hosts_.size() > 1 ? " " + host.address.label() : std::string();
  if (status.state != host.status.state || status.reason != host.status.reason ||
      (roles_matter_ && role != host.role)) {
    if (status.state == TargetState::kAvailable)
      spdlog::info("target health{}: AVAILABLE{} ({})", name,
                   roles_matter_ ? ", " + std::string(to_string(role)) : std::string(),
                   status.description);
    else
      spdlog::warn("target health{}: {} {} ({})", name, to_string(status.state),
                   to_string(status.reason), status.description);
  }
  // A failed login leaves what is known of the role unknown; a login that did not get as far as
  // learning it but did log in (53300) keeps the last.
  if (role != HostRole::kUnknown || status.state != TargetState::kAvailable) {
    host.role = role;
    host.timeline = role == HostRole::kPrimary ? timeline : std::nullopt;
  }
  host.status = std::move(status);
  host.checked_at = at;
  latest_ = index;
  if (roles_matter_) decide_primary();
}

void TargetHealth::decide_primary() {
  std::vector<HostStanding> standings;
  for (const Host& host : hosts_)
    standings.push_back(
        {host.status.state == TargetState::kAvailable && host.role == HostRole::kPrimary,
         host.timeline});
  const int was = primary_.load(std::memory_order_relaxed);
  const PrimaryChoice choice = choose_primary(standings, was, newest_timeline_);
  newest_timeline_ = choice.newest_timeline;
  auto label = [this](int i) {
    return i < 0 ? std::string("unknown") : hosts_[static_cast<size_t>(i)].address.label();
  };
  if (choice.primary != was) {
    primary_.store(choice.primary, std::memory_order_relaxed);
    fence_epoch_.fetch_add(1, std::memory_order_relaxed);
    if (choice.primary >= 0)
      spdlog::info("primary is now {} (was {})", label(choice.primary), label(was));
    else  // Not there, demoted or fenced: the next login looks for the primary among all hosts.
      spdlog::warn("primary {} is gone: looking for the primary among the hosts", label(was));
  }
  uint64_t mask = 0;
  bool newly_fenced = false;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    Host& host = hosts_[i];
    const bool fenced = choice.fenced[i];
    if (fenced) {
      if (i < 64) mask |= uint64_t{1} << i;
      const std::string own =
          host.timeline ? " on timeline " + std::to_string(*host.timeline) : std::string();
      if (host.timeline.value_or(0) < newest_timeline_)
        host.fenced_because =
            "Split brain: this host accepts writes" + own + ", but " +
            (choice.primary >= 0 ? "another host (" + label(choice.primary) + ")"
                                 : std::string("another host")) +
            " with a newer timeline (" + std::to_string(newest_timeline_) +
            (choice.primary >= 0 ? ") accepts writes"
                                 : ") has accepted writes (it does not answer now)") +
            "; the proxy sends it no read-write traffic.";
      else
        host.fenced_because = "Split brain: this host accepts writes" + own + ", and so does " +
                              label(choice.primary) +
                              " on the same timeline, which the proxy uses; the proxy sends "
                              "this host no read-write traffic.";
    }
    if (fenced == host.fenced) continue;
    host.fenced = fenced;
    newly_fenced = newly_fenced || fenced;
    if (fenced) {
      spdlog::error("split brain: {} fenced (primary: {}). {}", host.address.label(),
                    label(choice.primary), host.fenced_because);
    } else {
      spdlog::info("{} is no longer fenced ({})", host.address.label(),
                   static_cast<int>(i) == choice.primary ? "it is the primary"
                                                         : "it no longer accepts writes");
    }
  }
  fenced_mask_.store(mask, std::memory_order_relaxed);
  // After the mask: a worker that sees the new epoch sees the host fenced.
  if (newly_fenced) fence_epoch_.fetch_add(1, std::memory_order_release);
}

TargetHealth::HostReport TargetHealth::report_of(const Host& host) const {
  HostReport report{host.address, host.role, host.status, host.checked_at, host.timeline};
  if (host.fenced) {
    report.role = HostRole::kFenced;
    report.status = {TargetState::kUnavailable, TargetHealthReason::kInvalidReplicationState,
                     host.fenced_because};
  }
  return report;
}

TargetHealthStatus TargetHealth::status() const {
  std::lock_guard lock(mutex_);
  if (!roles_matter_) return hosts_.front().status;
  if (const int p = primary(); p >= 0) return hosts_[static_cast<size_t>(p)].status;
  bool any_checked = false;
  std::vector<std::string> standbys;
  std::string fenced;
  for (const Host& host : hosts_) {
    any_checked = any_checked || host.checked_at.has_value();
    if (host.status.state == TargetState::kAvailable && host.role == HostRole::kStandby)
      standbys.push_back(host.address.label());
    if (host.fenced && fenced.empty()) fenced = host.address.label() + ": " + host.fenced_because;
  }
  if (!any_checked) return hosts_.front().status;  // REGISTERING
  if (!fenced.empty())
    return {TargetState::kUnavailable, TargetHealthReason::kInvalidReplicationState,
            "No host may take writes now. " + fenced};
  if (!standbys.empty()) {
    std::string list;
    for (const auto& s : standbys) list += (list.empty() ? "" : ", ") + s;
    return {
        TargetState::kUnavailable, TargetHealthReason::kInvalidReplicationState,
        "No host is the primary: " + list + (standbys.size() > 1 ? " are" : " is") + " a standby."};
  }
  TargetHealthStatus latest = hosts_[latest_].status;
  if (latest.state == TargetState::kAvailable) {
    // Logged in but not known as the primary (no role learned yet): not writable yet.
    latest.state = TargetState::kUnavailable;
    latest.reason = TargetHealthReason::kInvalidReplicationState;
    latest.description = "No host is known to be the primary yet.";
  }
  return latest;
}

std::optional<TargetHealth::Clock::time_point> TargetHealth::checked_at() const {
  std::lock_guard lock(mutex_);
  std::optional<Clock::time_point> latest;
  for (const Host& host : hosts_)
    if (host.checked_at && (!latest || *host.checked_at > *latest)) latest = host.checked_at;
  return latest;
}

std::vector<size_t> TargetHealth::login_order() const {
  std::lock_guard lock(mutex_);
  std::vector<size_t> order;
  const int p = primary();
  for (size_t i = 0; i < hosts_.size(); ++i)
    if (!hosts_[i].checked_at && static_cast<int>(i) != p) order.push_back(i);
  if (p >= 0) order.push_back(static_cast<size_t>(p));
  // 0: answered, 1: did not, 2: fenced (a login there is only worth it to see it change).
  auto group = [this](size_t i) {
    return hosts_[i].fenced ? 2 : hosts_[i].status.state != TargetState::kUnavailable ? 0 : 1;
  };
  for (int g : {0, 1, 2})
    for (size_t i = 0; i < hosts_.size(); ++i)
      if (static_cast<int>(i) != p && hosts_[i].checked_at && group(i) == g) order.push_back(i);
  return order;
}

bool TargetHealth::any_unchecked() const {
  std::lock_guard lock(mutex_);
  for (const Host& host : hosts_)
    if (!host.checked_at) return true;
  return false;
}

std::vector<size_t> TargetHealth::report_order() const {
  std::vector<size_t> order;
  const int p = primary();
  if (p >= 0) order.push_back(static_cast<size_t>(p));
  // Without a primary an available standby does not go first: the first entry speaks for the
  // target, and the target takes no writes then.
  auto standby = [this](size_t i) {
    return roles_matter_ && hosts_[i].status.state == TargetState::kAvailable &&
           (hosts_[i].role == HostRole::kStandby || hosts_[i].fenced);
  };
  for (bool standbys : {false, true})
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (static_cast<int>(i) == p) continue;
      if (p < 0 ? standby(i) == standbys : !standbys) order.push_back(i);
    }
  return order;
}

std::vector<TargetHealth::HostReport> TargetHealth::report() const {
  std::lock_guard lock(mutex_);
  std::vector<HostReport> hosts;
  for (size_t i : report_order()) hosts.push_back(report_of(hosts_[i]));
  return hosts;
}

std::string TargetHealth::render_json() const {
  std::lock_guard lock(mutex_);
  boost::json::array targets;
  for (size_t i : report_order()) {
    const HostReport host = report_of(hosts_[i]);
    boost::json::object entry;
    entry["host"] = host.address.host;
    entry["port"] = host.address.port;
    entry["role"] = to_string(host.role);
    entry["state"] = to_string(host.status.state);
    entry["reason"] = to_string(host.status.reason);
    entry["description"] = host.status.description;
    if (host.checked_at)
      entry["checked_at"] = utc_timestamp(*host.checked_at);
    else
      entry["checked_at"] = nullptr;
    if (host.timeline)
      entry["timeline"] = *host.timeline;
    else
      entry["timeline"] = nullptr;
    targets.push_back(std::move(entry));
  }
  boost::json::object body;
  body["targets"] = std::move(targets);
  return boost::json::serialize(body);
}

std::string TargetHealth::render_prometheus() const {
  // Host names come from the configuration; escaped as the exposition format wants anyway.
  auto label = [](std::string_view text) {
    std::string out;
    for (char c : text) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    return out;
  };
  std::lock_guard lock(mutex_);
  std::string out =
      "# HELP sluice_target_available 1 while the proxy can log in to the host (AVAILABLE), else "
      "0; by host, role (primary, standby, unknown), state and reason as RDS names them.\n"
      "# TYPE sluice_target_available gauge\n";
  bool split_brain = false;
  for (size_t i : report_order()) {
    const HostReport host = report_of(hosts_[i]);
    split_brain = split_brain || host.role == HostRole::kFenced;
    out += "sluice_target_available{host=\"" + label(host.address.host) + "\",port=\"" +
           std::to_string(host.address.port) + "\",role=\"" + std::string(to_string(host.role)) +
           "\",state=\"" + std::string(to_string(host.status.state)) + "\",reason=\"" +
           std::string(to_string(host.status.reason)) + "\"} " +
           (host.status.state == TargetState::kAvailable ? "1" : "0") + "\n";
  }
  out +=
      "# HELP sluice_target_split_brain 1 while a host other than the primary accepts writes "
      "(it is fenced: role \"fenced\" above), else 0.\n"
      "# TYPE sluice_target_split_brain gauge\n"
      "sluice_target_split_brain " +
      std::string(split_brain ? "1" : "0") +
      "\n"
      "# HELP sluice_target_fenced_connections_cut_total Lent server connections cut because "
      "their host was fenced (their clients saw a server loss).\n"
      "# TYPE sluice_target_fenced_connections_cut_total counter\n"
      "sluice_target_fenced_connections_cut_total " +
      std::to_string(connections_cut_.load(std::memory_order_relaxed)) + "\n";
  return out;
}

}  // namespace sluice::proxy
