#include "proxy/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace sluice::proxy {

void Histogram::render(std::string& out, const std::string& name, const std::string& help,
                       std::span<const Histogram* const> parts) {
  auto total = [&](auto cell) {
    uint64_t sum = 0;
    for (const Histogram* h : parts) sum += cell(*h).load();
    return sum;
  };
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= kBounds.size(); ++i) {
    cumulative += total([i](const Histogram& h) -> const Cell<uint64_t>& { return h.buckets_[i]; });
    if (i < kBounds.size())
      fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"{}\"}} {}\n", name, kBounds[i],
                     cumulative);
  }
  fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n",
                 name, cumulative, name,
                 total([](const Histogram& h) -> const Cell<uint64_t>& { return h.sum_; }), name,
                 total([](const Histogram& h) -> const Cell<uint64_t>& { return h.count_; }));
}

std::string render_prometheus(const std::string& proxy_name,
                              std::span<const Metrics* const> workers, bool target_available) {
  using Counter = Metrics::Counter;
  using Gauge = Metrics::Gauge;
  std::string out;
  out.reserve(8192);
  // Sums a cell over the workers; `largest` takes the maximum instead.
  auto sum = [&](auto cell, bool largest = false) {
    int64_t value = 0;
    for (const Metrics* m : workers) {
      const auto v = static_cast<int64_t>(cell(*m).load());
      value = largest ? std::max(value, v) : value + v;
    }
    return value;
  };
  auto one = [&](const char* name, const char* type, const char* help, int64_t value) {
    fmt::format_to(std::back_inserter(out),
                   "# HELP sluice_{} {}\n# TYPE sluice_{} {}\nsluice_{} {}\n", name, help, name,
                   type, name, value);
  };
  auto counter = [&](const char* name, const char* help, Counter Metrics::*member) {
    one(name, "counter", help,
        sum([member](const Metrics& m) -> const Counter& { return m.*member; }));
  };
  auto gauge = [&](const char* name, const char* help, Gauge Metrics::*member,
                   bool largest = false) {
    one(name, "gauge", help,
        sum([member](const Metrics& m) -> const Gauge& { return m.*member; }, largest));
  };
  fmt::format_to(std::back_inserter(out),
                 "# HELP sluice_proxy_info The proxy's name.\n"
                 "# TYPE sluice_proxy_info gauge\nsluice_proxy_info{{proxy_name=\"{}\"}} 1\n",
                 proxy_name);
  gauge("client_connections", "Client connections open now.", &Metrics::client_connections);
  counter("client_connections_received", "Client connection requests received.",
          &Metrics::client_connections_received);
  counter("client_connections_setup_succeeded", "Client connections that logged in.",
          &Metrics::client_connections_setup_succeeded);
  counter("client_connections_setup_failed_auth", "Client logins refused for bad credentials.",
          &Metrics::client_connections_setup_failed_auth);
  gauge("client_logins_in_progress", "Clients doing login work now (TLS, authentication).",
        &Metrics::client_logins_in_progress);
  gauge("client_logins_waiting",
        "Clients waiting for their turn to log in (max_concurrent_logins).",
        &Metrics::client_logins_waiting);
  gauge("client_connections_parked",
        "Idle clients whose sessions wait for their next message without a coroutine.",
        &Metrics::client_connections_parked);
  counter("client_sessions_kept_after_server_loss",
          "Clients whose server connection was lost while lent and who kept their sessions.",
          &Metrics::client_sessions_kept_after_server_loss);
  counter("client_connections_closed", "Client connections closed.",
          &Metrics::client_connections_closed);
  counter("client_connections_tls", "Client connections that used TLS.",
          &Metrics::client_connections_tls);
  counter("client_connections_no_tls", "Client connections without TLS.",
          &Metrics::client_connections_no_tls);
  gauge("database_connections", "Server connections open now.", &Metrics::database_connections);
  counter("database_connection_requests", "Server connections the proxy tried to open.",
          &Metrics::database_connection_requests);
  counter("database_connection_requests_with_tls", "Server connection attempts using TLS.",
          &Metrics::database_connection_requests_with_tls);
  counter("database_connections_setup_succeeded", "Server connections opened.",
          &Metrics::database_connections_setup_succeeded);
  counter("database_connections_setup_failed", "Server connection attempts that failed.",
          &Metrics::database_connections_setup_failed);
  gauge("database_connections_with_tls", "Open server connections using TLS.",
        &Metrics::database_connections_with_tls);
  gauge("database_connections_currently_borrowed", "Server connections lent to a client now.",
        &Metrics::database_connections_currently_borrowed);
  gauge("database_connections_currently_in_transaction",
        "Server connections inside a transaction now.",
        &Metrics::database_connections_currently_in_transaction);
  out +=
      "# HELP sluice_database_connections_currently_session_pinned Server connections pinned "
      "to one client session, by reason.\n"
      "# TYPE sluice_database_connections_currently_session_pinned gauge\n";
  int64_t pinned_total = 0;
  for (size_t i = 0; i < kPinReasonCount; ++i) {
    const int64_t v = sum([i](const Metrics& m) -> const Gauge& {
      return m.database_connections_currently_session_pinned[i];
    });
    pinned_total += v;
    fmt::format_to(std::back_inserter(out),
                   "sluice_database_connections_currently_session_pinned{{reason=\"{}\"}} {}\n",
                   pin_reason_label(static_cast<PinReason>(i)), v);
  }
  fmt::format_to(std::back_inserter(out),
                 "sluice_database_connections_currently_session_pinned {}\n", pinned_total);
  const int64_t cap = sum(
      [](const Metrics& m) -> const Gauge& { return m.max_database_connections_allowed; }, true);
  one("max_database_connections_allowed", "gauge", "The server connection cap.", cap);
  // Each worker's adaptive limit bounds its own lending; together they never exceed the cap.
  // A worker without clients (new clients go to as few workers as the load needs) lends
  // nothing: its limit, at the minimum, is not counted.
  int64_t limit = 0;
  for (const Metrics* m : workers)
    if (m->client_connections.load() > 0 || workers.size() == 1)
      limit += m->database_connections_concurrency_limit.load();
  if (limit == 0)
    limit = sum(
        [](const Metrics& m) -> const Gauge& { return m.database_connections_concurrency_limit; });
  one("database_connections_concurrency_limit", "gauge",
      "Server connections that may be lent at once (the adaptive limit, else the cap).",
      std::min(cap, limit));
  counter("database_connections_borrow_timeouts", "Clients that timed out waiting to borrow.",
          &Metrics::database_connections_borrow_timeouts);
  counter("database_connections_borrow_waits", "Borrows that waited in line for a connection.",
          &Metrics::database_connections_borrow_waits);
  counter("database_connections_moved",
          "Server connections moved from one worker thread to another.",
          &Metrics::database_connections_moved);
  counter("worker_cross_posts", "Wake-ups one worker thread posted to another's event loop.",
          &Metrics::worker_cross_posts);
  out +=
      "# HELP sluice_database_connections_in_state Server connections by state (sluice's own).\n"
      "# TYPE sluice_database_connections_in_state gauge\n";
  for (size_t i = 0; i < kServerStateCount; ++i)
    fmt::format_to(
        std::back_inserter(out), "sluice_database_connections_in_state{{state=\"{}\"}} {}\n",
        server_state_name(static_cast<ServerState>(i)),
        sum([i](const Metrics& m) -> const Gauge& { return m.database_connections_in_state[i]; }));
  counter("query_requests", "Queries received from clients.", &Metrics::query_requests);
  counter("query_requests_tls", "Queries received over TLS.", &Metrics::query_requests_tls);
  counter("query_requests_no_tls", "Queries received without TLS.",
          &Metrics::query_requests_no_tls);
  one("availability_percentage", "gauge", "100 while the target accepts connections, else 0.",
      target_available ? 100 : 0);
  auto histogram = [&](Histogram Metrics::*member, const char* name, const char* help) {
    std::vector<const Histogram*> parts;
    for (const Metrics* m : workers) parts.push_back(&(m->*member));
    Histogram::render(out, name, help, parts);
  };
  histogram(&Metrics::database_connections_borrow_latency,
            "sluice_database_connections_borrow_latency",
            "Microseconds a client waited to borrow a server connection.");
  histogram(&Metrics::query_response_latency, "sluice_query_response_latency",
            "Microseconds from a client's query to the first response byte.");
  histogram(&Metrics::query_response_latency, "sluice_query_database_response_latency",
            "Microseconds from forwarding a query to the server's first response byte.");
  return out;
}

}  // namespace sluice::proxy
