#include "settings.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <cstdlib>

#include "runtime/runtime.hpp"

namespace meal_planner {
namespace {

using sluice::runtime::FunctionError;

FunctionError config_error(const std::string& message) {
  return FunctionError("Runtime.ConfigError", message);
}

std::string required(const Environment& environment, const char* name) {
  auto value = environment(name);
  if (!value || value->empty()) throw config_error(std::string(name) + " is not set");
  return *value;
}

std::string optional_or(const Environment& environment, const char* name, std::string fallback) {
  auto value = environment(name);
  return value && !value->empty() ? *value : fallback;
}

// A whole number within [low, high], as text.
std::string bounded_number(const Environment& environment, const char* name, std::string fallback,
                           int low, int high) {
  std::string text = optional_or(environment, name, std::move(fallback));
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < low || value > high)
    throw config_error(std::string(name) + " must be a whole number from " + std::to_string(low) +
                       " to " + std::to_string(high) + ", not \"" + text + "\"");
  return text;
}

DbSettings common_settings(const Environment& environment) {
  DbSettings settings;
  settings.host = required(environment, "DB_HOST");
  settings.dbname = required(environment, "DB_NAME");
  settings.port = bounded_number(environment, "DB_PORT", "5432", 1, 65535);
  settings.connect_timeout = bounded_number(environment, "DB_CONNECT_TIMEOUT", "10", 1, 300);
  settings.sslrootcert = optional_or(environment, "DB_SSLROOTCERT", "");
  return settings;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> DbSettings::connection_parameters() const {
  std::vector<std::pair<std::string, std::string>> parameters{
      {"host", host},
      {"port", port},
      {"dbname", dbname},
      {"user", user},
      {"sslmode", sslmode},
      {"connect_timeout", connect_timeout},
      {"application_name", "meal-planner-test-app"}};
  if (!password.empty()) parameters.emplace_back("password", password);
  if (!sslrootcert.empty()) parameters.emplace_back("sslrootcert", sslrootcert);
  return parameters;
}

Environment process_environment() {
  return [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    if (!value) return std::nullopt;
    return std::string(value);
  };
}

LambdaSettings lambda_settings(const Environment& environment) {
  LambdaSettings settings{common_settings(environment), required(environment, "DB_SECRET_ARN")};
  return settings;
}

DbSettings local_settings(const Environment& environment) {
  DbSettings settings = common_settings(environment);
  settings.user = required(environment, "DB_USER");
  settings.password = optional_or(environment, "DB_PASSWORD", "");
  settings.sslmode = optional_or(environment, "DB_SSLMODE", "verify-full");
  return settings;
}

void apply_secret(DbSettings& settings, std::string_view secret_string) {
  boost::system::error_code error;
  const boost::json::value secret = boost::json::parse(secret_string, error);
  const auto text_field = [&](const char* key) -> std::optional<std::string> {
    if (error || !secret.is_object()) return std::nullopt;
    const auto* field = secret.as_object().if_contains(key);
    if (!field || !field->is_string() || field->as_string().empty()) return std::nullopt;
    return std::string(field->as_string());
  };
  auto username = text_field("username");
  auto password = text_field("password");
  if (!username || !password)
    throw FunctionError("SecretsManager.InvalidSecret",
                        "the database secret's SecretString must be a JSON object with string "
                        "\"username\" and \"password\"");
  settings.user = std::move(*username);
  settings.password = std::move(*password);
}

}  // namespace meal_planner
