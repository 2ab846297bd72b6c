// The admin console's reach over the whole proxy: what every worker knows, gathered by posting
// to each worker's loop and answered on the asking session's (nothing on the per-message path
// is locked or shared for it); PAUSE and RESUME across the workers; and the console session
// itself (see admin_console.hpp for the commands and their rows).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "proxy/admin_console.hpp"
#include "proxy/asio.hpp"
#include "proxy/transport.hpp"

namespace sluice::proxy {

class Worker;
class ServerBudget;
class TargetHealth;

class AdminHub {
 public:
  AdminHub(const Config& config, TargetHealth& health, ServerBudget& budget,
           std::vector<std::unique_ptr<Worker>>& workers);

  // The configuration as last loaded (sessions on any worker read it; a reload replaces it).
  std::shared_ptr<const Config> config() const {
    std::lock_guard lock(config_mutex_);
    return config_;
  }
  void set_config(std::shared_ptr<const Config> config) {
    std::lock_guard lock(config_mutex_);
    config_ = std::move(config);
  }
  // Every worker's pools, clients and servers, with the target's health.
  awaitable<ProxySnapshot> snapshot();
  // Stops lending on every worker and returns once no server connection is lent anywhere.
  // An error for the client instead if the proxy is paused (or pausing) already, or a RESUME
  // came first.
  awaitable<std::optional<std::string>> pause();
  // Lends again; an error if the proxy was not paused.
  awaitable<std::optional<std::string>> resume();
  bool paused() const { return state_.load() != kRunning; }

 private:
  enum { kRunning, kPausing, kPaused };
  // Runs `work(worker)` on each worker's loop; the results, in worker order, on the caller's.
  template <class Result, class Work>
  awaitable<std::vector<Result>> on_every_worker(Work work);

  mutable std::mutex config_mutex_;
  std::shared_ptr<const Config> config_;
  TargetHealth& health_;
  ServerBudget& budget_;
  std::vector<std::unique_ptr<Worker>>& workers_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::atomic<int> state_{kRunning};
};

// A logged-in console client, until it leaves: simple-protocol commands answered one by one.
// `last_activity` is the session's (the idle-client timeout reads it).
awaitable<void> serve_admin_console(AdminHub& hub, Transport& client, ReadBuffer& inbound,
                                    std::chrono::steady_clock::time_point& last_activity);

}  // namespace sluice::proxy
