// sluice-proxy's log lines: text for people (the default) or JSON, one object per line, for log
// pipelines; and the level (`log_level`). Passwords, SCRAM secrets and secret values are never
// logged, whatever the level.
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <optional>
#include <string_view>

#include "proxy/config.hpp"

namespace sluice::proxy {

// {"time":"2026-12-05T22:40:01.123Z","level":"info","thread":1234,"message":"..."}: the time in
// UTC with milliseconds, the message escaped as JSON strings are (quotes, control characters,
// invalid UTF-8 replaced).
class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// Installs the process's logger (stderr) with `format`; the level is set apart.
void configure_logging(LogFormat format);

// "trace", "debug", "info", "warn", "error", "critical", "off".
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name);

}  // namespace sluice::proxy
