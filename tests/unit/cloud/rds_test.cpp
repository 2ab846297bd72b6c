// The pure parts of the RDS services: Aurora's max_connections, postmaster.pid, the hosts block,
// the configuration a proxy gets and what it reports back.
#include <gtest/gtest.h>

#include "cloud/local_network.hpp"
#include "cloud/postgres_engine.hpp"
#include "cloud/rds_proxy.hpp"
#include "proxy/config.hpp"
#include "proxy/secrets.hpp"

namespace sluice::cloud {
namespace {

TEST(AuroraMaxConnections, MatchesAuroraForItsPublishedCapacities) {
  EXPECT_EQ(aurora_max_connections(1), 189);
  EXPECT_EQ(aurora_max_connections(4), 823);
  EXPECT_EQ(aurora_max_connections(8), 1669);
  EXPECT_EQ(aurora_max_connections(16), 3360);
  EXPECT_EQ(aurora_max_connections(32), 5000);
  EXPECT_EQ(aurora_max_connections(256), 5000);
}

TEST(AuroraMaxConnections, GrowsWithCapacityBetweenThePublishedValues) {
  EXPECT_GT(aurora_max_connections(2), 189);
  EXPECT_LT(aurora_max_connections(2), 823);
  EXPECT_GT(aurora_max_connections(0.5), 0);
  EXPECT_LT(aurora_max_connections(0.5), 189);
  int previous = 0;
  for (double acus = 0.5; acus <= 40; acus += 0.5) {
    EXPECT_GE(aurora_max_connections(acus), previous) << acus;
    previous = aurora_max_connections(acus);
  }
}

TEST(PostmasterStatus, ReadsTheEighthLine) {
  EXPECT_EQ(postmaster_status("123\n/data\n1700000000\n5432\n/tmp\n127.0.0.1\n  1 2\nready   \n"),
            "ready");
  EXPECT_EQ(postmaster_status("123\n/data\n1700000000\n5432\n/tmp\n*\n  1 2\nstarting\n"),
            "starting");
  EXPECT_EQ(postmaster_status("123\n/data\n"), "");
  EXPECT_EQ(postmaster_status(""), "");
}

TEST(HostsBlock, AddsReplacesAndRemovesOnlyItsOwnBlock) {
  const std::string base = "127.0.0.1 localhost\n::1 localhost\n";
  const std::string one = replace_hosts_block(base, "/home/a", {{"127.64.0.1", "a.example"}});
  EXPECT_EQ(one, base + "# BEGIN sluice /home/a\n127.64.0.1 a.example\n# END sluice /home/a\n");
  // Another instance's block stays when ours changes.
  const std::string two = replace_hosts_block(one, "/home/b", {{"127.64.0.2", "b.example"}});
  const std::string changed = replace_hosts_block(
      two, "/home/a", {{"127.64.0.3", "c.example"}, {"127.64.0.3", "d.example"}});
  EXPECT_NE(changed.find("127.64.0.2 b.example"), std::string::npos);
  EXPECT_EQ(changed.find("a.example"), std::string::npos);
  EXPECT_NE(changed.find("127.64.0.3 c.example\n127.64.0.3 d.example\n"), std::string::npos);
  EXPECT_EQ(replace_hosts_block(replace_hosts_block(changed, "/home/a", {}), "/home/b", {}), base);
  // A file without a trailing newline keeps its last line.
  EXPECT_EQ(replace_hosts_block("127.0.0.1 localhost", "t", {}), "127.0.0.1 localhost\n");
}

TEST(ProxySecretFile, PlainWhenOnlyCurrentStagedDuringARotation) {
  using Staged = SecretsManager::StagedString;
  const std::string now_value = R"({"username":"app","password":"now"})";
  const Staged current{"v2", {"AWSCURRENT"}, now_value, 2000, std::nullopt};
  // Only a current version (other labels mean nothing to the proxy): the SecretString as it is.
  EXPECT_EQ(render_secret_file({current, Staged{"v9", {"MINE"}, "x", 9, std::nullopt}}), now_value);
  EXPECT_FALSE(render_secret_file({Staged{"v1", {"AWSPENDING"}, now_value, 1, std::nullopt}}));

  const Staged previous{
      "v1", {"AWSPREVIOUS"}, R"({"username":"app","password":"old"})", 1000, 2000.5};
  const Staged pending{
      "v3", {"AWSPENDING"}, R"({"username":"app","password":"next"})", 3000, std::nullopt};
  const auto text = render_secret_file({previous, current, pending});
  ASSERT_TRUE(text);
  proxy::SecretFileContents contents;
  std::string error;
  ASSERT_TRUE(proxy::parse_secret_file(*text, contents, error)) << error << "\n" << *text;
  EXPECT_EQ(contents.current, "now");
  EXPECT_EQ(contents.pending, "next");
  EXPECT_EQ(contents.previous, "old");
  ASSERT_TRUE(contents.previous_demoted);
  EXPECT_EQ(contents.previous_demoted->time_since_epoch(), std::chrono::milliseconds(2000500));
  // A previous version without a recorded demotion: since the current version was created.
  Staged undated = previous;
  undated.demoted.reset();
  ASSERT_TRUE(proxy::parse_secret_file(*render_secret_file({undated, current}), contents, error));
  EXPECT_EQ(contents.previous_demoted->time_since_epoch(), std::chrono::seconds(2000));
}

TEST(ProxyConfig, IsOneSluiceProxyAccepts) {
  ProxyRuntime r;
  r.name = "meal-planner-proxy";
  r.listen = {"127.64.1.2:5432", "127.64.1.3:5432"};
  r.require_tls = true;
  r.idle_client_timeout = 900;
  r.cert_file = "/state/ca/rds-us-east-1.pem";
  r.key_file = "/state/ca/rds-us-east-1.key";
  r.auth = {{"/state/proxies/p/secret-0.json", "POSTGRES_SCRAM_SHA_256"},
            {"/state/proxies/p/secret-1.json", "POSTGRES_MD5"}};
  r.target_host = "127.64.1.1";
  r.target_port = 5433;
  r.max_connections_percent = 50;
  r.max_idle_connections_percent = 10;
  r.connection_borrow_timeout = 30;
  r.init_query = "SET search_path = \"app\", public";
  r.metrics_listen = "127.0.0.1:40001";
  const proxy::Config c = proxy::parse_config(render_proxy_config(r), "/");
  EXPECT_EQ(c.name, "meal-planner-proxy");
  ASSERT_EQ(c.listen.host, "127.64.1.2");
  EXPECT_EQ(c.listen.port, 5432);
  EXPECT_TRUE(c.require_tls);
  EXPECT_EQ(c.idle_client_timeout, 900u);
  EXPECT_EQ(c.tls_cert_file, r.cert_file);
  ASSERT_EQ(c.auth.size(), 2u);
  EXPECT_EQ(c.auth[1].secret_file, "/state/proxies/p/secret-1.json");
  EXPECT_EQ(c.auth[1].client_password_auth_type, proxy::AuthType::kMd5);
  EXPECT_EQ(c.target.host, "127.64.1.1");
  EXPECT_EQ(c.target.port, 5433);
  EXPECT_EQ(c.target_tls, proxy::TargetTls::kRequire);
  EXPECT_EQ(c.max_connections_percent, 50u);
  EXPECT_EQ(c.max_idle_connections_percent, 10u);
  EXPECT_EQ(c.connection_borrow_timeout, 30u);
  EXPECT_EQ(c.init_query, r.init_query);
  ASSERT_TRUE(c.metrics_listen);
  EXPECT_EQ(c.metrics_listen->port, 40001);
}

TEST(ProxyTargets, ReadsTheRunningProxysReport) {
  auto report = parse_proxy_targets(
      R"({"targets":[{"host":"127.64.1.1","port":5432,"state":"UNAVAILABLE","reason":"AUTH_FAILURE","description":"The proxy could not log in","checked_at":"2026-11-27T11:00:00Z"}]})");
  ASSERT_TRUE(report);
  EXPECT_EQ(report->state, "UNAVAILABLE");
  EXPECT_EQ(report->reason, "AUTH_FAILURE");
  EXPECT_EQ(report->description, "The proxy could not log in");
  EXPECT_FALSE(parse_proxy_targets("not json"));
  EXPECT_FALSE(parse_proxy_targets(R"({"targets":[]})"));
  EXPECT_FALSE(parse_proxy_targets(R"({"targets":[{"state":"GREAT"}]})"));
  EXPECT_FALSE(parse_proxy_targets(R"([1,2])"));
}

}  // namespace
}  // namespace sluice::cloud
