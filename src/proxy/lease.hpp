// A server connection lent by the pool: the only way a client (or the proxy's own health probe)
// holds one. The lease carries the pool's accounting for as long as it lives (the connection is
// lent or pinned, and counted in database_connections_currently_borrowed), and it ends in exactly
// one way back: release(reusable), or discard(). A lease dropped without either discards, so a
// connection in an unknown state is never handed to another client.
#pragma once

#include <memory>

namespace sluice::proxy {

class PoolManager;
class ServerConnection;

class ServerLease {
 public:
  ServerLease() = default;
  ServerLease(ServerLease&& other) noexcept
      : pools_(other.pools_), connection_(std::move(other.connection_)) {}
  ServerLease& operator=(ServerLease&& other) noexcept {
    if (this != &other) {
      if (connection_) discard();
      pools_ = other.pools_;
      connection_ = std::move(other.connection_);
    }
    return *this;
  }
  ServerLease(const ServerLease&) = delete;
  ServerLease& operator=(const ServerLease&) = delete;
  ~ServerLease() {
    if (connection_) discard();
  }

  explicit operator bool() const { return connection_ != nullptr; }
  ServerConnection* operator->() const { return connection_.get(); }
  ServerConnection& operator*() const { return *connection_; }
  const std::shared_ptr<ServerConnection>& connection() const { return connection_; }

  // The client pinned its session: the connection no longer counts towards the adaptive limit
  // (a pinned session mostly idles on it), nor samples its load.
  void pin();
  // Back to the pool: reused when `reusable` (and not broken, draining or over the cap), else
  // closed. The lease is empty afterwards.
  void release(bool reusable = true);
  void discard() { release(false); }

 private:
  friend class PoolManager;
  ServerLease(PoolManager& pools, std::shared_ptr<ServerConnection> connection);

  PoolManager* pools_ = nullptr;
  std::shared_ptr<ServerConnection> connection_;
};

}  // namespace sluice::proxy
