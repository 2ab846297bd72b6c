#include "proxy/config.hpp"

#include <gtest/gtest.h>

#include "proxy/secrets.hpp"

namespace sluice::proxy {
namespace {

const char* kMinimal = R"(
[[auth]]
secret_file = "secret.json"
[target]
host = "db.internal"
)";

std::string key_of_error(const std::string& text) {
  try {
    parse_config(text, "/etc/sluice");
  } catch (const ConfigError& e) {
    return e.key();
  }
  return "(valid)";
}

TEST(Config, DefaultsFollowRdsProxy) {
  Config c = parse_config(kMinimal, "/etc/sluice");
  EXPECT_TRUE(c.require_tls);
  EXPECT_EQ(c.idle_client_timeout, 1800u);
  EXPECT_EQ(c.max_connections_percent, 100u);
  EXPECT_EQ(c.max_idle_connections_percent, 50u);
  EXPECT_EQ(c.connection_borrow_timeout, 120u);
  EXPECT_EQ(c.target.port, 5432);
  EXPECT_EQ(c.target_tls, TargetTls::kPrefer);
  EXPECT_EQ(c.auth.at(0).secret_file, "/etc/sluice/secret.json");
  EXPECT_EQ(c.auth.at(0).client_password_auth_type, AuthType::kScramSha256);
  EXPECT_FALSE(c.metrics_listen);
  EXPECT_EQ(c.health_check_interval, 0u);
  EXPECT_TRUE(c.adaptive_concurrency);  // sluice's own: RDS Proxy lends up to the cap
}

TEST(Config, AdaptiveConcurrency) {
  const std::string base = "[[auth]]\nsecret_file = \"s.json\"\n[target]\n[connection_pool]\n";
  EXPECT_FALSE(parse_config(base + "adaptive_concurrency = false\n", "").adaptive_concurrency);
  EXPECT_TRUE(parse_config(base + "adaptive_concurrency = true\n", "").adaptive_concurrency);
  EXPECT_EQ(key_of_error(base + "adaptive_concurrency = \"yes\"\n"),
            "connection_pool.adaptive_concurrency");
}

TEST(Config, SpreadClients) {
  const std::string rest = "[[auth]]\nsecret_file = \"s.json\"\n[target]\n";
  EXPECT_FALSE(parse_config(rest, "").spread_clients);  // placed by load
  EXPECT_TRUE(parse_config("spread_clients = true\n" + rest, "").spread_clients);
  EXPECT_EQ(key_of_error("spread_clients = 1\n" + rest), "spread_clients");
}

TEST(Config, TheIssueExampleParses) {
  Config c = parse_config(R"(
name = "meal-planner-proxy"
listen = "127.0.0.1:6432"
require_tls = true
idle_client_timeout = 1800
max_client_connections = 10000
[tls]
cert_file = "server.crt"
key_file = "server.key"
[[auth]]
secret_file = "secret.json"
client_password_auth_type = "POSTGRES_MD5"
[target]
host = "127.0.0.1"
port = 5432
tls = "verify-full"
[connection_pool]
max_connections_percent = 40
max_idle_connections_percent = 10
connection_borrow_timeout = 5
init_query = "SET x = 1"
[metrics]
listen = "127.0.0.1:9187"
)",
                          "/srv");
  EXPECT_EQ(c.name, "meal-planner-proxy");
  EXPECT_EQ(c.listen.port, 6432);
  EXPECT_EQ(c.tls_cert_file, "/srv/server.crt");
  EXPECT_EQ(c.auth[0].client_password_auth_type, AuthType::kMd5);
  EXPECT_EQ(c.target_tls, TargetTls::kVerifyFull);
  EXPECT_EQ(c.max_connections_percent, 40u);
  EXPECT_EQ(c.max_idle_connections_percent, 10u);
  EXPECT_EQ(c.init_query, "SET x = 1");
  ASSERT_TRUE(c.metrics_listen);
  EXPECT_EQ(c.metrics_listen->port, 9187);
}

TEST(Config, EachBadValueNamesItsKey) {
  const std::string base = "[[auth]]\nsecret_file = \"s.json\"\n";
  EXPECT_EQ(key_of_error(base + "[target]\ntls = \"sometimes\"\n"), "target.tls");
  EXPECT_EQ(key_of_error(base + "[target]\nport = 70000\n"), "target.port");
  EXPECT_EQ(key_of_error(base + "[target]\n[connection_pool]\nmax_connections_percent = 0\n"),
            "connection_pool.max_connections_percent");
  EXPECT_EQ(key_of_error(base + "[target]\n[connection_pool]\nmax_connections_percent = 101\n"),
            "connection_pool.max_connections_percent");
  EXPECT_EQ(key_of_error(base + "[target]\n[connection_pool]\nmax_connections_percent = 20\n"
                                "max_idle_connections_percent = 30\n"),
            "connection_pool.max_idle_connections_percent");
  EXPECT_EQ(key_of_error(base + "[target]\n[connection_pool]\nconnection_borrow_timeout = 301\n"),
            "connection_pool.connection_borrow_timeout");
  EXPECT_EQ(key_of_error("listen = \"nowhere\"\n" + base + "[target]\n"), "listen");
  EXPECT_EQ(key_of_error("idle_client_timeout = 0\n" + base + "[target]\n"), "idle_client_timeout");
  EXPECT_EQ(key_of_error("require_tls = \"yes\"\n" + base + "[target]\n"), "require_tls");
  EXPECT_EQ(key_of_error("typo_key = 1\n" + base + "[target]\n"), "typo_key");
  EXPECT_EQ(key_of_error(base), "target");
  EXPECT_EQ(key_of_error("[target]\n"), "auth");
  EXPECT_EQ(key_of_error(base + "[target]\n[tls]\ncert_file = \"a.crt\"\n"), "tls.key_file");
  EXPECT_EQ(key_of_error("[[auth]]\nsecret_file = \"s\"\nclient_password_auth_type = \"X\"\n"
                         "[target]\n"),
            "auth[0].client_password_auth_type");
  EXPECT_EQ(key_of_error("[[auth]]\n[target]\n"), "auth[0].secret_file");
  EXPECT_EQ(key_of_error("name = [1,\n"), "line 1");
  EXPECT_EQ(key_of_error("log_format = \"xml\"\n" + base + "[target]\n"), "log_format");
  EXPECT_EQ(key_of_error("log_level = \"loud\"\n" + base + "[target]\n"), "log_level");
  EXPECT_EQ(key_of_error(base + "[target]\n[tls]\nrecord_layer = \"gnutls\"\n"),
            "tls.record_layer");
}

TEST(Config, HandoverSocket) {
  EXPECT_TRUE(parse_config(kMinimal, "/etc/sluice").handover_socket.empty());
  EXPECT_EQ(parse_config(std::string("handover_socket = \"/run/sluice-proxy/h.sock\"\n") + kMinimal,
                         "/etc/sluice")
                .handover_socket,
            "/run/sluice-proxy/h.sock");
  // Relative to the configuration's folder, as every path.
  EXPECT_EQ(parse_config(std::string("handover_socket = \"h.sock\"\n") + kMinimal, "/etc/sluice")
                .handover_socket,
            "/etc/sluice/h.sock");
  // A Unix socket's path is short.
  EXPECT_EQ(key_of_error("handover_socket = \"\"\n" + std::string(kMinimal)), "handover_socket");
  EXPECT_EQ(key_of_error("handover_socket = \"/" + std::string(95, 'a') + "\"\n" + kMinimal),
            "handover_socket");
  EXPECT_EQ(key_of_error("handover_socket = 1\n" + std::string(kMinimal)), "handover_socket");
}

TEST(Config, Logging) {
  Config c = parse_config(kMinimal, "/etc/sluice");
  EXPECT_EQ(c.log_format, LogFormat::kText);
  EXPECT_TRUE(c.tls_sluice_records);
  EXPECT_FALSE(
      parse_config(std::string(kMinimal) + "[tls]\nrecord_layer = \"openssl\"\n", "/etc/sluice")
          .tls_sluice_records);
  EXPECT_EQ(c.log_level, "");
  c = parse_config(std::string("log_format = \"json\"\nlog_level = \"warn\"\n") + kMinimal,
                   "/etc/sluice");
  EXPECT_EQ(c.log_format, LogFormat::kJson);
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_FALSE(c.debug_logging);
  c = parse_config(std::string("log_level = \"debug\"\n") + kMinimal, "/etc/sluice");
  EXPECT_TRUE(c.debug_logging);
}

TEST(Config, HealthCheckInterval) {
  const std::string base = "[[auth]]\nsecret_file = \"s.json\"\n[target]\n";
  EXPECT_EQ(parse_config(base + "health_check_interval = 30\n", "").health_check_interval, 30u);
  EXPECT_EQ(parse_config(base + "health_check_interval = 0\n", "").health_check_interval, 0u);
  EXPECT_EQ(parse_config(base + "health_check_interval = 3600\n", "").health_check_interval, 3600u);
  EXPECT_EQ(key_of_error(base + "health_check_interval = 3601\n"), "target.health_check_interval");
  EXPECT_EQ(key_of_error(base + "health_check_interval = -1\n"), "target.health_check_interval");
  EXPECT_EQ(key_of_error(base + "health_check_interval = \"30s\"\n"),
            "target.health_check_interval");
  EXPECT_EQ(key_of_error(base + "health_check_interval = 1.5\n"), "target.health_check_interval");
}

TEST(Config, ListenMayBeSeveralAddresses) {
  Config c = parse_config(
      std::string("listen = [\"127.64.0.1:5432\", \"127.64.0.2:5433\"]\n") + kMinimal, "");
  EXPECT_EQ(c.listen.host, "127.64.0.1");
  EXPECT_EQ(c.listen.port, 5432);
  ASSERT_EQ(c.extra_listen.size(), 1u);
  EXPECT_EQ(c.extra_listen[0].host, "127.64.0.2");
  EXPECT_EQ(c.extra_listen[0].port, 5433);
  EXPECT_TRUE(parse_config(kMinimal, "").extra_listen.empty());
  EXPECT_EQ(key_of_error(std::string("listen = []\n") + kMinimal), "listen");
  EXPECT_EQ(key_of_error(std::string("listen = [\"a:1\", \"nope\"]\n") + kMinimal), "listen[1]");
  EXPECT_EQ(key_of_error(std::string("listen = [\"a:1\", 5]\n") + kMinimal), "listen[1]");
}

TEST(Config, InheritedListenersAndAdmission) {
  Config c = parse_config(std::string("listen = [\"127.64.0.1:5432\", \"fd:3\"]\n") + kMinimal +
                              "[admission]\nfile = \"admission\"\n",
                          "/state/p");
  ASSERT_EQ(c.extra_listen.size(), 1u);
  EXPECT_EQ(c.extra_listen[0].fd, 3);
  EXPECT_EQ(c.extra_listen[0].label(), "fd:3");
  EXPECT_EQ(c.listen.label(), "127.64.0.1:5432");
  EXPECT_EQ(c.admission_file, "/state/p/admission");
  EXPECT_EQ(key_of_error(std::string("listen = [\"fd:2\"]\n") + kMinimal), "listen[0]");
  EXPECT_EQ(key_of_error(std::string("listen = \"fd:x\"\n") + kMinimal), "listen");
  EXPECT_EQ(key_of_error(std::string(kMinimal) + "[admission]\n"), "admission.file");
  EXPECT_EQ(key_of_error(std::string(kMinimal) + "[admission]\nfile = \"a\"\nx = 1\n"),
            "admission.x");
}

TEST(Config, AdminUsers) {
  EXPECT_TRUE(parse_config(kMinimal, "/etc/sluice").admin_users.empty()) << "no console by default";
  Config c = parse_config(std::string("admin_users = [\"ops\", \"oncall\"]\n") + kMinimal, "/etc");
  EXPECT_EQ(c.admin_users, (std::vector<std::string>{"ops", "oncall"}));
  EXPECT_EQ(key_of_error(std::string("admin_users = \"ops\"\n") + kMinimal), "admin_users");
  EXPECT_EQ(key_of_error(std::string("admin_users = [\"ops\", 3]\n") + kMinimal), "admin_users[1]");
  EXPECT_EQ(key_of_error(std::string("admin_users = [\"\"]\n") + kMinimal), "admin_users[0]");
}

TEST(Config, TargetHostsAreAnAlternativeToHostAndPort) {
  const std::string base = "[[auth]]\nsecret_file = \"s.json\"\n[target]\n";
  Config c = parse_config(base + "hosts = [\"db-a:5432\", \"db-b:5433\"]\n", "");
  ASSERT_EQ(c.target_hosts.size(), 2u);
  EXPECT_EQ(c.target_hosts[1].host, "db-b");
  EXPECT_EQ(c.target_hosts[1].port, 5433);
  EXPECT_EQ(c.target.host, "db-a");  // the first, for what names one server (logs)
  EXPECT_EQ(c.servers().size(), 2u);
  // Without hosts: target alone, and no role is required of it.
  Config single = parse_config(kMinimal, "");
  EXPECT_TRUE(single.target_hosts.empty());
  ASSERT_EQ(single.servers().size(), 1u);
  EXPECT_EQ(single.servers()[0].host, "db.internal");

  EXPECT_EQ(key_of_error(base + "host = \"a\"\nhosts = [\"b:1\"]\n"), "target.hosts");
  EXPECT_EQ(key_of_error(base + "port = 5432\nhosts = [\"b:1\"]\n"), "target.hosts");
  EXPECT_EQ(key_of_error(base + "hosts = []\n"), "target.hosts");
  EXPECT_EQ(key_of_error(base + "hosts = \"a:1\"\n"), "target.hosts");
  EXPECT_EQ(key_of_error(base + "hosts = [\"a:1\", \"b\"]\n"), "target.hosts[1]");
  EXPECT_EQ(key_of_error(base + "hosts = [\"a:1\", 7]\n"), "target.hosts[1]");
  EXPECT_EQ(key_of_error(base + "hosts = [\"a:1\", \"a:1\"]\n"), "target.hosts[1]");
}

TEST(Config, KeepalivesAndServerLifetime) {
  Config c = parse_config(kMinimal, "");
  EXPECT_TRUE(c.target_keepalive.enabled);
  EXPECT_EQ(c.target_keepalive.idle, 30u);
  EXPECT_EQ(c.target_keepalive.interval, 10u);
  EXPECT_EQ(c.target_keepalive.count, 3u);
  EXPECT_EQ(c.server_lifetime, 3600u);

  const std::string base = "[[auth]]\nsecret_file = \"s.json\"\n";
  c = parse_config(base +
                       "[target]\ntcp_keepalive = false\ntcp_keepalive_idle = 5\n"
                       "tcp_keepalive_interval = 2\ntcp_keepalive_count = 4\n"
                       "[connection_pool]\nserver_lifetime = 0\n",
                   "");
  EXPECT_FALSE(c.target_keepalive.enabled);
  EXPECT_EQ(c.target_keepalive.idle, 5u);
  EXPECT_EQ(c.target_keepalive.interval, 2u);
  EXPECT_EQ(c.target_keepalive.count, 4u);
  EXPECT_EQ(c.server_lifetime, 0u);  // unlimited
  EXPECT_EQ(key_of_error(base + "[target]\ntcp_keepalive = 1\n"), "target.tcp_keepalive");
  EXPECT_EQ(key_of_error(base + "[target]\ntcp_keepalive_idle = 0\n"), "target.tcp_keepalive_idle");
  EXPECT_EQ(key_of_error(base + "[target]\ntcp_keepalive_count = 128\n"),
            "target.tcp_keepalive_count");
  EXPECT_EQ(key_of_error(base + "[target]\n[connection_pool]\nserver_lifetime = -1\n"),
            "connection_pool.server_lifetime");
}

TEST(Config, HostPort) {
  EXPECT_EQ(parse_host_port("127.0.0.1:5432")->port, 5432);
  EXPECT_EQ(parse_host_port("[::1]:6432")->host, "::1");
  EXPECT_FALSE(parse_host_port("127.0.0.1"));
  EXPECT_FALSE(parse_host_port("127.0.0.1:0"));
  EXPECT_FALSE(parse_host_port("127.0.0.1:99999"));
  EXPECT_FALSE(parse_host_port(":5432"));
  EXPECT_FALSE(parse_host_port("h:5x"));
}

TEST(Secrets, ParsesSecretsManagerFormat) {
  std::string user, password, error;
  EXPECT_TRUE(parse_secret_json(R"({"username":"app","password":"p","engine":"postgres"})", user,
                                password, error));
  EXPECT_EQ(user, "app");
  EXPECT_EQ(password, "p");
  EXPECT_FALSE(parse_secret_json(R"({"password":"p"})", user, password, error));
  EXPECT_FALSE(parse_secret_json(R"({"username":"a"})", user, password, error));
  EXPECT_FALSE(parse_secret_json(R"(["a"])", user, password, error));
  EXPECT_FALSE(parse_secret_json("not json", user, password, error));
  EXPECT_FALSE(parse_secret_json(R"({"username":7,"password":"hunter2"})", user, password, error));
  EXPECT_EQ(error.find("hunter2"), std::string::npos);  // errors never quote the secret
}

}  // namespace
}  // namespace sluice::proxy
