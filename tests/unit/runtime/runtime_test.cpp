#include "runtime/runtime.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>

#include "fake_runtime_api.hpp"

namespace sluice::runtime {
namespace {

using testing::FakeRuntimeApi;
using testing::QueuedEvent;

boost::json::object parse_object(const std::string& text) {
  return boost::json::parse(text).as_object();
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(RuntimeLoop, PassesEventsAndContextAndPostsResponses) {
  const int64_t deadline = now_ms() + 30000;
  FakeRuntimeApi api({{"req-1", R"({"n":1})", deadline}, {"req-2", R"({"n":2})", deadline}});
  std::vector<Context> seen;
  const int status = run(
      [&](const std::string& payload, const Context& context) {
        seen.push_back(context);
        return Result::success("{\"got\":" + payload + "}");
      },
      api.address());
  EXPECT_EQ(status, 1) << "the loop ends only when the Runtime API is gone";

  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].request_id, "req-1");
  EXPECT_EQ(seen[1].request_id, "req-2");
  EXPECT_EQ(seen[0].function_arn, "arn:aws:lambda:us-east-1:123456789012:function:test");
  EXPECT_EQ(seen[0].trace_id, "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1");
  EXPECT_EQ(seen[0].deadline_ms, deadline);
  EXPECT_GT(seen[0].remaining().count(), 20000);
  EXPECT_LE(seen[0].remaining().count(), 30000);

  const auto first = api.received("/2018-06-01/runtime/invocation/req-1/");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].method, "POST");
  EXPECT_EQ(first[0].target, "/2018-06-01/runtime/invocation/req-1/response");
  EXPECT_EQ(first[0].body, R"({"got":{"n":1}})");
  const auto second = api.received("/2018-06-01/runtime/invocation/req-2/");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].body, R"({"got":{"n":2}})");
  // Three polls: two events, then the one that found the API gone.
  EXPECT_EQ(api.received("/2018-06-01/runtime/invocation/next").size(), 3u);
}

TEST(RuntimeLoop, ReportsHandlerErrorsAndExceptions) {
  FakeRuntimeApi api(
      {{"returned", "1"}, {"function-error", "2"}, {"std-exception", "3"}, {"other", "4"}});
  run(
      [](const std::string& payload, const Context&) -> Result {
        if (payload == "1") return Result::error("InvalidRecipe", "the recipe has no name");
        if (payload == "2") throw FunctionError("NoRecipes", "add a recipe first");
        if (payload == "3") throw std::out_of_range("index 7 is out of range");
        throw 42;
      },
      api.address());

  const auto check = [&](const std::string& id, const std::string& type,
                         const std::string& message) {
    const auto posted = api.received("/2018-06-01/runtime/invocation/" + id + "/");
    ASSERT_EQ(posted.size(), 1u) << id;
    EXPECT_EQ(posted[0].target, "/2018-06-01/runtime/invocation/" + id + "/error");
    EXPECT_EQ(posted[0].headers.at("lambda-runtime-function-error-type"), type);
    const auto body = parse_object(posted[0].body);
    EXPECT_EQ(body.at("errorType").as_string(), type);
    EXPECT_EQ(body.at("errorMessage").as_string(), message);
    EXPECT_TRUE(body.at("stackTrace").as_array().empty());
  };
  check("returned", "InvalidRecipe", "the recipe has no name");
  check("function-error", "NoRecipes", "add a recipe first");
  check("std-exception", "std::out_of_range", "index 7 is out of range");
  check("other", "Runtime.UnhandledException", "the handler threw a non-standard exception");
}

TEST(RuntimeLoop, AResponseOverTheLimitBecomesAnError) {
  FakeRuntimeApi api({{"big", "{}"}, {"small", "{}"}}, /*max_response_bytes=*/100);
  run(
      [](const std::string&, const Context& context) {
        return Result::success(std::string(context.request_id == "big" ? 200 : 10, 'x'));
      },
      api.address());
  const auto big = api.received("/2018-06-01/runtime/invocation/big/");
  ASSERT_EQ(big.size(), 2u);
  EXPECT_EQ(big[0].target, "/2018-06-01/runtime/invocation/big/response");
  EXPECT_EQ(big[1].target, "/2018-06-01/runtime/invocation/big/error");
  EXPECT_EQ(parse_object(big[1].body).at("errorType").as_string(), "Function.ResponseSizeTooLarge");
  const auto small = api.received("/2018-06-01/runtime/invocation/small/");
  ASSERT_EQ(small.size(), 1u) << "the loop carries on";
  EXPECT_EQ(small[0].body, std::string(10, 'x'));
}

TEST(RuntimeLoop, ExitsNonZeroWhenTheApiIsUnreachable) {
  std::string address;
  {
    FakeRuntimeApi gone;
    address = gone.address();
  }
  int calls = 0;
  EXPECT_EQ(run(
                [&](const std::string&, const Context&) {
                  ++calls;
                  return Result::success("");
                },
                address),
            1);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(run([](const std::string&, const Context&) { return Result::success(""); }, "no-port"),
            1);
}

TEST(RuntimeInit, ReportsInitErrors) {
  FakeRuntimeApi api;
  EXPECT_TRUE(report_init_error(api.address(), "Runtime.ConfigError", "DB_HOST is not set"));
  const auto posted = api.received("/2018-06-01/runtime/init/error");
  ASSERT_EQ(posted.size(), 1u);
  EXPECT_EQ(posted[0].method, "POST");
  EXPECT_EQ(posted[0].headers.at("lambda-runtime-function-error-type"), "Runtime.ConfigError");
  const auto body = parse_object(posted[0].body);
  EXPECT_EQ(body.at("errorType").as_string(), "Runtime.ConfigError");
  EXPECT_EQ(body.at("errorMessage").as_string(), "DB_HOST is not set");

  std::string address;
  {
    FakeRuntimeApi gone;
    address = gone.address();
  }
  EXPECT_FALSE(report_init_error(address, "Runtime.ConfigError", "x"));
}

TEST(RuntimeInitDeathTest, FailInitPostsAndExits) {
  FakeRuntimeApi api;
  ::setenv("AWS_LAMBDA_RUNTIME_API", api.address().c_str(), 1);
  EXPECT_EXIT(fail_init("SecretsManager.AccessDeniedException", "not allowed"),
              ::testing::ExitedWithCode(1), "init failed: SecretsManager.AccessDeniedException");
  ::unsetenv("AWS_LAMBDA_RUNTIME_API");
  // The forked child's report reached the server running in this process.
  const auto posted = api.received("/2018-06-01/runtime/init/error");
  ASSERT_EQ(posted.size(), 1u);
  EXPECT_EQ(parse_object(posted[0].body).at("errorMessage").as_string(), "not allowed");
}

TEST(RuntimeContext, RemainingIsNeverNegative) {
  Context context;
  context.deadline_ms = now_ms() - 5000;
  EXPECT_EQ(context.remaining().count(), 0);
}

TEST(ErrorDocument, IsLambdasShape) {
  EXPECT_EQ(error_document("T", "a \"quoted\" message"),
            R"({"errorMessage":"a \"quoted\" message","errorType":"T","stackTrace":[]})");
}

}  // namespace
}  // namespace sluice::runtime
