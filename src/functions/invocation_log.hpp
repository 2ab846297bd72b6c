// What Lambda writes into a function's log around each invocation (START, END, REPORT), the
// names of log streams, and the tail an invoker asks for with X-Amz-Log-Type: Tail. Pure.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::functions {

// /aws/lambda/NAME
std::string log_group_name(std::string_view function_name);
// YYYY/MM/DD/[$LATEST]<32 hex>, the date in UTC.
std::string log_stream_name(std::chrono::system_clock::time_point created,
                            std::string_view environment_id);

std::string start_line(std::string_view request_id);
std::string end_line(std::string_view request_id);

struct Report {
  std::string request_id;
  double duration_ms = 0;
  int memory_size_mb = 0;
  int max_memory_used_mb = 0;
  std::optional<double> init_duration_ms;  // the first invocation of an environment
};
// "REPORT RequestId: …\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t
// Max Memory Used: 20 MB\t[Init Duration: 4.56 ms\t]" (billed: whole milliseconds, rounded up).
std::string report_line(const Report& report);

// The last `limit` bytes of `log`, starting at a line when one starts within them.
std::string log_tail(std::string_view log, size_t limit = 4096);

}  // namespace sluice::functions
