// echo-function: the smallest C++ Lambda function, a `bootstrap` for provided.al2023 that
// answers every event with the event itself. It does no work of its own, so what an invocation
// costs is the function host's and the runtime library's: bench/functions.py measures the host's
// overhead per warm invocation and its cold start with it.
#include <string>

#include "runtime/runtime.hpp"

int main() {
  return sluice::runtime::run([](const std::string& payload, const sluice::runtime::Context&) {
    return sluice::runtime::Result::success(payload);
  });
}
