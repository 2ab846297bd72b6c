// Where the function's database is and how to reach it, from its environment (pure: the
// environment is passed in, nothing is read or fetched here).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meal_planner {

struct DbSettings {
  std::string host;
  std::string port = "5432";
  std::string dbname;
  std::string user;
  std::string password;
  std::string sslmode = "verify-full";
  std::string sslrootcert;  // empty: libpq's default (~/.postgresql/root.crt)
  std::string connect_timeout = "10";

  // libpq's keywords and values for PQconnectdbParams (no connection string to quote, and the
  // password never appears in one).
  std::vector<std::pair<std::string, std::string>> connection_parameters() const;
};

// An environment variable's value, nullopt when unset.
using Environment = std::function<std::optional<std::string>(const char* name)>;
Environment process_environment();

// Lambda mode: DB_HOST, DB_NAME, DB_SECRET_ARN required; DB_PORT (5432), DB_SSLROOTCERT,
// DB_CONNECT_TIMEOUT (10 s) optional; sslmode is verify-full. The user and password come from
// the secret. Throws FunctionError "Runtime.ConfigError" naming the variable.
struct LambdaSettings {
  DbSettings database;
  std::string secret_arn;
};
LambdaSettings lambda_settings(const Environment& environment);

// Local mode (`bootstrap --local`): DB_HOST, DB_NAME, DB_USER required; DB_PASSWORD, DB_PORT,
// DB_SSLMODE (verify-full), DB_SSLROOTCERT, DB_CONNECT_TIMEOUT optional.
DbSettings local_settings(const Environment& environment);

// Takes the user and password from a Secrets Manager SecretString, {"username": …,
// "password": …} (other keys ignored). Throws FunctionError "SecretsManager.InvalidSecret",
// whose message never quotes the secret.
void apply_secret(DbSettings& settings, std::string_view secret_string);

}  // namespace meal_planner
