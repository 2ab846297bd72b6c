#include "proxy/metrics.hpp"

#include <fmt/format.h>

namespace sluice::proxy {

void Histogram::observe(uint64_t micros) {
  size_t i = 0;
  while (i < kBounds.size() && micros > kBounds[i]) ++i;
  buckets_[i].add(1);
  sum_.add(micros);
  count_.add(1);
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load();
    fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"{}\"}} {}\n", name, kBounds[i],
                   cumulative);
  }
  cumulative += buckets_[kBounds.size()].load();
  fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n",
                 name, cumulative, name, sum_.load(), name, count_.load());
}

std::string Metrics::render_prometheus(const std::string& proxy_name) const {
  std::string out;
  out.reserve(8192);
  auto one = [&](const char* name, const char* type, const char* help, int64_t value) {
    fmt::format_to(std::back_inserter(out),
                   "# HELP sluice_{} {}\n# TYPE sluice_{} {}\nsluice_{} {}\n", name, help, name,
                   type, name, value);
  };
  auto counter = [&](const char* name, const char* help, const Counter& c) {
    one(name, "counter", help, static_cast<int64_t>(c.load()));
  };
  auto gauge = [&](const char* name, const char* help, const Gauge& g) {
    one(name, "gauge", help, g.load());
  };
  fmt::format_to(std::back_inserter(out),
                 "# HELP sluice_proxy_info The proxy's name.\n"
                 "# TYPE sluice_proxy_info gauge\nsluice_proxy_info{{proxy_name=\"{}\"}} 1\n",
                 proxy_name);
  gauge("client_connections", "Client connections open now.", client_connections);
  counter("client_connections_received", "Client connection requests received.",
          client_connections_received);
  counter("client_connections_setup_succeeded", "Client connections that logged in.",
          client_connections_setup_succeeded);
  counter("client_connections_setup_failed_auth", "Client logins refused for bad credentials.",
          client_connections_setup_failed_auth);
  gauge("client_logins_in_progress", "Clients doing login work now (TLS, authentication).",
        client_logins_in_progress);
  gauge("client_logins_waiting",
        "Clients waiting for their turn to log in (max_concurrent_logins).", client_logins_waiting);
  counter("client_connections_closed", "Client connections closed.", client_connections_closed);
  counter("client_connections_tls", "Client connections that used TLS.", client_connections_tls);
  counter("client_connections_no_tls", "Client connections without TLS.",
          client_connections_no_tls);
  gauge("database_connections", "Server connections open now.", database_connections);
  counter("database_connection_requests", "Server connections the proxy tried to open.",
          database_connection_requests);
  counter("database_connection_requests_with_tls", "Server connection attempts using TLS.",
          database_connection_requests_with_tls);
  counter("database_connections_setup_succeeded", "Server connections opened.",
          database_connections_setup_succeeded);
  counter("database_connections_setup_failed", "Server connection attempts that failed.",
          database_connections_setup_failed);
  gauge("database_connections_with_tls", "Open server connections using TLS.",
        database_connections_with_tls);
  gauge("database_connections_currently_borrowed", "Server connections lent to a client now.",
        database_connections_currently_borrowed);
  gauge("database_connections_currently_in_transaction",
        "Server connections inside a transaction now.",
        database_connections_currently_in_transaction);
  out +=
      "# HELP sluice_database_connections_currently_session_pinned Server connections pinned "
      "to one client session, by reason.\n"
      "# TYPE sluice_database_connections_currently_session_pinned gauge\n";
  int64_t pinned_total = 0;
  for (size_t i = 0; i < database_connections_currently_session_pinned.size(); ++i) {
    int64_t v = database_connections_currently_session_pinned[i].load();
    pinned_total += v;
    fmt::format_to(std::back_inserter(out),
                   "sluice_database_connections_currently_session_pinned{{reason=\"{}\"}} {}\n",
                   pin_reason_label(static_cast<PinReason>(i)), v);
  }
  fmt::format_to(std::back_inserter(out),
                 "sluice_database_connections_currently_session_pinned {}\n", pinned_total);
  gauge("max_database_connections_allowed", "The server connection cap.",
        max_database_connections_allowed);
  gauge("database_connections_concurrency_limit",
        "Server connections that may be lent at once (the adaptive limit, else the cap).",
        database_connections_concurrency_limit);
  counter("database_connections_borrow_timeouts", "Clients that timed out waiting to borrow.",
          database_connections_borrow_timeouts);
  out +=
      "# HELP sluice_database_connections_in_state Server connections by state (sluice's own).\n"
      "# TYPE sluice_database_connections_in_state gauge\n";
  for (size_t i = 0; i < database_connections_in_state.size(); ++i)
    fmt::format_to(
        std::back_inserter(out), "sluice_database_connections_in_state{{state=\"{}\"}} {}\n",
        server_state_name(static_cast<ServerState>(i)), database_connections_in_state[i].load());
  counter("query_requests", "Queries received from clients.", query_requests);
  counter("query_requests_tls", "Queries received over TLS.", query_requests_tls);
  counter("query_requests_no_tls", "Queries received without TLS.", query_requests_no_tls);
  one("availability_percentage", "gauge", "100 while the target accepts connections, else 0.",
      target_available.load() ? 100 : 0);
  database_connections_borrow_latency.render(
      out, "sluice_database_connections_borrow_latency",
      "Microseconds a client waited to borrow a server connection.");
  query_response_latency.render(out, "sluice_query_response_latency",
                                "Microseconds from a client's query to the first response byte.");
  query_database_response_latency.render(
      out, "sluice_query_database_response_latency",
      "Microseconds from forwarding a query to the server's first response byte.");
  return out;
}

}  // namespace sluice::proxy
