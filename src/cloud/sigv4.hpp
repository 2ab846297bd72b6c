// The parts of an AWS Signature Version 4 Authorization header the control plane routes by.
// Pure: it parses text and checks nothing.
#pragma once

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

}  // namespace sluice::cloud
