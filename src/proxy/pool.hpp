// Server connection pools: one per (database, user), under one cap on all server
// connections, computed from the server's own max_connections.
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
  Pool(std::string database, const Credential& credential)
      : database(std::move(database)), credential(credential) {}
  const std::string database;
  const Credential& credential;
  std::vector<std::shared_ptr<ServerConnection>> idle;
  std::deque<std::shared_ptr<Waiter>> waiters;
  size_t open = 0;  // opened or opening, idle or lent
  // What a client that asked for no settings is told at login (the server's defaults).
  std::optional<std::map<std::string, std::string>> default_parameters;
  // Settings already accepted by the server, keyed by settings_key(), with what the server
  // reported once they were applied. Bounded.
  std::unordered_map<std::string, std::map<std::string, std::string>> validated_settings;
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

  Pool& pool_for(const std::string& database, const Credential& credential);

  // An idle connection of `pool`, or an empty lease. Never suspends: the common case of a borrow.
  ServerLease take_idle(Pool& pool);
  // A connection for `pool`, waiting in line until `deadline` if the cap is reached.
  awaitable<Borrowed> acquire(Pool& pool, Clock::time_point deadline, AcquireOptions options = {});

  // Cancels what the leased connection runs now. Until the server has taken the request the
  // connection is parked (state cancelling) if it comes back: never lent while a late signal
  // could still cancel the next client's query.
  void cancel(const ServerLease& lease);

  // Drops idle connections the server closed, and closes idle connections unused for the
  // configured time while more than the idle allowance are open. Called periodically.
  void reap_idle(Clock::time_point now);
  // Wakes the waiters whose borrow deadline has passed (they then report the timeout).
  // Called periodically: a timer per waiter would cost more on every borrow.
  void expire_waiters(Clock::time_point now);
  // Lets through a client the adaptive limit has held back too long (raising the limit).
  // Called every few milliseconds when adaptive_concurrency is on.
  void release_held_back(Clock::time_point now);
  // Closes every idle connection (shutdown).
  void close_all_idle();

  size_t cap() const { return cap_; }
  size_t lent() const { return lent_; }
  size_t total() const { return total_; }
  // The adaptive limit on lent connections, or the cap when adaptive_concurrency is off.
  size_t concurrency_limit() const { return limiter_ ? limiter_->limit() : cap_; }

 private:
  friend class ServerLease;
  // The lease's accounting (see ServerLease).
  void pin(ServerConnection& connection);
  void give_back(std::shared_ptr<ServerConnection> connection, bool reusable);
  void cancel_done(const std::shared_ptr<ServerConnection>& connection);
  ServerLease lease(std::shared_ptr<ServerConnection> connection) {
    return ServerLease(*this, std::move(connection));
  }
  std::shared_ptr<ServerConnection> take_idle_connection(Pool& pool);

  struct Opened {
    std::shared_ptr<ServerConnection> connection;
    std::optional<ServerError> error;
  };
  awaitable<Opened> open_new(Pool& pool, Clock::time_point deadline);
  void forget(const std::shared_ptr<ServerConnection>& connection);
  void grant_slots();
  static std::shared_ptr<Waiter> first_unserved(Pool& pool);
  // The oldest unserved waiter across pools (but `except`), and its pool.
  std::pair<std::shared_ptr<Waiter>, Pool*> oldest_unserved(const Pool* except = nullptr);
  bool close_idle_elsewhere(const Pool& except);
  void update_cap(int server_max_connections);
  // Lent connections (and slots granted for lending) have reached the adaptive limit.
  bool at_limit() const { return limiter_ && lent_ + pending_grants_ >= limiter_->limit(); }
  void lend(ServerConnection& connection);
  void publish_limit();
  // No lent connection came back for several borrow latencies (adaptive limit only).
  bool lent_connections_stuck(Clock::time_point now) const;
  // Serves waiters the adaptive limit held back, now that it allows more.
  void admit_waiters();

  ProxyContext& ctx_;
  std::unique_ptr<ServerConnector> own_connector_;
  ServerConnector* connector_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Pool>> pools_;
  size_t total_ = 0;
  size_t cap_ = 1;  // until the first connection reads the server's max_connections
  size_t idle_allowance_ = 0;
  uint64_t next_waiter_order_ = 0;
  size_t lent_ = 0;
  size_t pending_grants_ = 0;  // slots granted to waiters not yet running (adaptive limit only)
  std::optional<ConcurrencyLimit> limiter_;
  Clock::time_point last_release_{};  // of a lent connection (adaptive limit only)
  uint64_t next_connection_id_ = 1;
};

}  // namespace sluice::proxy
