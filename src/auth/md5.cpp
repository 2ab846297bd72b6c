#include "auth/md5.hpp"

#include <openssl/evp.h>

#include <optional>
#include <stdexcept>

#include "auth/crypto.hpp"

namespace sluice::auth {

namespace {

constexpr std::string_view kPrefix = "md5";
constexpr size_t kHexLen = 32;  // hex md5 digest

// Lowercase hex MD5 of `data`; nullopt only if the digest is unavailable (e.g. FIPS mode).
std::optional<std::string> md5_hex(std::string_view data) {
  unsigned char digest[16];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr) != 1 || len != 16)
    return std::nullopt;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(kHexLen);
  for (unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::optional<std::string> response_for(std::string_view stored_hash,
                                        const std::array<uint8_t, 4>& salt) {
  // Same shape check as PostgreSQL's get_password_type(): "md5" + 32 lowercase hex digits.
  if (stored_hash.size() != kPrefix.size() + kHexLen || !stored_hash.starts_with(kPrefix) ||
      stored_hash.find_first_not_of("0123456789abcdef", kPrefix.size()) != std::string_view::npos)
    return std::nullopt;
  std::string input(stored_hash.substr(kPrefix.size()));
  input.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  auto hex = md5_hex(input);
  if (!hex) return std::nullopt;
  return std::string(kPrefix) + *hex;
}

}  // namespace

std::string md5_stored_hash(std::string_view user, std::string_view password) {
  std::string input(password);
  input.append(user);
  auto hex = md5_hex(input);
  if (!hex) throw std::runtime_error("MD5 digest unavailable");
  return std::string(kPrefix) + *hex;
}

// Throws on a malformed stored hash: that is a configuration error, not hostile input.
std::string md5_client_response(std::string_view stored_hash, const std::array<uint8_t, 4>& salt) {
  auto response = response_for(stored_hash, salt);
  if (!response) throw std::invalid_argument("md5_client_response: malformed stored hash");
  return *response;
}

bool md5_verify(std::string_view stored_hash, const std::array<uint8_t, 4>& salt,
                std::string_view client_response) {
  auto expected = response_for(stored_hash, salt);
  return expected && constant_time_equals(*expected, client_response);
}

}  // namespace sluice::auth
