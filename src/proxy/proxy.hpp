// One running sluice-proxy: listener, sessions, pools, metrics and lifecycle.
#pragma once

#include <memory>
#include <string>

#include "proxy/admission.hpp"
#include "proxy/asio.hpp"
#include "proxy/client_registry.hpp"
#include "proxy/config.hpp"
#include "proxy/context.hpp"
#include "proxy/login_gate.hpp"
#include "proxy/metrics.hpp"
#include "proxy/metrics_server.hpp"
#include "proxy/poller.hpp"
#include "proxy/pool.hpp"
#include "proxy/prepared_statements.hpp"
#include "proxy/secrets.hpp"
#include "proxy/target_health.hpp"

namespace sluice::proxy {

class Proxy {
 public:
  // Loads secrets and TLS material; throws ConfigError or std::runtime_error.
  Proxy(asio::io_context& io, Config config);
  // Listens, then serves until SIGTERM/SIGINT and the drain that follows. Returns the exit code.
  int run();

 private:
  awaitable<void> accept_loop(tcp_acceptor& acceptor, std::string label);
  // Turns a client away before it logs in: it reads `sqlstate` and `message` as a FATAL, and
  // what it sends meanwhile is dropped (for at most a second) so that the close does not reset
  // the connection before it read why.
  // `linger` false: no drain (when descriptors are short, the socket goes at once).
  awaitable<void> refuse(tcp_socket socket, std::string sqlstate, std::string message, bool linger);
  awaitable<void> housekeeping();
  awaitable<void> hold_back_watch();
  awaitable<void> probe_target();
  void begin_shutdown();

  asio::io_context& io_;
  Config config_;
  SecretStore secrets_;
  std::unique_ptr<ssl::context> client_tls_;
  std::unique_ptr<ssl::context> target_tls_;
  Metrics metrics_;
  TargetHealth health_;
  ProxyContext ctx_;
  Poller poller_;  // before everything that owns sockets
  StatementRegistry statements_;
  PoolManager pools_;
  ClientRegistry clients_;
  LoginGate login_gate_;
  // The open-file limit, and what is kept of it beyond clients and server connections:
  // listeners, the poller, the metrics endpoint and its clients, cancel requests, TLS files.
  size_t descriptor_limit_;
  static constexpr size_t kReservedDescriptors = 64;
  uint64_t accept_failures_ = 0;
  static constexpr auto kTrimPeriod = std::chrono::seconds(10);
  std::chrono::steady_clock::time_point next_trim_{};
  std::chrono::steady_clock::time_point next_accept_warning_{};
  std::vector<std::unique_ptr<tcp_acceptor>> acceptors_;  // `listen`, then `extra_listen`
  std::vector<std::string> listener_labels_;              // each acceptor's, for admission
  std::unique_ptr<AdmissionFile> admission_;              // null: every source is admitted
  std::unique_ptr<MetricsServer> metrics_server_;
  asio::signal_set signals_;
  steady_timer probe_timer_;  // cancelled on shutdown, so the probe stops at once
  bool probing_ = false;      // a probe borrow is in flight
  std::chrono::steady_clock::time_point shutdown_deadline_;
};

// Raises the open-files soft limit to the hard limit: every client and server is a descriptor.
void raise_file_limit();

}  // namespace sluice::proxy
