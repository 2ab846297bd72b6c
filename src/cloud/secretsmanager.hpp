// AWS Secrets Manager (JSON 1.1): CreateSecret, GetSecretValue, PutSecretValue,
// DescribeSecret, ListSecrets, DeleteSecret, UpdateSecretVersionStage, ListSecretVersionIds. Values
// are sealed (AES-GCM) before they reach the store; the store holds names, versions and dates in
// the clear.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/sealed.hpp"
#include "cloud/store.hpp"

namespace sluice::cloud {

class SecretsManager {
 public:
  SecretsManager(Store& store, const SealingKey& key, std::string account_id)
      : store_(store), key_(key), account_id_(std::move(account_id)) {}

  // Runs `operation` (the X-Amz-Target after "secretsmanager."). Throws ApiError.
  boost::json::object handle(std::string_view operation, const boost::json::object& input,
                             std::string_view region);

  // The AWSCURRENT SecretString of a secret named by name or ARN, for the proxies the control
  // plane runs. Nothing when it does not exist, is deleted or is binary.
  std::optional<std::string> current_string(std::string_view secret_id);

  // The versions of a secret that carry a staging label and a SecretString, for the proxies
  // (a rotation's AWSCURRENT, AWSPENDING and AWSPREVIOUS). Empty when there is no such secret.
  struct StagedString {
    std::string version_id;
    std::vector<std::string> stages;
    std::string secret_string;
    double created = 0;             // seconds since 1970
    std::optional<double> demoted;  // when it stopped being AWSCURRENT, if it was
  };
  std::vector<StagedString> staged_strings(std::string_view secret_id);

 private:
  boost::json::object create(const boost::json::object& input, std::string_view region);
  boost::json::object get_value(const boost::json::object& input);
  boost::json::object put_value(const boost::json::object& input);
  boost::json::object describe(const boost::json::object& input);
  boost::json::object list(const boost::json::object& input);
  boost::json::object remove(const boost::json::object& input);
  boost::json::object update_stage(const boost::json::object& input);
  boost::json::object list_versions(const boost::json::object& input);

  // The stored document of the secret `id` names (its name or ARN); throws
  // ResourceNotFoundException. Also throws for a secret scheduled for deletion unless
  // `deleted_ok`.
  boost::json::object find(std::string_view id, bool deleted_ok = false);
  void save(const boost::json::object& secret);
  // Adds a version holding the input's SecretString or SecretBinary, staged as VersionStages
  // says (AWSCURRENT by default); the same ClientRequestToken and value again changes nothing.
  std::string add_version(boost::json::object& secret, const boost::json::object& input);

  Store& store_;
  const SealingKey& key_;
  std::string account_id_;
};

}  // namespace sluice::cloud
