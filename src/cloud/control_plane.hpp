// `sluice serve`: the services of the local region, behind one request handler. Which service
// a request is for comes from how the AWS SDKs address them: X-Amz-Target for JSON 1.1
// (secretsmanager), otherwise the Query protocol's Version (iam 2010-05-08, rds 2014-10-31,
// ec2 2016-11-15), else the SigV4 credential scope; lambda by its REST paths.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "cloud/api.hpp"
#include "cloud/ec2.hpp"
#include "cloud/iam.hpp"
#include "cloud/lambda.hpp"
#include "cloud/sealed.hpp"
#include "cloud/secretsmanager.hpp"
#include "cloud/store.hpp"

namespace sluice::cloud {

struct ControlPlaneOptions {
  std::string home;                         // state.db and secrets.key live here
  std::string account_id = "000000000000";  // in every ARN
  // Verify SigV4 signatures against `access_keys` (a file of "ACCESS_KEY_ID SECRET" lines);
  // otherwise any credentials are accepted.
  bool strict_auth = false;
  std::string access_keys;
};

class ControlPlane {
 public:
  explicit ControlPlane(const ControlPlaneOptions& options);
  ApiResponse handle(ApiRequest& request);

 private:
  ApiResponse json_1_1(ApiRequest& request, const std::string& target);
  ApiResponse query(ApiRequest& request);
  // The error for a request whose signature does not hold, in its protocol's envelope.
  ApiResponse refuse(const ApiRequest& request, const ApiError& error);

  ControlPlaneOptions options_;
  std::map<std::string, std::string, std::less<>> access_keys_;
  Store store_;
  SealingKey key_;
  SecretsManager secrets_;
  Iam iam_;
  Ec2 ec2_;
  Lambda lambda_;
};

}  // namespace sluice::cloud
