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

// SHA-256 and HMAC-SHA-256 of arbitrary byte strings (32 raw bytes out), and lower-case hex.
std::string sha256(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view message);
std::string hex(std::string_view raw);

// Cryptographically secure random bytes (OpenSSL RAND_bytes).
std::string random_bytes(size_t n);
// The same for small needs (a login's nonce), from a per-thread pool that RAND_bytes fills
// kRandomPoolSize bytes at a time: each RAND_bytes call costs about 13,000 instructions whatever
// its size (OpenSSL 3.0's DRBG: locks, a getpid() fork check). Bytes handed out are wiped from
// the pool; a forked child never hands out its parent's. Larger requests go to random_bytes.
constexpr size_t kRandomPoolSize = 512;
std::string pooled_random_bytes(size_t n);

}  // namespace sluice::auth
