// A response body as the document the aws CLI prints, read the way botocore reads it: the
// output shape decides which members exist, their order and their types. Query responses are
// unwrapped from <OperationResult>, EC2's from the root; XML lists lose their <member>/<item>
// wrappers; JSON bodies keep only modelled members. Timestamps stay as the service sent them, as
// in the aws CLI's default. Pure, so it is unit-tested on the services' own XML.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/service_model.hpp"

namespace sluice::cli {

// REST-JSON's members bound to the status code and headers (names in lower case) come first,
// then the body's, as botocore orders them; a blob payload (lambda invoke's) is the body itself,
// held as base64 like every blob in a document. Throws std::runtime_error when the body is not
// the XML or JSON its protocol promises.
boost::json::object parse_response(
    const ServiceModel& model, const boost::json::object& operation, const std::string& body,
    int status = 0, const std::vector<std::pair<std::string, std::string>>& headers = {});

}  // namespace sluice::cli
