// The control plane's HTTP endpoint: HTTP/1.1 with keep-alive (Boost.Beast), one coroutine per
// connection on the caller's io_context. Every request goes to one handler.
#pragma once

#include <boost/asio.hpp>
#include <functional>

#include "cloud/api.hpp"

namespace sluice::cloud {

using Handler = std::function<ApiResponse(ApiRequest&)>;

class ApiServer {
 public:
  // Binds at once (throws on failure), so the caller can report the port before running.
  ApiServer(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& listen,
            Handler handler);
  void start();
  void stop();
  unsigned short port() const { return acceptor_.local_endpoint().port(); }

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  Handler handler_;
};

}  // namespace sluice::cloud
