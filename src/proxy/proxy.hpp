// One running sluice-proxy: its workers (one event loop per thread, each with its own
// listeners, clients and pools), what they share, the metrics endpoint, the health probe and
// the lifecycle.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "proxy/admin_hub.hpp"
#include "proxy/asio.hpp"
#include "proxy/client_registry.hpp"
#include "proxy/config.hpp"
#include "proxy/metrics_server.hpp"
#include "proxy/secrets.hpp"
#include "proxy/server_budget.hpp"
#include "proxy/target_health.hpp"
#include "proxy/worker.hpp"

namespace sluice::proxy {

class Proxy {
 public:
  // Loads secrets and TLS material; throws ConfigError or std::runtime_error. `config_path`:
  // the file SIGHUP reloads (empty: no reload).
  explicit Proxy(Config config, std::string config_path = {});
  ~Proxy();
  // Listens, then serves until SIGTERM/SIGINT and the drain that follows. Returns the exit code.
  int run();

 private:
  // Binds every address for every worker (SO_REUSEPORT, one listening socket per worker).
  void listen();
  awaitable<void> probe_target();
  void begin_shutdown();
  void start_metrics_server();
  void wait_for_signals();
  // SIGHUP: reads the configuration and secret files again and applies what changed; on any
  // error the running configuration stays, whole.
  void reload();

  Config config_;
  std::string config_path_;
  std::shared_ptr<const SecretStore> secrets_;
  std::vector<std::unique_ptr<ssl::context>> client_tls_;  // one per worker
  std::unique_ptr<ssl::context> target_tls_;
  // TLS contexts a reload replaced: sessions and handshakes begun with them may still use them.
  std::vector<std::unique_ptr<ssl::context>> retired_tls_;
  std::vector<std::unique_ptr<MetricsServer>> retired_metrics_servers_;
  bool probe_running_ = false;
  bool verify_logins_ = false;  // the probe's next round logs in afresh (after a reload)
  TargetHealth health_;
  StatementRegistry statements_;
  ServerBudget budget_;
  ClientCounts client_counts_;
  WorkerShared shared_;
  std::unique_ptr<AdminHub> admin_;  // outlives the workers, whose console sessions use it
  std::vector<std::unique_ptr<Worker>> workers_;  // workers_[0] runs on the caller's thread
  std::vector<std::thread> threads_;
  std::unique_ptr<MetricsServer> metrics_server_;  // on worker 0
  std::unique_ptr<asio::signal_set> signals_;      // on worker 0
  std::unique_ptr<steady_timer> probe_timer_;      // cancelled on shutdown
};

// Raises the open-files soft limit to the hard limit: every client and server is a descriptor.
void raise_file_limit();

}  // namespace sluice::proxy
