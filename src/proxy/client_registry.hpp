// Every client session of one worker: for cancel keys, idle timeouts and shutdown.
#pragma once

#include <chrono>
#include <cstdint>
#include <unordered_map>

#include "proxy/context.hpp"

namespace sluice::proxy {

class ClientSession;

class ClientRegistry {
 public:
  explicit ClientRegistry(ProxyContext& ctx) : ctx_(ctx) {}

  // Registers a session and gives it a process id for its BackendKeyData.
  uint32_t add(ClientSession* session);
  // The session logged in (it counts towards max_client_connections from now on).
  void note_logged_in() { ++logged_in_; }
  void remove(uint32_t process_id, bool was_logged_in);
  size_t size() const { return sessions_.size(); }
  size_t logged_in() const { return logged_in_; }
  // Sessions not logged in (yet): what max_pending_logins caps.
  size_t pending_logins() const { return sessions_.size() - logged_in_; }

  // A CancelRequest: only a matching (process id, secret key) pair does anything.
  void cancel(uint32_t process_id, uint32_t secret_key);

  // Closes clients idle longer than idle_client_timeout, and logins that stall.
  void sweep(std::chrono::steady_clock::time_point now);
  // Shutdown: closes every client not inside a transaction or request.
  void close_idle_for_shutdown();
  void close_all_for_shutdown();

 private:
  ProxyContext& ctx_;
  std::unordered_map<uint32_t, ClientSession*> sessions_;
  uint32_t next_process_id_ = 1;
  size_t logged_in_ = 0;
};

}  // namespace sluice::proxy
