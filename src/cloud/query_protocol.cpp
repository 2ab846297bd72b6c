#include "cloud/query_protocol.hpp"

#include <boost/url/params_view.hpp>
#include <charconv>
#include <chrono>
#include <ctime>

namespace sluice::cloud {

QueryParams QueryParams::parse(std::string_view body) {
  QueryParams out;
  try {
    boost::urls::encoding_opts options;
    options.space_as_plus = true;  // application/x-www-form-urlencoded
    for (auto param :
         boost::urls::params_view(boost::urls::string_view(body.data(), body.size()), options))
      out.values_[param.key] = param.value;
  } catch (const std::exception&) {
    throw ApiError("MalformedQueryString",
                   "The request body is not a valid form-encoded query string.");
  }
  return out;
}

std::optional<std::string> QueryParams::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string QueryParams::required(const std::string& name) const {
  auto value = get(name);
  if (!value || value->empty())
    throw ApiError("ValidationError",
                   "1 validation error detected: Value null at '" + name +
                       "' failed to satisfy constraint: Member must not be null");
  return *value;
}

std::optional<int64_t> QueryParams::integer(const std::string& name, int64_t low,
                                            int64_t high) const {
  auto value = get(name);
  if (!value) return std::nullopt;
  int64_t parsed = 0;
  const auto [end, error] = std::from_chars(value->data(), value->data() + value->size(), parsed);
  if (error != std::errc() || end != value->data() + value->size() || parsed < low || parsed > high)
    throw ApiError("ValidationError",
                   "1 validation error detected: Value '" + *value + "' at '" + name +
                       "' failed to satisfy constraint: Member must have value between " +
                       std::to_string(low) + " and " + std::to_string(high));
  return parsed;
}

std::optional<bool> QueryParams::boolean(const std::string& name) const {
  auto value = get(name);
  if (!value) return std::nullopt;
  if (*value == "true") return true;
  if (*value == "false") return false;
  throw ApiError("ValidationError", "1 validation error detected: Value '" + *value + "' at '" +
                                        name +
                                        "' failed to satisfy constraint: Member must be "
                                        "true or false");
}

std::optional<double> QueryParams::number(const std::string& name, double low, double high) const {
  auto value = get(name);
  if (!value) return std::nullopt;
  double parsed = 0;
  const auto [end, error] = std::from_chars(value->data(), value->data() + value->size(), parsed);
  if (error != std::errc() || end != value->data() + value->size() || !(parsed >= low) ||
      !(parsed <= high))
    throw ApiError("ValidationError", "1 validation error detected: Value '" + *value + "' at '" +
                                          name +
                                          "' failed to satisfy constraint: Member must be "
                                          "a number between " +
                                          std::to_string(low) + " and " + std::to_string(high));
  return parsed;
}

int QueryParams::structure_count(const std::string& name) const {
  int count = 0;
  for (;; ++count) {
    const std::string prefix = name + ".member." + std::to_string(count + 1) + ".";
    auto it = values_.lower_bound(prefix);
    if (it == values_.end() || !it->first.starts_with(prefix)) break;
  }
  return count;
}

std::vector<std::string> QueryParams::list(const std::string& name,
                                           const std::string& member) const {
  std::vector<std::string> out;
  for (const std::string& infix : {std::string(".member."), "." + member + ".", std::string(".")}) {
    for (int i = 1;; ++i) {
      auto value = get(name + infix + std::to_string(i));
      if (!value) break;
      out.push_back(*value);
    }
    if (!out.empty()) break;
  }
  return out;
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string iso8601_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

Xml& Xml::open(std::string_view tag, std::string_view attributes) {
  out_ += '<';
  out_ += tag;
  if (!attributes.empty()) {
    out_ += ' ';
    out_ += attributes;
  }
  out_ += '>';
  return *this;
}

Xml& Xml::close(std::string_view tag) {
  out_ += "</";
  out_ += tag;
  out_ += '>';
  return *this;
}

Xml& Xml::leaf(std::string_view tag, std::string_view text) {
  open(tag);
  out_ += xml_escape(text);
  return close(tag);
}

Xml& Xml::raw(std::string_view xml) {
  out_ += xml;
  return *this;
}

namespace {

// A whole XML reply: the declaration, then the document.
ApiResponse xml_document(int status, const Xml& xml) {
  ApiResponse out;
  out.status = status;
  out.content_type = "text/xml";
  out.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + xml.str();
  return out;
}

}  // namespace

ApiResponse query_response(std::string_view action, std::string_view xmlns,
                           std::string_view result) {
  const std::string response = std::string(action) + "Response";
  const std::string result_tag = std::string(action) + "Result";
  Xml xml;
  xml.open(response, "xmlns=\"" + std::string(xmlns) + "\"")
      .open(result_tag)
      .raw(result)
      .close(result_tag)
      .open("ResponseMetadata")
      .leaf("RequestId", "sluice")
      .close("ResponseMetadata")
      .close(response);
  return xml_document(200, xml);
}

ApiResponse query_error(const ApiError& error, std::string_view xmlns) {
  Xml xml;
  xml.open("ErrorResponse", "xmlns=\"" + std::string(xmlns) + "\"")
      .open("Error")
      .leaf("Type", error.status >= 500 ? "Receiver" : "Sender")
      .leaf("Code", error.code)
      .leaf("Message", error.what())
      .close("Error")
      .leaf("RequestId", "sluice")
      .close("ErrorResponse");
  return xml_document(error.status, xml);
}

ApiResponse ec2_response(std::string_view action, std::string_view xmlns,
                         std::string_view members) {
  const std::string response = std::string(action) + "Response";
  Xml xml;
  xml.open(response, "xmlns=\"" + std::string(xmlns) + "\"")
      .leaf("requestId", "sluice")
      .raw(members)
      .close(response);
  return xml_document(200, xml);
}

ApiResponse ec2_error(const ApiError& error) {
  Xml xml;
  xml.open("Response")
      .open("Errors")
      .open("Error")
      .leaf("Code", error.code)
      .leaf("Message", error.what())
      .close("Error")
      .close("Errors")
      .leaf("RequestID", "sluice")
      .close("Response");
  return xml_document(error.status, xml);
}

}  // namespace sluice::cloud
