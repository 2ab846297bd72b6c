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
#include "proxy/handover.hpp"
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
  // Listens, then serves until SIGTERM/SIGINT (or a handover to a successor) and the drain that
  // follows. Returns the exit code. `takeover`: the listening sockets come from the proxy
  // running at config.handover_socket, which drains once this one accepts (handover.hpp).
  int run(bool takeover = false);
  // What SIGUSR2 starts to upgrade in place (this binary's path, --config, --takeover): with a
  // handover_socket, the new process takes over and this one drains.
  void set_successor_command(std::vector<std::string> command) {
    successor_command_ = std::move(command);
  }

 private:
  // Binds every address for every worker (SO_REUSEPORT, one listening socket per worker).
  void listen();
  awaitable<void> probe_target();
  void start_metrics_server();
  void wait_for_signals();
  // SIGHUP: reads the configuration and secret files again and applies what changed; on any
  // error the running configuration stays, whole.
  void reload();
  void begin_shutdown(bool handed_over = false);

  // Zero-downtime upgrade (proxy_handover.cpp).
  // Before listen(): receives the running proxy's sockets, or checks that none runs.
  void prepare_handover(bool takeover);
  // In listen(): true when `address`'s sockets were received (and given to the workers).
  bool adopt_received(const HostPort& address);
  // The metrics listener received, or -1.
  int adopt_received_metrics();
  // Once the workers run: confirms to the old proxy, then offers the sockets in turn.
  void complete_handover();
  // A reload opened and closed listeners (and may have moved the metrics endpoint): the offer
  // follows, before the workers close what went.
  void update_offer(const std::vector<std::string>& closed,
                    const std::vector<std::vector<std::pair<int, std::string>>>& opened);
  // On begin_shutdown: no more offers (the sockets are about to close).
  void stop_offering();
  // SIGUSR2: starts successor_command_, which takes over.
  void wait_for_upgrade_signal();

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
  bool shutting_down_ = false;                     // on worker 0
  std::unique_ptr<handover::HandoverClient> takeover_;
  std::vector<handover::Listener> received_;  // from takeover_, until listen() adopts them
  std::unique_ptr<handover::HandoverServer> handover_server_;
  std::vector<handover::Listener> offered_;  // what handover_server_ offers now
  std::vector<std::string> successor_command_;
  std::unique_ptr<asio::signal_set> upgrade_signal_;  // on worker 0
};

// Raises the open-files soft limit to the hard limit: every client and server is a descriptor.
void raise_file_limit();

}  // namespace sluice::proxy
