// Small crypto helpers shared by the auth code (OpenSSL underneath).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::auth {

// Constant-time equality; lengths are not secret.
bool constant_time_equals(std::string_view a, std::string_view b);

std::string base64_encode(std::string_view raw);
std::optional<std::string> base64_decode(std::string_view text);  // nullopt when invalid

// Cryptographically secure random bytes (OpenSSL RAND_bytes).
std::string random_bytes(size_t n);

}  // namespace sluice::auth
