// The aws CLI's view of the services sluice serves: botocore's service models, reduced at build
// time by scripts/cli-models.py to the operations `sluice serve` implements. Each shape says how
// a value is typed, named on the wire and nested; the CLI's flag names ("cli") come with it.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <vector>

namespace sluice::cli {

// The generated JSON text (build/generated/cli_models.cpp).
std::string embedded_service_models();

class ServiceModel {
 public:
  ServiceModel(std::string name, const boost::json::object& model);

  const std::string& name() const { return name_; }
  std::string protocol() const;  // query | ec2 | json | rest-json
  std::string api_version() const;
  std::string signing_name() const;
  std::string target_prefix() const;  // JSON 1.1: X-Amz-Target is PREFIX.Operation
  // The operation for a CLI name ("create-db-proxy"), or nullptr.
  const boost::json::object* operation(const std::string& cli_name) const;
  std::vector<std::string> operation_names() const;  // CLI names, sorted
  // A shape by name; throws std::out_of_range for a name the model lacks.
  const boost::json::object& shape(const std::string& name) const;
  // The shape a member reference ({"shape": …}) points at.
  const boost::json::object& shape_of(const boost::json::object& reference) const;

 private:
  std::string name_;
  const boost::json::object* model_;
};

// The services, parsed once.
const std::vector<ServiceModel>& service_models();
const ServiceModel* find_service(const std::string& name);

// A string field of a model object, "" when absent.
std::string model_text(const boost::json::object& o, const char* key);

}  // namespace sluice::cli
