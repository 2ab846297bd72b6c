#include "cli/arguments.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "auth/crypto.hpp"
#include "cli/customizations.hpp"
#include "cli/shorthand.hpp"
#include "cloud/ids.hpp"

namespace sluice::cli {
namespace json = boost::json;
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ArgumentError("Unable to load paramfile " + path + ": cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool is_scalar_type(const std::string& type) {
  return type != "structure" && type != "list" && type != "map";
}

[[noreturn]] void wrong_type(const std::string& where, const json::value& v,
                             const std::string& expected) {
  throw ArgumentError("Invalid type for parameter " + where + ", value: " + json::serialize(v) +
                      ", expected " + expected);
}

json::value typed_scalar(const std::string& type, const json::value& value,
                         const std::string& where) {
  if (type == "string" || type == "timestamp") {
    if (value.is_string()) return value;
    if (type == "timestamp" && value.is_number()) return value;
    wrong_type(where, value, "a string");
  }
  if (type == "blob") {
    if (!value.is_string()) wrong_type(where, value, "a string (or fileb://PATH)");
    return json::string(auth::base64_encode(value.as_string()));
  }
  if (type == "boolean") {
    if (value.is_bool()) return value;
    if (value.is_string()) {
      std::string text(value.as_string());
      std::transform(text.begin(), text.end(), text.begin(), ::tolower);
      if (text == "true") return true;
      if (text == "false") return false;
    }
    wrong_type(where, value, "true or false");
  }
  if (type == "integer" || type == "long") {
    if (value.is_int64()) return value;
    if (value.is_uint64() && value.as_uint64() <= INT64_MAX)
      return static_cast<int64_t>(value.as_uint64());
    if (value.is_string()) {
      const std::string text(value.as_string());
      char* end = nullptr;
      errno = 0;
      const long long n = std::strtoll(text.c_str(), &end, 10);
      if (!text.empty() && *end == '\0' && errno == 0) return static_cast<int64_t>(n);
    }
    wrong_type(where, value, "an integer");
  }
  if (type == "float" || type == "double") {
    if (value.is_number()) return value.to_number<double>();
    if (value.is_string()) {
      const std::string text(value.as_string());
      char* end = nullptr;
      const double d = std::strtod(text.c_str(), &end);
      if (!text.empty() && *end == '\0' && std::isfinite(d)) return d;
    }
    wrong_type(where, value, "a number");
  }
  throw ArgumentError("parameter " + where + " has a type the CLI does not know: " + type);
}

std::string member_list(const json::object& members) {
  std::string out;
  for (const auto& [name, _] : members) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

// Where a flag's value is JSON rather than shorthand: it starts as a JSON document does.
bool looks_like_json(const std::string& text, char open) {
  const auto first = text.find_first_not_of(" \t\r\n");
  return first != std::string::npos && text[first] == open;
}

json::value parse_json(const std::string& text, const std::string& flag) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) throw ArgumentError("Error parsing parameter '--" + flag + "': Invalid JSON: " + text);
  return v;
}

json::value structured(const std::string& text, const std::string& flag) {
  if (looks_like_json(text, '{') || looks_like_json(text, '[')) return parse_json(text, flag);
  try {
    return parse_shorthand(text);
  } catch (const ShorthandError& e) {
    throw ArgumentError("Error parsing parameter '--" + flag + "': " + e.what());
  }
}

// The value of one top-level flag from its tokens.
json::value flag_value(const ServiceModel& model, const json::object& shape,
                       const std::vector<std::string>& tokens, const std::string& flag,
                       const std::string& member, BinaryFormat binary_format) {
  const std::string type = model_text(shape, "type");
  if (type == "blob" && binary_format == BinaryFormat::kBase64 &&
      !tokens.at(0).starts_with("fileb://")) {
    // Already base64, which is how the document holds blobs.
    const std::string text = resolve_value_file(tokens[0]);
    auto bytes = auth::base64_decode(text);
    if (!bytes) throw ArgumentError("Invalid base64: \"" + text + "\"");
    return json::string(auth::base64_encode(*bytes));
  }
  if (type == "list") {
    const json::object& item = model.shape_of(shape.at("member").as_object());
    json::array items;
    if (tokens.size() == 1 && looks_like_json(resolve_value_file(tokens[0]), '['))
      return typed_value(model, shape, parse_json(resolve_value_file(tokens[0]), flag), member);
    for (const auto& token : tokens) {
      const std::string text = resolve_value_file(token);
      if (is_scalar_type(model_text(item, "type")))
        items.push_back(json::string(text));
      else
        items.push_back(structured(text, flag));
    }
    return typed_value(model, shape, items, member);
  }
  const std::string text = resolve_value_file(tokens.at(0));
  if (is_scalar_type(type)) {
    // fileb:// already gave the bytes; a blob given as text travels as that text's bytes.
    return typed_value(model, shape, json::string(text), member);
  }
  return typed_value(model, shape, structured(text, flag), member);
}

}  // namespace

std::string resolve_value_file(const std::string& value) {
  if (value.starts_with("file://")) return read_file(value.substr(7));
  if (value.starts_with("fileb://")) return read_file(value.substr(8));
  return value;
}

json::value typed_value(const ServiceModel& model, const json::object& shape,
                        const json::value& value, const std::string& where) {
  const std::string type = model_text(shape, "type");
  if (type == "structure") {
    if (!value.is_object()) wrong_type(where, value, "a structure");
    const json::object& members = shape.at("members").as_object();
    json::object out;
    for (const auto& [key, v] : value.as_object()) {
      const auto* reference = members.if_contains(key);
      if (!reference)
        throw ArgumentError("Unknown parameter in " + where + ": \"" + std::string(key) +
                            "\", must be one of: " + member_list(members));
      out[key] = typed_value(model, model.shape_of(reference->as_object()), v,
                             where + "." + std::string(key));
    }
    if (const auto* required = shape.if_contains("required"))
      for (const auto& name : required->as_array())
        if (!out.contains(name.as_string()))
          throw ArgumentError("Missing required parameter in " + where + ": \"" +
                              std::string(name.as_string()) + "\"");
    return out;
  }
  if (type == "list") {
    const json::object& item = model.shape_of(shape.at("member").as_object());
    json::array out;
    if (!value.is_array()) {
      out.push_back(typed_value(model, item, value, where + "[0]"));
      return out;
    }
    for (size_t i = 0; i < value.as_array().size(); ++i)
      out.push_back(
          typed_value(model, item, value.as_array()[i], where + "[" + std::to_string(i) + "]"));
    return out;
  }
  if (type == "map") {
    if (!value.is_object()) wrong_type(where, value, "a map");
    const json::object& item = model.shape_of(shape.at("value").as_object());
    json::object out;
    for (const auto& [key, v] : value.as_object())
      out[key] = typed_value(model, item, v, where + "." + std::string(key));
    return out;
  }
  return typed_scalar(type, value, where);
}

json::object parse_operation_arguments(const ServiceModel& model, const json::object& operation,
                                       const std::vector<std::string>& args,
                                       BinaryFormat binary_format) {
  const std::string op_name = model_text(operation, "name");
  const std::string input_name = model_text(operation, "input");
  static const json::object kNoMembers{{"type", "structure"}, {"members", json::object()}};
  const json::object& input_shape = input_name.empty() ? kNoMembers : model.shape(input_name);
  const json::object& members = input_shape.at("members").as_object();
  const auto extras = extra_flags(model.name(), op_name);

  json::object input;
  json::object from_input_json;
  std::map<std::string, std::string> extra_given;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    if (!flag.starts_with("--") || flag.size() == 2)
      throw ArgumentError("Unknown options: " + flag);
    flag = flag.substr(2);
    std::vector<std::string> tokens;
    if (const size_t eq = flag.find('='); eq != std::string::npos) {
      tokens.push_back(flag.substr(eq + 1));
      flag = flag.substr(0, eq);
    }
    auto take_one = [&] {
      if (!tokens.empty()) return;
      if (i + 1 >= args.size() || args[i + 1].starts_with("--"))
        throw ArgumentError("argument --" + flag + ": expected one argument");
      tokens.push_back(args[++i]);
    };
    if (flag == "cli-input-json") {
      take_one();
      const json::value whole = parse_json(resolve_value_file(tokens[0]), flag);
      if (!whole.is_object()) throw ArgumentError("--cli-input-json must be a JSON object");
      from_input_json = whole.as_object();
      continue;
    }
    if (std::any_of(extras.begin(), extras.end(),
                    [&](const ExtraFlag& e) { return e.name == flag; })) {
      take_one();
      extra_given[flag] = tokens[0];
      continue;
    }
    const json::object* reference = nullptr;
    std::string member;
    bool negated = false;
    for (const auto& [name, ref] : members) {
      const std::string cli = model_text(ref.as_object(), "cli");
      if (cli == flag || ("no-" + cli == flag)) {
        reference = &ref.as_object();
        member = std::string(name);
        negated = cli != flag;
      }
    }
    if (!reference) throw ArgumentError("Unknown options: --" + flag);
    const json::object& shape = model.shape_of(*reference);
    const std::string type = model_text(shape, "type");
    if (negated && type != "boolean") throw ArgumentError("Unknown options: --" + flag);
    if (type == "boolean") {
      input[member] = !negated;
      continue;
    }
    if (type == "list" && tokens.empty()) {
      while (i + 1 < args.size() && !args[i + 1].starts_with("--")) tokens.push_back(args[++i]);
      if (tokens.empty())
        throw ArgumentError("argument --" + flag + ": expected at least one argument");
    }
    take_one();
    input[member] = flag_value(model, shape, tokens, flag, member, binary_format);
  }
  apply_extra_flags(model.name(), op_name, extra_given, input);
  // --cli-input-json's members are typed like the rest; flags override them.
  for (const auto& [key, v] : from_input_json) {
    const auto* reference = members.if_contains(key);
    if (!reference)
      throw ArgumentError("Unknown parameter in input: \"" + std::string(key) +
                          "\", must be one of: " + member_list(members));
    if (!input.contains(key))
      input[key] = typed_value(model, model.shape_of(reference->as_object()), v, std::string(key));
  }
  std::vector<std::string> missing;
  if (const auto* required = input_shape.if_contains("required"))
    for (const auto& name : required->as_array())
      if (!input.contains(name.as_string()))
        missing.push_back("--" + model_text(members.at(name.as_string()).as_object(), "cli"));
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    throw ArgumentError("the following arguments are required: " + list);
  }
  // As botocore does, an idempotency token nobody gave is made up.
  for (const auto& [name, ref] : members)
    if (const auto* token = ref.as_object().if_contains("idempotencyToken");
        token && token->is_bool() && token->as_bool() && !input.contains(name))
      input[name] = cloud::uuid4();
  return input;
}

}  // namespace sluice::cli
