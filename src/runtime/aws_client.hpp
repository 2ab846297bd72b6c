// A function's own calls to AWS services: JSON 1.1 requests (Secrets Manager and friends),
// signed with SigV4 with the execution role's temporary credentials that Lambda puts in the
// environment, sent to AWS_ENDPOINT_URL (the sluice API).
#pragma once

#include <boost/json/value.hpp>
#include <stdexcept>
#include <string>

namespace sluice::runtime {

struct AwsEnvironment {
  std::string endpoint_url;  // http://HOST:PORT
  std::string region;
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys

  // From AWS_ENDPOINT_URL, AWS_REGION (else AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID,
  // AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. Throws AwsError "Runtime.ConfigError" naming
  // the first one missing.
  static AwsEnvironment from_environment();
};

// A failed call: the service's error code (its __type, e.g. "AccessDeniedException") and
// message, "EndpointConnectionError" when the endpoint could not be reached, or
// "Runtime.ConfigError".
class AwsError : public std::runtime_error {
 public:
  AwsError(std::string type, const std::string& message, int status = 0)
      : std::runtime_error(message), type_(std::move(type)), status_(status) {}
  const std::string& type() const { return type_; }
  int status() const { return status_; }  // the HTTP status, 0 when there was no answer

 private:
  std::string type_;
  int status_;
};

struct AwsResponse {
  int status = 0;
  boost::json::value body;    // the parsed answer (null when it was not JSON)
  std::string error_type;     // when not ok(): the service's error code
  std::string error_message;  // when not ok()

  bool ok() const { return status >= 200 && status < 300; }
};

// POST / with X-Amz-Target: `target` (e.g. "secretsmanager.GetSecretValue") and the JSON 1.1
// content type, signed for `service` (e.g. "secretsmanager"). Any HTTP answer is returned;
// throws AwsError "EndpointConnectionError" when there is none.
AwsResponse aws_json_call(const AwsEnvironment& environment, const std::string& service,
                          const std::string& target, const boost::json::value& body);
AwsResponse aws_json_call(const std::string& service, const std::string& target,
                          const boost::json::value& body);

// Secrets Manager's GetSecretValue: the secret's SecretString. Throws AwsError with the
// service's error code on failure, "SecretBinaryNotSupported" for a binary secret.
std::string get_secret_string(const AwsEnvironment& environment, const std::string& secret_id);
std::string get_secret_string(const std::string& secret_id);

// An unsigned GET of an http:// URL (e.g. $AWS_ENDPOINT_URL/sluice/ca-bundle.pem): the body.
// Throws AwsError "EndpointConnectionError" when unreachable, "HttpError" unless HTTP 200.
std::string http_get(const std::string& url);

}  // namespace sluice::runtime
