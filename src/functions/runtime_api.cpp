#include "functions/runtime_api.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>

namespace sluice::functions {

RuntimeRoute route_runtime(std::string_view method, std::string_view target) {
  constexpr std::string_view kRuntime = "/2018-06-01/runtime/";
  const std::string_view path = target.substr(0, target.find('?'));
  if (!path.starts_with(kRuntime)) return {};
  const std::string_view rest = path.substr(kRuntime.size());
  if (method == "GET" && rest == "invocation/next") return {RuntimeCall::kNext, {}};
  if (method == "POST" && rest == "init/error") return {RuntimeCall::kInitError, {}};
  constexpr std::string_view kInvocation = "invocation/";
  if (method == "POST" && rest.starts_with(kInvocation)) {
    const std::string_view tail = rest.substr(kInvocation.size());
    const size_t slash = tail.find('/');
    if (slash != std::string_view::npos && slash > 0) {
      const std::string_view id = tail.substr(0, slash);
      const std::string_view verb = tail.substr(slash + 1);
      if (verb == "response") return {RuntimeCall::kResponse, std::string(id)};
      if (verb == "error") return {RuntimeCall::kError, std::string(id)};
    }
  }
  return {RuntimeCall::kUnknown, {}};
}

std::string error_body(std::string_view type, std::string_view message) {
  return boost::json::serialize(
      boost::json::object{{"errorMessage", message}, {"errorType", type}});
}

std::string timeout_message(int seconds) {
  return fmt::format("Task timed out after {}.00 seconds", seconds);
}

}  // namespace sluice::functions
