#include "cloud/control_plane.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <sstream>

#include "auth/crypto.hpp"
#include "cloud/json_fields.hpp"
#include "common/encoding.hpp"
#include "common/sigv4.hpp"

namespace sluice::cloud {
namespace json = boost::json;

namespace {
// Six hex digits of the home folder's hash: this instance's namespaces are named after it.
std::string home_tag(const std::string& home) {
  const std::string digest = auth::hex(auth::sha256(home));
  return digest.substr(0, 6);
}

// The service a Query-protocol request is for: by its Version, else the SigV4 scope.
std::string query_service(const std::string& version, const std::string& scope_service) {
  if (version == "2016-11-15") return "ec2";
  if (version == "2014-10-31") return "rds";
  if (version == "2010-05-08") return "iam";
  if (version == "2011-06-15") return "sts";
  return version.empty() ? scope_service : "";
}

// Lambda's IAM action and function for a REST request: /DATE/functions/NAME/SUB and the like.
std::pair<std::string, std::string> lambda_operation(const std::string& method,
                                                     const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  std::vector<std::string> parts;  // after the date
  for (size_t start = 1; start < path.size();) {
    const size_t slash = std::min(path.find('/', start), path.size());
    if (slash > start) parts.push_back(percent_decode(path.substr(start, slash - start)));
    start = slash + 1;
  }
  if (!parts.empty()) parts.erase(parts.begin());
  const std::string collection = parts.empty() ? "" : parts[0];
  const std::string name = parts.size() > 1 ? parts[1] : "";
  const std::string sub = parts.size() > 2 ? parts[2] : "";
  if (collection == "account-settings") return {"GetAccountSettings", ""};
  if (collection == "event-source-mappings") {
    if (method == "POST") return {"CreateEventSourceMapping", ""};
    if (method == "PUT") return {"UpdateEventSourceMapping", ""};
    if (method == "DELETE") return {"DeleteEventSourceMapping", ""};
    return {name.empty() ? "ListEventSourceMappings" : "GetEventSourceMapping", ""};
  }
  if (collection != "functions") return {"", ""};
  if (name.empty()) return {method == "POST" ? "CreateFunction" : "ListFunctions", ""};
  struct Route {
    std::string_view sub, method, action;
  };
  static constexpr Route kRoutes[] = {
      {"", "GET", "GetFunction"},
      {"", "DELETE", "DeleteFunction"},
      {"configuration", "GET", "GetFunctionConfiguration"},
      {"configuration", "PUT", "UpdateFunctionConfiguration"},
      {"code", "PUT", "UpdateFunctionCode"},
      {"invocations", "POST", "InvokeFunction"},
      {"invoke-async", "POST", "InvokeAsync"},
      {"concurrency", "GET", "GetFunctionConcurrency"},
      {"concurrency", "PUT", "PutFunctionConcurrency"},
      {"concurrency", "DELETE", "DeleteFunctionConcurrency"},
      {"versions", "GET", "ListVersionsByFunction"},
      {"versions", "POST", "PublishVersion"},
      {"policy", "GET", "GetPolicy"},
      {"policy", "POST", "AddPermission"},
      {"policy", "DELETE", "RemovePermission"},
      {"aliases", "GET", "ListAliases"},
      {"aliases", "POST", "CreateAlias"},
  };
  for (const Route& route : kRoutes)
    if (route.sub == sub && route.method == method) return {std::string(route.action), name};
  return {"", name};
}

// A best-effort RDS resource: the instance or cluster the request names, else its kind.
std::string rds_resource(const std::string& action, const QueryParams& params,
                         const std::string& prefix) {
  if (auto id = params.get("DBInstanceIdentifier")) return prefix + "db:" + *id;
  if (auto id = params.get("DBClusterIdentifier")) return prefix + "cluster:" + *id;
  if (action.find("DBProx") != std::string::npos) return prefix + "db-proxy:*";
  if (action.find("DBCluster") != std::string::npos) return prefix + "cluster:*";
  if (action.find("DBInstance") != std::string::npos) return prefix + "db:*";
  return "*";
}
}  // namespace

ControlPlane::ControlPlane(const ControlPlaneOptions& options)
    : options_(options),
      store_(options.home + "/state.db"),
      key_(SealingKey::load_or_create(options.home + "/secrets.key")),
      secrets_(store_, key_, options.account_id),
      iam_(store_, options.account_id),
      ec2_(store_, options.account_id),
      lambda_(store_, ec2_, options.home + "/functions", options.account_id,
              options.account_concurrency),
      network_(options.hosts_file, options.home),
      vpc_network_(home_tag(options.home)),
      rds_(RdsEnvironment{store_, key_, supervisor_, network_, secrets_, iam_, ec2_, options.home,
                          options.account_id, options.domain, options.postgres_bin,
                          options.proxy_binary, vpc_network_.available() ? &vpc_network_ : nullptr,
                          options.host_access}),
      role_credentials_(options.account_id),
      log_store_(options.home + "/logs"),
      sts_(store_, role_credentials_, options.account_id),
      logs_(log_store_, options.account_id) {
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

std::string ControlPlane::instance_tag() const {
  return home_tag(options_.home);
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
  if (auto refusal = authorize(request)) return *refusal;
  const std::string target = request.header("x-amz-target");
  if (!target.empty()) return json_1_1(request, target);
  if (Lambda::serves_path(request.target)) return lambda_.handle(request);
  return query(request);
}

std::optional<ApiResponse> ControlPlane::authorize(const ApiRequest& request) {
  const auto session =
      request.access_key.empty() ? std::nullopt : role_credentials_.find(request.access_key);
  if (!session) {
    // Temporary credentials this region did not issue (or has forgotten since a restart).
    if (request.access_key.starts_with("ASIA") && !access_keys_.contains(request.access_key))
      return refuse(request,
                    ApiError("InvalidClientTokenId",
                             "The security token included in the request is invalid.", 403));
    if (!options_.strict_auth) return std::nullopt;
  }
  const SignatureCheck check =
      verify_signature(request.method, request.target, request.headers, request.body,
                       [&](std::string_view id) -> std::optional<std::string> {
                         if (session) {
                           if (id != session->access_key_id) return std::nullopt;
                           return session->secret_access_key;
                         }
                         auto it = access_keys_.find(id);
                         if (it == access_keys_.end()) return std::nullopt;
                         return it->second;
                       });
  if (check == SignatureCheck::kMissing)
    return refuse(request, ApiError("MissingAuthenticationToken",
                                    "Request is missing Authentication Token", 403));
  if (check == SignatureCheck::kUnknownKey)
    return refuse(request, ApiError("InvalidClientTokenId",
                                    "The security token included in the request is invalid.", 403));
  if (session &&
      !auth::constant_time_equals(request.header("x-amz-security-token"), session->session_token))
    return refuse(request, ApiError("InvalidClientTokenId",
                                    "The security token included in the request is invalid.", 403));
  if (check == SignatureCheck::kMismatch)
    return refuse(request,
                  ApiError("SignatureDoesNotMatch",
                           "The request signature we calculated does not match the signature you "
                           "provided. Check your AWS Secret Access Key and signing method.",
                           403));
  if (!session) return std::nullopt;
  if (std::chrono::system_clock::now() >= session->expiration)
    return refuse(request, ApiError("ExpiredToken",
                                    "The security token included in the request is expired", 403));
  const Permission wanted = permission(request);
  if (wanted.action == "sts:GetCallerIdentity") return std::nullopt;  // always allowed, as on AWS
  const Decision decision = iam_.evaluate(session->role_arn, wanted.action, wanted.resource);
  if (decision == Decision::kAllow) return std::nullopt;
  return deny(request, *session, wanted, decision);
}

ControlPlane::Permission ControlPlane::permission(const ApiRequest& request) {
  Permission wanted;
  const std::string target = request.header("x-amz-target");
  if (!target.empty()) {
    const size_t dot = target.find('.');
    const std::string prefix = target.substr(0, dot);
    const std::string operation = dot == std::string::npos ? "" : target.substr(dot + 1);
    boost::system::error_code parse_error;
    json::value parsed = json::parse(request.body, parse_error);
    const json::object input =
        !parse_error && parsed.is_object() ? parsed.as_object() : json::object();
    if (prefix == Logs::kTargetPrefix) {
      wanted.action = "logs:" + operation;
      wanted.resource = Logs::resource_arn(operation, input, request.region, options_.account_id);
      if (wanted.resource != "*") wanted.named = wanted.resource;
      return wanted;
    }
    std::string service = prefix;
    for (char& c : service) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    wanted.action = service + ":" + operation;
    if (prefix != "secretsmanager") return wanted;
    // The secret's full ARN; one that does not exist is checked as the ARN it would have, so a
    // caller who may not read it cannot tell whether it exists. The denial names the secret as
    // the caller did, as Secrets Manager's does.
    const std::string id =
        operation == "CreateSecret" ? text(input, "Name") : text(input, "SecretId");
    if (id.empty()) return wanted;
    wanted.named = id;
    try {
      const json::object found =
          secrets_.handle("DescribeSecret", json::object{{"SecretId", id}}, request.region);
      wanted.resource = text(found, "ARN");
    } catch (const ApiError&) {
      wanted.resource = id.starts_with("arn:")
                            ? id
                            : "arn:aws:secretsmanager:" + request.region + ":" +
                                  options_.account_id + ":secret:" + id + "-??????";
    }
    return wanted;
  }
  if (Lambda::serves_path(request.target) || request.service == "lambda") {
    const auto [operation, function] = lambda_operation(request.method, request.target);
    // Routes without an IAM name here are allowed only by lambda:* (or *).
    wanted.action = "lambda:" + (operation.empty() ? std::string("UnknownOperation") : operation);
    if (!function.empty()) {
      wanted.resource = function.starts_with("arn:") ? function
                        : function.find(":function:") != std::string::npos
                            ? "arn:aws:lambda:" + request.region + ":" + function
                            : "arn:aws:lambda:" + request.region + ":" + options_.account_id +
                                  ":function:" + function;
      wanted.named = wanted.resource;
    }
    return wanted;
  }
  QueryParams params;
  try {
    params = QueryParams::parse(request.body);
  } catch (const ApiError&) {
  }
  const std::string action = params.get("Action").value_or("");
  const std::string service = query_service(params.get("Version").value_or(""), request.service);
  wanted.action = (service.empty() ? request.service : service) + ":" + action;
  if (service == "sts" && action == "AssumeRole") {
    wanted.resource = params.get("RoleArn").value_or("*");
  } else if (service == "iam") {
    if (auto role = params.get("RoleName")) {
      const auto document = store_.get("role", *role);
      wanted.resource = document ? text(json::parse(*document).as_object(), "Arn")
                                 : "arn:aws:iam::" + options_.account_id + ":role/" + *role;
    } else if (auto policy = params.get("PolicyArn")) {
      wanted.resource = *policy;
    }
  } else if (service == "rds") {
    wanted.resource = rds_resource(
        action, params, "arn:aws:rds:" + request.region + ":" + options_.account_id + ":");
  }
  if (wanted.resource != "*") wanted.named = wanted.resource;
  return wanted;
}

ApiResponse ControlPlane::deny(const ApiRequest& request, const RoleSession& session,
                               const Permission& wanted, Decision decision) {
  const std::string message =
      "User: " + session.assumed_role_arn() + " is not authorized to perform: " + wanted.action +
      (wanted.named.empty() ? "" : " on resource: " + wanted.named) +
      (decision == Decision::kExplicitDeny
           ? " with an explicit deny in an identity-based policy"
           : " because no identity-based policy allows the " + wanted.action + " action");
  ApiResponse response;
  if (!request.header("x-amz-target").empty()) {
    response.status = 400;
    response.content_type = "application/x-amz-json-1.1";
    response.body =
        json::serialize(json::object{{"__type", "AccessDeniedException"}, {"Message", message}});
    response.headers.emplace_back("x-amzn-ErrorType", "AccessDeniedException");
    return response;
  }
  if (Lambda::serves_path(request.target) || request.service == "lambda") {
    response.status = 403;
    response.body = json::serialize(json::object{{"Type", "User"}, {"message", message}});
    response.headers.emplace_back("x-amzn-ErrorType", "AccessDeniedException");
    return response;
  }
  if (wanted.action.starts_with("ec2:"))
    return ec2_error(ApiError("UnauthorizedOperation",
                              "You are not authorized to perform this operation. " + message, 403));
  const std::string_view xmlns = wanted.action.starts_with("rds:")   ? Rds::kXmlns
                                 : wanted.action.starts_with("sts:") ? Sts::kXmlns
                                                                     : Iam::kXmlns;
  return query_error(ApiError("AccessDenied", message, 403), xmlns);
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
  if (!request.header("x-amz-target").empty() || Lambda::serves_path(request.target) ||
      request.service == "lambda") {
    // JSON services name these errors differently.
    const std::string code = error.code == "InvalidClientTokenId"    ? "UnrecognizedClientException"
                             : error.code == "SignatureDoesNotMatch" ? "InvalidSignatureException"
                             : error.code == "ExpiredToken"          ? "ExpiredTokenException"
                                                            : "MissingAuthenticationTokenException";
    // Secrets Manager and CloudWatch Logs answer an expired token with 400.
    response.status = code == "ExpiredTokenException" && !request.header("x-amz-target").empty()
                          ? 400
                          : error.status;
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
    if (version == "2011-06-15" || (version.empty() && request.service == "sts")) {
      xmlns = Sts::kXmlns;
      if (action.empty())
        throw ApiError("MissingAction", "The request must contain the parameter Action.");
      const auto caller =
          request.access_key.empty() ? std::nullopt : role_credentials_.find(request.access_key);
      return query_response(action, Sts::kXmlns,
                            sts_.handle(action, params, caller ? &*caller : nullptr));
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
    else if (service == Logs::kTargetPrefix)
      output = logs_.handle(operation, input.as_object(), request.region);
    else
      return fail("UnknownOperationException", "sluice does not serve " + target + ".", 400);
    response.body = json::serialize(output);
    return response;
  } catch (const ApiError& e) {
    return fail(e.code, e.what(), e.status);
  }
}

}  // namespace sluice::cloud
