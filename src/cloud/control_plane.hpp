// `sluice serve`: the services of the local region, behind one request handler. Which service
// a request is for comes from how the AWS SDKs address them: X-Amz-Target for JSON 1.1
// (secretsmanager), otherwise the Query protocol's Version (iam 2010-05-08, rds 2014-10-31,
// ec2 2016-11-15), else the SigV4 credential scope; lambda by its REST paths.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "cloud/api.hpp"
#include "cloud/ec2.hpp"
#include "cloud/iam.hpp"
#include "cloud/lambda.hpp"
#include "cloud/local_network.hpp"
#include "cloud/log_store.hpp"
#include "cloud/logs.hpp"
#include "cloud/rds.hpp"
#include "cloud/role_credentials.hpp"
#include "cloud/sealed.hpp"
#include "cloud/secretsmanager.hpp"
#include "cloud/store.hpp"
#include "cloud/sts.hpp"
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
  // Lambda: the account's concurrent executions (GetAccountSettings' AccountLimit).
  int account_concurrency = 1000;
  // Lambda: how long an idle execution environment stays warm before it is reclaimed.
  int function_idle_seconds = 300;
};

class ControlPlane {
 public:
  // GET here returns the PEM clients use as sslrootcert (`sluice ca-bundle`).
  static constexpr std::string_view kCaBundlePath = "/sluice/ca-bundle.pem";
  // GET here + an interface ID: {"Namespace": …}, where `sluice exec` runs a command.
  static constexpr std::string_view kInterfacePath = "/sluice/network-interfaces/";

  explicit ControlPlane(const ControlPlaneOptions& options);
  ApiResponse handle(ApiRequest& request);
  // Who signed `request`, and may they make it? Role credentials (ASIA…) are always checked:
  // signature, session token, expiry, then the role's policies for the request's action and
  // resource. Other keys are checked with --strict-auth only. A refusal in the service's own
  // error shape, or nothing when the request may go on. handle() calls it first; the function
  // host calls it for the requests it serves itself (Invoke).
  std::optional<ApiResponse> authorize(const ApiRequest& request);
  // Moves resources along and keeps their processes running; call a few times a second, on the
  // thread that calls handle(): only that thread touches the state. Probes that could block on
  // the network (a proxy's target health, whether it listens) run on a ProbeWorker's threads and
  // are applied by a later tick (probe_worker.hpp), so neither tick() nor an API call waits on
  // them.
  void tick();
  // Stops every process the region runs (state stays for the next start).
  void shutdown();

  // Six hex digits naming this instance's namespaces and control groups (from its home).
  std::string instance_tag() const;
  // The services, for the function host that runs on top of them.
  const ControlPlaneOptions& options() const { return options_; }
  Store& store() { return store_; }
  Lambda& lambda() { return lambda_; }
  Ec2& ec2() { return ec2_; }
  Iam& iam() { return iam_; }
  // Temporary credentials of execution roles (what function environments sign with).
  RoleCredentials& role_credentials() { return role_credentials_; }
  // CloudWatch Logs' data (DIR/logs): where function output goes.
  LogStore& log_store() { return log_store_; }
  // Network namespaces, or nullptr where this machine cannot make them.
  VpcNetwork* vpc_network() { return vpc_network_.available() ? &vpc_network_ : nullptr; }

 private:
  ApiResponse json_1_1(ApiRequest& request, const std::string& target);
  ApiResponse query(ApiRequest& request);
  // The error for a request whose signature does not hold, in its protocol's envelope.
  ApiResponse refuse(const ApiRequest& request, const ApiError& error);
  // What a request asks IAM for: `service:Operation` on a resource (an ARN, or "*"), and the
  // resource as a denial names it (what the caller gave; empty: none).
  struct Permission {
    std::string action;
    std::string resource = "*";
    std::string named;
  };
  Permission permission(const ApiRequest& request);
  // The service's own AccessDenied for a role session the policies do not allow.
  ApiResponse deny(const ApiRequest& request, const RoleSession& session,
                   const Permission& permission, Decision decision);

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
  RoleCredentials role_credentials_;
  LogStore log_store_;
  Sts sts_;
  Logs logs_;
};

}  // namespace sluice::cloud
