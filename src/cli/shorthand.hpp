// The aws CLI's shorthand syntax for structured flags, e.g.
//   --auth "AuthScheme=SECRETS,SecretArn=arn:…,IAMAuth=DISABLED"
//   --scaling "MinCapacity=0.5,MaxCapacity=4"  --tags Key=a,Value=b  --x "Ids=[a,b],Inner={K=v}"
// Pure: text in, an untyped document out (strings, lists and objects). The flag's shape types
// it afterwards (cli/arguments.hpp). As in the aws CLI, `Key=a,b` gives Key the list [a, b].
#pragma once

#include <boost/json.hpp>
#include <stdexcept>
#include <string_view>

namespace sluice::cli {

struct ShorthandError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws ShorthandError saying what was expected where.
boost::json::object parse_shorthand(std::string_view text);

}  // namespace sluice::cli
