#include "cloud/control_plane.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

namespace sluice::cloud {
namespace json = boost::json;

ControlPlane::ControlPlane(const ControlPlaneOptions& options)
    : options_(options),
      store_(options.home + "/state.db"),
      key_(SealingKey::load_or_create(options.home + "/secrets.key")),
      secrets_(store_, key_, options.account_id) {}

ApiResponse ControlPlane::handle(ApiRequest& request) {
  const std::string target = request.header("x-amz-target");
  if (!target.empty()) return json_1_1(request, target);
  ApiResponse response;
  response.status = 400;
  response.content_type = "text/xml";
  response.body =
      "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>sluice does not "
      "serve " +
      (request.service.empty() ? std::string("this request") : "service " + request.service) +
      " yet.</Message></Error><RequestId>sluice</RequestId></ErrorResponse>";
  return response;
}

ApiResponse ControlPlane::json_1_1(ApiRequest& request, const std::string& target) {
  ApiResponse response;
  response.content_type = "application/x-amz-json-1.1";
  auto fail = [&](const std::string& code, const std::string& message, int status) {
    response.status = status;
    response.body = json::serialize(json::object{{"__type", code}, {"Message", message}});
    response.headers.emplace_back("x-amzn-ErrorType", code);
    return response;
  };
  const size_t dot = target.find('.');
  const std::string service = target.substr(0, dot);
  const std::string operation = dot == std::string::npos ? "" : target.substr(dot + 1);
  boost::system::error_code parse_error;
  json::value input =
      request.body.empty() ? json::value(json::object()) : json::parse(request.body, parse_error);
  if (parse_error || !input.is_object())
    return fail("SerializationException", "The request body is not a JSON object.", 400);
  try {
    json::object output;
    if (service == "secretsmanager")
      output = secrets_.handle(operation, input.as_object(), request.region);
    else
      return fail("UnknownOperationException", "sluice does not serve " + target + ".", 400);
    response.body = json::serialize(output);
    return response;
  } catch (const ApiError& e) {
    return fail(e.code, e.what(), e.status);
  }
}

}  // namespace sluice::cloud
