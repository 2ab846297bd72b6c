#include "cli/request_serializer.hpp"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "auth/crypto.hpp"
#include "cli/json_printer.hpp"
#include "common/encoding.hpp"

namespace sluice::cli {
namespace json = boost::json;
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

// Numbers as Python prints them, which is what the services see from the aws CLI.
std::string scalar_text(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_bool()) return v.as_bool() ? "true" : "false";
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  if (v.is_double()) return python_float(v.as_double());
  return json::serialize(v);
}

class QueryFlattener {
 public:
  QueryFlattener(const ServiceModel& model, bool ec2) : model_(model), ec2_(ec2) {}

  void flatten(Pairs& out, const json::value& value, const json::object& shape,
               const std::string& prefix) const {
    const std::string type = model_text(shape, "type");
    if (type == "structure") {
      const json::object& members = shape.at("members").as_object();
      for (const auto& [key, v] : value.as_object()) {
        const json::object& reference = members.at(key).as_object();
        const std::string name = serialized_name(reference, std::string(key));
        flatten(out, v, model_.shape_of(reference), prefix.empty() ? name : prefix + "." + name);
      }
    } else if (type == "list") {
      const json::array& items = value.as_array();
      const json::object& member = shape.at("member").as_object();
      std::string list_prefix = prefix;
      if (ec2_) {
        // EC2 numbers the entries right after the name: Name.1, Name.2.
      } else if (items.empty()) {
        out.emplace_back(prefix, "");  // the Query protocol sends an empty list as such
        return;
      } else if (is_flattened(shape)) {
        if (const std::string name = model_text(member, "locationName"); !name.empty()) {
          const size_t dot = prefix.rfind('.');
          list_prefix = (dot == std::string::npos ? "" : prefix.substr(0, dot + 1)) + name;
        }
      } else {
        const std::string name = model_text(member, "locationName");
        list_prefix = prefix + "." + (name.empty() ? "member" : name);
      }
      for (size_t i = 0; i < items.size(); ++i)
        flatten(out, items[i], model_.shape_of(member), list_prefix + "." + std::to_string(i + 1));
    } else if (type == "map") {
      const json::object& key_ref = shape.at("key").as_object();
      const json::object& value_ref = shape.at("value").as_object();
      const std::string key_name = model_text(key_ref, "locationName");
      const std::string value_name = model_text(value_ref, "locationName");
      const bool flattened = shape.contains("flattened");
      size_t i = 0;
      for (const auto& [k, v] : value.as_object()) {
        const std::string entry =
            (flattened ? prefix : prefix + ".entry") + "." + std::to_string(++i);
        out.emplace_back(entry + "." + (key_name.empty() ? "key" : key_name), std::string(k));
        flatten(out, v, model_.shape_of(value_ref),
                entry + "." + (value_name.empty() ? "value" : value_name));
      }
    } else {
      out.emplace_back(prefix, scalar_text(value));
    }
  }

 private:
  std::string serialized_name(const json::object& reference, const std::string& member) const {
    if (!ec2_) {
      const std::string name = model_text(reference, "locationName");
      return name.empty() ? member : name;
    }
    if (std::string name = model_text(reference, "queryName"); !name.empty()) return name;
    if (std::string name = model_text(reference, "locationName"); !name.empty()) {
      name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
      return name;
    }
    return member;
  }

  static bool is_flattened(const json::object& shape) {
    const auto* f = shape.if_contains("flattened");
    return f && f->is_bool() && f->as_bool();
  }

  const ServiceModel& model_;
  bool ec2_;
};

// JSON bodies use the members' wire names (locationName where the model gives one).
json::value json_body(const ServiceModel& model, const json::value& value,
                      const json::object& shape) {
  const std::string type = model_text(shape, "type");
  if (type == "structure") {
    json::object out;
    const json::object& members = shape.at("members").as_object();
    for (const auto& [key, v] : value.as_object()) {
      const json::object& reference = members.at(key).as_object();
      const std::string name = model_text(reference, "locationName");
      out[name.empty() ? std::string(key) : name] = json_body(model, v, model.shape_of(reference));
    }
    return out;
  }
  if (type == "list") {
    json::array out;
    for (const auto& item : value.as_array())
      out.push_back(json_body(model, item, model.shape_of(shape.at("member").as_object())));
    return out;
  }
  if (type == "map") {
    json::object out;
    for (const auto& [k, v] : value.as_object())
      out[k] = json_body(model, v, model.shape_of(shape.at("value").as_object()));
    return out;
  }
  return value;
}

const json::object& input_shape(const ServiceModel& model, const json::object& operation) {
  static const json::object kEmpty{{"type", "structure"}, {"members", json::object()}};
  const std::string name = model_text(operation, "input");
  return name.empty() ? kEmpty : model.shape(name);
}

WireRequest rest_json(const ServiceModel& model, const json::object& operation,
                      const json::object& input) {
  const json::object& shape = input_shape(model, operation);
  const json::object& members = shape.at("members").as_object();
  WireRequest request;
  request.method = model_text(operation, "method");
  std::string uri = model_text(operation, "requestUri");
  std::string query;
  if (const size_t q = uri.find('?'); q != std::string::npos) {
    query = uri.substr(q + 1);
    uri = uri.substr(0, q);
  }
  json::object body;
  const std::string payload = model_text(shape, "payload");
  bool raw_payload = false;  // a blob payload travels as its bytes, without a content type
  for (const auto& [key, v] : input) {
    const json::object& reference = members.at(key).as_object();
    const std::string location = model_text(reference, "location");
    const std::string wire_name = model_text(reference, "locationName").empty()
                                      ? std::string(key)
                                      : model_text(reference, "locationName");
    if (location == "uri") {
      for (const bool greedy : {false, true}) {
        const std::string placeholder = "{" + wire_name + (greedy ? "+}" : "}");
        if (const size_t at = uri.find(placeholder); at != std::string::npos)
          uri.replace(at, placeholder.size(), cloud::percent_encode(scalar_text(v), greedy));
      }
    } else if (location == "querystring") {
      const auto add = [&](const json::value& item) {
        query += (query.empty() ? "" : "&") + cloud::percent_encode(wire_name) + "=" +
                 cloud::percent_encode(scalar_text(item));
      };
      if (v.is_array())
        for (const auto& item : v.as_array()) add(item);
      else
        add(v);
    } else if (location == "header") {
      std::string header = wire_name;
      for (auto& c : header) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request.headers.emplace_back(header, scalar_text(v));
    } else if (key == payload) {
      const json::object& payload_shape = model.shape_of(reference);
      if (model_text(payload_shape, "type") == "blob" && v.is_string()) {
        // The document holds blobs as base64 (cli/arguments.hpp); the wire wants the bytes.
        auto bytes = auth::base64_decode(v.as_string());
        if (!bytes) throw std::runtime_error(std::string(key) + " is not base64");
        request.body = std::move(*bytes);
        raw_payload = true;
      } else {
        request.body = v.is_string() ? std::string(v.as_string())
                                     : json::serialize(json_body(model, v, payload_shape));
      }
    } else {
      body[wire_name] = json_body(model, v, model.shape_of(reference));
    }
  }
  request.path = uri + (query.empty() ? "" : "?" + query);
  if (payload.empty() && !body.empty()) request.body = json::serialize(body);
  if (!request.body.empty() && !raw_payload) request.content_type = "application/json";
  return request;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> query_parameters(const ServiceModel& model,
                                                                  const json::object& operation,
                                                                  const json::object& input) {
  Pairs out{{"Action", model_text(operation, "name")}, {"Version", model.api_version()}};
  QueryFlattener(model, model.protocol() == "ec2")
      .flatten(out, input, input_shape(model, operation), "");
  return out;
}

WireRequest serialize_request(const ServiceModel& model, const json::object& operation,
                              const json::object& input) {
  const std::string protocol = model.protocol();
  if (protocol == "query" || protocol == "ec2") {
    WireRequest request{"POST", "/", "application/x-www-form-urlencoded; charset=utf-8", {}, ""};
    for (const auto& [name, value] : query_parameters(model, operation, input))
      request.body += (request.body.empty() ? "" : "&") + cloud::percent_encode(name) + "=" +
                      cloud::percent_encode(value);
    return request;
  }
  if (protocol == "json") {
    WireRequest request{"POST", "/", "application/x-amz-json-1.1", {}, ""};
    request.headers.emplace_back("x-amz-target",
                                 model.target_prefix() + "." + model_text(operation, "name"));
    request.body = json::serialize(json_body(model, input, input_shape(model, operation)));
    return request;
  }
  if (protocol == "rest-json") return rest_json(model, operation, input);
  throw std::runtime_error("the CLI cannot speak the " + protocol + " protocol");
}

}  // namespace sluice::cli
