// The control plane's HTTP endpoint: HTTP/1.1 with keep-alive (Boost.Beast), one coroutine per
// connection on the caller's io_context. Every request goes to one handler.
#pragma once

#include <boost/asio.hpp>
#include <functional>
#include <memory>
#include <set>

#include "cloud/api.hpp"

namespace sluice::cloud {

// Asynchronous: Lambda's Invoke and the Runtime API's `next` wait for a function.
using Handler = std::function<boost::asio::awaitable<ApiResponse>(ApiRequest&)>;

class ApiServer {
 public:
  // Binds at once (throws on failure), so the caller can report the port before running.
  ApiServer(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& listen,
            Handler handler);
  // On a socket that is listening already (one made inside a network namespace); takes it.
  ApiServer(boost::asio::io_context& io, int listening_fd, Handler handler);
  ~ApiServer() { stop(); }
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  void start();
  // Stops accepting and closes the connections being served.
  void stop();
  unsigned short port() const { return state_->acceptor.local_endpoint().port(); }

 private:
  // Shared with the coroutines, which may outlive the server: a stopped server is destroyed
  // while a handler (a runtime waiting in `next`) is still suspended.
  struct State {
    State(boost::asio::io_context& io, Handler handler)
        : acceptor(io), handler(std::move(handler)) {}
    boost::asio::ip::tcp::acceptor acceptor;
    Handler handler;
    std::set<boost::asio::ip::tcp::socket*> connections;
  };
  static boost::asio::awaitable<void> accept_loop(std::shared_ptr<State> state);
  static boost::asio::awaitable<void> serve(std::shared_ptr<State> state,
                                            boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  std::shared_ptr<State> state_;
};

}  // namespace sluice::cloud
