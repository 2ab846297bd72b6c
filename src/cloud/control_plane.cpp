#include "cloud/control_plane.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "auth/crypto.hpp"
#include "cloud/sigv4.hpp"

namespace sluice::cloud {
namespace json = boost::json;

namespace {
// Six hex digits of the home folder's hash: this instance's namespaces are named after it.
std::string home_tag(const std::string& home) {
  const std::string digest = auth::hex(auth::sha256(home));
  return digest.substr(0, 6);
}
}  // namespace

ControlPlane::ControlPlane(const ControlPlaneOptions& options)
    : options_(options),
      store_(options.home + "/state.db"),
      key_(SealingKey::load_or_create(options.home + "/secrets.key")),
      secrets_(store_, key_, options.account_id),
      iam_(store_, options.account_id),
      ec2_(store_, options.account_id),
      lambda_(store_, ec2_, options.home + "/functions", options.account_id),
      network_(options.hosts_file, options.home),
      vpc_network_(home_tag(options.home)),
      rds_(RdsEnvironment{store_, key_, supervisor_, network_, secrets_, iam_, ec2_, options.home,
                          options.account_id, options.domain, options.postgres_bin,
                          options.proxy_binary, vpc_network_.available() ? &vpc_network_ : nullptr,
                          options.host_access}) {
  if (!options.strict_auth) return;
  std::ifstream in(options.access_keys);
  if (!in) throw std::runtime_error("--strict-auth needs access keys in " + options.access_keys);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string id, secret;
    if (!(words >> id) || id.starts_with('#')) continue;
    if (!(words >> secret))
      throw std::runtime_error(options.access_keys + ": a key without its secret");
    access_keys_[id] = secret;
  }
  if (access_keys_.empty()) throw std::runtime_error(options.access_keys + " holds no access keys");
}

ApiResponse ControlPlane::handle(ApiRequest& request) {
  // What `sluice apply` checks a stack against.
  if (request.method == "GET" && request.target == "/sluice/info") {
    ApiResponse info;
    info.body = json::serialize(
        json::object{{"AccountId", options_.account_id}, {"Domain", options_.domain}});
    return info;
  }
  if (request.method == "GET" && request.target.starts_with(kInterfacePath)) {
    ApiResponse found;
    const std::string id = request.target.substr(kInterfacePath.size());
    if (vpc_network_.available()) rds_.reconcile_interfaces();
    if (!ec2_.interface(id) || !vpc_network_.available()) {
      found.status = 404;
      found.body = json::serialize(json::object{
          {"Message", vpc_network_.available() ? "no network interface " + id
                                               : std::string("network namespaces are not "
                                                             "available to this sluice serve")}});
      return found;
    }
    found.body = json::serialize(json::object{{"Namespace", vpc_network_.interface_namespace(id)}});
    return found;
  }
  // Public, as RDS's bundle is: no signature needed.
  if (request.method == "GET" && request.target == kCaBundlePath) {
    ApiResponse bundle;
    bundle.content_type = "application/x-pem-file";
    bundle.body = rds_.ca_bundle();
    return bundle;
  }
  if (options_.strict_auth) {
    const SignatureCheck check =
        verify_signature(request.method, request.target, request.headers, request.body,
                         [&](std::string_view id) -> std::optional<std::string> {
                           auto it = access_keys_.find(id);
                           if (it == access_keys_.end()) return std::nullopt;
                           return it->second;
                         });
    if (check == SignatureCheck::kMissing)
      return refuse(request, ApiError("MissingAuthenticationToken",
                                      "Request is missing Authentication Token", 403));
    if (check == SignatureCheck::kUnknownKey)
      return refuse(request,
                    ApiError("InvalidClientTokenId",
                             "The security token included in the request is invalid.", 403));
    if (check == SignatureCheck::kMismatch)
      return refuse(request,
                    ApiError("SignatureDoesNotMatch",
                             "The request signature we calculated does not match the signature you "
                             "provided. Check your AWS Secret Access Key and signing method.",
                             403));
  }
  const std::string target = request.header("x-amz-target");
  if (!target.empty()) return json_1_1(request, target);
  if (request.target.starts_with(Lambda::kPrefix)) return lambda_.handle(request);
  return query(request);
}

void ControlPlane::tick() {
  supervisor_.reap();
  rds_.reconcile();
}

void ControlPlane::shutdown() {
  rds_.shutdown();
  vpc_network_.remove_all();
}

ApiResponse ControlPlane::refuse(const ApiRequest& request, const ApiError& error) {
  ApiResponse response;
  if (!request.header("x-amz-target").empty() || request.target.starts_with(Lambda::kPrefix)) {
    // JSON services name these errors differently.
    const std::string code = error.code == "InvalidClientTokenId" ? "UnrecognizedClientException"
                             : error.code == "SignatureDoesNotMatch"
                                 ? "InvalidSignatureException"
                                 : "MissingAuthenticationTokenException";
    response.status = error.status;
    response.content_type = "application/x-amz-json-1.1";
    response.body = json::serialize(
        json::object{{"__type", code}, {"message", error.what()}, {"Message", error.what()}});
    response.headers.emplace_back("x-amzn-ErrorType", code);
    return response;
  }
  return request.service == "ec2" ? ec2_error(error) : query_error(error, Iam::kXmlns);
}

ApiResponse ControlPlane::query(ApiRequest& request) {
  std::string_view xmlns = Iam::kXmlns;
  bool ec2 = request.service == "ec2";
  try {
    const QueryParams params = QueryParams::parse(request.body);
    const std::string version = params.get("Version").value_or("");
    const std::string action = params.get("Action").value_or("");
    if (version == "2016-11-15" || (version.empty() && ec2)) {
      ec2 = true;
      if (action.empty())
        throw ApiError("MissingAction", "The request must contain the parameter Action.");
      return ec2_response(action, Ec2::kXmlns, ec2_.handle(action, params, request.region));
    }
    if (version == "2014-10-31" || (version.empty() && request.service == "rds")) {
      xmlns = Rds::kXmlns;
      if (action.empty())
        throw ApiError("MissingAction", "The request must contain the parameter Action.");
      return query_response(action, Rds::kXmlns, rds_.handle(action, params, request.region));
    }
    if (version == "2010-05-08" || (version.empty() && request.service == "iam")) {
      if (action.empty())
        throw ApiError("MissingAction", "The request must contain the parameter Action.");
      return query_response(action, Iam::kXmlns, iam_.handle(action, params));
    }
    throw ApiError("InvalidAction", "sluice does not serve " +
                                        (request.service.empty() ? std::string("this request")
                                                                 : "service " + request.service) +
                                        " yet.");
  } catch (const ApiError& e) {
    return ec2 ? ec2_error(e) : query_error(e, xmlns);
  }
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
