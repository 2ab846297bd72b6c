#include "auth/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <pthread.h>

#include <array>
#include <atomic>
#include <climits>
#include <stdexcept>

namespace sluice::auth {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Reverse alphabet; -1 marks bytes that are not base64 digits (including '=' and whitespace).
constexpr std::array<int8_t, 256> kDecodeTable = [] {
  std::array<int8_t, 256> table{};
  table.fill(-1);
  for (int i = 0; i < 64; ++i)
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return table;
}();

}  // namespace

bool constant_time_equals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;  // CRYPTO_memcmp must not see null pointers
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string sha256(std::string_view data) {
  std::string out(32, '\0');
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &len,
                 EVP_sha256(), nullptr) != 1 ||
      len != out.size())
    throw std::runtime_error("SHA-256 failed");  // a broken library, not bad input
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  std::string out(32, '\0');
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(),
            reinterpret_cast<unsigned char*>(out.data()), &len) ||
      len != out.size())
    throw std::runtime_error("HMAC-SHA-256 failed");
  return out;
}

std::string hex(std::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string base64_encode(std::string_view raw) {
  std::string out;
  out.reserve((raw.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= raw.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(raw[i]) << 16 | static_cast<uint8_t>(raw[i + 1]) << 8 |
                 static_cast<uint8_t>(raw[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (size_t rest = raw.size() - i; rest > 0) {
    uint32_t v = static_cast<uint8_t>(raw[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(raw[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Strict RFC 4648 decoding: length a multiple of 4, padding only at the very end, no
// whitespace, and the unused bits before the padding must be zero. That makes the encoding
// canonical, so each byte string has exactly one accepted text form.
std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  if (!text.empty() && text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;

  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const size_t digits = last ? 4 - padding : 4;
    uint32_t v = 0;
    for (size_t j = 0; j < 4; ++j) {
      int d = 0;
      if (j < digits) {
        d = kDecodeTable[static_cast<unsigned char>(text[i + j])];
        if (d < 0) return std::nullopt;
      }
      v = v << 6 | static_cast<uint32_t>(d);
    }
    out += static_cast<char>(v >> 16);
    if (digits >= 3) out += static_cast<char>((v >> 8) & 0xff);
    if (digits == 4) out += static_cast<char>(v & 0xff);
    // Non-zero bits that the padding throws away mean a non-canonical encoding.
    if ((digits == 2 && (v & 0xffff) != 0) || (digits == 3 && (v & 0xff) != 0)) return std::nullopt;
  }
  return out;
}

std::string random_bytes(size_t n) {
  if (n > INT_MAX) throw std::length_error("random_bytes: request too large");
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed");  // never hand out predictable nonces/salts
  return out;
}

namespace {
// Bumped in a forked child: pools filled before the fork are refilled before use.
std::atomic<uint64_t> fork_generation{0};
void note_fork() {
  fork_generation.fetch_add(1, std::memory_order_relaxed);
}
const bool fork_handler_installed = pthread_atfork(nullptr, nullptr, note_fork) == 0;
}  // namespace

std::string pooled_random_bytes(size_t n) {
  struct Pool {
    unsigned char bytes[kRandomPoolSize];
    size_t used = sizeof bytes;  // empty: filled at first use
    uint64_t generation = 0;
    ~Pool() { OPENSSL_cleanse(bytes, sizeof bytes); }
  };
  thread_local Pool pool;
  if (n > sizeof pool.bytes || !fork_handler_installed) return random_bytes(n);
  const uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  if (sizeof pool.bytes - pool.used < n || pool.generation != generation) {
    if (RAND_bytes(pool.bytes, sizeof pool.bytes) != 1)
      throw std::runtime_error("RAND_bytes failed");
    pool.used = 0;
    pool.generation = generation;
  }
  std::string out(reinterpret_cast<const char*>(pool.bytes + pool.used), n);
  OPENSSL_cleanse(pool.bytes + pool.used, n);
  pool.used += n;
  return out;
}

}  // namespace sluice::auth
