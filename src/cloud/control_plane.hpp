// `sluice serve`: the services of the local region, behind one request handler. Which service
// a request is for comes from how the AWS SDKs address them: X-Amz-Target for JSON 1.1
// (secretsmanager), otherwise the SigV4 credential scope.
#pragma once

#include <memory>
#include <string>

#include "cloud/api.hpp"
#include "cloud/sealed.hpp"
#include "cloud/secretsmanager.hpp"
#include "cloud/store.hpp"

namespace sluice::cloud {

struct ControlPlaneOptions {
  std::string home;                         // state.db and secrets.key live here
  std::string account_id = "000000000000";  // in every ARN
};

class ControlPlane {
 public:
  explicit ControlPlane(const ControlPlaneOptions& options);
  ApiResponse handle(ApiRequest& request);

 private:
  ApiResponse json_1_1(ApiRequest& request, const std::string& target);

  ControlPlaneOptions options_;
  Store store_;
  SealingKey key_;
  SecretsManager secrets_;
};

}  // namespace sluice::cloud
