#include "proxy/metrics_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace sluice::proxy {
namespace beast = boost::beast;
namespace http = boost::beast::http;

MetricsServer::MetricsServer(asio::io_context& io, const HostPort& listen,
                             std::map<std::string, HttpRoute, std::less<>> routes, int inherited_fd)
    : acceptor_(io), routes_(std::move(routes)) {
  tcp::endpoint endpoint(asio::ip::make_address(listen.host), listen.port);
  if (inherited_fd >= 0) {
    acceptor_.assign(endpoint.protocol(), inherited_fd);
    return;
  }
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp_acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen();
}

uint16_t MetricsServer::port() const {
  return acceptor_.local_endpoint().port();
}

void MetricsServer::start() {
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
}

void MetricsServer::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

awaitable<void> MetricsServer::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(as_tuple_awaitable);
    if (ec) {
      if (!acceptor_.is_open()) co_return;
      continue;
    }
    asio::co_spawn(
        acceptor_.get_executor(),
        [this, socket = std::move(socket)]() mutable -> awaitable<void> {
          beast::tcp_stream stream(std::move(socket));
          stream.expires_after(std::chrono::seconds(10));
          beast::flat_buffer buffer;
          http::request<http::string_body> request;
          auto [rec, n] = co_await http::async_read(stream, buffer, request, as_tuple_awaitable);
          if (rec) co_return;
          http::response<http::string_body> response;
          response.version(request.version());
          response.keep_alive(false);
          if (request.method() != http::verb::get) {
            response.result(http::status::method_not_allowed);
            response.body() = "only GET is served here\n";
          } else if (auto route = routes_.find(std::string_view(request.target()));
                     route == routes_.end()) {
            response.result(http::status::not_found);
            response.body() = "served here:";
            for (const auto& [path, unused] : routes_) response.body() += " " + path;
            response.body() += "\n";
          } else {
            response.result(http::status::ok);
            response.set(http::field::content_type, route->second.content_type);
            response.body() = route->second.render();
          }
          response.prepare_payload();
          co_await http::async_write(stream, response, as_tuple_awaitable);
          beast::error_code ignored;
          stream.socket().shutdown(tcp_socket::shutdown_both, ignored);
        },
        asio::detached);
  }
}

}  // namespace sluice::proxy
