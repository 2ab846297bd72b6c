// One worker thread of sluice-proxy: an event loop with its own listening sockets
// (SO_REUSEPORT: the kernel spreads new clients over the workers), its clients, its pools of
// server connections and its login gate. Nothing on the per-message path is shared with
// another worker; what is (the cap on server connections, the client counts, target health,
// the secrets and TLS contexts) is touched at connect, login and close only.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/admission.hpp"
#include "proxy/asio.hpp"
#include "proxy/client_registry.hpp"
#include "proxy/context.hpp"
#include "proxy/login_gate.hpp"
#include "proxy/poller.hpp"
#include "proxy/pool.hpp"
#include "proxy/prepared_statements.hpp"

namespace sluice::proxy {

// What the workers of one proxy share.
struct WorkerShared {
  const Config& config;  // as the proxy started: each worker keeps its own copy
  std::shared_ptr<const SecretStore> secrets;
  StatementRegistry& statements;
  // One per worker (index by the worker's): each switches its key log during handshakes.
  std::vector<std::unique_ptr<ssl::context>>& client_tls;
  ssl::context* target_tls;
  TargetHealth& health;
  ServerBudget& budget;
  ClientCounts& clients;
  size_t workers = 1;
  // The open-file limit (every worker's descriptors count against it).
  size_t descriptor_limit = SIZE_MAX;
};

// What a reload gives each worker, applied on the worker's own thread between events.
struct WorkerReload {
  Config config;
  std::shared_ptr<const SecretStore> secrets;
  ssl::context* client_tls = nullptr;  // this worker's
  ssl::context* target_tls = nullptr;
  std::vector<std::string> closed_listeners;  // labels of listeners that go
  // New listening sockets (bound and listening, one per worker per address) with their labels.
  std::vector<std::pair<int, std::string>> new_listeners;
};

class Worker {
 public:
  Worker(size_t index, WorkerShared& shared);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  size_t index() const { return index_; }
  asio::io_context& io() { return io_; }
  ProxyContext& context() { return ctx_; }
  PoolManager& pools() { return pools_; }
  ClientRegistry& clients() { return clients_; }
  const Metrics& metrics() const { return metrics_; }

  // Takes a listening descriptor (bound and listening) for one of the proxy's addresses, and
  // closes it if it cannot be used; `label` names the listener for admission. On this worker's
  // thread once it runs.
  void add_listener(int fd, std::string label);
  // On this worker's thread: the new configuration, secrets and TLS contexts for what comes
  // next; sessions already here carry on. Listeners come and go as the reload says.
  void apply(WorkerReload reload);
  // Each listening socket's label and descriptor (for a handover: before run()).
  std::vector<std::pair<std::string, int>> listening_sockets() const;
  // Runs the event loop until the worker has drained after begin_shutdown().
  void run();
  // On this worker's thread: no new clients; idle ones go; the loop ends once all are gone or
  // the drain deadline passed. `handed_over`: a successor took the listeners (context.hpp).
  void begin_shutdown(std::chrono::steady_clock::time_point deadline, bool handed_over = false);
  // Whether a probe borrow or anything else of the proxy's still needs this worker's pools.
  void set_busy_elsewhere(bool busy) { busy_elsewhere_ = busy; }
  // Passes a client this worker accepted and screened to worker `to` (set by the proxy).
  std::function<void(size_t to, int fd, const tcp::endpoint& remote)> hand_client;
  // From any thread: takes over a client another worker accepted for this one, on this
  // worker's thread.
  void take_handed(int fd, const tcp::endpoint& remote);

 private:
  // Takes clients with accept4 as the listener becomes readable, at most kAcceptsPerTurn
  // before the loop's other work has a turn.
  awaitable<void> accept_loop(tcp_acceptor& acceptor, std::string label);
  // The checks made where a client is accepted: its security groups and the descriptor budget.
  // False when `fd` was refused (and closed).
  bool screen_client(int fd, const tcp::endpoint& remote, const std::string& label);
  // Admits (or refuses) a client connection just accepted and screened; takes `fd` over.
  void take_client(int fd, const tcp::endpoint& remote);
  // Whether a client accepted now would eat into the descriptors kept for the server
  // connections of clients already here, their cancel requests and the metrics endpoint.
  bool descriptors_short() const;
  // Turns a client away before it logs in: it reads `sqlstate` and `message` as a FATAL, and
  // what it sends meanwhile is dropped (for at most a second) so that the close does not reset
  // the connection before it read why. The caller counted it in ClientCounts::unsettled.
  awaitable<void> refuse(tcp_socket socket, std::string sqlstate, std::string message);
  // The same without the drain, before returning: when descriptors are short, the socket goes at
  // once (the message fits the empty socket buffer).
  void refuse_at_once(int fd, const std::string& sqlstate, const std::string& message);
  awaitable<void> housekeeping();
  // How long a client must have been idle before a drain closes it.
  std::chrono::steady_clock::duration idle_grace() const;
  awaitable<void> hold_back_watch();
  // The worker a client just accepted here should go to (client_placement.hpp).
  size_t placement() const;
  // Tells the other workers how much CPU this one used since the last call.
  void publish_busy(std::chrono::steady_clock::time_point now);

  void start_hold_back_watch();

  const size_t index_;
  WorkerShared& shared_;
  Config config_;  // this worker's, replaced by apply()
  // One thread runs this io_context and only it touches its sockets, so per-socket reactor
  // locks are pure overhead; posts from other workers stay locked.
  asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  Metrics metrics_;
  ProxyContext ctx_;
  Poller poller_;  // before everything that owns sockets
  PoolManager pools_;
  ClientRegistry clients_;
  LoginGate login_gate_;
  // Kept back from clients: for the proxy's own files, the metrics endpoint, cancel requests
  // and health probes, plus each worker's pollers and listeners.
  static constexpr size_t kReservedDescriptors = 64;
  static constexpr size_t kReservedPerWorker = 8;
  static constexpr size_t kAcceptsPerTurn = 16;
  static constexpr size_t kMaxPlacedWorkers = 256;  // the most workers a config may ask for
  uint64_t accept_failures_ = 0;
  static constexpr auto kTrimPeriod = std::chrono::seconds(10);
  std::chrono::steady_clock::time_point next_trim_{};
  std::chrono::steady_clock::time_point next_accept_warning_{};
  std::chrono::steady_clock::time_point shutdown_deadline_{};
  std::vector<std::unique_ptr<tcp_acceptor>> acceptors_;
  std::vector<std::string> listener_labels_;  // each acceptor's, for admission
  // Listeners a reload closed: kept until the worker ends, as their accept loops hold them.
  std::vector<std::unique_ptr<tcp_acceptor>> closed_acceptors_;
  bool running_ = false;
  bool hold_back_watch_running_ = false;
  std::unique_ptr<AdmissionFile> admission_;  // null: every source is admitted
  bool busy_elsewhere_ = false;
  std::chrono::steady_clock::time_point busy_measured_at_{};
  int64_t busy_cpu_ns_ = 0;        // this thread's CPU time then
  uint64_t seen_fence_epoch_ = 0;  // TargetHealth::fence_epoch() as cut_fenced_servers saw it
  void cut_fenced_servers();
};

}  // namespace sluice::proxy
