#include "cloud/ids.hpp"

#include "auth/crypto.hpp"

namespace sluice::cloud {

std::string uuid4() {
  std::string raw = auth::random_bytes(16);
  raw[6] = static_cast<char>((raw[6] & 0x0f) | 0x40);  // version 4
  raw[8] = static_cast<char>((raw[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[static_cast<unsigned char>(raw[i]) >> 4];
    out += kHex[static_cast<unsigned char>(raw[i]) & 15];
  }
  return out;
}

std::string random_chars(std::string_view alphabet, size_t count) {
  std::string out;
  // Rejection sampling: no bias toward the first letters of alphabets that do not divide 256.
  const unsigned limit = 256 - 256 % alphabet.size();
  while (out.size() < count)
    for (unsigned char b : auth::random_bytes(count))
      if (b < limit && out.size() < count) out += alphabet[b % alphabet.size()];
  return out;
}

}  // namespace sluice::cloud
