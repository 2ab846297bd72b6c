#include "cli/api_client.hpp"

#include <boost/json.hpp>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>

#include "common/encoding.hpp"
#include "common/http_client.hpp"
#include "common/sigv4.hpp"

namespace sluice::cli {
namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

std::optional<std::string> find_in(const boost::property_tree::ptree& tree,
                                   const std::string& tag) {
  for (const auto& [name, child] : tree) {
    if (name == tag) return child.data();
    if (auto found = find_in(child, tag)) return found;
  }
  return std::nullopt;
}

}  // namespace

std::string xml_find(const std::string& xml, const std::string& tag) {
  try {
    std::istringstream in(xml);
    boost::property_tree::ptree tree;
    boost::property_tree::read_xml(in, tree);
    return find_in(tree, tag).value_or("");
  } catch (const std::exception&) {
    return "";
  }
}

ApiClient::ApiClient(std::string endpoint_url, std::string region)
    : endpoint_url_(std::move(endpoint_url)),
      region_(std::move(region)),
      // Any key works unless sluice serve runs with --strict-auth.
      access_key_(env_or("AWS_ACCESS_KEY_ID", "sluice")),
      secret_key_(env_or("AWS_SECRET_ACCESS_KEY", "sluice")) {}

ApiResult ApiClient::send(const std::string& service, const std::string& method,
                          const std::string& path, const std::string& content_type,
                          std::vector<std::pair<std::string, std::string>> extra_headers,
                          const std::string& body) {
  const std::string stamp = cloud::amz_date(std::chrono::system_clock::now());
  auto url = boost::urls::parse_uri(endpoint_url_);
  const std::string host =
      url ? std::string(url->host()) + (url->has_port() ? ":" + std::string(url->port()) : "") : "";
  std::map<std::string, std::string> signed_headers{{"host", host}, {"x-amz-date", stamp}};
  if (!content_type.empty()) signed_headers["content-type"] = content_type;
  for (const auto& [name, value] : extra_headers) signed_headers[name] = value;
  cloud::CredentialScope scope{access_key_, stamp.substr(0, 8), region_, service};
  const std::string authorization =
      cloud::sign_request(method, path, signed_headers, body, scope, secret_key_, stamp);
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [name, value] : signed_headers)
    if (name != "host") headers.emplace_back(name, value);
  headers.emplace_back("authorization", authorization);
  const HttpResult http = http_request(endpoint_url_, method, path, headers, body);
  ApiResult result{http.status, http.body, "", "", http.headers};
  if (result.ok()) return result;
  if (http.content_type.find("xml") != std::string::npos) {
    result.error_code = xml_find(http.body, "Code");
    result.error_message = xml_find(http.body, "Message");
  } else {
    boost::system::error_code ec;
    const boost::json::value parsed = boost::json::parse(http.body, ec);
    if (!ec && parsed.is_object()) {
      const auto& o = parsed.as_object();
      for (const char* key : {"__type", "Type"})
        if (const auto* v = o.if_contains(key); v && v->is_string() && key[0] == '_')
          result.error_code = std::string(v->as_string());
      for (const char* key : {"Message", "message"})
        if (const auto* v = o.if_contains(key); v && v->is_string())
          result.error_message = std::string(v->as_string());
    }
    if (!http.error_type.empty()) result.error_code = http.error_type;
  }
  if (result.error_code.empty()) result.error_code = "HTTP" + std::to_string(http.status);
  return result;
}

ApiResult ApiClient::query(const std::string& service, const std::string& version,
                           const std::string& action, const FormParams& params) {
  std::string body =
      "Action=" + cloud::percent_encode(action) + "&Version=" + cloud::percent_encode(version);
  for (const auto& [name, value] : params)
    body += "&" + cloud::percent_encode(name) + "=" + cloud::percent_encode(value);
  return send(service, "POST", "/", "application/x-www-form-urlencoded; charset=utf-8", {}, body);
}

ApiResult ApiClient::json_1_1(const std::string& service, const std::string& target_prefix,
                              const std::string& operation, const std::string& json_body) {
  return send(service, "POST", "/", "application/x-amz-json-1.1",
              {{"x-amz-target", target_prefix + "." + operation}}, json_body);
}

ApiResult ApiClient::rest_json(const std::string& service, const std::string& method,
                               const std::string& path, const std::string& json_body) {
  return send(service, method, path, json_body.empty() ? "" : "application/json", {}, json_body);
}

ApiResult ApiClient::get(const std::string& path) {
  const HttpResult http = http_request(endpoint_url_, "GET", path);
  ApiResult result{http.status, http.body, "", "", http.headers};
  if (!result.ok()) result.error_code = "HTTP" + std::to_string(http.status);
  return result;
}

}  // namespace sluice::cli
