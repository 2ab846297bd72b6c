#include "runtime/aws_client.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <cstdlib>
#include <map>
#include <utility>
#include <vector>

#include "common/http_client.hpp"
#include "common/sigv4.hpp"

namespace sluice::runtime {
namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string required_env(const char* name) {
  std::string value = env(name);
  if (value.empty()) throw AwsError("Runtime.ConfigError", std::string(name) + " is not set");
  return value;
}

// HOST:PORT exactly as cli::http_request sends it in the Host header, which is signed.
std::string host_header(const std::string& endpoint_url) {
  auto url = boost::urls::parse_uri(endpoint_url);
  if (!url || url->scheme() != "http" || url->host().empty())
    throw AwsError("Runtime.ConfigError",
                   "AWS_ENDPOINT_URL must be http://HOST:PORT, not \"" + endpoint_url + "\"");
  return std::string(url->host()) + ":" + (url->has_port() ? std::string(url->port()) : "80");
}

// "com.amazonaws.secretsmanager#ResourceNotFoundException" -> "ResourceNotFoundException"
std::string error_code(std::string code) {
  if (auto hash = code.rfind('#'); hash != std::string::npos) code = code.substr(hash + 1);
  return code;
}

std::string string_field(const boost::json::value& document, const char* key) {
  if (!document.is_object()) return "";
  const auto* field = document.as_object().if_contains(key);
  return field && field->is_string() ? std::string(field->as_string()) : "";
}

}  // namespace

AwsEnvironment AwsEnvironment::from_environment() {
  AwsEnvironment environment;
  environment.endpoint_url = required_env("AWS_ENDPOINT_URL");
  environment.region = env("AWS_REGION");
  if (environment.region.empty()) environment.region = required_env("AWS_DEFAULT_REGION");
  environment.access_key_id = required_env("AWS_ACCESS_KEY_ID");
  environment.secret_access_key = required_env("AWS_SECRET_ACCESS_KEY");
  environment.session_token = env("AWS_SESSION_TOKEN");
  return environment;
}

AwsResponse aws_json_call(const AwsEnvironment& environment, const std::string& service,
                          const std::string& target, const boost::json::value& body) {
  const std::string payload = boost::json::serialize(body);
  const std::string amz_date = cloud::amz_date(std::chrono::system_clock::now());
  std::map<std::string, std::string> headers{{"host", host_header(environment.endpoint_url)},
                                             {"x-amz-date", amz_date},
                                             {"x-amz-target", target},
                                             {"content-type", "application/x-amz-json-1.1"}};
  // Temporary credentials are only valid with their token, which is signed like the rest.
  if (!environment.session_token.empty())
    headers["x-amz-security-token"] = environment.session_token;
  const cloud::CredentialScope scope{environment.access_key_id, amz_date.substr(0, 8),
                                     environment.region, service};
  const std::string authorization = cloud::sign_request("POST", "/", headers, payload, scope,
                                                        environment.secret_access_key, amz_date);
  std::vector<std::pair<std::string, std::string>> sent(headers.begin(), headers.end());
  sent.emplace_back("authorization", authorization);

  cli::HttpResult http;
  try {
    http = cli::http_request(environment.endpoint_url, "POST", "/", sent, payload);
  } catch (const std::exception& e) {
    throw AwsError("EndpointConnectionError", e.what());
  }
  AwsResponse response;
  response.status = http.status;
  boost::system::error_code parse_error;
  response.body = boost::json::parse(http.body, parse_error);
  if (parse_error) response.body = nullptr;
  if (response.ok()) return response;
  response.error_type = error_code(
      !http.error_type.empty() ? http.error_type : string_field(response.body, "__type"));
  response.error_message = string_field(response.body, "Message");
  if (response.error_message.empty())
    response.error_message = string_field(response.body, "message");
  if (response.error_type.empty()) response.error_type = "HTTP" + std::to_string(http.status);
  if (response.error_message.empty())
    response.error_message = target + " failed with HTTP " + std::to_string(http.status);
  return response;
}

AwsResponse aws_json_call(const std::string& service, const std::string& target,
                          const boost::json::value& body) {
  return aws_json_call(AwsEnvironment::from_environment(), service, target, body);
}

std::string get_secret_string(const AwsEnvironment& environment, const std::string& secret_id) {
  const AwsResponse response =
      aws_json_call(environment, "secretsmanager", "secretsmanager.GetSecretValue",
                    boost::json::object{{"SecretId", secret_id}});
  if (!response.ok()) throw AwsError(response.error_type, response.error_message, response.status);
  if (response.body.is_object()) {
    const auto* secret = response.body.as_object().if_contains("SecretString");
    if (secret && secret->is_string()) return std::string(secret->as_string());
  }
  throw AwsError("SecretBinaryNotSupported", "the secret " + secret_id + " has no SecretString",
                 response.status);
}

std::string get_secret_string(const std::string& secret_id) {
  return get_secret_string(AwsEnvironment::from_environment(), secret_id);
}

std::string http_get(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) throw AwsError("Runtime.ConfigError", "not a URL: \"" + url + "\"");
  const std::string target =
      parsed->encoded_target().empty() ? std::string("/") : std::string(parsed->encoded_target());
  cli::HttpResult http;
  try {
    http = cli::http_request(url, "GET", target);
  } catch (const std::exception& e) {
    throw AwsError("EndpointConnectionError", e.what());
  }
  if (http.status != 200)
    throw AwsError("HttpError", "GET " + url + " answered HTTP " + std::to_string(http.status),
                   http.status);
  return http.body;
}

}  // namespace sluice::runtime
