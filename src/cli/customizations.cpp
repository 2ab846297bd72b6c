#include "cli/customizations.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

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

std::string streaming_output_member(const ServiceModel& model, const json::object& operation) {
  const std::string output = model_text(operation, "output");
  if (output.empty()) return "";
  const json::object& shape = model.shape(output);
  const std::string payload = model_text(shape, "payload");
  if (payload.empty()) return "";
  const json::object& reference = shape.at("members").at(payload).as_object();
  return model_text(model.shape_of(reference), "type") == "blob" ? payload : "";
}

std::optional<std::string> take_outfile(const ServiceModel& model, const json::object& operation,
                                        std::vector<std::string>& args) {
  static const json::object kNoMembers{{"type", "structure"}, {"members", json::object()}};
  const std::string input = model_text(operation, "input");
  const json::object& members =
      (input.empty() ? kNoMembers : model.shape(input)).at("members").as_object();
  std::optional<std::string> outfile;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word.starts_with("--") && word.size() > 2) {
      const std::string flag = word.substr(2);
      if (flag.find('=') != std::string::npos) continue;
      std::string type;
      for (const auto& [name, ref] : members) {
        const std::string cli = model_text(ref.as_object(), "cli");
        if (flag == cli || flag == "no-" + cli)
          type = model_text(model.shape_of(ref.as_object()), "type");
      }
      if (type == "boolean") continue;
      if (type == "list") {  // every word up to the next flag, as the parser takes them
        while (i + 1 < args.size() && !args[i + 1].starts_with("--")) ++i;
        continue;
      }
      if (i + 1 < args.size() && !args[i + 1].starts_with("--")) ++i;  // its one value
      continue;
    }
    if (outfile) throw ArgumentError("Unknown options: " + word);
    outfile = word;
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
    --i;
  }
  return outfile;
}

void save_streaming_output(const std::string& member, const std::string& outfile,
                           json::object& output) {
  std::string bytes;
  if (const auto* payload = output.if_contains(member); payload && payload->is_string()) {
    auto decoded = auth::base64_decode(payload->as_string());
    if (!decoded) throw std::runtime_error(member + " is not base64");
    bytes = std::move(*decoded);
  }
  std::ofstream out(outfile, std::ios::binary | std::ios::trunc);
  if (!out || !out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())).flush())
    throw std::runtime_error("[Errno " + std::to_string(errno) + "] " + std::strerror(errno) +
                             ": '" + outfile + "'");
  output.erase(member);
}

}  // namespace sluice::cli
