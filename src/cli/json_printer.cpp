#include "cli/json_printer.hpp"

#include <cstdio>
#include <cstdlib>

namespace sluice::cli {
namespace json = boost::json;
namespace {

void quoted(std::string& out, std::string_view text) {
  out += '"';
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += c;  // ensure_ascii=False: UTF-8 as it is
        }
    }
  }
  out += '"';
}

void print(std::string& out, const json::value& v, int depth) {
  const std::string indent(4 * (depth + 1), ' ');
  const std::string closing(4 * depth, ' ');
  switch (v.kind()) {
    case json::kind::object: {
      const auto& o = v.as_object();
      if (o.empty()) {
        out += "{}";
        return;
      }
      out += "{\n";
      bool first = true;
      for (const auto& [key, value] : o) {
        if (!first) out += ",\n";
        first = false;
        out += indent;
        quoted(out, key);
        out += ": ";
        print(out, value, depth + 1);
      }
      out += "\n" + closing + "}";
      return;
    }
    case json::kind::array: {
      const auto& a = v.as_array();
      if (a.empty()) {
        out += "[]";
        return;
      }
      out += "[\n";
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += ",\n";
        out += indent;
        print(out, a[i], depth + 1);
      }
      out += "\n" + closing + "]";
      return;
    }
    case json::kind::string:
      quoted(out, v.as_string());
      return;
    case json::kind::double_:
      out += python_float(v.as_double());
      return;
    case json::kind::bool_:
      out += v.as_bool() ? "true" : "false";
      return;
    case json::kind::null:
      out += "null";
      return;
    default:
      out += json::serialize(v);
      return;  // integers
  }
}

}  // namespace

std::string python_float(double d) {
  char text[32] = "";
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof text, "%.*g", precision, d);
    if (std::strtod(text, nullptr) == d) break;
  }
  std::string out = text;
  if (out.find_first_of(".en") == std::string::npos) out += ".0";
  return out;
}

std::string aws_json(const json::value& value) {
  std::string out;
  print(out, value, 0);
  return out + "\n";
}

}  // namespace sluice::cli
