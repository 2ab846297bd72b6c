// Identifiers the services hand out: random, in each service's own format.
#pragma once

#include <string>
#include <string_view>

namespace sluice::cloud {

// A random version-4 UUID, lower-case hex (Secrets Manager versions, Lambda revisions).
std::string uuid4();
// `count` characters drawn at random from `alphabet` (ARN suffixes, IAM and EC2 IDs).
std::string random_chars(std::string_view alphabet, size_t count);

}  // namespace sluice::cloud
