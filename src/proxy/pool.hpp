// Server connection pools: one per (database, user), under one cap on all server
// connections, computed from the server's own max_connections. Each worker thread has its own
// PoolManager; the cap is shared by all of them through a ServerBudget.
//
// Waiting clients queue FIFO, oldest first across pools. A released connection goes straight to
// the oldest waiter if that one is of its pool; if an older one waits in another pool at the cap,
// the connection is closed so that pool may open one. Idle connections are LIFO, so the cold ones
// age out. Below the cap, an adaptive limit may hold clients back (concurrency_limit.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/concurrency_limit.hpp"
#include "proxy/context.hpp"
#include "proxy/lease.hpp"
#include "proxy/server_budget.hpp"
#include "proxy/server_connection.hpp"
#include "proxy/wakeup.hpp"

namespace sluice::proxy {

struct Credential;

struct Waiter {
  Waiter(executor ex, std::chrono::steady_clock::time_point deadline)
      : wakeup(std::move(ex)), deadline(deadline) {}
  Wakeup wakeup;
  std::chrono::steady_clock::time_point deadline;  // enforced by expire_waiters()
  uint64_t order = 0;
  std::shared_ptr<ServerConnection> handed;        // a released connection, given directly
  bool slot_granted = false;                       // room under the cap, reserved for this waiter
  std::chrono::steady_clock::time_point enqueued;  // for the adaptive limit's valve
};

class Pool {
 public:
  Pool(std::string database, std::shared_ptr<const Credential> credential)
      : database(std::move(database)), credential(std::move(credential)) {}
  const std::string database;
  // What new server connections log in with. A reload that changes the user's secret puts the
  // new one here (connections already open stay logged in as they are).
  std::shared_ptr<const Credential> credential;
  // Connections by state, closed ones not counted (SHOW POOLS).
  ServerStateCounts servers{};
  std::vector<std::shared_ptr<ServerConnection>> idle;
  std::deque<std::shared_ptr<Waiter>> waiters;
  size_t open = 0;  // opened or opening, idle or lent
  // What a client that asked for no settings is told at login (the server's defaults).
  std::optional<std::map<std::string, std::string>> default_parameters;
  // Settings already accepted by the server, keyed by settings_key(), with what the server
  // reported once they were applied. Bounded.
  std::unordered_map<std::string, std::map<std::string, std::string>> validated_settings;
  // For the admin console (SHOW STATS): since start the borrows returned, the queries, the time
  // lent and the time clients waited to borrow.
  struct Stats {
    uint64_t transactions = 0;
    uint64_t queries = 0;
    uint64_t lent_us = 0;
    uint64_t wait_us = 0;
  } stats;
};

// A connection one worker asks another for (fetch_idle_elsewhere): `moved` is set, or not if
// the other had none to spare, and `done` is notified on the asking worker's thread.
struct IdleHandoff {
  explicit IdleHandoff(executor ex) : done(std::move(ex)) {}
  Wakeup done;
  std::optional<ServerConnection::Moved> moved;
};

struct Borrowed {
  ServerLease lease;
  std::optional<ServerError> error;  // set when no connection could be had
};

// How the pool reaches the server. The real one (NetworkConnector) logs in over the network and
// sends cancel requests on their own connections; unit tests substitute one that needs no server.
class ServerConnector {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~ServerConnector() = default;
  // Connects and logs `connection` in (ServerConnection::open).
  virtual awaitable<std::optional<ServerError>> open(ServerConnection& connection,
                                                     Clock::time_point deadline) = 0;
  // Asks the server to cancel what `connection` runs; `done` runs once the server has taken the
  // request (or the attempt gave up).
  virtual void cancel(const std::shared_ptr<ServerConnection>& connection,
                      std::function<void()> done) = 0;
};

// How acquire() goes about it. Clients use the defaults; the health probe wants the outcome of
// one login, and a fresh login while the target's health is in doubt.
struct AcquireOptions {
  // Retry a login that failed for a passing reason (refused, starting up) until the deadline.
  bool retry_logins = true;
  bool fresh_login = false;  // pass over idle connections
};

// The connector that logs in over the network (server_connector.cpp).
std::unique_ptr<ServerConnector> make_network_connector();

class PoolManager {
 public:
  using Clock = std::chrono::steady_clock;
  // `connector` null: the network (tests pass their own, which must outlive the manager).
  explicit PoolManager(ProxyContext& ctx, ServerConnector* connector = nullptr);
  ~PoolManager();

  Pool& pool_for(const std::string& database, std::shared_ptr<const Credential> credential);

  // An idle connection of `pool`, or an empty lease. Never suspends: the common case of a borrow.
  // `now`: a clock reading the caller has anyway (when the request arrived), for the lent time.
  ServerLease take_idle(Pool& pool, Clock::time_point now = Clock::now());
  // A connection for `pool`, waiting in line until `deadline` if the cap is reached. `woken`: a
  // waiter that joined the line with join_line() and woke without a connection (room was
  // granted to it, or its deadline passed): acquire() goes on from there.
  awaitable<Borrowed> acquire(Pool& pool, Clock::time_point deadline, AcquireOptions options = {},
                              std::shared_ptr<Waiter> woken = nullptr);
  // A client's common wait at the cap, without acquire()'s coroutine frame and Waiter
  // allocation (a fifth of the borrows under load wait, and those two cost more than the rest
  // of the transaction's borrowing). Call after take_idle() found nothing: when neither room
  // under the cap nor an idle connection elsewhere can be had now, `waiter` (kept by its owner
  // from one wait to the next) joins the line and true is returned; the caller co_awaits
  // `waiter->wakeup.wait()`, then calls leave_line(). False: nothing joined; acquire() borrows.
  bool join_line(Pool& pool, const std::shared_ptr<Waiter>& waiter, Clock::time_point deadline);
  // After a wake in line: out of the line, with the connection handed to the waiter, if one was
  // (else an empty lease: acquire(pool, deadline, {}, waiter) goes on).
  ServerLease leave_line(Pool& pool, const std::shared_ptr<Waiter>& waiter);

  // Cancels what the leased connection runs now. Until the server has taken the request the
  // connection is parked (state cancelling) if it comes back: never lent while a late signal
  // could still cancel the next client's query.
  void cancel(const ServerLease& lease);

  // A lent connection's server went away: a restart or a crash takes every connection to it,
  // and their ends reach the poller one by one. For a while each idle connection is looked at
  // before it is lent, so that new work waits for the server instead of getting a dead one.
  void server_lost() { look_at_idle_until_ = ctx_.coarse_now + kLookAtIdleAfterLoss; }

  // Drops idle connections the server closed, and closes idle connections unused for the
  // configured time while more than the idle allowance are open. Called periodically.
  void reap_idle(Clock::time_point now);
  // The health probe's look at one of [target] hosts (not the primary: split brain shows there):
  // a login under the cap (skipped at it), recorded in the target's health, then closed.
  awaitable<void> check_host(Pool& pool, size_t host, Clock::time_point deadline);
  // Wakes the waiters whose borrow deadline has passed (they then report the timeout).
  // Called periodically: a timer per waiter would cost more on every borrow.
  void expire_waiters(Clock::time_point now);
  // Lets through a client the adaptive limit has held back too long (raising the limit).
  // Called every few milliseconds when adaptive_concurrency is on.
  void release_held_back(Clock::time_point now);
  // After a reload (on this worker's thread, with ctx.config and ctx.secrets already new):
  // pools take their users' new secrets, the cap and the adaptive limit follow the new
  // settings, and connections of an older generation are closed.
  void reconfigure();
  // Closes every idle connection (shutdown).
  void close_all_idle();

  // Another worker's clients wait at the cap: one idle connection of ours moves there, if we
  // have one and no client of ours waits.
  void move_one_idle_to(size_t member);
  // Takes over a connection another worker moved here, as if it came back from a client.
  void adopt(const std::string& database, std::shared_ptr<const Credential> credential,
             ServerConnection::Moved moved);
  // Another worker gave back room: our waiters may have it.
  void room_freed();

  // What the server reports to a new session of `pool`'s database and user, if known (by this
  // worker or another); and learning it.
  const std::map<std::string, std::string>* default_parameters(Pool& pool);
  void learn_default_parameters(Pool& pool, const std::map<std::string, std::string>& parameters);

  // PAUSE (admin console): nothing is lent until resume(); borrowers wait in line (their borrow
  // timeout runs) and connections coming back rest idle. Draining overrides it.
  void pause() { paused_ = true; }
  void resume();
  // Connections lent or pinned now (PAUSE is done when every worker has none).
  size_t borrowed() const;
  // Every pool of this worker (the admin console's SHOW commands).
  template <class F>
  void for_each_pool(F&& f) const {
    for (const auto& [key, pool] : pools_) f(*pool);
  }

  // The cap on all workers' connections together.
  size_t cap() const { return budget_.cap(); }
  size_t lent() const { return lent_; }
  // This worker's connections (open, opening, or reserved for a waiter).
  size_t total() const { return total_; }
  // The adaptive limit on lent connections, or the cap when adaptive_concurrency is off.
  size_t concurrency_limit() const { return limiter_ ? limiter_->limit() : cap(); }

 private:
  friend class ServerLease;
  // The lease's accounting (see ServerLease).
  void pin(ServerConnection& connection);
  // `may_move` false: a connection just moved here from another worker is not sent on again.
  void give_back(std::shared_ptr<ServerConnection> connection, bool reusable, bool may_move = true);
  void cancel_done(const std::shared_ptr<ServerConnection>& connection);
  ServerLease lease(std::shared_ptr<ServerConnection> connection) {
    return ServerLease(*this, std::move(connection));
  }
  std::shared_ptr<ServerConnection> take_idle_connection(Pool& pool,
                                                         Clock::time_point now = Clock::now());
  // Not to be lent again: older than server_lifetime, or (with [target] hosts) logged in to a
  // host that is no longer the primary.
  bool retired(const ServerConnection& connection) const;

  struct Opened {
    std::shared_ptr<ServerConnection> connection;
    std::optional<ServerError> error;
  };
  awaitable<Opened> open_new(Pool& pool, Clock::time_point deadline);
  // Puts `waiter` at the end of `pool`'s line (room freed meanwhile is granted at once).
  void enqueue(Pool& pool, const std::shared_ptr<Waiter>& waiter, Clock::time_point now);
  // The adaptive limit holds clients back while the lent connections seem stuck on their
  // clients rather than on the server: then it is raised instead.
  void raise_limit_if_stuck();
  void forget(const std::shared_ptr<ServerConnection>& connection);
  void grant_slots();
  void grant(Waiter& waiter);
  bool holds_idle() const;
  // Tells the budget since when this worker's oldest client waits, if one does that this worker
  // could lend a connection to now (not one held back by the adaptive limit).
  void note_waiting();
  // Idle connections came (+1) or went (-1): the budget tells other workers where to ask.
  void note_idle(int change);
  // Under the cap with no idle connection of its own: one another worker has to spare, moved
  // here (null if none).
  awaitable<std::shared_ptr<ServerConnection>> fetch_idle_elsewhere(Pool& pool);
  // A connection another worker moved out, on this worker's loop (null if that failed).
  std::shared_ptr<ServerConnection> take_over(Pool& pool, ServerConnection::Moved moved);
  // The other side of that, on the giving worker.
  void give_idle(const std::string& database, const std::string& user,
                 const std::shared_ptr<IdleHandoff>& handoff);
  // Moves an idle connection to worker `member`, which takes it over as if it came back there.
  void move_to(std::shared_ptr<ServerConnection> connection, size_t member);
  // Plain pointers (the queues own the waiters): no reference count to touch on every release.
  static Waiter* first_unserved(Pool& pool);
  // The oldest unserved waiter across pools (but `except`), and its pool.
  std::pair<Waiter*, Pool*> oldest_unserved(const Pool* except = nullptr);
  bool close_idle_elsewhere(const Pool& except);
  void update_cap(int server_max_connections);
  // The cap changed (here or in another worker): the limiter's ceiling and the metric follow.
  void follow_cap();
  // Room under the shared cap for one more connection of this worker, and its return.
  bool take_room();
  void give_room();
  // Paused (and not draining): nothing may be lent.
  bool holding() const { return paused_ && !ctx_.draining; }
  // Lent connections (and slots granted for lending) have reached the adaptive limit, or the
  // pools are paused.
  bool at_limit() const {
    return holding() || (limiter_ && lent_ + pending_grants_ >= limiter_->limit());
  }
  // A connection the pool may not lend now (paused) waits idle.
  void rest(std::shared_ptr<ServerConnection> connection);
  void lend(ServerConnection& connection, Clock::time_point now = Clock::now());
  void publish_limit();
  // No lent connection came back for several borrow latencies (adaptive limit only).
  bool lent_connections_stuck(Clock::time_point now) const;
  // Serves waiters the adaptive limit held back, now that it allows more.
  void admit_waiters();

  ProxyContext& ctx_;
  std::unique_ptr<ServerConnector> own_connector_;
  ServerConnector* connector_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Pool>> pools_;
  size_t queued_waiters_ = 0;                 // in all pools' queues, served or not
  std::unique_ptr<ServerBudget> own_budget_;  // when the context has none (one worker, tests)
  ServerBudget& budget_;
  size_t member_ = 0;  // this worker's index in budget_
  size_t total_ = 0;
  size_t idle_count_ = 0;    // idle connections in all pools
  size_t followed_cap_ = 0;  // the cap the limiter and the metric were last given
  size_t idle_allowance_ = 0;
  uint64_t next_waiter_order_ = 0;
  size_t lent_ = 0;
  size_t pending_grants_ = 0;  // slots granted to waiters not yet running (adaptive limit only)
  std::optional<ConcurrencyLimit> limiter_;
  std::optional<int> server_max_connections_;  // as last reported at a login
  uint64_t pool_generation_ = 0;      // the generation the pools' learned parameters are of
  Clock::time_point last_release_{};  // of a lent connection (adaptive limit only)
  bool paused_ = false;
  static constexpr std::chrono::seconds kLookAtIdleAfterLoss{2};
  Clock::time_point look_at_idle_until_{};              // see server_lost()
  std::optional<Clock::time_point> published_waiting_;  // what note_waiting() told the budget
};

}  // namespace sluice::proxy
