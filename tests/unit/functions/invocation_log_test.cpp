#include "functions/invocation_log.hpp"

#include <gtest/gtest.h>

namespace sluice::functions {
namespace {

TEST(InvocationLog, StreamNamesFollowLambda) {
  // 2026-12-05T12:00:00Z
  const auto when = std::chrono::system_clock::time_point(std::chrono::seconds(1796472000));
  EXPECT_EQ(log_stream_name(when, "0123456789abcdef0123456789abcdef"),
            "2026/12/05/[$LATEST]0123456789abcdef0123456789abcdef");
  EXPECT_EQ(log_group_name("meal-planner-test-app"), "/aws/lambda/meal-planner-test-app");
}

TEST(InvocationLog, StartEndReport) {
  EXPECT_EQ(start_line("r1"), "START RequestId: r1 Version: $LATEST");
  EXPECT_EQ(end_line("r1"), "END RequestId: r1");
  Report report{"r1", 12.341, 256, 31, std::nullopt};
  EXPECT_EQ(report_line(report),
            "REPORT RequestId: r1\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 256 "
            "MB\tMax Memory Used: 31 MB\t");
  report.init_duration_ms = 4.5;
  EXPECT_EQ(report_line(report),
            "REPORT RequestId: r1\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 256 "
            "MB\tMax Memory Used: 31 MB\tInit Duration: 4.50 ms\t");
}

TEST(InvocationLog, BilledDurationIsAtLeastOneMillisecond) {
  EXPECT_NE(report_line({"r", 0.2, 128, 1, std::nullopt}).find("Billed Duration: 1 ms"),
            std::string::npos);
}

TEST(InvocationLog, TailKeepsTheLastBytesFromALineStart) {
  EXPECT_EQ(log_tail("short\n"), "short\n");
  std::string log;
  for (int i = 0; i < 1000; ++i) log += "line " + std::to_string(i) + "\n";
  const std::string tail = log_tail(log, 4096);
  EXPECT_LE(tail.size(), 4096u);
  EXPECT_TRUE(tail.starts_with("line "));
  EXPECT_TRUE(tail.ends_with("line 999\n"));
  EXPECT_TRUE(log.ends_with(tail));
}

}  // namespace
}  // namespace sluice::functions
