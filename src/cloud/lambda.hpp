// AWS Lambda's configuration API (REST-JSON): CreateFunction, GetFunction,
// GetFunctionConfiguration, UpdateFunctionConfiguration, ListFunctions, DeleteFunction. Running
// functions is the function host's job (a later step); this keeps what it will run.
#pragma once

#include <boost/json.hpp>
#include <string>

#include "cloud/api.hpp"
#include "cloud/ec2.hpp"
#include "cloud/store.hpp"

namespace sluice::cloud {

class Lambda {
 public:
  // CreateFunction's Code {S3Bucket: this, S3Key: /absolute/path}: code used where it lies.
  static constexpr std::string_view kLocalCodeBucket = "sluice-local";
  static constexpr std::string_view kPrefix = "/2015-03-31/functions";

  Lambda(Store& store, Ec2& ec2, std::string code_folder, std::string account_id)
      : store_(store),
        ec2_(ec2),
        code_folder_(std::move(code_folder)),
        account_id_(std::move(account_id)) {}

  // A request under /2015-03-31/functions. Errors become the service's JSON error responses.
  ApiResponse handle(const ApiRequest& request);

 private:
  boost::json::object create(const boost::json::object& input, const std::string& region);
  boost::json::object update(const std::string& name, const boost::json::object& input);
  boost::json::object load(const std::string& name_or_arn);  // ResourceNotFoundException
  // VpcConfig as Lambda reports it, with VpcId looked up from the subnets.
  boost::json::object vpc_config(const boost::json::value& input);
  boost::json::object public_view(const boost::json::object& function);

  Store& store_;
  Ec2& ec2_;
  std::string code_folder_;
  std::string account_id_;
};

}  // namespace sluice::cloud
