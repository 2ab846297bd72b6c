#include "proxy/logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <ctime>

namespace sluice::proxy {
namespace {

// Appends `text` as a JSON string. Boost.JSON does the escaping; bytes that are not UTF-8
// (a client's user name, say) become U+FFFD so every line stays valid JSON.
void append_json_string(std::string_view text, spdlog::memory_buf_t& dest) {
  std::string valid;
  valid.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    size_t length = byte < 0x80         ? 1
                    : (byte >> 5) == 6  ? 2
                    : (byte >> 4) == 14 ? 3
                    : (byte >> 3) == 30 ? 4
                                        : 0;
    bool ok = length > 0 && i + length <= text.size();
    for (size_t k = 1; ok && k < length; ++k)
      ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (ok) {
      valid.append(text.substr(i, length));
      i += length;
    } else {
      valid.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  const std::string json = boost::json::serialize(boost::json::value(boost::json::string(valid)));
  dest.append(json.data(), json.data() + json.size());
}

}  // namespace

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  using namespace std::chrono;
  const auto since_epoch = msg.time.time_since_epoch();
  const std::time_t seconds = duration_cast<std::chrono::seconds>(since_epoch).count();
  const auto millis = duration_cast<milliseconds>(since_epoch).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char time[40];
  const size_t n = std::strftime(time, sizeof time, "%Y-%m-%dT%H:%M:%S", &utc);
  fmt::format_to(std::back_inserter(dest), R"({{"time":"{}.{:03d}Z","level":"{}","thread":{},)",
                 std::string_view(time, n), static_cast<int>(millis),
                 spdlog::level::to_string_view(msg.level), msg.thread_id);
  dest.append(std::string_view(R"("message":)"));
  append_json_string(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  dest.append(std::string_view("}\n"));
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

void configure_logging(LogFormat format) {
  auto logger = spdlog::get("sluice");
  if (!logger) {
    logger = spdlog::stderr_color_mt("sluice");  // workers log too: the thread-safe sink
    spdlog::set_default_logger(logger);
  }
  if (format == LogFormat::kJson)
    logger->set_formatter(std::make_unique<JsonLogFormatter>());
  else
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
}

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name) {
  for (int level = spdlog::level::trace; level <= spdlog::level::off; ++level) {
    const auto candidate = static_cast<spdlog::level::level_enum>(level);
    if (spdlog::level::to_string_view(candidate) == spdlog::string_view_t(name.data(), name.size()))
      return candidate;
  }
  if (name == "warn") return spdlog::level::warn;
  return std::nullopt;
}

}  // namespace sluice::proxy
