// Percent-encoding as AWS signs and sends it (RFC 3986: unreserved characters stay).
#pragma once

#include <string>
#include <string_view>

namespace sluice::cloud {

// Every byte but A-Z a-z 0-9 - _ . ~ (and '/' when `keep_slash`) as %XX, upper-case hex.
std::string percent_encode(std::string_view text, bool keep_slash = false);
// %XX sequences back to bytes; anything else, a malformed '%' included, is kept as it is.
std::string percent_decode(std::string_view text);

}  // namespace sluice::cloud
