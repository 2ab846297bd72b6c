// AWS IAM (Query protocol): roles with their trust policy, inline policies, customer-managed
// policies and attachments, and the evaluation the rest of the region relies on (may this role
// do this action on this resource?).
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "cloud/api.hpp"
#include "cloud/iam_policy.hpp"
#include "cloud/query_protocol.hpp"
#include "cloud/store.hpp"

namespace sluice::cloud {

class Iam {
 public:
  static constexpr std::string_view kXmlns = "https://iam.amazonaws.com/doc/2010-05-08/";

  Iam(Store& store, std::string account_id) : store_(store), account_id_(std::move(account_id)) {}

  // The XML result of `action` (inside <ActionResult>). Throws ApiError.
  std::string handle(std::string_view action, const QueryParams& params);

  // What the policies of the role `role_arn` (inline and attached) decide for `action` on
  // `resource`; an unknown role is an implicit deny. `why` says which, for status reasons.
  Decision evaluate(std::string_view role_arn, std::string_view action, std::string_view resource,
                    std::string* why = nullptr);

 private:
  // One method per action (handle() dispatches by name).
  std::string create_role(const QueryParams& params);
  std::string get_role(const QueryParams& params);
  std::string list_roles(const QueryParams& params);
  std::string delete_role(const QueryParams& params);
  std::string put_role_policy(const QueryParams& params);
  std::string get_role_policy(const QueryParams& params);
  std::string delete_role_policy(const QueryParams& params);
  std::string list_role_policies(const QueryParams& params);
  std::string create_policy(const QueryParams& params);
  std::string get_policy(const QueryParams& params);
  std::string delete_policy(const QueryParams& params);
  std::string list_attached_role_policies(const QueryParams& params);
  std::string attach_role_policy(const QueryParams& params);
  std::string detach_role_policy(const QueryParams& params);
  std::string change_attachment(const QueryParams& params, bool attach);

  boost::json::object role(const std::string& name);  // NoSuchEntity when absent
  boost::json::object policy(const std::string& arn);
  void save_role(const boost::json::object& role);
  std::string role_xml(const boost::json::object& role);
  std::string policy_xml(const boost::json::object& policy);

  Store& store_;
  std::string account_id_;
};

}  // namespace sluice::cloud
