#include "proxy/target_health.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace sluice::proxy {
namespace {

LoginOutcome failed_at(LoginStep step, std::string sqlstate, std::string message) {
  LoginOutcome o;
  o.step = step;
  o.sqlstate = std::move(sqlstate);
  o.message = std::move(message);
  return o;
}

TEST(TargetHealth, SuccessIsAvailable) {
  LoginOutcome ok;
  ok.ok = true;
  auto s = classify_login("app", ok);
  EXPECT_EQ(s.state, TargetState::kAvailable);
  EXPECT_EQ(s.reason, TargetHealthReason::kNone);
  EXPECT_NE(s.description.find("\"app\""), std::string::npos);
}

TEST(TargetHealth, AuthenticationErrorsAreAuthFailure) {
  for (const char* code : {"28P01", "28000"}) {
    auto s = classify_login("app", failed_at(LoginStep::kLogin, code,
                                             "password authentication failed for user \"app\""));
    EXPECT_EQ(s.state, TargetState::kUnavailable) << code;
    EXPECT_EQ(s.reason, TargetHealthReason::kAuthFailure) << code;
    EXPECT_EQ(s.description,
              "The proxy could not log in to the database as user \"app\": password "
              "authentication failed for user \"app\"");
  }
}

TEST(TargetHealth, NothingAnsweringIsUnreachable) {
  auto resolve = classify_login("app", failed_at(LoginStep::kResolve, "08006",
                                                 "could not resolve \"db.invalid\": not found"));
  EXPECT_EQ(resolve.reason, TargetHealthReason::kUnreachable);
  auto timeout = failed_at(LoginStep::kConnect, "08006", "could not connect: timed out");
  timeout.no_answer = true;
  EXPECT_EQ(classify_login("app", timeout).reason, TargetHealthReason::kUnreachable);
  EXPECT_EQ(classify_login("app", timeout).state, TargetState::kUnavailable);
}

TEST(TargetHealth, OtherFailuresAreConnectionFailed) {
  const LoginOutcome cases[] = {
      failed_at(LoginStep::kConnect, "08006", "could not connect: Connection refused"),
      failed_at(LoginStep::kTls, "08006", "TLS handshake with the database server failed"),
      failed_at(LoginStep::kLogin, "08006", "the database server closed the connection"),
      failed_at(LoginStep::kLogin, "57P03", "the database system is starting up"),
      failed_at(LoginStep::kLogin, "3D000", "database \"postgres\" does not exist"),
  };
  for (const auto& o : cases) {
    auto s = classify_login("app", o);
    EXPECT_EQ(s.state, TargetState::kUnavailable) << o.message;
    EXPECT_EQ(s.reason, TargetHealthReason::kConnectionFailed) << o.message;
    EXPECT_NE(s.description.find(o.message), std::string::npos);
  }
  // A 28xxx SQLSTATE before login (none exists, but a bug must not call the server's
  // network fault an authentication failure).
  EXPECT_EQ(classify_login("app", failed_at(LoginStep::kTls, "28000", "x")).reason,
            TargetHealthReason::kConnectionFailed);
}

TEST(TargetHealth, TooManyConnectionsIsReachable) {
  auto s = classify_login("app",
                          failed_at(LoginStep::kLogin, "53300", "sorry, too many clients already"));
  EXPECT_EQ(s.state, TargetState::kAvailable);
  EXPECT_EQ(s.reason, TargetHealthReason::kNone);
}

TEST(TargetHealth, RegisteringUntilTheFirstLoginThenTheLatest) {
  TargetHealth health;
  EXPECT_EQ(health.status().state, TargetState::kRegistering);
  EXPECT_FALSE(health.checked_at());
  auto doc = boost::json::parse(health.render_json({"db.internal", 5432})).as_object();
  auto& t = doc.at("targets").as_array().at(0).as_object();
  EXPECT_EQ(t.at("host").as_string(), "db.internal");
  EXPECT_EQ(t.at("port").as_int64(), 5432);
  EXPECT_EQ(t.at("state").as_string(), "REGISTERING");
  EXPECT_EQ(t.at("reason").as_string(), "");
  EXPECT_TRUE(t.at("checked_at").is_null());

  // 2026-11-27T11:00:00Z
  const auto at = TargetHealth::Clock::from_time_t(1795777200);
  health.record(classify_login("app", failed_at(LoginStep::kLogin, "28P01", "bad \"quote\"")), at);
  doc = boost::json::parse(health.render_json({"db.internal", 5432})).as_object();
  auto& u = doc.at("targets").as_array().at(0).as_object();
  EXPECT_EQ(u.at("state").as_string(), "UNAVAILABLE");
  EXPECT_EQ(u.at("reason").as_string(), "AUTH_FAILURE");
  EXPECT_EQ(u.at("description").as_string(),
            "The proxy could not log in to the database as user \"app\": bad \"quote\"");
  EXPECT_EQ(u.at("checked_at").as_string(), "2026-11-27T11:00:00Z");
}

}  // namespace
}  // namespace sluice::proxy
