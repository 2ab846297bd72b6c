#include "cloud/server.hpp"

#include <spdlog/spdlog.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/sigv4.hpp"

namespace sluice::cloud {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

// Lambda zip uploads arrive base64-encoded in JSON: room for a 50 MB function package.
constexpr size_t kBodyLimit = 70 * 1024 * 1024;

ApiRequest to_api_request(const http::request<http::string_body>& in) {
  ApiRequest out;
  out.method = std::string(in.method_string());
  out.target = std::string(in.target());
  for (const auto& field : in) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(field.value());
  }
  out.body = in.body();
  if (auto scope = parse_authorization(out.header("authorization"))) {
    out.service = scope->service;
    out.region = scope->region;
    out.access_key = scope->access_key;
  }
  return out;
}

}  // namespace

ApiServer::ApiServer(asio::io_context& io, const tcp::endpoint& listen, Handler handler)
    : io_(io), state_(std::make_shared<State>(io, std::move(handler))) {
  state_->acceptor = tcp::acceptor(io, listen);
}

ApiServer::ApiServer(asio::io_context& io, int listening_fd, Handler handler)
    : io_(io), state_(std::make_shared<State>(io, std::move(handler))) {
  state_->acceptor.assign(tcp::v4(), listening_fd);
}

void ApiServer::start() {
  asio::co_spawn(io_, accept_loop(state_), asio::detached);
}

void ApiServer::stop() {
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  for (tcp::socket* socket : state_->connections) socket->close(ignored);
}

asio::awaitable<void> ApiServer::accept_loop(std::shared_ptr<State> state) {
  auto executor = co_await asio::this_coro::executor;
  while (state->acceptor.is_open()) {
    auto [error, socket] =
        co_await state->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (error) {
      if (!state->acceptor.is_open()) co_return;
      continue;
    }
    asio::co_spawn(executor, serve(state, std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> ApiServer::serve(std::shared_ptr<State> state, tcp::socket socket) {
  state->connections.insert(&socket);
  struct Forget {
    State& state;
    tcp::socket* socket;
    ~Forget() { state.connections.erase(socket); }
  } forget{*state, &socket};
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kBodyLimit);
    auto [read_error, read_bytes] =
        co_await http::async_read(socket, buffer, parser, asio::as_tuple(asio::use_awaitable));
    (void)read_bytes;
    if (read_error) co_return;  // closed, or not HTTP: nothing to answer
    const auto& request = parser.get();
    ApiRequest api = to_api_request(request);
    ApiResponse answer;
    try {
      answer = co_await state->handler(api);
    } catch (const std::exception& e) {
      spdlog::error("API request {} {} failed: {}", api.method, api.target, e.what());
      answer.status = 500;
      answer.body = R"({"__type":"InternalFailure","Message":"internal error"})";
    }
    http::response<http::string_body> response{static_cast<http::status>(answer.status),
                                               request.version()};
    response.set(http::field::server, "sluice");
    response.set(http::field::content_type, answer.content_type);
    response.set("x-amzn-RequestId", api.header("x-amzn-requestid").empty()
                                         ? "sluice"
                                         : api.header("x-amzn-requestid"));
    for (const auto& [name, value] : answer.headers) response.set(name, value);
    response.keep_alive(request.keep_alive());
    response.body() = std::move(answer.body);
    response.prepare_payload();
    auto [write_error, written] =
        co_await http::async_write(socket, response, asio::as_tuple(asio::use_awaitable));
    (void)written;
    if (write_error || !response.keep_alive()) co_return;
  }
}

}  // namespace sluice::cloud
