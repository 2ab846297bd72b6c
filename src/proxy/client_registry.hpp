// Every client session of one worker: for cancel keys, idle timeouts and shutdown.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "proxy/context.hpp"
#include "proxy/slab_pool.hpp"

namespace sluice::proxy {

class ClientSession;

// What all workers' registries count together: max_client_connections, max_pending_logins and
// the descriptor budget are limits on the whole proxy. Changed at connect, login and close.
struct ClientCounts {
  std::atomic<size_t> sessions{0};
  std::atomic<size_t> logged_in{0};
  // Client descriptors open but not (yet) a session's: on their way to another worker, or being
  // refused. The descriptor budget counts them, so that a storm one worker accepts for another
  // cannot overrun the open-file limit before the other takes them.
  std::atomic<size_t> unsettled{0};
  // Each worker's load, read by the others to place new clients (client_placement.hpp); null
  // with a single registry. Written by the worker's own thread only.
  struct alignas(64) PerWorker {
    std::atomic<size_t> clients{0};
    std::atomic<uint32_t> busy_permille{0};  // of one core, over the last housekeeping period
  };
  std::unique_ptr<PerWorker[]> per_worker;
};

class ClientRegistry {
 public:
  // `shared`: the proxy's counts (null: this registry is the whole proxy). Worker `worker` of
  // `workers` gives out process ids p with p % workers == worker, so that a CancelRequest
  // reaching any worker finds the session's.
  explicit ClientRegistry(ProxyContext& ctx, ClientCounts* shared = nullptr, size_t worker = 0,
                          size_t workers = 1);
  // Lets go of the sessions still parked (they own themselves while parked).
  ~ClientRegistry();
  ClientRegistry(const ClientRegistry&) = delete;
  ClientRegistry& operator=(const ClientRegistry&) = delete;

  // Registers a session and gives it a process id for its BackendKeyData.
  uint32_t add(ClientSession* session);
  // The session logged in (it counts towards max_client_connections from now on).
  void note_logged_in() { counts_.logged_in.fetch_add(1, std::memory_order_relaxed); }
  void remove(uint32_t process_id, bool was_logged_in);
  // This worker's sessions.
  size_t local_size() const { return sessions_.size(); }
  // The whole proxy's.
  size_t size() const { return counts_.sessions.load(std::memory_order_relaxed); }
  size_t logged_in() const { return counts_.logged_in.load(std::memory_order_relaxed); }
  // Sessions not logged in (yet): what max_pending_logins caps.
  size_t pending_logins() const {
    const size_t in = logged_in();
    const size_t all = size();
    return all > in ? all - in : 0;
  }

  // A CancelRequest: only a matching (process id, secret key) pair does anything. A process id
  // of another worker's is passed to `forward_cancel`, which runs the cancel on that worker.
  void cancel(uint32_t process_id, uint32_t secret_key);
  std::function<void(size_t worker, uint32_t process_id, uint32_t secret_key)> forward_cancel;

  // Closes clients idle longer than idle_client_timeout, and logins that stall.
  void sweep(std::chrono::steady_clock::time_point now);
  // Every session of this worker (the admin console's SHOW CLIENTS).
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [pid, session] : sessions_) f(*session);
  }

  // Shutdown: closes every client not inside a transaction or request. After a handover
  // (`min_idle` > 0) only logged-in ones idle for at least `min_idle`: one that just logged in
  // sends its first query first.
  void close_idle_for_shutdown(std::chrono::steady_clock::duration min_idle = {});
  void close_all_for_shutdown();

 private:
  ProxyContext& ctx_;
  ClientCounts own_counts_;
  ClientCounts& counts_;
  const uint32_t worker_;
  const uint32_t workers_;
  // Nodes packed with each other rather than among what logins allocate (see slab_pool.hpp).
  std::unordered_map<uint32_t, ClientSession*, std::hash<uint32_t>, std::equal_to<uint32_t>,
                     SlabAllocator<std::pair<const uint32_t, ClientSession*>>>
      sessions_;
  uint32_t next_process_id_;
};

}  // namespace sluice::proxy
