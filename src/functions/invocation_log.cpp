#include "functions/invocation_log.hpp"

#include <fmt/format.h>

#include <cmath>
#include <ctime>

namespace sluice::functions {

std::string log_group_name(std::string_view function_name) {
  return fmt::format("/aws/lambda/{}", function_name);
}

std::string log_stream_name(std::chrono::system_clock::time_point created,
                            std::string_view environment_id) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(created);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}/{:02}/{:02}/[$LATEST]{}", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, environment_id);
}

std::string start_line(std::string_view request_id) {
  return fmt::format("START RequestId: {} Version: $LATEST", request_id);
}

std::string end_line(std::string_view request_id) {
  return fmt::format("END RequestId: {}", request_id);
}

std::string report_line(const Report& report) {
  const auto billed = static_cast<long long>(std::ceil(report.duration_ms));
  std::string line = fmt::format(
      "REPORT RequestId: {}\tDuration: {:.2f} ms\tBilled Duration: {} ms\tMemory Size: {} "
      "MB\tMax Memory Used: {} MB\t",
      report.request_id, report.duration_ms, std::max(billed, 1LL), report.memory_size_mb,
      report.max_memory_used_mb);
  if (report.init_duration_ms)
    line += fmt::format("Init Duration: {:.2f} ms\t", *report.init_duration_ms);
  return line;
}

std::string log_tail(std::string_view log, size_t limit) {
  if (log.size() <= limit) return std::string(log);
  std::string_view tail = log.substr(log.size() - limit);
  if (const size_t newline = tail.find('\n');
      newline != std::string_view::npos && newline + 1 < tail.size())
    tail.remove_prefix(newline + 1);
  return std::string(tail);
}

}  // namespace sluice::functions
