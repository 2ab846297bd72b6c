// libFuzzer: the configuration parser on any text. A bad file is a ConfigError naming the key,
// never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "proxy/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)sluice::proxy::parse_config(text, "/nonexistent");
  } catch (const sluice::proxy::ConfigError&) {
  }
  return 0;
}
