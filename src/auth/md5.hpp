// PostgreSQL's MD5 password authentication.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::auth {

// "md5" + hex(md5(password + user)): what pg_authid stores and what the proxy keeps per secret.
std::string md5_stored_hash(std::string_view user, std::string_view password);

// The PasswordMessage a client sends for AuthenticationMD5Password:
// "md5" + hex(md5(hex-part-of-stored-hash + salt)).
std::string md5_client_response(std::string_view stored_hash, const std::array<uint8_t, 4>& salt);

// Checks a client's response against the stored hash, in constant time.
bool md5_verify(std::string_view stored_hash, const std::array<uint8_t, 4>& salt,
                std::string_view client_response);

}  // namespace sluice::auth
