// The pool's way to the server over the network: logins (ServerConnection::open) and cancel
// requests, each on a connection of its own as PostgreSQL wants.
#include "proxy/pool.hpp"

namespace sluice::proxy {
namespace {

class NetworkConnector : public ServerConnector {
 public:
  awaitable<std::optional<ServerError>> open(ServerConnection& connection,
                                             Clock::time_point deadline) override {
    return connection.open(deadline);
  }

  void cancel(const std::shared_ptr<ServerConnection>& connection,
              std::function<void()> done) override {
    auto target = connection->cancel_target();
    if (!target) {
      done();
      return;
    }
    asio::co_spawn(connection->transport().get_executor(),
                   send(std::move(*target), std::move(done)), asio::detached);
  }

 private:
  static awaitable<void> send(ServerConnection::CancelTarget target, std::function<void()> done) {
    auto executor = co_await asio::this_coro::executor;
    tcp_socket socket(executor);
    // The server answers within milliseconds; a stuck one must not hold the connection.
    steady_timer limit(executor, std::chrono::seconds(5));
    limit.async_wait([&socket](boost::system::error_code ec) {
      if (ec) return;
      boost::system::error_code ignored;
      socket.close(ignored);
    });
    auto [ec] = co_await socket.async_connect(target.endpoint, as_tuple_awaitable);
    if (!ec) {
      co_await asio::async_write(socket, asio::buffer(target.packet), as_tuple_awaitable);
      // The server closes once it has signalled the backend.
      char byte;
      co_await socket.async_read_some(asio::buffer(&byte, 1), as_tuple_awaitable);
    }
    limit.cancel();
    done();
  }
};

}  // namespace

std::unique_ptr<ServerConnector> make_network_connector() {
  return std::make_unique<NetworkConnector>();
}

}  // namespace sluice::proxy
