// Secret values at rest: AES-256-GCM under a key kept in a file only its owner may read.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::cloud {

class SealingKey {
 public:
  // Reads the key at `path`, creating it (32 random bytes, mode 0600) when absent. Throws
  // std::runtime_error when the file exists with another size or cannot be created.
  static SealingKey load_or_create(const std::string& path);
  explicit SealingKey(std::string key) : key_(std::move(key)) {}

  // nonce (12 bytes) + ciphertext + tag (16 bytes). `context` is authenticated, not stored: a
  // sealed value moved to another record does not open.
  std::string seal(std::string_view plaintext, std::string_view context) const;
  std::optional<std::string> open(std::string_view sealed, std::string_view context) const;

 private:
  std::string key_;
};

}  // namespace sluice::cloud
