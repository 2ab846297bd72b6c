// The parts of an AWS Signature Version 4 Authorization header the control plane routes by.
// Pure: no I/O.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::cloud {

struct CredentialScope {
  std::string access_key;
  std::string date;  // YYYYMMDD
  std::string region;
  std::string service;
};

// "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/secretsmanager/aws4_request, …"
std::optional<CredentialScope> parse_authorization(std::string_view header);

// What a signature check found (`sluice serve --strict-auth`).
enum class SignatureCheck { kValid, kMissing, kUnknownKey, kMismatch };

// Recomputes the request's SigV4 signature as the SDKs compute it (canonical request, string
// to sign, the HMAC key chain) with the secret `secret_for(access key)` gives, and compares it
// in constant time. `target` is the path and query as sent (still percent-encoded); `headers`
// has lower-case names.
SignatureCheck verify_signature(
    std::string_view method, std::string_view target,
    const std::map<std::string, std::string>& headers, std::string_view body,
    const std::function<std::optional<std::string>(std::string_view)>& secret_for);

// `time` as x-amz-date carries it (and sign_request takes it): YYYYMMDDTHHMMSSZ, in UTC.
std::string amz_date(std::chrono::system_clock::time_point time);

// The Authorization header for a request, as botocore signs it: every header in `headers`
// (lower-case names; it must hold "host" and "x-amz-date" = `amz_date`, YYYYMMDDTHHMMSSZ) is
// signed. `target` is the path and query as sent.
std::string sign_request(std::string_view method, std::string_view target,
                         const std::map<std::string, std::string>& headers, std::string_view body,
                         const CredentialScope& scope, const std::string& secret,
                         const std::string& amz_date);

}  // namespace sluice::cloud
