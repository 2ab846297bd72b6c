// The cap on server connections, shared by every worker thread's PoolManager: exact across
// threads, since a connection is opened only after try_take() succeeded.
//
// Each worker keeps its own pools (its sessions and their server sockets live on its event
// loop), so the only cross-thread traffic is here, at connection open, close and move, never per
// message. When one worker's clients wait at the cap while another worker has a connection to
// spare, that connection moves to the waiting worker (its socket is re-registered on the other
// event loop; no new login), and the oldest waiter across workers is served first.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "proxy/asio.hpp"

namespace sluice::proxy {

class PoolManager;

class ServerBudget {
 public:
  using Clock = std::chrono::steady_clock;
  struct Member {
    executor ex;
    PoolManager* pools;
  };

  ServerBudget();
  // Joins a worker before any thread runs; returns its index.
  size_t join(Member member);
  const Member& member(size_t index) const { return members_[index]; }

  size_t cap() const { return cap_.load(); }
  // The cap follows the server's max_connections, read at each login.
  void set_cap(size_t cap) { cap_.store(cap); }
  size_t used() const { return used_.load(); }
  // Bumped by a reload after which open server connections must not be reused (a new target
  // or init_query); connections remember the one they were opened under.
  uint64_t generation() const { return generation_.load(std::memory_order_relaxed); }
  void next_generation() {
    generation_.fetch_add(1);
    std::lock_guard lock(defaults_mutex_);
    defaults_.clear();  // learned from the old server or setup
  }
  // Unique across workers, for logs.
  uint64_t next_connection_id() { return next_id_.fetch_add(1, std::memory_order_relaxed); }

  // Room for one more connection (opened, opening or reserved for a waiter), if under the cap
  // and the server is not known to be full.
  bool try_take();
  // The server refused a login with 53300 (too many connections: other programs or proxies
  // hold the rest of its max_connections) while this proxy holds others. For kServerFullPause
  // no room is given for new connections while any is open: clients wait for the ones held,
  // where each of them would otherwise cost the server a refused login every retry.
  void note_server_full() {
    full_until_.store((Clock::now() + kServerFullPause).time_since_epoch().count(),
                      std::memory_order_relaxed);
  }
  // A login succeeded: the server has room again.
  void note_server_not_full() {
    if (full_until_.load(std::memory_order_relaxed) != 0)
      full_until_.store(0, std::memory_order_relaxed);
  }
  bool server_full() const {
    const int64_t until = full_until_.load(std::memory_order_relaxed);
    return until != 0 && Clock::now().time_since_epoch().count() < until;
  }
  // PgBouncer's server_login_retry is 15 s; a refused login costs the server little.
  static constexpr auto kServerFullPause = std::chrono::seconds(1);
  // One fewer. Workers whose clients wait are told there is room (on their own threads);
  // returns how many were.
  size_t put_back(size_t member);
  // `member`'s oldest client waiting for room came at `since` (nullopt: none waits). Set before
  // the worker's last try_take(), so that a put_back() either sees it or frees room that the
  // try_take() sees.
  void set_waiting(size_t member, std::optional<Clock::time_point> since);
  // The worker, other than `member`, whose client has waited longest, and since when.
  std::optional<std::pair<size_t, Clock::time_point>> oldest_waiting_other(size_t member) const;
  // `member` waits at the cap and has no idle connection to give up: the worker with the most
  // idle connections (if any has one) is asked to move one to it, unless its own clients wait.
  // Whether one was asked.
  bool want_room(size_t member);
  // How many idle connections `member` holds (a hint: it may have lent them since).
  void set_idle(size_t member, size_t count) {
    if (!members_.empty()) idle_[member].store(count, std::memory_order_relaxed);
  }
  // The other worker with the most idle connections, if any has one.
  std::optional<size_t> most_idle_other(size_t member) const;

  // What the server reports to a new session of (database, user), learned by whichever worker
  // logged in first: told to clients at login, so that a worker's first client needs no server
  // connection for it (locked; at logins only).
  using Parameters = std::map<std::string, std::string>;
  std::optional<Parameters> default_parameters(const std::string& database,
                                               const std::string& user) const;
  void set_default_parameters(const std::string& database, const std::string& user,
                              const Parameters& parameters);

 private:
  static constexpr size_t kMaxMembers = 256;
  static constexpr int64_t kNotWaiting = INT64_MAX;
  std::atomic<size_t> cap_{1};  // until the first login reads the server's max_connections
  std::atomic<size_t> used_{0};
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> generation_{0};
  // Whether a connection may not be opened now because the server is full: after the pause,
  // the first caller may (one login tries the server), and the pause starts again for the rest.
  bool wait_for_full_server();
  std::atomic<int64_t> full_until_{0};  // steady clock ticks; 0: not known to be full
  std::vector<Member> members_;
  // Per member: its oldest waiter's enqueue time (steady clock ticks), or kNotWaiting.
  std::unique_ptr<std::atomic<int64_t>[]> waiting_since_;
  std::unique_ptr<std::atomic<size_t>[]> idle_;
  mutable std::mutex defaults_mutex_;
  std::map<std::pair<std::string, std::string>, Parameters> defaults_;
};

}  // namespace sluice::proxy
