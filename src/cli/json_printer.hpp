// JSON as the aws CLI prints it (Python's json.dumps with indent=4 and ensure_ascii=False), so
// that scripts written against `aws` read `sluice`'s output unchanged.
#pragma once

#include <boost/json.hpp>
#include <string>

namespace sluice::cli {

std::string aws_json(const boost::json::value& value);

// Python's repr of a float: the shortest text that reads back the same, ".0" on integral values
// (how botocore puts numbers in Query forms, and how json.dumps prints them).
std::string python_float(double d);

}  // namespace sluice::cli
