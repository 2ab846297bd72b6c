// The Lambda Runtime API (2018-06-01) as the function host serves it to each execution
// environment: which call a request is, and the bodies Lambda answers with. Pure: no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::functions {

// Lambda's limit on a synchronous invocation's request and response payloads.
inline constexpr size_t kMaxPayloadBytes = 6 * 1024 * 1024;

enum class RuntimeCall {
  kNext,        // GET  /2018-06-01/runtime/invocation/next
  kResponse,    // POST /2018-06-01/runtime/invocation/{id}/response
  kError,       // POST /2018-06-01/runtime/invocation/{id}/error
  kInitError,   // POST /2018-06-01/runtime/init/error
  kUnknown,     // under /2018-06-01/runtime/ but no such call
  kNotRuntime,  // anything else: an AWS API call, forwarded to sluice serve
};

struct RuntimeRoute {
  RuntimeCall call = RuntimeCall::kNotRuntime;
  std::string request_id;  // for kResponse and kError
};

RuntimeRoute route_runtime(std::string_view method, std::string_view target);

// {"errorMessage": message, "errorType": type}, as Lambda reports errors it makes itself.
std::string error_body(std::string_view type, std::string_view message);
// The body of an accepted Runtime API call: {"status":"OK"}.
inline constexpr std::string_view kAccepted = R"({"status":"OK"})";

// Lambda's words for an invocation that ran out of time: "Task timed out after 3.00 seconds".
std::string timeout_message(int seconds);

}  // namespace sluice::functions
