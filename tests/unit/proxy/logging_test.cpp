// JSON log lines: every line one valid JSON object whatever the message holds, and the levels
// `log_level` accepts.
#include "proxy/logging.hpp"

#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>

#include <boost/json/parse.hpp>
#include <string>

namespace sluice::proxy {
namespace {

boost::json::object format_json(spdlog::level::level_enum level, std::string_view message) {
  JsonLogFormatter formatter;
  spdlog::details::log_msg msg("sluice", level,
                               spdlog::string_view_t(message.data(), message.size()));
  spdlog::memory_buf_t out;
  formatter.format(msg, out);
  const std::string line(out.data(), out.size());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per message";
  return boost::json::parse(line).as_object();
}

TEST(JsonLog, EveryMessageIsOneValidObject) {
  const auto plain = format_json(spdlog::level::info, "listening on 127.0.0.1:6432");
  EXPECT_EQ(plain.at("level").as_string(), "info");
  EXPECT_EQ(plain.at("message").as_string(), "listening on 127.0.0.1:6432");
  EXPECT_TRUE(plain.at("thread").is_int64() || plain.at("thread").is_uint64());
  const std::string time(plain.at("time").as_string());
  EXPECT_EQ(time.size(), 24u) << time;  // 2026-12-05T22:40:01.123Z
  EXPECT_EQ(time.back(), 'Z');

  // Quotes, backslashes, newlines and control bytes from a client (a user name, say).
  const std::string hostile = "user \"x\"\\\n\t\x01 end";
  EXPECT_EQ(format_json(spdlog::level::warn, hostile).at("message").as_string(), hostile);
  // Bytes that are not UTF-8 become U+FFFD: the line stays valid JSON.
  const auto invalid = format_json(spdlog::level::err, "bad \xff\xfe utf8 \xc3");
  EXPECT_EQ(invalid.at("message").as_string(), "bad \xEF\xBF\xBD\xEF\xBF\xBD utf8 \xEF\xBF\xBD");
  EXPECT_EQ(invalid.at("level").as_string(), "error");
  EXPECT_EQ(format_json(spdlog::level::info, "caf\xc3\xa9").at("message").as_string(),
            "caf\xc3\xa9");
}

TEST(JsonLog, Levels) {
  EXPECT_EQ(parse_log_level("warn"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("debug"), spdlog::level::debug);
  EXPECT_EQ(parse_log_level("off"), spdlog::level::off);
  EXPECT_EQ(parse_log_level("loud"), std::nullopt);
}

}  // namespace
}  // namespace sluice::proxy
