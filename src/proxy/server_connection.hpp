// One connection from the proxy to PostgreSQL: login, setup, and the state the pool needs to
// decide whether it may be lent to a client.
//
// Its life is an explicit state, changed only by set_state() (which logs and counts every
// transition), and only by the pool and the lease: a connection never calls the pool.
//
//   opening ──► lent ◄──► pinned          (a lease: ServerLease)
//      │        ▲  │
//      ▼        │  ▼
//   closed ◄── idle ◄── cancelling        (returned while its cancel request was in flight)
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pgwire/codec.hpp"
#include "proxy/context.hpp"
#include "proxy/prepared_statements.hpp"
#include "proxy/server_state.hpp"
#include "proxy/session_settings.hpp"
#include "proxy/target_health.hpp"
#include "proxy/transport.hpp"

namespace sluice::proxy {

struct Credential;
struct StagedPassword;
class Pool;

// Server messages can be large (wide rows); PostgreSQL's own ceiling is 1 GiB.
inline constexpr size_t kMaxServerMessage = 1024u * 1024u * 1024u;

// A failure to reach or use the server, shaped as the ErrorResponse a client would get.
struct ServerError {
  std::string severity = "ERROR";
  std::string sqlstate = "08006";
  std::string message;
  // Worth retrying until the borrow timeout (refused, starting up, too many connections).
  bool transient = false;
};

class ServerConnection : public std::enable_shared_from_this<ServerConnection> {
 public:
  using Clock = std::chrono::steady_clock;

  ServerConnection(ProxyContext& ctx, Pool& pool, uint64_t id);
  // An idle logged-in connection moving from one worker to another: its socket, TLS session and
  // what the proxy knows of the server session, its prepared statements included (their names
  // come from the registry all workers share).
  struct Moved {
    Transport::Detached transport;
    StatementCache statements{0};
    pgwire::BackendKeyData backend_key;
    std::map<std::string, std::string> parameters;
    Settings applied;
    std::optional<int> server_max_connections;
    uint64_t generation = 0;
    bool opened = false;  // counted in database_connections (by whichever worker holds it)
    size_t host_index = 0;
    HostPort host;
    std::chrono::steady_clock::time_point opened_at;
  };
  // Takes over a connection another worker moved out (state opening: the pool lends it).
  ServerConnection(ProxyContext& ctx, Pool& pool, uint64_t id, Moved moved);
  ~ServerConnection();
  // Hands this idle connection's socket and session over; it is closed here afterwards.
  Moved move_out();

  // Connects, negotiates TLS, logs in as the pool's user, runs init_query and reads
  // max_connections. Gives up at `deadline`. The outcome goes to the target's health.
  // With [target] hosts, only a primary will do: the known primary is tried first, then the
  // other hosts in their order; a standby's login is closed at once (never lent). When no host
  // is the primary (a failover under way) the error is transient, so the pool retries until the
  // client's borrow deadline.
  // A login that finds a primary is kept only if that host is the one read-write traffic goes
  // to (TargetHealth decides: the newest timeline wins, see choose_primary) and every host has
  // been checked once, so a proxy started beside a split brain never writes to the stale side.
  awaitable<std::optional<ServerError>> open(Clock::time_point deadline);
  // The probe's look at one host of [target] hosts: a login whose verdict, role and timeline go
  // to the target's health; the caller closes the connection after it.
  awaitable<void> check_host(size_t index, Clock::time_point deadline);
  // Cuts the connection while it is lent (its host was fenced): the lease's next read or write
  // fails as when the server goes away, and it is closed when it comes back.
  void cut();

  // Makes the session's settings equal `wanted` (one round trip, only when they differ).
  // On an error from the server the settings are unchanged (the batch runs as one
  // implicit transaction) and the error is returned.
  awaitable<std::optional<ServerError>> apply_settings(const Settings& wanted);

  // Reads back what SET, RESET and set_config() left in this session (settings whose source is
  // the session), in one round trip, and records it as `applied`. Nullopt if the server failed.
  // Custom settings ("app.tenant") are not in pg_settings: those named in `custom_names` are
  // asked for by name.
  awaitable<std::optional<Settings>> read_session_settings(
      const std::vector<std::string>& custom_names);

  // While idle in the pool, any byte from the server means it is going away (admin shutdown,
  // crash). The poller records an edge on the idle socket; only then is it peeked at, so a
  // borrow of a quiet connection costs no system call; `look_now` peeks whatever the poller
  // reported.
  bool server_went_away(bool look_now = false);

  // The CancelRequest for whatever this connection runs, and where to send it (PostgreSQL wants
  // a separate connection); nothing when the server gave no key. PoolManager::cancel() sends it.
  struct CancelTarget {
    tcp::endpoint endpoint;
    std::string packet;
  };
  std::optional<CancelTarget> cancel_target() const;
  // Cancel requests sent and not yet taken by the server (kept by the pool): until then the
  // connection is not lent again, since a late signal must not cancel the next client's query.
  int cancels_in_flight = 0;

  ServerState state() const { return state_; }
  // The one place a connection changes state: logs the transition and keeps the count of
  // connections in each state (sluice_database_connections_in_state).
  // Inline: twice per transaction (lent, idle again).
  void set_state(ServerState next) {
    if (next == state_) return;
    auto& by_state = ctx_.metrics.database_connections_in_state;
    by_state[static_cast<size_t>(state_)].sub(1);
    by_state[static_cast<size_t>(next)].add(1);
    if (state_ != ServerState::kClosed) --pool_states_[static_cast<size_t>(state_)];
    if (next != ServerState::kClosed) ++pool_states_[static_cast<size_t>(next)];
    // debug_logging, not spdlog's level: asking the logger costs more than the rest of this.
    if (ctx_.config.debug_logging) log_state_change(next);
    state_ = next;
  }
  // Closes the socket (state closed). Only the pool calls this.
  void close();

  Transport& transport() { return *transport_; }
  // A connection made by a test's connector may have no socket, or one the connector connected.
  void adopt_transport(std::unique_ptr<Transport> transport) { transport_ = std::move(transport); }
  ReadBuffer& inbound() { return inbound_; }
  Pool& pool() { return pool_; }
  uint64_t id() const { return id_; }
  // When this worker took it (opened, or moved here), for the admin console.
  std::chrono::system_clock::time_point since() const { return since_; }
  uint32_t backend_pid() const { return backend_key_.process_id; }
  // Which of Config::servers() this connection is logged in to, and that server.
  size_t host_index() const { return host_index_; }
  const HostPort& host() const { return host_; }

  // Must not be lent again (lost, failed, state unknown): closed when it comes back.
  bool broken = false;
  // The configuration generation it was opened under (ServerBudget::generation): one from
  // before a reload that changed the target or init_query is closed instead of reused.
  uint64_t generation = 0;
  // Logged in: counted in database_connections until destroyed.
  bool opened = false;
  Clock::time_point last_used;
  Clock::time_point lent_at;  // set when lent, for the adaptive limit's latency samples
  Clock::time_point opened_at = Clock::now();     // for server_lifetime
  std::map<std::string, std::string> parameters;  // as last reported by ParameterStatus
  Settings applied;                               // what our SETs made of this session
  StatementCache statements;                      // named statements prepared here
  std::optional<int> server_max_connections;

 private:
  // One login to servers()[index], recorded in the target's health; `role` is what it learned
  // (a standby's login is not finished: it is refused with a transient error).
  awaitable<std::optional<ServerError>> attempt(size_t index, Clock::time_point deadline,
                                                bool roles_matter, HostRole& role);
  // attempt() without the health bookkeeping; `outcome` says how far it got.
  awaitable<std::optional<ServerError>> establish(Clock::time_point deadline, LoginOutcome& outcome,
                                                  bool roles_matter, HostRole& role);
  awaitable<std::optional<ServerError>> login(const Credential& cred,
                                              const StagedPassword& password);
  // `ask_role`: also SELECT pg_is_in_recovery() (servers before 14 do not report
  // in_hot_standby) and a primary's timeline, the answers going to `in_recovery` and
  // `timeline_`. In the same write: no round trip more.
  awaitable<std::optional<ServerError>> run_setup(bool ask_role,
                                                  std::optional<std::string>& in_recovery);
  // Counts a login that open() keeps (database_connections and the like).
  void count_opened();
  // One simple-protocol query of the proxy's own, read to its ReadyForQuery. Status 0 means the
  // connection was lost; ParameterStatus updates `parameters`.
  struct QueryOutcome {
    char status = 0;
    std::optional<ServerError> error;  // the first one
    std::vector<std::vector<std::optional<std::string>>> rows;
    bool malformed = false;
  };
  awaitable<QueryOutcome> simple_query(std::string_view sql);
  awaitable<bool> read_frame(pgwire::Frame& frame);
  void consume_frame(const pgwire::Frame& frame) { inbound_.consume(frame.wire_size()); }

  void log_state_change(ServerState next) const;
  ProxyContext& ctx_;
  Pool& pool_;
  ServerStateCounts& pool_states_;  // the pool's count of connections by state
  uint64_t id_;
  std::chrono::system_clock::time_point since_ = std::chrono::system_clock::now();
  size_t host_index_ = 0;
  HostPort host_;
  std::optional<uint32_t> timeline_;  // a primary's, learned at the latest login
  uint64_t attempts_ = 0;             // logins tried: a late watchdog must not close the next one
  std::unique_ptr<Transport> transport_;
  ReadBuffer inbound_;
  pgwire::BackendKeyData backend_key_;
  ServerState state_ = ServerState::kOpening;
};

// Turns an ErrorResponse body from the server into a ServerError.
ServerError server_error_from(const pgwire::ErrorFields& fields);

}  // namespace sluice::proxy
