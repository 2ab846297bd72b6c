#include "cli/service_command.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/api_client.hpp"
#include "cli/arguments.hpp"
#include "cli/customizations.hpp"
#include "cli/json_printer.hpp"
#include "cli/request_serializer.hpp"
#include "cli/response_parser.hpp"
#include "cli/service_model.hpp"

namespace sluice::cli {
namespace json = boost::json;
namespace {

constexpr int kUsageError = 252;    // as aws: the command line is wrong
constexpr int kServiceError = 254;  // the service answered with an error
constexpr int kOtherError = 255;    // e.g. the API cannot be reached

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// The aws CLI's global options. Those with a value; the rest are flags sluice accepts and ignores
// (there is no pager, and every list comes whole).
bool global_with_value(const std::string& word) {
  return word == "--endpoint-url" || word == "--region" || word == "--output" ||
         word == "--profile" || word == "--query" || word == "--cli-binary-format";
}
bool global_flag(const std::string& word) {
  return word == "--no-cli-pager" || word == "--no-paginate" || word == "--no-verify-ssl";
}

int usage_error(const std::string& message) {
  std::cerr << "sluice: error: " << message << "\n";
  return kUsageError;
}

std::string type_name(const ServiceModel& model, const json::object& shape) {
  const std::string type = model_text(shape, "type");
  if (type == "list")
    return "list of " + type_name(model, model.shape_of(shape.at("member").as_object()));
  if (type == "structure") {
    std::string members;
    for (const auto& [name, _] : shape.at("members").as_object())
      members += (members.empty() ? "" : ",") + std::string(name) + "=…";
    return "structure: " + members;
  }
  if (const auto* choices = shape.if_contains("enum")) {
    std::string values;
    for (const auto& v : choices->as_array())
      values += (values.empty() ? "" : "|") + std::string(v.as_string());
    return type + ": " + values;
  }
  return type;
}

void print_service_help(const ServiceModel& model) {
  std::cout << "usage: sluice [--endpoint-url URL] [--region REGION] " << model.name()
            << " OPERATION [--flags]\n\nOperations sluice serves for " << model.name()
            << " (`sluice " << model.name() << " OPERATION help` lists the flags):\n";
  for (const auto& name : model.operation_names()) std::cout << "  " << name << "\n";
}

void print_operation_help(const ServiceModel& model, const std::string& cli_name,
                          const json::object& operation) {
  std::cout << "usage: sluice " << model.name() << " " << cli_name << " [--flags]\n\n"
            << model_text(operation, "name") << " flags (structures take shorthand K=V,… or "
            << "JSON; any value may be file://PATH):\n";
  const std::string input = model_text(operation, "input");
  if (!input.empty()) {
    const json::object& shape = model.shape(input);
    const auto* required = shape.if_contains("required");
    for (const auto& [name, ref] : shape.at("members").as_object()) {
      bool is_required = false;
      if (required)
        for (const auto& r : required->as_array()) is_required |= r.as_string() == name;
      const json::object& member_shape = model.shape_of(ref.as_object());
      std::cout << "  --" << model_text(ref.as_object(), "cli") << " ("
                << type_name(model, member_shape) << ")" << (is_required ? " required" : "");
      if (model_text(member_shape, "type") == "boolean")
        std::cout << "  [--no-" << model_text(ref.as_object(), "cli") << "]";
      std::cout << "\n";
    }
  }
  for (const auto& extra : extra_flags(model.name(), model_text(operation, "name")))
    std::cout << "  --" << extra.name << " (" << extra.help << ")\n";
  if (!streaming_output_member(model, operation).empty())
    std::cout << "  outfile (string: the file the payload is written to) required\n";
  if (operation.contains("paginator"))
    std::cout << "  --page-size (integer: items per request; every page is still printed)\n";
  std::cout << "  --cli-input-json (the whole input as JSON)\n";
}

bool is_help(const std::string& word) {
  return word == "help" || word == "--help" || word == "-h";
}

struct ServiceError : std::runtime_error {
  ServiceError(std::string code_, const std::string& message)
      : std::runtime_error(message), code(std::move(code_)) {}
  std::string code;
};
struct Unreachable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

json::object call(ApiClient& client, const ServiceModel& model, const json::object& operation,
                  const json::object& input) {
  const WireRequest request = serialize_request(model, operation, input);
  ApiResult result;
  try {
    result = client.send(model.signing_name(), request.method, request.path, request.content_type,
                         request.headers, request.body);
  } catch (const std::exception& e) {
    throw Unreachable(e.what());
  }
  if (!result.ok()) throw ServiceError(result.error_code, result.error_message);
  return parse_response(model, operation, result.body, result.status, result.headers);
}

std::vector<std::string> strings_in(const json::object& paginator, const char* key) {
  std::vector<std::string> out;
  for (const auto& v : paginator.at(key).as_array()) out.emplace_back(v.as_string());
  return out;
}

// As in the aws CLI, a list operation is followed to its last page unless the command line
// asks for one page itself (its token or its limit).
bool paginated(const json::object& operation, const json::object& input) {
  const auto* paginator = operation.if_contains("paginator");
  if (!paginator) return false;
  const json::object& p = paginator->as_object();
  for (const auto& token : strings_in(p, "input_token"))
    if (input.contains(token)) return false;
  return !input.contains(model_text(p, "limit_key"));
}

// The pages as one result: the result lists joined, then the other members of the first page,
// without the tokens.
json::object call_all_pages(ApiClient& client, const ServiceModel& model,
                            const json::object& operation, json::object input) {
  const json::object& p = operation.at("paginator").as_object();
  const auto input_tokens = strings_in(p, "input_token");
  const auto output_tokens = strings_in(p, "output_token");
  const auto result_keys = strings_in(p, "result_key");
  const std::string more_results = model_text(p, "more_results");
  json::object merged;
  json::object others;
  for (int page = 0; page < 10000; ++page) {
    const json::object output = call(client, model, operation, input);
    for (const auto& key : result_keys)
      if (const auto* items = output.if_contains(key); items && items->is_array()) {
        auto& into = merged[key];
        if (!into.is_array()) into = json::array();
        for (const auto& item : items->as_array()) into.as_array().push_back(item);
      }
    if (page == 0)
      for (const auto& [key, v] : output) {
        const std::string name(key);
        if (std::find(result_keys.begin(), result_keys.end(), name) == result_keys.end() &&
            std::find(output_tokens.begin(), output_tokens.end(), name) == output_tokens.end() &&
            name != more_results)
          others[key] = v;
      }
    bool more = false;
    for (size_t i = 0; i < output_tokens.size() && i < input_tokens.size(); ++i)
      if (const auto* token = output.if_contains(output_tokens[i]);
          token && token->is_string() && !token->as_string().empty()) {
        input[input_tokens[i]] = *token;
        more = true;
      }
    if (!more_results.empty())
      if (const auto* flag = output.if_contains(more_results); flag && flag->is_bool())
        more = more && flag->as_bool();
    if (!more) break;
  }
  for (const auto& [key, v] : others) merged[key] = v;
  return merged;
}

}  // namespace

std::optional<ServiceInvocation> service_invocation(int argc, char** argv) {
  ServiceInvocation invocation;
  invocation.options.endpoint_url = env_or("SLUICE_ENDPOINT", "http://127.0.0.1:4566");
  invocation.options.region =
      env_or("AWS_REGION", env_or("AWS_DEFAULT_REGION", std::string("us-east-1")));
  invocation.options.output = env_or("AWS_DEFAULT_OUTPUT", "json");
  bool found_service = false;
  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    std::string value;
    bool has_value = false;
    if (const size_t eq = word.find('='); word.starts_with("--") && eq != std::string::npos &&
                                          global_with_value(word.substr(0, eq))) {
      value = word.substr(eq + 1);
      word = word.substr(0, eq);
      has_value = true;
    }
    if (global_with_value(word)) {
      if (!has_value) {
        if (i + 1 >= argc) return found_service ? std::optional(invocation) : std::nullopt;
        value = argv[++i];
      }
      if (word == "--endpoint-url") invocation.options.endpoint_url = value;
      if (word == "--region") invocation.options.region = value;
      if (word == "--output") invocation.options.output = value;
      if (word == "--query") invocation.options.query = value;
      if (word == "--cli-binary-format") invocation.options.cli_binary_format = value;
      continue;
    }
    if (global_flag(word)) continue;
    if (!found_service) {
      if (!find_service(word)) return std::nullopt;
      found_service = true;
    }
    invocation.words.push_back(word);
  }
  if (!found_service) return std::nullopt;
  return invocation;
}

std::string services_help() {
  std::string out =
      "AWS-compatible commands, with the aws CLI's names, flags and output:\n"
      "  sluice [--endpoint-url URL] [--region REGION] SERVICE OPERATION [--flags]\n"
      "  services:";
  for (const auto& model : service_models()) out += " " + model.name();
  return out + "\n  `sluice SERVICE help` lists the operations sluice serves.";
}

int run_service_command(const ServiceInvocation& invocation) {
  const auto& words = invocation.words;
  const ServiceModel* model = find_service(words.at(0));
  if (words.size() < 2 || is_help(words[1])) {
    print_service_help(*model);
    return words.size() < 2 ? kUsageError : 0;
  }
  const json::object* operation = model->operation(words[1]);
  if (!operation) {
    std::string choices;
    for (const auto& name : model->operation_names()) choices += "\n  " + name;
    return usage_error("argument operation: Invalid choice \"" + words[1] +
                       "\"; the operations sluice serves for " + model->name() + " are:" + choices);
  }
  if (words.size() > 2 && std::any_of(words.begin() + 2, words.end(), is_help)) {
    print_operation_help(*model, words[1], *operation);
    return 0;
  }
  if (!invocation.options.query.empty())
    return usage_error("--query is not supported; pipe the JSON to jq instead");
  if (invocation.options.output != "json")
    return usage_error("--output " + invocation.options.output + ": only json is supported");
  const std::string& binary_format = invocation.options.cli_binary_format;
  if (binary_format != "base64" && binary_format != "raw-in-base64-out")
    return usage_error(
        "argument --cli-binary-format: Invalid choice, valid choices are:\n\nbase64 | "
        "raw-in-base64-out");
  json::object input;
  std::vector<std::string> args(words.begin() + 2, words.end());
  // --page-size: the aws CLI's page limit for list operations, which still follow every page.
  std::optional<int64_t> page_size;
  if (operation->contains("paginator"))
    for (size_t i = 0; i < args.size(); ++i)
      if (args[i] == "--page-size") {
        char* end = nullptr;
        const long long n = i + 1 < args.size() ? std::strtoll(args[i + 1].c_str(), &end, 10) : 0;
        if (n < 1 || *end != '\0') return usage_error("argument --page-size: expected a number");
        page_size = n;
        args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
        break;
      }
  // lambda invoke: the payload goes to a positional outfile, as in the aws CLI.
  const std::string streaming_member = streaming_output_member(*model, *operation);
  std::optional<std::string> outfile;
  constexpr std::string_view kRequired = "the following arguments are required: ";
  try {
    if (!streaming_member.empty()) outfile = take_outfile(*model, *operation, args);
    input = parse_operation_arguments(
        *model, *operation, args,
        binary_format == "base64" ? BinaryFormat::kBase64 : BinaryFormat::kRaw);
  } catch (const ArgumentError& e) {
    std::string message = e.what();
    if (!streaming_member.empty() && !outfile && message.starts_with(kRequired))
      message += ", outfile";
    return usage_error(message);
  }
  if (!streaming_member.empty() && !outfile) return usage_error(std::string(kRequired) + "outfile");
  const bool follow_pages = paginated(*operation, input);
  if (page_size)
    input[model_text(operation->at("paginator").as_object(), "limit_key")] = *page_size;
  ApiClient client(invocation.options.endpoint_url, invocation.options.region);
  try {
    json::object output = follow_pages ? call_all_pages(client, *model, *operation, input)
                                       : call(client, *model, *operation, input);
    if (outfile) save_streaming_output(streaming_member, *outfile, output);
    if (!output.empty()) std::cout << aws_json(output);
  } catch (const ServiceError& e) {
    std::cerr << "\nAn error occurred (" << e.code << ") when calling the "
              << model_text(*operation, "name") << " operation: " << e.what() << "\n";
    return kServiceError;
  } catch (const Unreachable& e) {
    std::cerr << "\nCould not connect to the endpoint URL: \"" << invocation.options.endpoint_url
              << "\" (" << e.what() << ")\n";
    return kOtherError;
  } catch (const std::exception& e) {
    std::cerr << "\n" << e.what() << "\n";
    return kOtherError;
  }
  return 0;
}

}  // namespace sluice::cli
