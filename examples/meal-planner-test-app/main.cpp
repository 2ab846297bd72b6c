// meal-planner-test-app: the guide's function, a `bootstrap` for Lambda's provided.al2023
// runtime. It reads its database's address from the environment and its credentials from
// Secrets Manager (with the execution role's temporary credentials), then serves events
// through the Runtime API, keeping one TLS connection (sslmode=verify-full) to the database,
// normally through RDS Proxy, across warm invocations.
//
//   bootstrap                      Lambda mode (AWS_LAMBDA_RUNTIME_API, DB_HOST, DB_NAME,
//                                  DB_PORT, DB_SECRET_ARN, DB_SSLROOTCERT)
//   bootstrap --local [EVENT…]     one event per argument, or per line of stdin without any,
//                                  against DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD,
//                                  DB_SSLMODE, DB_SSLROOTCERT given directly; prints one
//                                  result or {"errorType","errorMessage"} line per event and
//                                  exits 1 if any failed
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "database.hpp"
#include "events.hpp"
#include "runtime/aws_client.hpp"
#include "runtime/runtime.hpp"
#include "settings.hpp"

namespace {

using sluice::runtime::FunctionError;
using sluice::runtime::Result;

Result handle_event(meal_planner::Database& database, const std::string& payload) {
  try {
    const meal_planner::Event event = meal_planner::parse_event(payload);
    std::this_thread::sleep_for(meal_planner::simulated_work(payload));
    return Result::success(database.handle(event));
  } catch (const FunctionError& e) {
    return Result::error(e.type(), e.what());
  }
}

// The region's CA bundle in a file only this user reads, for libpq's sslrootcert.
std::string fetch_ca_bundle(const std::string& endpoint_url) {
  const std::string pem = sluice::runtime::http_get(endpoint_url + "/sluice/ca-bundle.pem");
  const char* tmpdir = std::getenv("TMPDIR");
  std::string path = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/meal-planner-ca-XXXXXX";
  const int fd = ::mkstemp(path.data());  // mode 0600
  if (fd < 0) throw FunctionError("Runtime.CaBundleError", "cannot create " + path);
  const bool written = ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
  ::close(fd);
  if (!written) throw FunctionError("Runtime.CaBundleError", "cannot write " + path);
  return path;
}

// Once per execution environment: every failure is an init error.
meal_planner::DbSettings init_from_lambda_environment() {
  namespace runtime = sluice::runtime;
  meal_planner::LambdaSettings settings;
  runtime::AwsEnvironment aws;
  try {
    settings = meal_planner::lambda_settings(meal_planner::process_environment());
    aws = runtime::AwsEnvironment::from_environment();
  } catch (const FunctionError& e) {
    runtime::fail_init(e.type(), e.what());
  } catch (const runtime::AwsError& e) {
    runtime::fail_init(e.type(), e.what());
  }
  try {
    meal_planner::apply_secret(settings.database,
                               runtime::get_secret_string(aws, settings.secret_arn));
  } catch (const runtime::AwsError& e) {
    runtime::fail_init("SecretsManager." + e.type(), e.what());
  } catch (const FunctionError& e) {
    runtime::fail_init(e.type(), e.what());
  }
  if (settings.database.sslrootcert.empty()) {
    try {
      settings.database.sslrootcert = fetch_ca_bundle(aws.endpoint_url);
    } catch (const runtime::AwsError& e) {
      runtime::fail_init(
          "Runtime.CaBundleError",
          "cannot fetch the CA bundle for sslmode=verify-full: " + std::string(e.what()));
    } catch (const FunctionError& e) {
      runtime::fail_init(e.type(), e.what());
    }
  }
  return settings.database;
}

int local_main(int argc, char** argv) {
  std::optional<meal_planner::Database> database;
  try {
    database.emplace(meal_planner::local_settings(meal_planner::process_environment()));
  } catch (const FunctionError& e) {
    std::cout << sluice::runtime::error_document(e.type(), e.what()) << std::endl;
    return 2;
  }
  bool all_ok = true;
  const auto run_one = [&](const std::string& event) {
    const Result result = handle_event(*database, event);
    all_ok = all_ok && result.ok;
    std::cout << (result.ok
                      ? result.payload
                      : sluice::runtime::error_document(result.error_type, result.error_message))
              << std::endl;
  };
  if (argc > 2) {
    for (int i = 2; i < argc; ++i) run_one(argv[i]);
  } else {
    for (std::string line; std::getline(std::cin, line);)
      if (!line.empty()) run_one(line);
  }
  return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "--local") return local_main(argc, argv);
  // Lives as long as the execution environment: warm invocations reuse its connection.
  static meal_planner::Database database(init_from_lambda_environment());
  return sluice::runtime::run([](const std::string& payload, const sluice::runtime::Context&) {
    return handle_event(database, payload);
  });
}
