// IAM identity-policy evaluation for what the local region enforces (a proxy reading its
// secret): explicit Deny wins, then any Allow; nothing matching is an implicit deny.
// Pure: JSON documents in, a decision out.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice::cloud {

enum class Decision { kAllow, kExplicitDeny, kImplicitDeny };

Decision evaluate_policies(const std::vector<std::string>& documents, std::string_view action,
                           std::string_view resource);

// IAM wildcards: '*' any run of characters, '?' any one. Actions compare case-insensitively.
bool wildcard_match(std::string_view pattern, std::string_view text, bool ignore_case = false);

// Throws ApiError MalformedPolicyDocument unless `document` is a policy IAM would accept:
// a JSON object whose Statement (one or a list) has Effect Allow or Deny and an Action.
void check_policy_document(std::string_view document);

}  // namespace sluice::cloud
