// The target's health as RDS Proxy reports it (describe-db-proxy-targets' TargetHealth), judged
// from every login the proxy makes to the server: for clients and for the active probe alike.
// With [target] hosts, per host, with each host's role (primary or standby) and which host is the
// primary now: the one read-write traffic goes to.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config.hpp"

namespace sluice::proxy {

enum class TargetState { kRegistering, kAvailable, kUnavailable };
// INVALID_REPLICATION_STATE: every host that answered is a standby (no primary to write to).
enum class TargetHealthReason {
  kNone,
  kUnreachable,
  kConnectionFailed,
  kAuthFailure,
  kInvalidReplicationState
};
// What the latest login learned of a host: kUnknown until one got that far. kFenced is never
// learned, only reported: a primary the proxy keeps read-write traffic away from (split brain).
enum class HostRole { kUnknown, kPrimary, kStandby, kFenced };

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
std::string_view to_string(HostRole role);              // "primary", "standby", "unknown"

// A server's role from what its login told: PostgreSQL 14+ reports in_hot_standby ("on" on a
// standby) as a ParameterStatus at login and again when a standby is promoted; older servers
// do not, and pg_is_in_recovery() ("t"/"f") must be asked. Unknown if neither says.
HostRole role_from(const std::optional<std::string>& in_hot_standby,
                   const std::optional<std::string>& in_recovery);

// A primary's timeline from the first 8 hex digits of pg_walfile_name(pg_current_wal_lsn()):
// any user may call both (checked on PostgreSQL 15), and it is the timeline WAL is written on
// now. pg_control_checkpoint() (also callable by any user there) names the latest checkpoint's,
// which may trail a promotion until its checkpoint is done. Nullopt unless 8 hex digits.
std::optional<uint32_t> timeline_from(std::string_view walfile_prefix);

// Split brain: which of the hosts that accept writes takes read-write traffic. Pure, for tests.
struct HostStanding {
  bool writable = false;             // the latest login worked and found a primary
  std::optional<uint32_t> timeline;  // that primary's; unknown counts as older than any known
};
struct PrimaryChoice {
  int primary = -1;              // -1: none may take writes
  uint32_t newest_timeline = 0;  // the newest any primary has had, `newest_seen` included
  std::vector<bool> fenced;      // per host: writable, yet kept away from read-write traffic
};
// The newest timeline wins: a promoted standby starts a new one, so a primary on an older one
// is a former primary that came back (restarted beside its promoted standby). `newest_seen`
// remembers the newest timeline ever seen, so such a host stays fenced while the promoted one
// is down. On a tie (two unrelated databases) `current`, the primary in use, is kept as long
// as it is writable; without it, the first writable host in configured order.
PrimaryChoice choose_primary(const std::vector<HostStanding>& hosts, int current,
                             uint32_t newest_seen);

// The verdict of the latest login to each host, whichever worker made it. Locked: it changes at
// server logins and is read by the probe and the metrics endpoint, never per message; which host
// is the primary is an atomic, read at every borrow.
class TargetHealth {
 public:
  using Clock = std::chrono::system_clock;

  // `hosts`: Config::servers(). `roles_matter`: [target] hosts was given, so a host must be the
  // primary to be used and status() speaks for the cluster.
  explicit TargetHealth(std::vector<HostPort> hosts = {HostPort{"127.0.0.1", 5432}},
                        bool roles_matter = false);
  // A reload named other servers: their verdicts start over (logins to the old ones, still
  // under way, are ignored by index when out of range, and their connections are retired).
  void reset(std::vector<HostPort> hosts, bool roles_matter);
  // Logs only changes: a busy proxy logs in often. `role` and `timeline` (a primary's) are
  // what the login learned. With roles, decides the primary again (choose_primary) and fences
  // every other host that accepts writes (logged at ERROR).
  void record(size_t host, TargetHealthStatus status, HostRole role = HostRole::kUnknown,
              std::optional<uint32_t> timeline = std::nullopt, Clock::time_point at = Clock::now());
  void record(TargetHealthStatus status, Clock::time_point at = Clock::now()) {
    record(0, std::move(status), HostRole::kUnknown, std::nullopt, at);
  }
  // The target as a whole: the one host's verdict, or with roles the primary's; without a known
  // primary, UNAVAILABLE (INVALID_REPLICATION_STATE if only standbys answered).
  TargetHealthStatus status() const;
  std::optional<Clock::time_point> checked_at() const;

  // The host read-write traffic goes to, or -1 while none is known. Set by a login that found
  // a primary; cleared by one that found that host a standby or not there.
  int primary() const { return primary_.load(std::memory_order_relaxed); }
  size_t host_count() const { return hosts_.size(); }
  // Where a login looks for the primary: the hosts never checked yet (a primary on a newer
  // timeline may be among them), the known primary, then the hosts whose latest login worked
  // (a promoted standby is among them), then the rest, fenced hosts last, each group in
  // configured order, so that a host that stopped answering costs a login its time limit only
  // when nothing else is left to try.
  std::vector<size_t> login_order() const;
  // Some host has had no login yet: a primary found now may not be the newest.
  bool any_unchecked() const;
  // A host that accepts writes beside the primary (split brain): no read-write traffic goes to
  // it, its pooled connections are closed and lent ones cut. Lock-free: asked at every borrow.
  bool fenced(size_t host) const {
    return host < 64 && ((fenced_mask_.load(std::memory_order_relaxed) >> host) & 1u);
  }
  bool any_fenced() const { return fenced_mask_.load(std::memory_order_relaxed) != 0; }
  // Changes whenever a host is fenced: workers then cut their lent connections to it.
  uint64_t fence_epoch() const { return fence_epoch_.load(std::memory_order_acquire); }
  // Lent connections cut because their host was fenced
  // (sluice_target_fenced_connections_cut_total).
  void note_connections_cut(uint64_t n) {
    connections_cut_.fetch_add(n, std::memory_order_relaxed);
  }

  // {"targets":[{"host":…,"port":…,"role":…,"state":…,"reason":…,"description":…,
  // "checked_at":…}, …]}, one entry per host, the primary's first (the first entry speaks for the
  // target: sluice serve reads its state); checked_at is null until that host's first login.
  std::string render_json() const;
  // The same, as values (the admin console's SHOW TARGETS).
  // A fenced host is reported with role kFenced, UNAVAILABLE, INVALID_REPLICATION_STATE.
  struct HostReport {
    HostPort address;
    HostRole role = HostRole::kUnknown;
    TargetHealthStatus status;
    std::optional<Clock::time_point> checked_at;
    std::optional<uint32_t> timeline;  // a primary's (fenced or not)
  };
  std::vector<HostReport> report() const;
  // sluice_target_available{host=…,port=…,role=…,state=…,reason=…} 1 or 0, per host;
  // sluice_target_split_brain 1 while a host is fenced; sluice_target_fenced_connections_cut_total.
  std::string render_prometheus() const;

 private:
  struct Host {
    HostPort address;
    TargetHealthStatus status;  // of the latest login; a fenced host's login worked
    HostRole role = HostRole::kUnknown;
    std::optional<uint32_t> timeline;
    std::optional<Clock::time_point> checked_at;
    bool fenced = false;
    std::string fenced_because;  // the description reported while fenced
  };
  std::vector<size_t> report_order() const;  // under the lock
  void decide_primary();                     // under the lock
  HostReport report_of(const Host& host) const;
  mutable std::mutex mutex_;
  std::vector<Host> hosts_;
  bool roles_matter_;
  size_t latest_ = 0;             // the host of the latest login
  uint32_t newest_timeline_ = 0;  // the newest a primary has had since start or reset
  std::atomic<int> primary_{-1};
  std::atomic<uint64_t> fenced_mask_{0};
  std::atomic<uint64_t> fence_epoch_{0};
  std::atomic<uint64_t> connections_cut_{0};
};

}  // namespace sluice::proxy
