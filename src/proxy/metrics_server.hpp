// GET /metrics over HTTP/1.1 (Boost.Beast), for Prometheus.
#pragma once

#include <functional>
#include <string>

#include "proxy/asio.hpp"
#include "proxy/config.hpp"

namespace sluice::proxy {

// Serves `render()` at /metrics until the acceptor is closed. Throws if it cannot listen.
class MetricsServer {
 public:
  MetricsServer(asio::io_context& io, const HostPort& listen, std::function<std::string()> render);
  void start();
  void stop();
  uint16_t port() const;

 private:
  awaitable<void> accept_loop();
  tcp_acceptor acceptor_;
  std::function<std::string()> render_;
};

}  // namespace sluice::proxy
