#include "functions/runtime_api.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace sluice::functions {
namespace {

TEST(RuntimeApi, RoutesTheFourCalls) {
  EXPECT_EQ(route_runtime("GET", "/2018-06-01/runtime/invocation/next").call, RuntimeCall::kNext);
  EXPECT_EQ(route_runtime("POST", "/2018-06-01/runtime/init/error").call, RuntimeCall::kInitError);
  const RuntimeRoute response =
      route_runtime("POST", "/2018-06-01/runtime/invocation/abc-1/response");
  EXPECT_EQ(response.call, RuntimeCall::kResponse);
  EXPECT_EQ(response.request_id, "abc-1");
  const RuntimeRoute error = route_runtime("POST", "/2018-06-01/runtime/invocation/abc-2/error");
  EXPECT_EQ(error.call, RuntimeCall::kError);
  EXPECT_EQ(error.request_id, "abc-2");
}

TEST(RuntimeApi, WrongMethodsAndShapesAreUnknownNotForwarded) {
  EXPECT_EQ(route_runtime("POST", "/2018-06-01/runtime/invocation/next").call,
            RuntimeCall::kUnknown);
  EXPECT_EQ(route_runtime("GET", "/2018-06-01/runtime/invocation/x/response").call,
            RuntimeCall::kUnknown);
  EXPECT_EQ(route_runtime("POST", "/2018-06-01/runtime/invocation//response").call,
            RuntimeCall::kUnknown);
  EXPECT_EQ(route_runtime("POST", "/2018-06-01/runtime/invocation/x/other").call,
            RuntimeCall::kUnknown);
}

TEST(RuntimeApi, OtherPathsAreAwsCalls) {
  EXPECT_EQ(route_runtime("POST", "/").call, RuntimeCall::kNotRuntime);
  EXPECT_EQ(route_runtime("GET", "/2015-03-31/functions/f/configuration").call,
            RuntimeCall::kNotRuntime);
  EXPECT_EQ(route_runtime("GET", "/sluice/ca-bundle.pem").call, RuntimeCall::kNotRuntime);
}

TEST(RuntimeApi, QueryStringsDoNotChangeTheRoute) {
  EXPECT_EQ(route_runtime("GET", "/2018-06-01/runtime/invocation/next?x=1").call,
            RuntimeCall::kNext);
}

TEST(RuntimeApi, ErrorBodiesAreJsonWithLambdasKeys) {
  const auto body = boost::json::parse(error_body("Runtime.ExitError", "said \"no\"")).as_object();
  EXPECT_EQ(body.at("errorType").as_string(), "Runtime.ExitError");
  EXPECT_EQ(body.at("errorMessage").as_string(), "said \"no\"");
  EXPECT_EQ(timeout_message(3), "Task timed out after 3.00 seconds");
}

}  // namespace
}  // namespace sluice::functions
