// For tests of the pool and the backend link with real sockets: loopback socket pairs, and a
// ServerConnector whose "login" is a socket pair whose far end the test holds as the server.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "proxy/poller.hpp"
#include "proxy/pool.hpp"
#include "proxy/server_connection.hpp"

namespace sluice::proxy::testing {

// Two connected loopback sockets: the proxy's end and the peer's.
inline std::pair<tcp_socket, tcp_socket> socket_pair(asio::io_context& io) {
  tcp_acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp_socket peer(io);
  peer.connect(acceptor.local_endpoint());
  tcp_socket ours = acceptor.accept();
  return {std::move(ours), std::move(peer)};
}

struct LoopbackConnector : ServerConnector {
  asio::io_context& io;
  Poller& poller;
  std::vector<tcp_socket>& servers;  // the fake servers' ends, one per connection opened
  int opened = 0;
  int cancels = 0;
  LoopbackConnector(asio::io_context& io, Poller& poller, std::vector<tcp_socket>& servers)
      : io(io), poller(poller), servers(servers) {}
  awaitable<std::optional<ServerError>> open(ServerConnection& connection,
                                             Clock::time_point) override {
    auto [ours, peer] = socket_pair(io);
    connection.adopt_transport(std::make_unique<Transport>(poller, std::move(ours)));
    servers.push_back(std::move(peer));
    ++opened;
    co_return std::nullopt;
  }
  void cancel(const std::shared_ptr<ServerConnection>&, std::function<void()> done) override {
    ++cancels;
    done();
  }
};

}  // namespace sluice::proxy::testing
