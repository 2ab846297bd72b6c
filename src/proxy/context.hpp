// What every session and pool of one proxy shares. One per worker thread: nothing in it is
// locked (the metrics are atomics so that several workers may share them).
#pragma once

#include <chrono>
#include <memory>

#include "proxy/asio.hpp"
#include "proxy/config.hpp"
#include "proxy/metrics.hpp"
#include "proxy/secrets.hpp"

namespace sluice::proxy {

class PoolManager;
class Poller;
class StatementRegistry;
class ClientRegistry;
class LoginGate;
class TargetHealth;
class ServerBudget;
class AdminHub;

struct ProxyContext {
  asio::io_context& io;
  const Config& config;
  // What the proxy's configuration says now: a reload replaces the secrets and the TLS context
  // (code that suspends keeps the store it began with), and assigns `config` in place on the
  // worker's thread (copy what must stay as it was across a suspension).
  std::shared_ptr<const SecretStore> secrets;
  ssl::context* client_tls;  // the proxy as a TLS server
  ssl::context* target_tls;  // the proxy as a TLS client; null when target.tls = disable
  Metrics& metrics;
  Poller* poller = nullptr;
  StatementRegistry* statements = nullptr;
  PoolManager* pools = nullptr;
  ClientRegistry* clients = nullptr;
  LoginGate* logins = nullptr;     // max_concurrent_logins; null: no limit
  TargetHealth* health = nullptr;  // every server login's outcome lands here
  ServerBudget* budget = nullptr;  // the cap shared by all workers; null: a private one
  AdminHub* admin = nullptr;       // the admin console's reach over all workers
  bool draining = false;
  // The housekeeping tick's clock (250 ms resolution), for bookkeeping that needs no more than
  // that, such as when a pooled connection was last used: one clock read less per request.
  std::chrono::steady_clock::time_point coarse_now = std::chrono::steady_clock::now();
};

}  // namespace sluice::proxy
