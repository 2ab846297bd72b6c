#include "settings.hpp"

#include <gtest/gtest.h>

#include <map>

#include "runtime/runtime.hpp"

namespace meal_planner {
namespace {

using sluice::runtime::FunctionError;

Environment environment(std::map<std::string, std::string> variables) {
  return [variables](const char* name) -> std::optional<std::string> {
    auto found = variables.find(name);
    if (found == variables.end()) return std::nullopt;
    return found->second;
  };
}

const std::map<std::string, std::string> kLambda{
    {"DB_HOST", "meal-planner-proxy.proxy-cczg0cscuj55.us-east-1.rds.sluice.internal"},
    {"DB_NAME", "mealplanner"},
    {"DB_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:512662829295:secret:db-7Ps2c0"}};

std::string config_error(const std::function<void()>& action) {
  try {
    action();
    return "";
  } catch (const FunctionError& e) {
    EXPECT_EQ(e.type(), "Runtime.ConfigError");
    return e.what();
  }
}

TEST(LambdaSettings, DefaultsAndRequiredVariables) {
  const LambdaSettings settings = lambda_settings(environment(kLambda));
  EXPECT_EQ(settings.database.host, kLambda.at("DB_HOST"));
  EXPECT_EQ(settings.database.dbname, "mealplanner");
  EXPECT_EQ(settings.database.port, "5432");
  EXPECT_EQ(settings.database.sslmode, "verify-full");
  EXPECT_EQ(settings.database.connect_timeout, "10");
  EXPECT_EQ(settings.database.sslrootcert, "");
  EXPECT_EQ(settings.secret_arn, kLambda.at("DB_SECRET_ARN"));

  for (const char* name : {"DB_HOST", "DB_NAME", "DB_SECRET_ARN"}) {
    auto missing = kLambda;
    missing.erase(name);
    EXPECT_EQ(config_error([&] { lambda_settings(environment(missing)); }),
              std::string(name) + " is not set");
    missing[name] = "";
    EXPECT_EQ(config_error([&] { lambda_settings(environment(missing)); }),
              std::string(name) + " is not set");
  }
  for (const char* port : {"0", "65536", "54x", "-1", "abc"}) {
    auto bad = kLambda;
    bad["DB_PORT"] = port;
    EXPECT_NE(config_error([&] { lambda_settings(environment(bad)); }).find("DB_PORT"),
              std::string::npos);
  }
  auto custom = kLambda;
  custom["DB_PORT"] = "6432";
  custom["DB_SSLROOTCERT"] = "/opt/ca.pem";
  const LambdaSettings with = lambda_settings(environment(custom));
  EXPECT_EQ(with.database.port, "6432");
  EXPECT_EQ(with.database.sslrootcert, "/opt/ca.pem");
}

TEST(LocalSettings, TakeTheUserAndSslModeDirectly) {
  auto variables = kLambda;
  variables.erase("DB_SECRET_ARN");
  EXPECT_EQ(config_error([&] { local_settings(environment(variables)); }), "DB_USER is not set");
  variables["DB_USER"] = "app";
  variables["DB_PASSWORD"] = "pw";
  variables["DB_SSLMODE"] = "require";
  const DbSettings settings = local_settings(environment(variables));
  EXPECT_EQ(settings.user, "app");
  EXPECT_EQ(settings.password, "pw");
  EXPECT_EQ(settings.sslmode, "require");
}

TEST(Secret, UsernameAndPassword) {
  DbSettings settings;
  apply_secret(settings, R"({"username":"app","password":"s3cret","engine":"postgres"})");
  EXPECT_EQ(settings.user, "app");
  EXPECT_EQ(settings.password, "s3cret");
  for (const char* bad : {"", "s3cret", R"({"username":"app"})", R"({"password":"s3cret"})",
                          R"({"username":"app","password":5})", R"(["app","s3cret"])"}) {
    try {
      apply_secret(settings, bad);
      ADD_FAILURE() << bad;
    } catch (const FunctionError& e) {
      EXPECT_EQ(e.type(), "SecretsManager.InvalidSecret");
      EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << "never the secret";
    }
  }
}

TEST(DbSettings, ConnectionParameters) {
  DbSettings settings;
  settings.host = "db";
  settings.dbname = "d";
  settings.user = "u";
  auto parameters = settings.connection_parameters();
  std::map<std::string, std::string> by_name(parameters.begin(), parameters.end());
  EXPECT_EQ(by_name.at("sslmode"), "verify-full");
  EXPECT_EQ(by_name.at("connect_timeout"), "10");
  EXPECT_FALSE(by_name.contains("password"));
  EXPECT_FALSE(by_name.contains("sslrootcert"));
  settings.password = "pw";
  settings.sslrootcert = "/tmp/ca.pem";
  parameters = settings.connection_parameters();
  by_name = {parameters.begin(), parameters.end()};
  EXPECT_EQ(by_name.at("password"), "pw");
  EXPECT_EQ(by_name.at("sslrootcert"), "/tmp/ca.pem");
}

}  // namespace
}  // namespace meal_planner
