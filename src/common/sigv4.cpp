#include "common/sigv4.hpp"

#include <algorithm>
#include <ctime>
#include <vector>

#include "auth/crypto.hpp"
#include "common/encoding.hpp"

namespace sluice::cloud {

std::string amz_date(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  return stamp;
}

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

namespace sluice::cloud {
namespace {

// Header values: trimmed, inner runs of spaces made one.
std::string canonical_value(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string field(std::string_view header, std::string_view name) {
  const size_t at = header.find(name);
  if (at == std::string_view::npos) return "";
  std::string_view rest = header.substr(at + name.size());
  return std::string(rest.substr(0, rest.find_first_of(", ")));
}

std::string compute_signature(std::string_view method, std::string_view target,
                              const std::function<std::string(const std::string&)>& header,
                              std::string_view body, const std::string& signed_headers,
                              const std::string& date, const CredentialScope& scope,
                              const std::string& secret) {
  const std::string_view path = target.substr(0, target.find('?'));
  const std::string_view query =
      target.find('?') == std::string_view::npos ? "" : target.substr(target.find('?') + 1);
  // Query parameters sorted as sent, already encoded (botocore signs them so; every SDK encodes
  // them the canonical way).
  std::vector<std::pair<std::string_view, std::string_view>> params;
  for (size_t start = 0; start < query.size();) {
    const size_t end = std::min(query.find('&', start), query.size());
    const std::string_view pair = query.substr(start, end - start);
    const size_t eq = pair.find('=');
    params.emplace_back(pair.substr(0, eq),
                        eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    start = end + 1;
  }
  std::sort(params.begin(), params.end());
  std::string canonical_query;
  for (const auto& [key, value] : params) {
    if (!canonical_query.empty()) canonical_query += '&';
    canonical_query.append(key).append("=").append(value);
  }

  std::string canonical_headers;
  for (size_t start = 0; start <= signed_headers.size();) {
    const size_t end = std::min(signed_headers.find(';', start), signed_headers.size());
    const std::string name = signed_headers.substr(start, end - start);
    canonical_headers += name + ":" + canonical_value(header(name)) + "\n";
    start = end + 1;
  }
  std::string payload_hash = header("x-amz-content-sha256");
  if (payload_hash.empty()) payload_hash = auth::hex(auth::sha256(body));
  // botocore encodes the path it sends once more for every service but S3.
  const std::string canonical_request =
      std::string(method) + "\n" + percent_encode(path, /*keep_slash=*/true) + "\n" +
      canonical_query + "\n" + canonical_headers + "\n" + signed_headers + "\n" + payload_hash;
  const std::string credential_scope =
      scope.date + "/" + scope.region + "/" + scope.service + "/aws4_request";
  const std::string string_to_sign = "AWS4-HMAC-SHA256\n" + date + "\n" + credential_scope + "\n" +
                                     auth::hex(auth::sha256(canonical_request));
  std::string key = auth::hmac_sha256("AWS4" + secret, scope.date);
  key = auth::hmac_sha256(key, scope.region);
  key = auth::hmac_sha256(key, scope.service);
  key = auth::hmac_sha256(key, "aws4_request");
  return auth::hex(auth::hmac_sha256(key, string_to_sign));
}

}  // namespace

SignatureCheck verify_signature(
    std::string_view method, std::string_view target,
    const std::map<std::string, std::string>& headers, std::string_view body,
    const std::function<std::optional<std::string>(std::string_view)>& secret_for) {
  auto header = [&](const std::string& name) -> std::string {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  };
  const std::string authorization = header("authorization");
  const auto scope = parse_authorization(authorization);
  const std::string signed_headers = field(authorization, "SignedHeaders=");
  const std::string signature = field(authorization, "Signature=");
  const std::string date = header("x-amz-date");
  if (!scope || signed_headers.empty() || signature.empty() || date.size() < 8)
    return SignatureCheck::kMissing;
  const auto secret = secret_for(scope->access_key);
  if (!secret) return SignatureCheck::kUnknownKey;

  const std::string expected =
      compute_signature(method, target, header, body, signed_headers, date, *scope, *secret);
  return auth::constant_time_equals(expected, signature) ? SignatureCheck::kValid
                                                         : SignatureCheck::kMismatch;
}

std::string sign_request(std::string_view method, std::string_view target,
                         const std::map<std::string, std::string>& headers, std::string_view body,
                         const CredentialScope& scope, const std::string& secret,
                         const std::string& amz_date) {
  std::string signed_headers;
  for (const auto& [name, value] : headers)
    signed_headers += (signed_headers.empty() ? "" : ";") + name;
  auto header = [&](const std::string& name) -> std::string {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  };
  const std::string signature =
      compute_signature(method, target, header, body, signed_headers, amz_date, scope, secret);
  return "AWS4-HMAC-SHA256 Credential=" + scope.access_key + "/" + scope.date + "/" + scope.region +
         "/" + scope.service + "/aws4_request, SignedHeaders=" + signed_headers +
         ", Signature=" + signature;
}

}  // namespace sluice::cloud
