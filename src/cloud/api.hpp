// What every AWS-compatible service of the control plane sees: one HTTP request with the
// caller's SigV4 scope already read, and the errors the real services return.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sluice::cloud {

struct ApiRequest {
  std::string method;
  std::string target;                          // path and query string
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  // From the Authorization header's credential scope (defaults when unsigned).
  std::string service;
  std::string region = "us-east-1";
  std::string access_key;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// An error as the service reports it: its code (the exception's name) and HTTP status.
struct ApiError : std::runtime_error {
  ApiError(std::string code, const std::string& message, int status = 400)
      : std::runtime_error(message), code(std::move(code)), status(status) {}
  std::string code;
  int status;
};

}  // namespace sluice::cloud
