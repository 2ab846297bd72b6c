// Amazon CloudWatch Logs (JSON 1.1, X-Amz-Target Logs_20140328.*): log groups, streams and
// events over a LogStore — CreateLogGroup, CreateLogStream, PutLogEvents, DeleteLogGroup,
// DescribeLogGroups, DescribeLogStreams, GetLogEvents and FilterLogEvents, which is what
// `aws logs tail` reads.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/log_store.hpp"

namespace sluice::cloud {

// An unstructured filter pattern, as CloudWatch Logs reads one: terms and "quoted phrases" that
// must all appear, ?terms of which one must, -terms that must not; case-sensitive. JSON ({…})
// and space-delimited ([…]) patterns are refused (InvalidParameterException).
class FilterPattern {
 public:
  explicit FilterPattern(std::string_view pattern);  // throws ApiError
  bool matches(std::string_view message) const;

 private:
  std::vector<std::string> required_;
  std::vector<std::string> any_of_;
  std::vector<std::string> excluded_;
};

class Logs {
 public:
  static constexpr std::string_view kTargetPrefix = "Logs_20140328";

  Logs(LogStore& store, std::string account_id)
      : store_(store), account_id_(std::move(account_id)) {}

  // Runs `operation` (the X-Amz-Target after "Logs_20140328."). Throws ApiError.
  boost::json::object handle(std::string_view operation, const boost::json::object& input,
                             std::string_view region);

  // The resource IAM checks an operation against: the log stream's or log group's ARN where
  // the input names one, else "*".
  static std::string resource_arn(std::string_view operation, const boost::json::object& input,
                                  std::string_view region, std::string_view account_id);

 private:
  boost::json::object create_group(const boost::json::object& input);
  boost::json::object create_stream(const boost::json::object& input);
  boost::json::object put_events(const boost::json::object& input);
  boost::json::object delete_group(const boost::json::object& input);
  boost::json::object describe_groups(const boost::json::object& input, std::string_view region);
  boost::json::object describe_streams(const boost::json::object& input, std::string_view region);
  boost::json::object get_events(const boost::json::object& input);
  boost::json::object filter_events(const boost::json::object& input);

  // The group's streams; ResourceNotFoundException when the group does not exist.
  std::vector<LogStreamInfo> streams_of(const std::string& group);

  LogStore& store_;
  std::string account_id_;
};

}  // namespace sluice::cloud
