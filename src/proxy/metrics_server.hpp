// The proxy's HTTP/1.1 endpoints (Boost.Beast): GET /metrics for Prometheus, GET /targets for
// the control plane.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "proxy/asio.hpp"
#include "proxy/config.hpp"

namespace sluice::proxy {

// A document rendered afresh for every GET of its path.
struct HttpRoute {
  std::string content_type;
  std::function<std::string()> render;
};

// Serves `routes` (by exact path) until the acceptor is closed. Throws if it cannot listen.
class MetricsServer {
 public:
  // `inherited_fd`: a socket already listening on `listen` (a handover's), taken instead of
  // binding.
  MetricsServer(asio::io_context& io, const HostPort& listen,
                std::map<std::string, HttpRoute, std::less<>> routes, int inherited_fd = -1);
  void start();
  void stop();
  uint16_t port() const;
  int native_handle() { return acceptor_.native_handle(); }

 private:
  awaitable<void> accept_loop();
  tcp_acceptor acceptor_;
  std::map<std::string, HttpRoute, std::less<>> routes_;
};

}  // namespace sluice::proxy
