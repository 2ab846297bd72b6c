// Flags the aws CLI adds to some operations on top of the model's, so that the guide's commands
// work as written:
//   ec2 authorize/revoke-security-group-ingress/egress: --protocol --port --cidr --source-group
//       --group-owner, which become one IpPermissions entry;
//   lambda create-function: --zip-file fileb://PATH, which becomes Code.ZipFile;
//   operations whose output is a blob payload (lambda invoke): a positional `outfile` that
//   receives the payload, while the rest of the output is printed (StatusCode, FunctionError…).
#pragma once

#include <boost/json.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/service_model.hpp"

namespace sluice::cli {

struct ExtraFlag {
  std::string name;  // without the leading "--"
  std::string help;
};

std::vector<ExtraFlag> extra_flags(const std::string& service, const std::string& operation);

// Folds the extra flags given (name → value) into `input`. Throws ArgumentError on a bad mix.
void apply_extra_flags(const std::string& service, const std::string& operation,
                       const std::map<std::string, std::string>& given, boost::json::object& input);

// The output member the aws CLI writes to `outfile` (a blob payload, as botocore's
// has_streaming_output), or "" when the operation has none.
std::string streaming_output_member(const ServiceModel& model,
                                    const boost::json::object& operation);

// Takes the positional outfile out of `args` (the operation's words), skipping flags' values;
// nullopt when there is none. Throws ArgumentError on a second positional word, as aws does.
std::optional<std::string> take_outfile(const ServiceModel& model,
                                        const boost::json::object& operation,
                                        std::vector<std::string>& args);

// Writes the payload `member` (base64 in the document) to `outfile` and removes it from
// `output`. Throws std::runtime_error when the file cannot be written.
void save_streaming_output(const std::string& member, const std::string& outfile,
                           boost::json::object& output);

}  // namespace sluice::cli
