#include "cloud/endpoint_relay.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>

namespace sluice::cloud {
namespace asio = boost::asio;
using asio::ip::tcp;

struct EndpointRelay::Listener {
  explicit Listener(asio::io_context& io) : acceptor(io) {}
  tcp::acceptor acceptor;
  tcp::endpoint target;
  std::set<std::string> admitted;
  std::set<std::shared_ptr<tcp::socket>> sockets;  // open relayed sockets, closed by shutdown()
};

namespace {

asio::awaitable<void> pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
  std::array<char, 16384> buffer;
  for (;;) {
    auto [read_error, n] =
        co_await from->async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
    if (read_error) break;
    auto [write_error, written] = co_await asio::async_write(*to, asio::buffer(buffer.data(), n),
                                                             asio::as_tuple(asio::use_awaitable));
    (void)written;
    if (write_error) break;
  }
  // One direction ended: end the other too (PostgreSQL sessions do not half-close).
  boost::system::error_code ignored;
  from->close(ignored);
  to->close(ignored);
}

asio::awaitable<void> connect_and_relay(std::shared_ptr<EndpointRelay::Listener> listener,
                                        std::shared_ptr<tcp::socket> client) {
  auto server = std::make_shared<tcp::socket>(co_await asio::this_coro::executor);
  auto [error] =
      co_await server->async_connect(listener->target, asio::as_tuple(asio::use_awaitable));
  if (error || !listener->acceptor.is_open()) {  // no server, or the relay stopped meanwhile
    boost::system::error_code ignored;
    client->close(ignored);
    server->close(ignored);
    co_return;
  }
  boost::system::error_code ignored;  // a client gone meanwhile shows in the pump
  client->set_option(tcp::no_delay(true), ignored);
  server->set_option(tcp::no_delay(true), ignored);
  listener->sockets.insert(client);
  listener->sockets.insert(server);
  auto executor = co_await asio::this_coro::executor;
  asio::co_spawn(executor, pump(server, client), asio::detached);
  co_await pump(client, server);
  listener->sockets.erase(client);
  listener->sockets.erase(server);
}

asio::awaitable<void> accept_loop(std::shared_ptr<EndpointRelay::Listener> listener) {
  auto executor = co_await asio::this_coro::executor;
  while (listener->acceptor.is_open()) {
    auto [error, socket] =
        co_await listener->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (error) {
      if (!listener->acceptor.is_open()) co_return;
      continue;
    }
    boost::system::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    if (ec || !listener->admitted.contains(peer.address().to_string())) {
      socket.close(ec);  // not admitted by the security groups
      continue;
    }
    asio::co_spawn(executor,
                   connect_and_relay(listener, std::make_shared<tcp::socket>(std::move(socket))),
                   asio::detached);
  }
}

}  // namespace

EndpointRelay::~EndpointRelay() {
  shutdown();
}

void EndpointRelay::start_thread() {
  if (thread_.joinable()) return;
  work_.emplace(io_.get_executor());
  thread_ = std::thread([this] { io_.run(); });
}

void EndpointRelay::relay(int listening_fd, const tcp::endpoint& target,
                          std::set<std::string> admitted) {
  start_thread();
  const int own = ::dup(listening_fd);
  asio::post(io_, [this, listening_fd, own, target, admitted = std::move(admitted)]() mutable {
    auto& listener = listeners_[listening_fd];
    if (!listener) {
      listener = std::make_shared<Listener>(io_);
      boost::system::error_code ec;
      listener->acceptor.assign(tcp::v4(), own, ec);
      if (ec) {
        spdlog::error("cannot relay on descriptor {}: {}", listening_fd, ec.message());
        ::close(own);
        listeners_.erase(listening_fd);
        return;
      }
      asio::co_spawn(io_, accept_loop(listener), asio::detached);
    } else {
      ::close(own);
    }
    listener->target = target;
    listener->admitted = std::move(admitted);
  });
}

void EndpointRelay::stop(int listening_fd) {
  if (!thread_.joinable()) return;
  asio::post(io_, [this, listening_fd] {
    auto it = listeners_.find(listening_fd);
    if (it == listeners_.end()) return;
    boost::system::error_code ignored;
    it->second->acceptor.close(ignored);
    listeners_.erase(it);
  });
}

void EndpointRelay::shutdown() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    for (auto& [fd, listener] : listeners_) {
      boost::system::error_code ignored;
      listener->acceptor.close(ignored);
      for (const auto& socket : listener->sockets) socket->close(ignored);
    }
    listeners_.clear();
  });
  work_.reset();  // run() returns once the closed sockets' coroutines have ended
  thread_.join();
}

}  // namespace sluice::cloud
