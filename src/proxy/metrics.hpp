// Counters, gauges and latency histograms named after RDS Proxy's CloudWatch metrics
// ("sluice_" + snake_case).
//
// Each set of metrics has one writer: the worker thread whose sessions and pools it counts
// (with several workers, each keeps its own set and the exporter adds them up). So an update
// is a relaxed load and store, not a locked read-modify-write: a dozen happen per
// transaction. They are still atomics so that another thread may read them at any time.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "proxy/pinning.hpp"
#include "proxy/server_state.hpp"

namespace sluice::proxy {

// One number with a single writer (see above).
template <class T>
class Cell {
 public:
  constexpr Cell(T value = 0) : value_(value) {}
  void add(T n) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(T n) {
    value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void store(T value) { value_.store(value, std::memory_order_relaxed); }
  T load() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<T> value_;
};

// Microseconds from `start` to now, for the latency histograms.
inline uint64_t micros_since(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

class Histogram {
 public:
  // Upper bounds in microseconds.
  static constexpr std::array<uint64_t, 14> kBounds = {
      50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000};
  void observe(uint64_t micros) {  // inline: on every transaction
    size_t i = 0;
    while (i < kBounds.size() && micros > kBounds[i]) ++i;
    buckets_[i].add(1);
    sum_.add(micros);
    count_.add(1);
  }
  // The sum of several histograms (one per worker), in Prometheus text.
  static void render(std::string& out, const std::string& name, const std::string& help,
                     std::span<const Histogram* const> parts);

 private:
  std::array<Cell<uint64_t>, kBounds.size() + 1> buckets_{};
  Cell<uint64_t> sum_{0};
  Cell<uint64_t> count_{0};
};

// One worker's figures.
struct Metrics {
  using Counter = Cell<uint64_t>;
  using Gauge = Cell<int64_t>;

  Gauge client_connections{0};
  Counter client_connections_received{0};
  Counter client_connections_setup_succeeded{0};
  Counter client_connections_setup_failed_auth{0};
  Counter client_connections_closed{0};
  Counter client_connections_tls{0};
  Counter client_connections_no_tls{0};
  // sluice's own: clients doing login work now, and clients waiting for their turn
  // (max_concurrent_logins).
  Gauge client_logins_in_progress{0};
  Gauge client_logins_waiting{0};
  // sluice's own: idle clients whose sessions are parked (no coroutine until their next byte).
  Gauge client_connections_parked{0};
  // sluice's own: clients whose lent server connection was lost (a database restart, a
  // terminated backend) and who kept their sessions, answered with an error.
  Counter client_sessions_kept_after_server_loss{0};

  Gauge database_connections{0};
  Counter database_connection_requests{0};
  Counter database_connection_requests_with_tls{0};
  Counter database_connections_setup_succeeded{0};
  Counter database_connections_setup_failed{0};
  Gauge database_connections_with_tls{0};
  Gauge database_connections_currently_borrowed{0};
  Gauge database_connections_currently_in_transaction{0};
  std::array<Gauge, kPinReasonCount>
      database_connections_currently_session_pinned{};  // by PinReason
  Gauge max_database_connections_allowed{0};
  // How many may be lent at once: the adaptive limit, or the cap when it is off (sluice's own).
  Gauge database_connections_concurrency_limit{0};
  Counter database_connections_borrow_timeouts{0};
  // sluice's own, to see what several workers cost: borrows that had to wait in line, server
  // connections this worker moved to another, and wake-ups it posted to other workers' loops.
  Counter database_connections_borrow_waits{0};
  Counter database_connections_moved{0};
  Counter worker_cross_posts{0};
  // Server connections by ServerState (opening, idle, lent, pinned, cancelling, closed).
  std::array<Gauge, kServerStateCount> database_connections_in_state{};

  Counter query_requests{0};
  Counter query_requests_tls{0};
  Counter query_requests_no_tls{0};

  Histogram database_connections_borrow_latency;
  // Also rendered as sluice_query_database_response_latency: the proxy forwards a query the
  // moment it arrives (a borrow without waiting), so both measure from the same instant, and
  // one histogram per transaction costs half as much as two.
  Histogram query_response_latency;
};

// Prometheus text for one proxy. Each worker thread writes its own Metrics (a Cell has one
// writer: no locked instruction on the hot path); this adds them up. The cap is the same for
// every worker, so it takes the largest value instead. `target_available`: the last server
// login, whichever worker made it, succeeded.
std::string render_prometheus(const std::string& proxy_name,
                              std::span<const Metrics* const> workers, bool target_available);

}  // namespace sluice::proxy
