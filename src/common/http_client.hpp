// The CLI's side of the control plane's HTTP API (Boost.Beast, one request per connection).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sluice::cli {

struct HttpResult {
  int status = 0;
  std::string content_type;
  std::string error_type;  // x-amzn-ErrorType (REST-JSON and JSON 1.1 errors)
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // all of them, names in lower case
};

// `url` is http://HOST:PORT[/…]. Throws std::runtime_error when the API cannot be reached.
HttpResult http_request(const std::string& url, const std::string& method,
                        const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& headers = {},
                        const std::string& body = {});

}  // namespace sluice::cli
