// Flags the aws CLI adds to some operations on top of the model's, so that the guide's commands
// work as written:
//   ec2 authorize/revoke-security-group-ingress/egress: --protocol --port --cidr --source-group
//       --group-owner, which become one IpPermissions entry;
//   lambda create-function: --zip-file fileb://PATH, which becomes Code.ZipFile.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <string>
#include <vector>

namespace sluice::cli {

struct ExtraFlag {
  std::string name;  // without the leading "--"
  std::string help;
};

std::vector<ExtraFlag> extra_flags(const std::string& service, const std::string& operation);

// Folds the extra flags given (name → value) into `input`. Throws ArgumentError on a bad mix.
void apply_extra_flags(const std::string& service, const std::string& operation,
                       const std::map<std::string, std::string>& given, boost::json::object& input);

}  // namespace sluice::cli
