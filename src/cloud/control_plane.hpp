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
#include "cloud/local_network.hpp"
#include "cloud/rds.hpp"
#include "cloud/sealed.hpp"
#include "cloud/secretsmanager.hpp"
#include "cloud/store.hpp"
#include "cloud/supervisor.hpp"
#include "cloud/vpc_network.hpp"

namespace sluice::cloud {

struct ControlPlaneOptions {
  std::string home;                         // state.db and secrets.key live here
  std::string account_id = "000000000000";  // in every ARN
  // Verify SigV4 signatures against `access_keys` (a file of "ACCESS_KEY_ID SECRET" lines);
  // otherwise any credentials are accepted.
  bool strict_auth = false;
  std::string access_keys;
  // Endpoint names are NAME.proxy-ID.REGION.rds.DOMAIN and resolve through `hosts_file`
  // (empty: not published).
  std::string domain = "sluice.internal";
  std::string hosts_file = "/etc/hosts";
  std::string postgres_bin;  // empty: the newest /usr/lib/postgresql/N/bin
  std::string proxy_binary;  // sluice-proxy
  // Whether this machine may reach endpoints (the documented exception to security groups).
  bool host_access = true;
};

class ControlPlane {
 public:
  // GET here returns the PEM clients use as sslrootcert (`sluice ca-bundle`).
  static constexpr std::string_view kCaBundlePath = "/sluice/ca-bundle.pem";
  // GET here + an interface ID: {"Namespace": …}, where `sluice exec` runs a command.
  static constexpr std::string_view kInterfacePath = "/sluice/network-interfaces/";

  explicit ControlPlane(const ControlPlaneOptions& options);
  ApiResponse handle(ApiRequest& request);
  // Moves resources along and keeps their processes running; call a few times a second.
  void tick();
  // Stops every process the region runs (state stays for the next start).
  void shutdown();

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
  Supervisor supervisor_;
  LocalNetwork network_;
  VpcNetwork vpc_network_;
  Rds rds_;
};

}  // namespace sluice::cloud
