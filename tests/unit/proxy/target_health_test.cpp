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
  TargetHealth health({{"db.internal", 5432}});
  EXPECT_EQ(health.status().state, TargetState::kRegistering);
  EXPECT_FALSE(health.checked_at());
  auto doc = boost::json::parse(health.render_json()).as_object();
  auto& t = doc.at("targets").as_array().at(0).as_object();
  EXPECT_EQ(t.at("host").as_string(), "db.internal");
  EXPECT_EQ(t.at("port").as_int64(), 5432);
  EXPECT_EQ(t.at("state").as_string(), "REGISTERING");
  EXPECT_EQ(t.at("reason").as_string(), "");
  EXPECT_TRUE(t.at("checked_at").is_null());

  // 2026-11-27T11:00:00Z
  const auto at = TargetHealth::Clock::from_time_t(1795777200);
  health.record(classify_login("app", failed_at(LoginStep::kLogin, "28P01", "bad \"quote\"")), at);
  doc = boost::json::parse(health.render_json()).as_object();
  auto& u = doc.at("targets").as_array().at(0).as_object();
  EXPECT_EQ(u.at("state").as_string(), "UNAVAILABLE");
  EXPECT_EQ(u.at("reason").as_string(), "AUTH_FAILURE");
  EXPECT_EQ(u.at("description").as_string(),
            "The proxy could not log in to the database as user \"app\": bad \"quote\"");
  EXPECT_EQ(u.at("checked_at").as_string(), "2026-11-27T11:00:00Z");
}

TEST(TargetHealth, RoleFromInHotStandbyElsePgIsInRecovery) {
  EXPECT_EQ(role_from("on", std::nullopt), HostRole::kStandby);
  EXPECT_EQ(role_from("off", std::nullopt), HostRole::kPrimary);
  EXPECT_EQ(role_from(std::nullopt, "t"), HostRole::kStandby);
  EXPECT_EQ(role_from(std::nullopt, "f"), HostRole::kPrimary);
  EXPECT_EQ(role_from("on", "f"), HostRole::kStandby);  // the server's report wins
  EXPECT_EQ(role_from(std::nullopt, std::nullopt), HostRole::kUnknown);
  EXPECT_EQ(role_from("maybe", "?"), HostRole::kUnknown);
}

LoginOutcome ok() {
  LoginOutcome o;
  o.ok = true;
  return o;
}

LoginOutcome refused() {
  LoginOutcome o;
  o.step = LoginStep::kConnect;
  o.message = "Connection refused";
  return o;
}

TEST(TargetHealth, HostsFollowThePrimaryThroughAFailover) {
  TargetHealth health({{"db-a", 5432}, {"db-b", 5433}}, true);
  EXPECT_EQ(health.primary(), -1);
  EXPECT_EQ(health.status().state, TargetState::kRegistering);
  EXPECT_EQ(health.login_order(), (std::vector<size_t>{0, 1}));

  // Only the standby answered so far: nothing to write to.
  health.record(1, classify_login("app", ok()), HostRole::kStandby);
  EXPECT_EQ(health.primary(), -1);
  EXPECT_EQ(health.status().state, TargetState::kUnavailable);
  EXPECT_EQ(health.status().reason, TargetHealthReason::kInvalidReplicationState);
  EXPECT_NE(health.status().description.find("db-b:5433 is a standby"), std::string::npos);

  health.record(0, classify_login("app", ok()), HostRole::kPrimary);
  EXPECT_EQ(health.primary(), 0);
  EXPECT_EQ(health.status().state, TargetState::kAvailable);
  auto doc = boost::json::parse(health.render_json()).as_object();
  auto& targets = doc.at("targets").as_array();
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[0].at("host").as_string(), "db-a");
  EXPECT_EQ(targets[0].at("role").as_string(), "primary");
  EXPECT_EQ(targets[1].at("role").as_string(), "standby");
  EXPECT_EQ(targets[1].at("state").as_string(), "AVAILABLE");

  // The primary stops: no primary until the standby is promoted.
  health.record(0, classify_login("app", refused()));
  EXPECT_EQ(health.primary(), -1);
  EXPECT_EQ(health.status().state, TargetState::kUnavailable);
  // The host that stopped answering is tried last.
  EXPECT_EQ(health.login_order(), (std::vector<size_t>{1, 0}));
  health.record(1, classify_login("app", ok()), HostRole::kPrimary);
  EXPECT_EQ(health.primary(), 1);
  EXPECT_EQ(health.status().state, TargetState::kAvailable);
  EXPECT_EQ(health.login_order(), (std::vector<size_t>{1, 0}));
  // The primary's entry comes first: what sluice serve reads.
  doc = boost::json::parse(health.render_json()).as_object();
  auto& after = doc.at("targets").as_array();
  EXPECT_EQ(after[0].at("host").as_string(), "db-b");
  EXPECT_EQ(after[0].at("role").as_string(), "primary");
  EXPECT_EQ(after[1].at("host").as_string(), "db-a");
  EXPECT_EQ(after[1].at("state").as_string(), "UNAVAILABLE");
  EXPECT_EQ(after[1].at("reason").as_string(), "CONNECTION_FAILED");
  EXPECT_EQ(after[1].at("role").as_string(), "unknown");

  const std::string metrics = health.render_prometheus();
  EXPECT_NE(metrics.find("sluice_target_available{host=\"db-b\",port=\"5433\",role=\"primary\","
                         "state=\"AVAILABLE\",reason=\"\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("sluice_target_available{host=\"db-a\",port=\"5432\",role=\"unknown\","
                         "state=\"UNAVAILABLE\",reason=\"CONNECTION_FAILED\"} 0\n"),
            std::string::npos)
      << metrics;
}

TEST(TargetHealth, OneHostWithoutRolesIsJudgedByItsLoginsAlone) {
  TargetHealth health({{"db", 5432}});
  // A standby as the only target is the user's choice (a reader endpoint): still AVAILABLE.
  health.record(0, classify_login("app", ok()), HostRole::kStandby);
  EXPECT_EQ(health.status().state, TargetState::kAvailable);
  EXPECT_EQ(health.primary(), -1);  // roles are not tracked
}

TEST(SplitBrain, TimelineFromTheWalFileNamesFirstEightHexDigits) {
  EXPECT_EQ(timeline_from("00000001"), 1u);
  EXPECT_EQ(timeline_from("0000000A"), 10u);
  EXPECT_EQ(timeline_from("0000001f"), 31u);
  EXPECT_EQ(timeline_from("FFFFFFFF"), 0xFFFFFFFFu);
  EXPECT_EQ(timeline_from(""), std::nullopt);
  EXPECT_EQ(timeline_from("0000001"), std::nullopt);
  EXPECT_EQ(timeline_from("000000010"), std::nullopt);
  EXPECT_EQ(timeline_from("0000000G"), std::nullopt);
  EXPECT_EQ(timeline_from("-0000001"), std::nullopt);
}

using Fences = std::vector<bool>;
HostStanding writes(std::optional<uint32_t> timeline) {
  return {true, timeline};
}
const HostStanding kDown{};  // did not answer, or a standby

TEST(SplitBrain, TheNewestTimelineWinsWhateverIsInUse) {
  // The old primary (timeline 1) came back beside the promoted standby (timeline 2).
  auto choice = choose_primary({writes(1), writes(2)}, 0, 1);
  EXPECT_EQ(choice.primary, 1);
  EXPECT_EQ(choice.newest_timeline, 2u);
  EXPECT_EQ(choice.fenced, (Fences{true, false}));
  // The same, found the other way round, and with nothing in use yet (a fresh start).
  choice = choose_primary({writes(2), writes(1)}, -1, 0);
  EXPECT_EQ(choice.primary, 0);
  EXPECT_EQ(choice.fenced, (Fences{false, true}));
}

TEST(SplitBrain, OnATieTheOneInUseIsKeptWhileItIsWritable) {
  auto choice = choose_primary({writes(1), writes(1)}, 1, 1);
  EXPECT_EQ(choice.primary, 1);
  EXPECT_EQ(choice.fenced, (Fences{true, false}));
  // Nothing in use: the first in configured order.
  choice = choose_primary({kDown, writes(3), writes(3)}, -1, 3);
  EXPECT_EQ(choice.primary, 1);
  EXPECT_EQ(choice.fenced, (Fences{false, false, true}));
  // The one in use went away: the other takes over, fenced no more.
  choice = choose_primary({writes(1), kDown}, 1, 1);
  EXPECT_EQ(choice.primary, 0);
  EXPECT_EQ(choice.fenced, (Fences{false, false}));
}

TEST(SplitBrain, AnOlderTimelineStaysFencedWhileTheNewestIsDown) {
  // Timeline 2 was seen; its host is down now. The former primary must not take over.
  auto choice = choose_primary({writes(1), kDown}, -1, 2);
  EXPECT_EQ(choice.primary, -1);
  EXPECT_EQ(choice.newest_timeline, 2u);
  EXPECT_EQ(choice.fenced, (Fences{true, false}));
  // A timeline the proxy could not learn counts as older than any it knows.
  choice = choose_primary({writes(std::nullopt), writes(1)}, 0, 0);
  EXPECT_EQ(choice.primary, 1);
  EXPECT_EQ(choice.fenced, (Fences{true, false}));
  // ... and does not stop a lone primary (an old server) from being used.
  choice = choose_primary({kDown, writes(std::nullopt)}, -1, 0);
  EXPECT_EQ(choice.primary, 1);
  EXPECT_EQ(choice.fenced, (Fences{false, false}));
  // Standbys and hosts that did not answer are never fenced; no writable host, no primary.
  choice = choose_primary({kDown, kDown}, 0, 4);
  EXPECT_EQ(choice.primary, -1);
  EXPECT_EQ(choice.fenced, (Fences{false, false}));
}

TEST(SplitBrain, AFormerPrimaryThatComesBackIsFencedAndReported) {
  TargetHealth health({{"db-a", 5432}, {"db-b", 5433}}, true);
  health.record(0, classify_login("app", ok()), HostRole::kPrimary, 1);
  EXPECT_TRUE(health.any_unchecked());
  EXPECT_EQ(health.login_order(), (std::vector<size_t>{1, 0}));  // never checked goes first
  health.record(1, classify_login("app", ok()), HostRole::kStandby);
  EXPECT_FALSE(health.any_unchecked());
  EXPECT_EQ(health.primary(), 0);
  // A failover: db-a stops, db-b is promoted to timeline 2.
  health.record(0, classify_login("app", refused()));
  health.record(1, classify_login("app", ok()), HostRole::kPrimary, 2);
  EXPECT_EQ(health.primary(), 1);
  EXPECT_FALSE(health.fenced(0));
  const uint64_t epoch = health.fence_epoch();

  // db-a comes back as a primary on timeline 1.
  health.record(0, classify_login("app", ok()), HostRole::kPrimary, 1);
  EXPECT_EQ(health.primary(), 1);
  EXPECT_TRUE(health.fenced(0));
  EXPECT_FALSE(health.fenced(1));
  EXPECT_TRUE(health.any_fenced());
  EXPECT_NE(health.fence_epoch(), epoch);
  EXPECT_EQ(health.status().state, TargetState::kAvailable);  // the primary speaks for the target
  auto doc = boost::json::parse(health.render_json()).as_object();
  auto& targets = doc.at("targets").as_array();
  EXPECT_EQ(targets[0].at("host").as_string(), "db-b");
  EXPECT_EQ(targets[0].at("timeline").to_number<int64_t>(), 2);
  EXPECT_EQ(targets[1].at("host").as_string(), "db-a");
  EXPECT_EQ(targets[1].at("role").as_string(), "fenced");
  EXPECT_EQ(targets[1].at("state").as_string(), "UNAVAILABLE");
  EXPECT_EQ(targets[1].at("reason").as_string(), "INVALID_REPLICATION_STATE");
  EXPECT_NE(std::string(targets[1].at("description").as_string()).find("newer timeline (2)"),
            std::string::npos)
      << targets[1].at("description").as_string();
  const auto reports = health.report();
  EXPECT_EQ(reports[1].role, HostRole::kFenced);
  std::string metrics = health.render_prometheus();
  EXPECT_NE(metrics.find("sluice_target_split_brain 1\n"), std::string::npos) << metrics;
  EXPECT_NE(
      metrics.find("role=\"fenced\",state=\"UNAVAILABLE\",reason=\"INVALID_REPLICATION_STATE\"} 0"),
      std::string::npos)
      << metrics;
  health.note_connections_cut(2);
  EXPECT_NE(health.render_prometheus().find("sluice_target_fenced_connections_cut_total 2\n"),
            std::string::npos);

  // The promoted primary goes down: the fenced one does not take over.
  health.record(1, classify_login("app", refused()));
  EXPECT_EQ(health.primary(), -1);
  EXPECT_TRUE(health.fenced(0));
  EXPECT_EQ(health.status().state, TargetState::kUnavailable);
  EXPECT_EQ(health.status().reason, TargetHealthReason::kInvalidReplicationState);
  EXPECT_EQ(health.login_order(), (std::vector<size_t>{1, 0}));  // fenced last
  // Rebuilt as a standby of the new primary (pg_rewind): no longer fenced.
  health.record(0, classify_login("app", ok()), HostRole::kStandby);
  EXPECT_FALSE(health.fenced(0));
  EXPECT_FALSE(health.any_fenced());
  metrics = health.render_prometheus();
  EXPECT_NE(metrics.find("sluice_target_split_brain 0\n"), std::string::npos) << metrics;
  // A reload forgets the timelines.
  health.reset({{"db-a", 5432}, {"db-b", 5433}}, true);
  health.record(0, classify_login("app", ok()), HostRole::kPrimary, 1);
  EXPECT_EQ(health.primary(), 0);
}

TEST(SplitBrain, TwoUnrelatedPrimariesOnOneTimelineKeepTheOneInUse) {
  TargetHealth health({{"db-a", 5432}, {"db-b", 5433}}, true);
  health.record(1, classify_login("app", ok()), HostRole::kPrimary, 1);
  health.record(0, classify_login("app", ok()), HostRole::kPrimary, 1);
  EXPECT_EQ(health.primary(), 1);
  EXPECT_TRUE(health.fenced(0));
  auto doc = boost::json::parse(health.render_json()).as_object();
  EXPECT_NE(std::string(doc.at("targets").as_array()[1].at("description").as_string())
                .find("same timeline"),
            std::string::npos);
  // Still healthy at its next login: no switch.
  health.record(1, classify_login("app", ok()), HostRole::kPrimary, 1);
  EXPECT_EQ(health.primary(), 1);
}

}  // namespace
}  // namespace sluice::proxy
