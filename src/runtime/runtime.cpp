#include "runtime/runtime.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <typeinfo>
#include <utility>
#include <vector>

#include "common/http_client.hpp"

namespace sluice::runtime {
namespace {

constexpr std::string_view kApiPrefix = "/2018-06-01/runtime";

void log_line(const std::string& line) {
  std::fprintf(stderr, "sluice-runtime: %s\n", line.c_str());
}

// One request to the Runtime API. cli::http_request waits as long as it takes, which the
// long poll of invocation/next needs. Throws std::runtime_error when the API cannot be reached
// or does not answer.
cli::HttpResult exchange(const std::string& runtime_api, const std::string& method,
                         const std::string& target, const std::string& body,
                         const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  const auto colon = runtime_api.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == runtime_api.size())
    throw std::runtime_error("AWS_LAMBDA_RUNTIME_API must be HOST:PORT, not \"" + runtime_api +
                             "\"");
  return cli::http_request("http://" + runtime_api, method, target, headers, body);
}

// A response header's value ("" when absent); `name` in lower case.
std::string header(const cli::HttpResult& response, std::string_view name) {
  for (const auto& [field, value] : response.headers)
    if (field == name) return value;
  return "";
}

std::string type_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> demangled(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), &std::free);
  return status == 0 && demangled ? demangled.get() : type.name();
}

Result call_handler(const Handler& handler, const std::string& payload, const Context& context) {
  try {
    return handler(payload, context);
  } catch (const FunctionError& e) {
    return Result::error(e.type(), e.what());
  } catch (const std::exception& e) {
    return Result::error(type_name(typeid(e)), e.what());
  } catch (...) {
    return Result::error("Runtime.UnhandledException",
                         "the handler threw a non-standard exception");
  }
}

int64_t parse_int64(std::string_view text) {
  int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

// Posts a function error for the invocation; returns the HTTP status.
int post_error(const std::string& runtime_api, const std::string& request_id,
               const std::string& error_type, const std::string& error_message) {
  const auto reply = exchange(
      runtime_api, "POST", std::string(kApiPrefix) + "/invocation/" + request_id + "/error",
      error_document(error_type, error_message),
      {{"Content-Type", "application/json"}, {"Lambda-Runtime-Function-Error-Type", error_type}});
  return reply.status;
}

}  // namespace

std::chrono::milliseconds Context::remaining() const {
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return std::max(std::chrono::milliseconds(deadline_ms) - now, std::chrono::milliseconds(0));
}

Result Result::success(std::string payload) {
  return Result{true, std::move(payload), "", ""};
}

Result Result::error(std::string error_type, std::string error_message) {
  return Result{false, "", std::move(error_type), std::move(error_message)};
}

std::string error_document(const std::string& error_type, const std::string& error_message) {
  return boost::json::serialize(boost::json::object{{"errorMessage", error_message},
                                                    {"errorType", error_type},
                                                    {"stackTrace", boost::json::array{}}});
}

int run(const Handler& handler) {
  const char* runtime_api = std::getenv("AWS_LAMBDA_RUNTIME_API");
  if (!runtime_api || !*runtime_api) {
    log_line("AWS_LAMBDA_RUNTIME_API is not set: this program runs inside a Lambda environment");
    return 1;
  }
  return run(handler, runtime_api);
}

int run(const Handler& handler, const std::string& runtime_api) {
  const std::string next_target = std::string(kApiPrefix) + "/invocation/next";
  for (;;) {
    cli::HttpResult next;
    try {
      next = exchange(runtime_api, "GET", next_target, "");
    } catch (const std::exception& e) {
      log_line(std::string("the Runtime API is gone: ") + e.what());
      return 1;
    }
    if (next.status != 200) {
      log_line("GET invocation/next answered HTTP " + std::to_string(next.status));
      return 1;
    }
    Context context;
    context.request_id = header(next, "lambda-runtime-aws-request-id");
    context.function_arn = header(next, "lambda-runtime-invoked-function-arn");
    context.trace_id = header(next, "lambda-runtime-trace-id");
    context.deadline_ms = parse_int64(header(next, "lambda-runtime-deadline-ms"));
    if (context.request_id.empty()) {
      log_line("GET invocation/next answered without Lambda-Runtime-Aws-Request-Id");
      return 1;
    }
    // As AWS's runtimes do, for X-Ray SDKs that read it.
    if (context.trace_id.empty())
      ::unsetenv("_X_AMZN_TRACE_ID");
    else
      ::setenv("_X_AMZN_TRACE_ID", context.trace_id.c_str(), 1);

    const Result result = call_handler(handler, next.body, context);
    try {
      int status = 0;
      if (result.ok) {
        status =
            exchange(runtime_api, "POST",
                     std::string(kApiPrefix) + "/invocation/" + context.request_id + "/response",
                     result.payload)
                .status;
        if (status == 413) {
          log_line("the response of " + context.request_id + " (" +
                   std::to_string(result.payload.size()) + " bytes) is over Lambda's limit");
          status = post_error(runtime_api, context.request_id, "Function.ResponseSizeTooLarge",
                              "Response payload size (" + std::to_string(result.payload.size()) +
                                  " bytes) exceeded maximum allowed payload size.");
        }
      } else {
        status =
            post_error(runtime_api, context.request_id, result.error_type, result.error_message);
      }
      if (status != 202)
        log_line("the Runtime API refused the outcome of " + context.request_id + ": HTTP " +
                 std::to_string(status));
    } catch (const std::exception& e) {
      log_line(std::string("the Runtime API is gone: ") + e.what());
      return 1;
    }
  }
}

bool report_init_error(const std::string& runtime_api, const std::string& error_type,
                       const std::string& error_message) {
  try {
    const auto reply = exchange(
        runtime_api, "POST", std::string(kApiPrefix) + "/init/error",
        error_document(error_type, error_message),
        {{"Content-Type", "application/json"}, {"Lambda-Runtime-Function-Error-Type", error_type}});
    return reply.status == 202;
  } catch (const std::exception& e) {
    log_line(e.what());
    return false;
  }
}

void fail_init(const std::string& error_type, const std::string& error_message) {
  log_line("init failed: " + error_type + ": " + error_message);
  const char* runtime_api = std::getenv("AWS_LAMBDA_RUNTIME_API");
  if (runtime_api && *runtime_api) report_init_error(runtime_api, error_type, error_message);
  std::fflush(stdout);
  std::exit(1);
}

}  // namespace sluice::runtime
