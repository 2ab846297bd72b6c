// An in-process stand-in for Lambda's Runtime API (and for the AWS endpoint's POST /), served
// by Beast on 127.0.0.1:0 from a thread, recording what the runtime client sent.
#pragma once

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sluice::runtime::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct QueuedEvent {
  std::string request_id;
  std::string payload;
  int64_t deadline_ms = 0;
  std::string function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test";
  std::string trace_id = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
};

// One request the server received.
struct Received {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class FakeRuntimeApi {
 public:
  explicit FakeRuntimeApi(std::vector<QueuedEvent> events = {},
                          std::size_t max_response_bytes = 6 * 1024 * 1024)
      : events_(events.begin(), events.end()), max_response_bytes_(max_response_bytes) {
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    thread_ = std::thread([this] { serve(); });
    // A test that forks (a death test) must not fork while this thread is still starting: under
    // ASan the child would inherit the allocator's lock held and hang in its exit-time leak check.
    // Once the thread is waiting in accept it holds no lock.
    std::unique_lock lock(mutex_);
    accepting_changed_.wait(lock, [this] { return accepting_; });
  }

  ~FakeRuntimeApi() {
    stopping_ = true;
    // Wakes the blocking accept.
    boost::system::error_code ignored;
    asio::ip::tcp::socket waker(io_);
    waker.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
  }

  // HOST:PORT, as AWS_LAMBDA_RUNTIME_API.
  std::string address() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  std::string url() const { return "http://" + address(); }

  // What POST / (an AWS JSON 1.1 call) answers.
  void answer_aws_calls(unsigned status, std::string body, std::string error_type_header = "") {
    std::lock_guard lock(mutex_);
    aws_status_ = status;
    aws_body_ = std::move(body);
    aws_error_type_ = std::move(error_type_header);
  }
  // A document served at GET `path`.
  void serve_document(const std::string& path, std::string body) {
    std::lock_guard lock(mutex_);
    documents_[path] = std::move(body);
  }

  std::vector<Received> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }
  // The requests whose target starts with `prefix`.
  std::vector<Received> received(const std::string& prefix) const {
    std::vector<Received> matching;
    for (auto& request : received())
      if (request.target.rfind(prefix, 0) == 0) matching.push_back(request);
    return matching;
  }

 private:
  void serve() {
    while (!stopping_) {
      asio::ip::tcp::socket socket(io_);
      boost::system::error_code ec;
      {
        std::lock_guard lock(mutex_);
        accepting_ = true;
      }
      accepting_changed_.notify_all();
      acceptor_.accept(socket, ec);
      if (ec || stopping_) continue;
      handle_connection(std::move(socket));
    }
  }

  void handle_connection(asio::ip::tcp::socket socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      boost::system::error_code ec;
      http::read(socket, buffer, parser, ec);
      if (ec) return;
      auto request = parser.release();
      Received seen{
          std::string(request.method_string()), std::string(request.target()), {}, request.body()};
      for (const auto& field : request) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        seen.headers[name] = std::string(field.value());
      }
      {
        std::lock_guard lock(mutex_);
        received_.push_back(seen);
      }
      http::response<http::string_body> response;
      if (!respond(seen, response)) return;  // no answer: the API is gone
      response.version(11);
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      http::write(socket, response, ec);
      if (ec || !request.keep_alive()) return;
    }
  }

  bool respond(const Received& request, http::response<http::string_body>& response) {
    std::lock_guard lock(mutex_);
    const std::string prefix = "/2018-06-01/runtime/";
    const auto accepted = [&] {
      response.result(http::status::accepted);
      response.set(http::field::content_type, "application/json");
      response.body() = R"({"status":"OK"})";
    };
    if (request.method == "GET" && request.target == prefix + "invocation/next") {
      if (events_.empty()) return false;
      const QueuedEvent event = events_.front();
      events_.pop_front();
      pending_.insert(event.request_id);
      response.result(http::status::ok);
      response.set("Lambda-Runtime-Aws-Request-Id", event.request_id);
      response.set("Lambda-Runtime-Deadline-Ms", std::to_string(event.deadline_ms));
      response.set("Lambda-Runtime-Invoked-Function-Arn", event.function_arn);
      response.set("Lambda-Runtime-Trace-Id", event.trace_id);
      response.body() = event.payload;
      return true;
    }
    if (request.method == "POST" && request.target == prefix + "init/error") {
      accepted();
      return true;
    }
    const std::string invocation = prefix + "invocation/";
    if (request.method == "POST" && request.target.rfind(invocation, 0) == 0) {
      const std::string rest = request.target.substr(invocation.size());
      const std::string id = rest.substr(0, rest.find('/'));
      const std::string kind = rest.substr(rest.find('/') + 1);
      if (!pending_.contains(id) || (kind != "response" && kind != "error")) {
        response.result(http::status::bad_request);
        response.body() = R"({"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"})";
        return true;
      }
      if (kind == "response" && request.body.size() > max_response_bytes_) {
        response.result(http::status::payload_too_large);
        response.body() = R"({"errorMessage":"too large","errorType":"RequestEntityTooLarge"})";
        return true;
      }
      pending_.erase(id);
      accepted();
      return true;
    }
    if (request.method == "POST" && request.target == "/") {
      response.result(aws_status_);
      response.set(http::field::content_type, "application/x-amz-json-1.1");
      if (!aws_error_type_.empty()) response.set("x-amzn-ErrorType", aws_error_type_);
      response.body() = aws_body_;
      return true;
    }
    if (request.method == "GET" && documents_.contains(request.target)) {
      response.result(http::status::ok);
      response.body() = documents_[request.target];
      return true;
    }
    response.result(http::status::not_found);
    return true;
  }

  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_{io_};
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::condition_variable accepting_changed_;
  bool accepting_ = false;  // the serving thread has reached accept (see the constructor)
  std::deque<QueuedEvent> events_;
  std::set<std::string> pending_;
  std::size_t max_response_bytes_;
  std::vector<Received> received_;
  unsigned aws_status_ = 200;
  std::string aws_body_ = "{}";
  std::string aws_error_type_;
  std::map<std::string, std::string> documents_;
};

}  // namespace sluice::runtime::testing
