#include "cloud/sigv4.hpp"

#include <vector>

namespace sluice::cloud {

std::optional<CredentialScope> parse_authorization(std::string_view header) {
  constexpr std::string_view kScheme = "AWS4-HMAC-SHA256 ";
  if (!header.starts_with(kScheme)) return std::nullopt;
  const size_t at = header.find("Credential=");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view credential = header.substr(at + 11);
  credential = credential.substr(0, credential.find_first_of(", "));
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t slash = credential.find('/', start);
    parts.push_back(credential.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() != 5 || parts[4] != "aws4_request") return std::nullopt;
  for (auto part : parts)
    if (part.empty()) return std::nullopt;
  return CredentialScope{std::string(parts[0]), std::string(parts[1]), std::string(parts[2]),
                         std::string(parts[3])};
}

}  // namespace sluice::cloud
