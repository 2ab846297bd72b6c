// The AWS Query protocol (iam, rds) and its EC2 variant: form-encoded parameters in, XML out.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/api.hpp"
#include "common/encoding.hpp"

namespace sluice::cloud {

// Parameters of a form-encoded body, decoded ("Tags.member.1.Key" stays one flat key).
class QueryParams {
 public:
  // Throws ApiError (MalformedQueryString) when the body is not a form.
  static QueryParams parse(std::string_view body);

  std::optional<std::string> get(const std::string& name) const;
  // A required parameter; ValidationError naming it when missing or empty.
  std::string required(const std::string& name) const;
  // An integer parameter within [low, high]; ValidationError naming it otherwise.
  std::optional<int64_t> integer(const std::string& name, int64_t low, int64_t high) const;
  // A boolean parameter ("true" or "false"); ValidationError naming it otherwise.
  std::optional<bool> boolean(const std::string& name) const;
  // A decimal number within [low, high]; ValidationError naming it otherwise.
  std::optional<double> number(const std::string& name, double low, double high) const;
  // A list: NAME.member.1, NAME.member.2, … (Query; `member` is the model's member name when it
  // has one, e.g. VpcSecurityGroupIds.VpcSecurityGroupId.1) or NAME.1, NAME.2, … (EC2).
  std::vector<std::string> list(const std::string& name,
                                const std::string& member = "member") const;
  // How many NAME.member.N.* structures a list holds (N from 1, without gaps).
  int structure_count(const std::string& name) const;
  const std::map<std::string, std::string>& all() const { return values_; }

 private:
  std::map<std::string, std::string> values_;
};

// Minimal XML building for responses: elements with escaped text, nested by hand.
class Xml {
 public:
  Xml& open(std::string_view tag, std::string_view attributes = {});
  Xml& close(std::string_view tag);
  Xml& leaf(std::string_view tag, std::string_view text);  // <tag>text</tag>, text escaped
  Xml& raw(std::string_view xml);
  std::string str() const { return out_; }

 private:
  std::string out_;
};

std::string xml_escape(std::string_view text);
// ISO 8601 in UTC with seconds, as the Query services print dates.
std::string iso8601_now();

// `<{Action}Response xmlns="{ns}"><{Action}Result>result</…><ResponseMetadata>…` (Query).
ApiResponse query_response(std::string_view action, std::string_view xmlns,
                           std::string_view result);
ApiResponse query_error(const ApiError& error, std::string_view xmlns);
// The EC2 variant: `<{Action}Response xmlns><requestId/>members</…>`, errors in <Response><Errors>.
ApiResponse ec2_response(std::string_view action, std::string_view xmlns, std::string_view members);
ApiResponse ec2_error(const ApiError& error);

}  // namespace sluice::cloud
