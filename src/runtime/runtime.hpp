// A Lambda runtime client for functions written in C++: the event loop of the Runtime API
// (2018-06-01) that a function's `bootstrap` runs, as AWS's custom runtimes do.
//
//   int main() {
//     // init: read configuration, fetch secrets; on failure fail_init(type, message)
//     return sluice::runtime::run([](const std::string& event, const Context& context) {
//       return Result::success("{\"ok\":true}");
//     });
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace sluice::runtime {

// What the Runtime API says about the invocation being handled.
struct Context {
  std::string request_id;    // Lambda-Runtime-Aws-Request-Id
  std::string function_arn;  // Lambda-Runtime-Invoked-Function-Arn
  std::string trace_id;      // Lambda-Runtime-Trace-Id
  int64_t deadline_ms = 0;   // Lambda-Runtime-Deadline-Ms, milliseconds since the epoch

  // Time left before the invocation times out, zero once the deadline has passed.
  std::chrono::milliseconds remaining() const;
};

// A handler's outcome: a payload for the caller, or a function error.
struct Result {
  bool ok = true;
  std::string payload;        // when ok
  std::string error_type;     // when not ok: the errorType the caller sees
  std::string error_message;  // when not ok

  static Result success(std::string payload);
  static Result error(std::string error_type, std::string error_message);
};

// Thrown by a handler (or by init code) to report a function error of a given type.
class FunctionError : public std::runtime_error {
 public:
  FunctionError(std::string type, const std::string& message)
      : std::runtime_error(message), type_(std::move(type)) {}
  const std::string& type() const { return type_; }

 private:
  std::string type_;
};

using Handler = std::function<Result(const std::string& payload, const Context&)>;

// The loop: next invocation -> handler -> response or error, until the Runtime API is gone
// (then it returns 1; it never returns 0). A handler that throws FunctionError reports its
// type; another std::exception reports its dynamic type's name (as Python's and Node's
// runtimes report the exception's class); anything else "Runtime.UnhandledException".
// `runtime_api` is HOST:PORT; the first overload reads AWS_LAMBDA_RUNTIME_API.
int run(const Handler& handler);
int run(const Handler& handler, const std::string& runtime_api);

// Reports an initialization failure (POST /runtime/init/error) and exits with status 1.
[[noreturn]] void fail_init(const std::string& error_type, const std::string& error_message);
// The same without exiting: whether the Runtime API accepted the report.
bool report_init_error(const std::string& runtime_api, const std::string& error_type,
                       const std::string& error_message);

// {"errorMessage":…,"errorType":…,"stackTrace":[]}, the body of the error calls.
std::string error_document(const std::string& error_type, const std::string& error_message);

}  // namespace sluice::runtime
