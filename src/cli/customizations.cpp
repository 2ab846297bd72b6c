#include "cli/customizations.hpp"

#include <cstdlib>

#include "auth/crypto.hpp"
#include "cli/arguments.hpp"

namespace sluice::cli {
namespace json = boost::json;
namespace {

bool is_security_group_rule_call(const std::string& service, const std::string& operation) {
  return service == "ec2" &&
         (operation == "AuthorizeSecurityGroupIngress" ||
          operation == "AuthorizeSecurityGroupEgress" ||
          operation == "RevokeSecurityGroupIngress" || operation == "RevokeSecurityGroupEgress");
}

int64_t port_number(const std::string& text) {
  char* end = nullptr;
  const long n = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || n < -1 || n > 65535)
    throw ArgumentError("argument --port: \"" + text +
                        "\" is not a port, a range FROM-TO, or -1 (all)");
  return n;
}

// --protocol/--port/--cidr/--source-group/--group-owner as the one rule they describe.
json::object security_group_rule(const std::map<std::string, std::string>& given) {
  const auto value = [&](const char* name) -> const std::string* {
    const auto found = given.find(name);
    return found == given.end() ? nullptr : &found->second;
  };
  if (!value("protocol"))
    throw ArgumentError(
        "--protocol is required with --port, --cidr, --source-group or --group-owner");
  json::object rule;
  const std::string protocol = *value("protocol") == "all" ? "-1" : *value("protocol");
  rule["IpProtocol"] = protocol;
  if (const std::string* port = value("port")) {
    int64_t from = 0;
    int64_t to = 0;
    if (*port == "all" || *port == "-1") {
      from = to = -1;
    } else if (const size_t dash = port->find('-', 1); dash != std::string::npos) {
      from = port_number(port->substr(0, dash));
      to = port_number(port->substr(dash + 1));
    } else {
      from = to = port_number(*port);
    }
    rule["FromPort"] = from;
    rule["ToPort"] = to;
  }
  if (const std::string* cidr = value("cidr"))
    rule["IpRanges"] = json::array{json::object{{"CidrIp", *cidr}}};
  if (const std::string* group = value("source-group")) {
    json::object pair;
    pair[group->starts_with("sg-") ? "GroupId" : "GroupName"] = *group;
    if (const std::string* owner = value("group-owner")) pair["UserId"] = *owner;
    rule["UserIdGroupPairs"] = json::array{pair};
  }
  return rule;
}

}  // namespace

std::vector<ExtraFlag> extra_flags(const std::string& service, const std::string& operation) {
  if (is_security_group_rule_call(service, operation))
    return {{"protocol", "tcp, udp, icmp, a protocol number, or all (-1)"},
            {"port", "a port, a range FROM-TO, or -1 for all"},
            {"cidr", "the IPv4 range the rule admits"},
            {"source-group", "the security group the rule admits (sg-… or a name)"},
            {"group-owner", "the account that owns --source-group"}};
  if (service == "lambda" && operation == "CreateFunction")
    return {{"zip-file", "the deployment package, fileb://PATH.zip"}};
  return {};
}

void apply_extra_flags(const std::string& service, const std::string& operation,
                       const std::map<std::string, std::string>& given, json::object& input) {
  if (given.empty()) return;
  if (is_security_group_rule_call(service, operation)) {
    if (input.contains("IpPermissions"))
      throw ArgumentError(
          "The --protocol, --port, --cidr, --source-group and --group-owner options cannot be "
          "used with --ip-permissions");
    input["IpPermissions"] = json::array{security_group_rule(given)};
    return;
  }
  if (service == "lambda" && operation == "CreateFunction") {
    json::object code;
    if (const auto* given_code = input.if_contains("Code"); given_code && given_code->is_object())
      code = given_code->as_object();
    if (code.contains("ZipFile"))
      throw ArgumentError("--zip-file and --code ZipFile=… cannot be used together");
    code["ZipFile"] = auth::base64_encode(resolve_value_file(given.at("zip-file")));
    input["Code"] = code;
  }
}

}  // namespace sluice::cli
