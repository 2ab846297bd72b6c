// From the aws CLI's flags to an operation's input document, typed by its model:
//   --db-proxy-name x          string member DBProxyName
//   --require-tls / --no-…     boolean members take no value
//   --vpc-subnet-ids a b       lists take every value up to the next flag, or one JSON list
//   --auth K=V,…  or '[…]'     structures, maps and lists of them: shorthand or JSON
//   file://PATH, fileb://PATH  a value read from a file (fileb: bytes, for blobs)
//   --cli-input-json JSON      the whole input at once (flags given as well override it)
// Blob members hold base64 text in the document, as they travel in every protocol.
#pragma once

#include <boost/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/service_model.hpp"

namespace sluice::cli {

// A command line the model does not accept; the CLI exits 252 with the message, as aws does.
struct ArgumentError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// `value` (from JSON, shorthand or a flag's text) as `shape` types it. `where` names it in errors.
boost::json::value typed_value(const ServiceModel& model, const boost::json::object& shape,
                               const boost::json::value& value, const std::string& where);

// How a blob flag's text is read (the aws CLI's --cli-binary-format): as the bytes themselves
// (CLI v1, and v2's raw-in-base64-out), or as base64 (v2's default). fileb:// is always bytes.
enum class BinaryFormat { kRaw, kBase64 };

// The input document of `operation` from its flags (everything after the operation's name).
// Flags of aws CLI customizations (see cli/customizations.hpp) are accepted too.
boost::json::object parse_operation_arguments(const ServiceModel& model,
                                              const boost::json::object& operation,
                                              const std::vector<std::string>& args,
                                              BinaryFormat binary_format = BinaryFormat::kRaw);

// The text of a flag's value: file://PATH read as text, fileb://PATH as bytes, else itself.
std::string resolve_value_file(const std::string& value);

}  // namespace sluice::cli
