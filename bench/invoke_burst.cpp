// sluice-invoke-burst: N Lambda invocations sent at the same instant, as a burst of events reaches
// Lambda. Every connection is opened first, then all requests are written together, so the host
// sees N concurrent invocations (a thread per request in Python spreads them over a second).
//
//   sluice-invoke-burst --url http://127.0.0.1:4566 --function NAME --count 500
//       --payload '{"action":"add_recipe","recipe":{"name":"burst-{n}",…}}'
//
// `{n}` in the payload becomes the request's number (0 … N-1). Prints one JSON object: counts of
// successes, function errors (X-Amz-Function-Error) and HTTP errors, the error types seen and
// the most frequent error messages (first 200 characters, at most 10 distinct), the elapsed time
// and the p50/p99 latency in milliseconds. Unsigned requests: `sluice serve` accepts
// them unless it runs with --strict-auth.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Outcome {
  int status = 0;
  bool function_error = false;
  std::string error_type;     // the function's errorType, or the HTTP error's x-amzn-ErrorType
  std::string error_message;  // the function's errorMessage, or the HTTP error's message
  double latency_ms = 0;
};

struct Burst {
  tcp::endpoint endpoint;
  std::string host;
  std::string target;
  std::string payload;
  std::vector<Outcome> outcomes;
  size_t connected = 0;
  asio::steady_timer go;
  explicit Burst(asio::io_context& io) : go(io) {}
};

std::string payload_for(const std::string& pattern, size_t n) {
  std::string out = pattern;
  for (size_t at; (at = out.find("{n}")) != std::string::npos;)
    out.replace(at, 3, std::to_string(n));
  return out;
}

asio::awaitable<void> one(Burst& burst, size_t n) {
  Outcome& outcome = burst.outcomes[n];
  tcp::socket socket(co_await asio::this_coro::executor);
  auto [connect_error] =
      co_await socket.async_connect(burst.endpoint, asio::as_tuple(asio::use_awaitable));
  if (++burst.connected == burst.outcomes.size()) burst.go.cancel();
  if (connect_error) {
    outcome.error_type = "ConnectFailed: " + connect_error.message();
    co_return;
  }
  // Everyone waits here until every connection is open.
  if (burst.connected < burst.outcomes.size())
    co_await burst.go.async_wait(asio::as_tuple(asio::use_awaitable));
  http::request<http::string_body> request{http::verb::post, burst.target, 11};
  request.set(http::field::host, burst.host);
  request.set(http::field::content_type, "application/json");
  request.body() = payload_for(burst.payload, n);
  request.prepare_payload();
  const auto start = Clock::now();
  auto [write_error, written] =
      co_await http::async_write(socket, request, asio::as_tuple(asio::use_awaitable));
  (void)written;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(8 * 1024 * 1024);
  boost::system::error_code read_error = write_error;
  if (!write_error) {
    auto [error, read] =
        co_await http::async_read(socket, buffer, parser, asio::as_tuple(asio::use_awaitable));
    (void)read;
    read_error = error;
  }
  outcome.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (read_error) {
    outcome.error_type = "HttpFailed: " + read_error.message();
    co_return;
  }
  const auto& response = parser.get();
  outcome.status = response.result_int();
  outcome.function_error = response.count("X-Amz-Function-Error") > 0;
  if (outcome.status == 200 && !outcome.function_error) co_return;
  boost::system::error_code ec;
  const json::value body = json::parse(response.body(), ec);
  const json::object* fields = !ec && body.is_object() ? &body.as_object() : nullptr;
  const auto member = [&](std::initializer_list<const char*> keys) -> std::string {
    for (const char* key : keys)
      if (const json::value* v = fields ? fields->if_contains(key) : nullptr; v && v->is_string())
        return std::string(v->as_string());
    return "";
  };
  if (outcome.status != 200) {
    outcome.error_type = std::string(response["x-amzn-ErrorType"]);
    outcome.error_message = member({"message", "Message"});
  } else {
    outcome.error_type = member({"errorType"});
    if (outcome.error_type.empty()) outcome.error_type = "Unknown";
    outcome.error_message = member({"errorMessage"});
  }
}

// The host's own messages start with the request's ID; without it, equal errors count together.
std::string without_request_id(const std::string& message) {
  constexpr std::string_view kPrefix = "RequestId: ";
  if (!message.starts_with(kPrefix)) return message;
  const size_t space = message.find(' ', kPrefix.size());
  return space == std::string::npos ? message : message.substr(space + 1);
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t index =
      std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())));
  return values[index];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluice-invoke-burst: N concurrent Lambda invocations"};
  std::string url = "http://127.0.0.1:4566";
  std::string function;
  std::string payload = "{}";
  size_t count = 100;
  app.add_option("--url", url, "the sluice API")->capture_default_str();
  app.add_option("--function", function, "function name")->required();
  app.add_option("--payload", payload, "event JSON; {n} becomes the request's number")
      ->capture_default_str();
  app.add_option("--count", count, "concurrent invocations")->check(CLI::Range(1, 10000));
  CLI11_PARSE(app, argc, argv);

  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    std::fprintf(stderr, "sluice-invoke-burst: --url must be http://HOST:PORT\n");
    return 2;
  }
  // A socket per invocation: more than the usual soft limit of 1024 descriptors.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  asio::io_context io;
  Burst burst(io);
  burst.host = std::string(parsed->host()) + ":" + std::string(parsed->port());
  burst.endpoint = tcp::endpoint(asio::ip::make_address(std::string(parsed->host())),
                                 static_cast<unsigned short>(std::stoi(parsed->port())));
  burst.target = "/2015-03-31/functions/" + function + "/invocations";
  burst.payload = payload;
  burst.outcomes.resize(count);
  burst.go.expires_at(Clock::time_point::max());
  for (size_t n = 0; n < count; ++n) asio::co_spawn(io, one(burst, n), asio::detached);
  const auto start = Clock::now();
  io.run();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  size_t ok = 0, function_errors = 0, http_errors = 0;
  std::map<std::string, int> errors;
  std::string first_error;
  std::map<std::string, int> messages;
  std::vector<double> latencies;
  for (const Outcome& o : burst.outcomes) {
    if (o.status == 200 && !o.function_error)
      ++ok;
    else if (o.status == 200)
      ++function_errors;
    else
      ++http_errors;
    if (!o.error_type.empty()) ++errors[o.error_type];
    if (first_error.empty() && !o.error_type.empty())
      first_error = o.error_message.empty() ? o.error_type : o.error_message;
    if (!o.error_message.empty()) ++messages[without_request_id(o.error_message).substr(0, 200)];
    if (o.status != 0) latencies.push_back(o.latency_ms);
  }
  json::object error_types;
  for (const auto& [type, n] : errors) error_types[type] = n;
  std::vector<std::pair<int, std::string>> by_count;
  for (const auto& [message, n] : messages) by_count.emplace_back(n, message);
  std::sort(by_count.begin(), by_count.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  json::object error_messages;
  int others = 0;
  for (size_t i = 0; i < by_count.size(); ++i) {
    if (i < 10)
      error_messages[by_count[i].second] = by_count[i].first;
    else
      others += by_count[i].first;
  }
  if (others > 0) error_messages["(other messages)"] = others;
  json::object report{{"count", count},
                      {"ok", ok},
                      {"function_errors", function_errors},
                      {"http_errors", http_errors},
                      {"error_types", error_types},
                      {"first_error", first_error},
                      {"error_messages", error_messages},
                      {"elapsed_s", elapsed},
                      {"invocations_per_s", static_cast<double>(count) / elapsed},
                      {"p50_ms", percentile(latencies, 0.50)},
                      {"p99_ms", percentile(latencies, 0.99)}};
  std::printf("%s\n", json::serialize(report).c_str());
  return ok == count ? 0 : 1;
}
