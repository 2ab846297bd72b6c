// An operation's input document as the HTTP request its service's protocol expects, the way
// botocore serializes it: Query (rds, iam) and EC2 query as a form, JSON 1.1 (secretsmanager)
// with X-Amz-Target, REST-JSON (lambda) with members in the path, query string, headers or body.
// Pure: no I/O, so it is unit-tested against the wire forms.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cli/service_model.hpp"

namespace sluice::cli {

struct WireRequest {
  std::string method;
  std::string path;  // with its query string
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  std::string body;
};

WireRequest serialize_request(const ServiceModel& model, const boost::json::object& operation,
                              const boost::json::object& input);

// Query and EC2 query: the form's (name, value) pairs before encoding, Action and Version first.
std::vector<std::pair<std::string, std::string>> query_parameters(
    const ServiceModel& model, const boost::json::object& operation,
    const boost::json::object& input);

}  // namespace sluice::cli
