// AWS Lambda's control API (REST-JSON): CreateFunction, GetFunction, GetFunctionConfiguration,
// UpdateFunctionConfiguration, UpdateFunctionCode, ListFunctions, DeleteFunction, the reserved
// concurrency operations and GetAccountSettings. Running functions is the function host's job
// (src/functions): it serves Invoke before a request reaches here and reads what this keeps.
// A function in a VPC gets Hyperplane network interfaces as in AWS: one per (subnet, security
// group set), shared by every function with the same pair, deleted when none uses it any more.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/api.hpp"
#include "cloud/ec2.hpp"
#include "cloud/records.hpp"
#include "cloud/store.hpp"

namespace sluice::cloud {

class Lambda {
 public:
  // CreateFunction's Code {S3Bucket: this, S3Key: /absolute/path}: code used where it lies.
  static constexpr std::string_view kLocalCodeBucket = "sluice-local";
  static constexpr std::string_view kPrefix = "/2015-03-31/functions";
  // AWS keeps this much of the account's concurrency unreserved; here at most a tenth of the
  // account's limit, so that small test limits still allow reservations.
  static constexpr int64_t kMinimumUnreserved = 100;

  Lambda(Store& store, Ec2& ec2, std::string code_folder, std::string account_id,
         int64_t account_concurrency = 1000)
      : store_(store),
        ec2_(ec2),
        code_folder_(std::move(code_folder)),
        account_id_(std::move(account_id)),
        account_concurrency_(account_concurrency) {}

  // Whether a request target is one of Lambda's REST paths (any of the API's dated prefixes,
  // /2015-03-31/…, /2017-10-31/…), served or not: those get Lambda's JSON errors.
  static bool serves_path(std::string_view target);

  // A request on one of Lambda's paths. Errors become the service's JSON error responses.
  ApiResponse handle(const ApiRequest& request);
  // The stored function (its configuration and sluice's own keys: CodeFile, CodeIsLocal,
  // ReservedConcurrentExecutions, NetworkInterfaces …). Throws ResourceNotFoundException.
  FunctionRecord function(const std::string& name_or_arn);
  // The same as its stored document.
  boost::json::object load(const std::string& name_or_arn);
  std::vector<FunctionRecord> functions();

  // The IDs of the function's network interfaces (one per subnet of its VpcConfig; none outside
  // a VPC), where its execution environments run (FunctionRecord::interface_ids).
  static std::vector<std::string> network_interfaces(const boost::json::object& function);
  // The function's reserved concurrency (PutFunctionConcurrency), if any.
  static std::optional<int64_t> reserved_concurrency(const boost::json::object& function);
  // The account's concurrency limit, and what no function has reserved: the pool shared by the
  // functions without a reservation.
  int64_t account_concurrency() const { return account_concurrency_; }
  int64_t unreserved_concurrency();

 private:
  // A deployment package as a request gives it (Code in CreateFunction, the top level in
  // UpdateFunctionCode), checked but not yet written.
  struct Package {
    std::string file;  // the local path (CodeIsLocal), or empty until the upload is written
    std::string zip;   // the uploaded bytes
    bool local = false;
    std::string sha256;  // base64, as Lambda's CodeSha256
    int64_t size = 0;
  };
  Package package_of(const boost::json::object& code, std::string_view missing_message);
  // Writes an uploaded package under the code folder (atomically, by rename); its path.
  std::string write_upload(const std::string& name, const Package& package,
                           const std::string& revision);

  boost::json::object create(const boost::json::object& input, const std::string& region);
  boost::json::object update(const std::string& name, const boost::json::object& input);
  boost::json::object update_code(const std::string& name, const boost::json::object& input);
  void remove(const std::string& name);
  boost::json::object put_concurrency(const std::string& name, const boost::json::object& input);
  boost::json::object get_function(const std::string& name);     // GetFunction's output
  boost::json::object get_concurrency(const std::string& name);  // GetFunctionConcurrency's
  boost::json::object account_settings();
  // VpcConfig as Lambda reports it, with VpcId looked up from the subnets.
  FunctionVpcConfig vpc_config(const boost::json::value& input);
  // The function's NetworkInterfaces for its VpcConfig: the shared interface of each (subnet,
  // group set), made when none exists yet.
  std::vector<FunctionInterface> attach_interfaces(const std::string& name,
                                                   const FunctionVpcConfig& vpc);
  // Deletes the functions' interfaces that no stored function uses.
  void release_unused_interfaces();
  void save(const FunctionRecord& function);

  Store& store_;
  Ec2& ec2_;
  std::string code_folder_;
  std::string account_id_;
  int64_t account_concurrency_;
};

}  // namespace sluice::cloud
