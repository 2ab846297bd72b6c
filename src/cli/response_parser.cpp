#include "cli/response_parser.hpp"

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "auth/crypto.hpp"
#include "common/encoding.hpp"

namespace sluice::cli {
namespace json = boost::json;
using boost::property_tree::ptree;
namespace {

bool flag(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_bool() && v->as_bool();
}

const ptree* child(const ptree& node, const std::string& name) {
  for (const auto& [tag, sub] : node)
    if (tag == name) return &sub;
  return nullptr;
}

// An XML text or a header's text as the member's type reads it.
json::value scalar(const std::string& text, const std::string& type) {
  if (type == "boolean") return text == "true";
  if (type == "integer" || type == "long") {
    char* end = nullptr;
    const long long n = std::strtoll(text.c_str(), &end, 10);
    if (!text.empty() && *end == '\0') return static_cast<int64_t>(n);
    return json::string(text);
  }
  if (type == "float" || type == "double") {
    char* end = nullptr;
    const double d = std::strtod(text.c_str(), &end);
    if (!text.empty() && *end == '\0') return d;
    return json::string(text);
  }
  return json::string(text);
}

class XmlReader {
 public:
  explicit XmlReader(const ServiceModel& model) : model_(model) {}

  json::value read(const ptree& node, const json::object& shape) const {
    const std::string type = model_text(shape, "type");
    if (type == "structure") return structure(node, shape);
    if (type == "list") {
      const json::object& member = shape.at("member").as_object();
      const std::string name = item_name(member);
      json::array out;
      for (const auto& [tag, sub] : node)
        if (tag == name) out.push_back(read(sub, model_.shape_of(member)));
      return out;
    }
    if (type == "map") {
      json::object out;
      for (const auto& [tag, entry] : node)
        if (tag == "entry") map_entry(entry, shape, out);
      return out;
    }
    return scalar(node.data(), type);
  }

  json::object structure(const ptree& node, const json::object& shape) const {
    json::object out;
    const auto* members = shape.if_contains("members");
    if (!members) return out;
    for (const auto& [name, ref] : members->as_object()) {
      const json::object& reference = ref.as_object();
      const json::object& member_shape = model_.shape_of(reference);
      std::string tag = model_text(reference, "locationName");
      if (tag.empty()) tag = std::string(name);
      if (flag(member_shape, "flattened") && model_text(member_shape, "type") == "list") {
        // Flattened lists repeat the member's element in place.
        const json::object& item = member_shape.at("member").as_object();
        const std::string item_tag =
            model_text(item, "locationName").empty() ? tag : model_text(item, "locationName");
        json::array items;
        for (const auto& [t, sub] : node)
          if (t == item_tag) items.push_back(read(sub, model_.shape_of(item)));
        if (!items.empty()) out[name] = std::move(items);
        continue;
      }
      if (flag(member_shape, "flattened") && model_text(member_shape, "type") == "map") {
        json::object entries;
        for (const auto& [t, sub] : node)
          if (t == tag) map_entry(sub, member_shape, entries);
        if (!entries.empty()) out[name] = std::move(entries);
        continue;
      }
      if (const ptree* sub = child(node, tag)) out[name] = read(*sub, member_shape);
    }
    return out;
  }

 private:
  static std::string item_name(const json::object& member) {
    const std::string name = model_text(member, "locationName");
    return name.empty() ? "member" : name;
  }

  void map_entry(const ptree& entry, const json::object& shape, json::object& out) const {
    const json::object& key_ref = shape.at("key").as_object();
    const json::object& value_ref = shape.at("value").as_object();
    const std::string key_tag =
        model_text(key_ref, "locationName").empty() ? "key" : model_text(key_ref, "locationName");
    const std::string value_tag = model_text(value_ref, "locationName").empty()
                                      ? "value"
                                      : model_text(value_ref, "locationName");
    const ptree* key = child(entry, key_tag);
    const ptree* value = child(entry, value_tag);
    if (key && value) out[key->data()] = read(*value, model_.shape_of(value_ref));
  }

  const ServiceModel& model_;
};

json::value json_document(const ServiceModel& model, const json::value& value,
                          const json::object& shape) {
  const std::string type = model_text(shape, "type");
  if (type == "structure" && value.is_object()) {
    json::object out;
    for (const auto& [name, ref] : shape.at("members").as_object()) {
      const json::object& reference = ref.as_object();
      if (!model_text(reference, "location").empty()) continue;  // headers, status code
      std::string wire = model_text(reference, "locationName");
      if (wire.empty()) wire = std::string(name);
      if (const auto* v = value.as_object().if_contains(wire))
        out[name] = json_document(model, *v, model.shape_of(reference));
    }
    return out;
  }
  if (type == "list" && value.is_array()) {
    json::array out;
    for (const auto& item : value.as_array())
      out.push_back(json_document(model, item, model.shape_of(shape.at("member").as_object())));
    return out;
  }
  if (type == "map" && value.is_object()) {
    json::object out;
    for (const auto& [k, v] : value.as_object())
      out[k] = json_document(model, v, model.shape_of(shape.at("value").as_object()));
    return out;
  }
  return value;
}

// IAM sends policy documents URL-encoded; botocore hands them over decoded and parsed, and so
// the aws CLI prints them as JSON. Only structure members of shape policyDocumentType are.
void decode_policy_documents(const ServiceModel& model, json::value& value,
                             const json::object& shape) {
  const std::string type = model_text(shape, "type");
  if (type == "structure" && value.is_object()) {
    for (const auto& [name, ref] : shape.at("members").as_object()) {
      auto* member = value.as_object().if_contains(name);
      if (!member) continue;
      const json::object& reference = ref.as_object();
      if (model_text(reference, "shape") == "policyDocumentType" && member->is_string()) {
        boost::system::error_code ec;
        json::value parsed = json::parse(cloud::percent_decode(member->as_string()), ec);
        if (!ec) *member = std::move(parsed);
      } else {
        decode_policy_documents(model, *member, model.shape_of(reference));
      }
    }
  } else if (type == "list" && value.is_array()) {
    for (auto& item : value.as_array())
      decode_policy_documents(model, item, model.shape_of(shape.at("member").as_object()));
  }
}

json::object read_xml(const ServiceModel& model, const json::object& operation,
                      const json::object& shape, const std::string& body) {
  const std::string protocol = model.protocol();
  ptree tree;
  try {
    std::istringstream in(body);
    boost::property_tree::read_xml(in, tree);
  } catch (const std::exception&) {
    throw std::runtime_error("the response is not XML: " + body.substr(0, 200));
  }
  const ptree* root = nullptr;
  for (const auto& [tag, sub] : tree)
    if (!tag.starts_with("<")) root = &sub;
  if (!root) throw std::runtime_error("the response has no root element");
  const ptree* result = root;
  if (protocol == "query") {
    const std::string wrapper = model_text(operation, "resultWrapper");
    result = wrapper.empty() ? root : child(*root, wrapper);
    if (!result) return {};
  }
  return XmlReader(model).structure(*result, shape);
}

}  // namespace

json::object parse_response(const ServiceModel& model, const json::object& operation,
                            const std::string& body, int status,
                            const std::vector<std::pair<std::string, std::string>>& headers) {
  const std::string output = model_text(operation, "output");
  if (output.empty()) return {};
  const json::object& shape = model.shape(output);
  const std::string protocol = model.protocol();
  if (protocol == "query" || protocol == "ec2") {
    json::value document = read_xml(model, operation, shape, body);
    if (model.name() == "iam") decode_policy_documents(model, document, shape);
    return document.as_object();
  }
  json::object out;
  if (protocol == "rest-json") {
    const json::object& members = shape.at("members").as_object();
    for (const auto& [name, ref] : members) {
      const json::object& reference = ref.as_object();
      const std::string location = model_text(reference, "location");
      const std::string type = model_text(model.shape_of(reference), "type");
      if (location == "statusCode" && status != 0) out[name] = status;
      if (location != "header") continue;
      std::string wanted = model_text(reference, "locationName");
      for (char& c : wanted) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      for (const auto& [header, value] : headers)
        if (header == wanted) out[name] = scalar(value, type);
    }
    if (const std::string payload = model_text(shape, "payload"); !payload.empty()) {
      const json::object& payload_shape = model.shape_of(members.at(payload).as_object());
      const std::string type = model_text(payload_shape, "type");
      if (type == "blob") {
        out[payload] = auth::base64_encode(body);
        return out;
      }
      if (type == "string") {
        out[payload] = body;
        return out;
      }
    }
  }
  if (body.empty()) return out;
  boost::system::error_code ec;
  const json::value parsed = json::parse(body, ec);
  if (ec || !parsed.is_object())
    throw std::runtime_error("the response is not a JSON object: " + body.substr(0, 200));
  const json::value document = json_document(model, parsed, shape);
  for (const auto& [name, value] : document.as_object()) out[name] = value;
  return out;
}

}  // namespace sluice::cli
