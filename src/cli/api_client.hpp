// The CLI's client for the control plane's AWS-compatible API: the same wire protocols as the
// aws CLI (Query, EC2 query, JSON 1.1, REST-JSON), signed with SigV4 so that `sluice serve
// --strict-auth` accepts it. Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sluice::cli {

struct ApiResult {
  int status = 0;
  std::string body;
  std::string error_code;  // empty on success
  std::string error_message;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  bool ok() const { return status >= 200 && status < 300; }
};

using FormParams = std::vector<std::pair<std::string, std::string>>;

class ApiClient {
 public:
  ApiClient(std::string endpoint_url, std::string region);

  // Query (rds, iam) and EC2 query: Action and Version first, then `params`.
  ApiResult query(const std::string& service, const std::string& version, const std::string& action,
                  const FormParams& params);
  // JSON 1.1 (secretsmanager): X-Amz-Target SERVICE.Operation.
  ApiResult json_1_1(const std::string& service, const std::string& target_prefix,
                     const std::string& operation, const std::string& json_body);
  // REST-JSON (lambda).
  ApiResult rest_json(const std::string& service, const std::string& method,
                      const std::string& path, const std::string& json_body);
  // GET of a sluice-only path (/sluice/…), unsigned.
  ApiResult get(const std::string& path);

  const std::string& region() const { return region_; }

  // Any request, signed for `service` (its SigV4 signing name).
  ApiResult send(const std::string& service, const std::string& method, const std::string& path,
                 const std::string& content_type,
                 std::vector<std::pair<std::string, std::string>> extra_headers,
                 const std::string& body);

 private:
  std::string endpoint_url_;
  std::string region_;
  std::string access_key_;
  std::string secret_key_;
};

// The text of the first element named `tag` anywhere in an XML document (Boost.PropertyTree),
// or "" when there is none or the document does not parse.
std::string xml_find(const std::string& xml, const std::string& tag);

}  // namespace sluice::cli
