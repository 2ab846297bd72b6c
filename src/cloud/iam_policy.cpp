#include "cloud/iam_policy.hpp"

#include <boost/json.hpp>
#include <cctype>

#include "cloud/api.hpp"

namespace sluice::cloud {
namespace json = boost::json;
namespace {

// A field that may be one string or a list of strings.
std::vector<std::string_view> strings(const json::object& statement, std::string_view key) {
  std::vector<std::string_view> out;
  auto it = statement.find(key);
  if (it == statement.end()) return out;
  if (it->value().is_string()) {
    out.push_back(it->value().as_string());
  } else if (it->value().is_array()) {
    for (const auto& v : it->value().as_array())
      if (v.is_string()) out.push_back(v.as_string());
  }
  return out;
}

std::vector<json::object> statements_of(const json::value& document) {
  std::vector<json::object> out;
  if (!document.is_object()) return out;
  auto it = document.as_object().find("Statement");
  if (it == document.as_object().end()) return out;
  if (it->value().is_object()) out.push_back(it->value().as_object());
  if (it->value().is_array())
    for (const auto& s : it->value().as_array())
      if (s.is_object()) out.push_back(s.as_object());
  return out;
}

bool any_match(const std::vector<std::string_view>& patterns, std::string_view text,
               bool ignore_case) {
  for (auto pattern : patterns)
    if (wildcard_match(pattern, text, ignore_case)) return true;
  return false;
}

}  // namespace

bool wildcard_match(std::string_view pattern, std::string_view text, bool ignore_case) {
  auto same = [&](char a, char b) {
    return ignore_case ? std::tolower(static_cast<unsigned char>(a)) ==
                             std::tolower(static_cast<unsigned char>(b))
                       : a == b;
  };
  // Iterative matching with one backtrack point: linear in practice, never exponential.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() &&
        (pattern[p] == '?' || (pattern[p] != '*' && same(pattern[p], text[t])))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Decision evaluate_policies(const std::vector<std::string>& documents, std::string_view action,
                           std::string_view resource) {
  bool allowed = false;
  for (const auto& document : documents) {
    boost::system::error_code error;
    const json::value parsed = json::parse(document, error);
    if (error) continue;
    for (const auto& statement : statements_of(parsed)) {
      const auto effect = strings(statement, "Effect");
      if (effect.size() != 1) continue;
      const auto actions = strings(statement, "Action");
      const auto not_actions = strings(statement, "NotAction");
      const bool action_matches = statement.contains("NotAction")
                                      ? !any_match(not_actions, action, true)
                                      : any_match(actions, action, true);
      const auto resources = strings(statement, "Resource");
      const auto not_resources = strings(statement, "NotResource");
      const bool resource_matches = statement.contains("NotResource")
                                        ? !any_match(not_resources, resource, false)
                                        : any_match(resources, resource, false);
      if (!action_matches || !resource_matches) continue;
      if (effect[0] == "Deny") return Decision::kExplicitDeny;
      if (effect[0] == "Allow") allowed = true;
    }
  }
  return allowed ? Decision::kAllow : Decision::kImplicitDeny;
}

void check_policy_document(std::string_view document) {
  boost::system::error_code error;
  const json::value parsed = json::parse(document, error);
  if (error || !parsed.is_object())
    throw ApiError("MalformedPolicyDocument", "Syntax errors in policy.");
  const auto statements = statements_of(parsed);
  if (statements.empty())
    throw ApiError("MalformedPolicyDocument", "Policy document must contain a Statement.");
  for (const auto& statement : statements) {
    const auto effect = strings(statement, "Effect");
    if (effect.size() != 1 || (effect[0] != "Allow" && effect[0] != "Deny"))
      throw ApiError("MalformedPolicyDocument",
                     "Policy statement must contain a valid Effect (Allow or Deny).");
    if (!statement.contains("Action") && !statement.contains("NotAction"))
      throw ApiError("MalformedPolicyDocument", "Policy statement must contain actions.");
  }
}

}  // namespace sluice::cloud
