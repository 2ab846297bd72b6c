// libFuzzer: SCRAM-SHA-256 as the proxy's server side sees it. The input is a client-first and
// a client-final message separated by a NUL; neither may crash the exchange, and no proof made
// without the password may pass.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "auth/scram.hpp"

using namespace sluice::auth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ScramVerifier verifier = derive_scram_verifier("a password", "0123456789abcdef", 64);
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string_view first = input.substr(0, split);
  const std::string_view final_message =
      split == std::string_view::npos ? std::string_view() : input.substr(split + 1);
  ScramServer server(verifier, "fuzzservernonce");
  if (!server.handle_client_first(first)) return 0;
  // A proof that passes would need the password: the fuzzer cannot find one.
  if (server.handle_client_final(final_message)) std::abort();
  return 0;
}
