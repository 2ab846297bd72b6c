// AWS STS (Query protocol, Version 2011-06-15): GetCallerIdentity, and AssumeRole, which hands
// out the same temporary role credentials the function host gives execution environments.
// The role's trust policy is not evaluated: any caller may assume any role of the account.
#pragma once

#include <string>
#include <string_view>

#include "cloud/query_protocol.hpp"
#include "cloud/role_credentials.hpp"
#include "cloud/store.hpp"

namespace sluice::cloud {

class Sts {
 public:
  static constexpr std::string_view kXmlns = "https://sts.amazonaws.com/doc/2011-06-15/";

  Sts(Store& store, RoleCredentials& credentials, std::string account_id)
      : store_(store), credentials_(credentials), account_id_(std::move(account_id)) {}

  // The XML result of `action` (inside <ActionResult>) for `caller`: a role session, or nullptr
  // for the account's own keys. Throws ApiError.
  std::string handle(std::string_view action, const QueryParams& params, const RoleSession* caller);

  // The ARN a caller acts as: arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION for a role
  // session, arn:aws:iam::ACCOUNT:root for the account's keys.
  std::string caller_arn(const RoleSession* caller) const;
  // The role's unique ID (AROA…): IAM's RoleId while the role exists, else one derived from the
  // role's name, so it stays the same for the session's lifetime.
  std::string role_id(std::string_view role_arn) const;

 private:
  std::string assume_role(const QueryParams& params, const RoleSession* caller);

  Store& store_;
  RoleCredentials& credentials_;
  std::string account_id_;
};

}  // namespace sluice::cloud
