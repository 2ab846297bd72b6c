// The admin console's pure part: command parsing, and snapshots turned into PgBouncer's rows
// and protocol messages.
#include "proxy/admin_console.hpp"

#include <gtest/gtest.h>

#include "pgwire/codec.hpp"

namespace sluice::proxy {
namespace {

AdminCommand command(std::string_view sql) {
  auto parsed = parse_admin_command(sql);
  if (auto* error = std::get_if<std::string>(&parsed)) ADD_FAILURE() << sql << ": " << *error;
  return std::get_if<AdminCommand>(&parsed) ? std::get<AdminCommand>(parsed) : AdminCommand{};
}

std::string error_of(std::string_view sql) {
  auto parsed = parse_admin_command(sql);
  auto* error = std::get_if<std::string>(&parsed);
  return error ? *error : "(parsed)";
}

TEST(AdminCommand, ShowCommandsAnyCaseWithOrWithoutSemicolon) {
  EXPECT_EQ(command("SHOW POOLS"), (AdminCommand{AdminVerb::kShow, ShowWhat::kPools}));
  EXPECT_EQ(command("show pools;"), (AdminCommand{AdminVerb::kShow, ShowWhat::kPools}));
  EXPECT_EQ(command("  Show\tClients ; "), (AdminCommand{AdminVerb::kShow, ShowWhat::kClients}));
  EXPECT_EQ(command("SHOW SERVERS"), (AdminCommand{AdminVerb::kShow, ShowWhat::kServers}));
  EXPECT_EQ(command("SHOW STATS"), (AdminCommand{AdminVerb::kShow, ShowWhat::kStats}));
  EXPECT_EQ(command("SHOW CONFIG"), (AdminCommand{AdminVerb::kShow, ShowWhat::kConfig}));
  EXPECT_EQ(command("SHOW TARGETS"), (AdminCommand{AdminVerb::kShow, ShowWhat::kTargets}));
  EXPECT_EQ(command("SHOW HELP"), (AdminCommand{AdminVerb::kShow, ShowWhat::kHelp}));
  EXPECT_EQ(command("SHOW VERSION"), (AdminCommand{AdminVerb::kShow, ShowWhat::kVersion}));
  EXPECT_EQ(command("SHOW DATABASES"), (AdminCommand{AdminVerb::kShow, ShowWhat::kDatabases}));
  EXPECT_EQ(command("SHOW LISTS"), (AdminCommand{AdminVerb::kShow, ShowWhat::kLists}));
  EXPECT_EQ(command("show stats_totals"), (AdminCommand{AdminVerb::kShow, ShowWhat::kStatsTotals}));
  EXPECT_EQ(command("SHOW STATS_AVERAGES"),
            (AdminCommand{AdminVerb::kShow, ShowWhat::kStatsAverages}));
}

TEST(AdminCommand, Actions) {
  EXPECT_EQ(command("PAUSE").verb, AdminVerb::kPause);
  EXPECT_EQ(command("resume;").verb, AdminVerb::kResume);
  EXPECT_EQ(command("Reload").verb, AdminVerb::kReload);
  EXPECT_EQ(command("SHUTDOWN;").verb, AdminVerb::kShutdown);
}

TEST(AdminCommand, WhatItRefusesAndWhy) {
  EXPECT_EQ(error_of("SELECT 1"),
            "unknown admin console command \"SELECT 1\"; SHOW HELP lists the commands");
  EXPECT_EQ(error_of("SHOW FOO"),
            "unknown admin console command \"SHOW FOO\"; SHOW HELP lists the commands");
  EXPECT_EQ(error_of("SHOW"), "SHOW what? SHOW HELP lists the commands");
  EXPECT_EQ(error_of(""), "empty command; SHOW HELP lists the commands");
  EXPECT_EQ(error_of(";"), "empty command; SHOW HELP lists the commands");
  EXPECT_EQ(error_of("SHOW POOLS; SHOW CLIENTS"),
            "one admin console command at a time, please: \"SHOW POOLS; SHOW CLIENTS\"");
  EXPECT_EQ(error_of("PAUSE app"), "PAUSE takes no arguments here: it applies to every pool");
  EXPECT_EQ(error_of("SHOW POOLS;;"),
            "one admin console command at a time, please: \"SHOW POOLS;;\"");
}

TEST(AdminCommand, HostileTextIsQuotedPrintableAndShort) {
  const std::string junk = std::string("\x01\x02 DROP") + std::string(200, 'x');
  const std::string error = error_of(junk);
  EXPECT_LT(error.size(), 140u);
  EXPECT_EQ(error.find('\x01'), std::string::npos);
  EXPECT_NE(error.find("..."), std::string::npos);
}

// The messages of a result set, decoded back.
struct Decoded {
  std::vector<std::pair<std::string, uint32_t>> columns;  // name, type OID
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::string tag;
};

Decoded decode(const std::string& wire) {
  Decoded out;
  pgwire::Bytes rest(reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
  while (!rest.empty()) {
    pgwire::Frame frame;
    EXPECT_EQ(pgwire::peek_frame(rest, 1 << 20, frame), pgwire::FrameStatus::kReady);
    const uint8_t* p = frame.body.data();
    if (frame.type == 'T') {
      const uint16_t n = (p[0] << 8) | p[1];
      p += 2;
      for (uint16_t i = 0; i < n; ++i) {
        std::string name(reinterpret_cast<const char*>(p));
        p += name.size() + 1;
        const uint32_t type = pgwire::read_be32(p + 6);
        out.columns.emplace_back(name, type);
        p += 18;
      }
    } else if (frame.type == 'D') {
      auto row = pgwire::decode_data_row(frame.body);
      EXPECT_TRUE(row);
      std::vector<std::optional<std::string>> values;
      for (const auto& v : *row)
        values.push_back(v ? std::optional<std::string>(*v) : std::nullopt);
      out.rows.push_back(std::move(values));
    } else if (frame.type == 'C') {
      out.tag = std::string(reinterpret_cast<const char*>(p));
    }
    rest = rest.subspan(frame.wire_size());
  }
  return out;
}

ProxySnapshot two_workers() {
  ProxySnapshot s;
  s.target = {"db.internal", 5432};
  s.cap = 20;
  s.uptime = std::chrono::seconds(10);
  PoolSnapshot app;
  app.database = "app";
  app.user = "alice";
  app.cl_active = 2;
  app.cl_waiting = 1;
  app.sv_lent = 1;
  app.sv_idle = 2;
  app.max_wait = std::chrono::microseconds(1'500'000);
  app.transactions = 40;
  app.queries = 100;
  app.lent_us = 4000;
  app.wait_us = 800;
  PoolSnapshot more = app;
  more.cl_waiting = 0;
  more.sv_pinned = 1;
  more.sv_opening = 1;
  more.max_wait = std::chrono::microseconds(200);
  PoolSnapshot console;
  console.database = "sluice";
  console.user = "ops";
  console.console = true;
  console.cl_active = 1;
  s.workers.resize(2);
  s.workers[0].pools = {app, console};
  s.workers[1].pools = {more};
  ClientSnapshot c;
  c.user = "alice";
  c.database = "app";
  c.addr = "127.0.0.1";
  c.port = 40000;
  c.process_id = 7;
  c.server = 3;
  c.tls = true;
  c.application_name = "report";
  c.waiting = true;
  c.waited = std::chrono::microseconds(2'000'123);
  c.worker = 1;
  s.workers[1].clients = {c};
  ServerSnapshot server;
  server.user = "alice";
  server.database = "app";
  server.state = "pinned";
  server.id = 3;
  server.backend_pid = 4242;
  server.client = 7;
  s.workers[1].servers = {server};
  return s;
}

TEST(AdminRows, PoolsAddUpEveryWorkerInPgBouncersColumns) {
  std::string wire;
  write_row_set(wire, show_pools(two_workers()));
  const Decoded d = decode(wire);
  const std::vector<std::string> pgbouncer = {"database",
                                              "user",
                                              "cl_active",
                                              "cl_waiting",
                                              "cl_active_cancel_req",
                                              "cl_waiting_cancel_req",
                                              "sv_active",
                                              "sv_active_cancel",
                                              "sv_being_canceled",
                                              "sv_idle",
                                              "sv_used",
                                              "sv_tested",
                                              "sv_login",
                                              "maxwait",
                                              "maxwait_us",
                                              "pool_mode"};
  ASSERT_GT(d.columns.size(), pgbouncer.size());
  for (size_t i = 0; i < pgbouncer.size(); ++i) {
    EXPECT_EQ(d.columns[i].first, pgbouncer[i]);
    EXPECT_EQ(d.columns[i].second, i < 2 || i == 15 ? 25u : 23u) << pgbouncer[i];
  }
  EXPECT_EQ(d.columns.back().first, "sv_pinned") << "sluice's own columns come last";
  EXPECT_EQ(d.tag, "SHOW");
  ASSERT_EQ(d.rows.size(), 2u);
  const auto& app = d.rows[0];
  EXPECT_EQ(app[0], "app");
  EXPECT_EQ(app[1], "alice");
  EXPECT_EQ(app[2], "4");   // cl_active
  EXPECT_EQ(app[3], "1");   // cl_waiting
  EXPECT_EQ(app[6], "3");   // sv_active: lent and pinned
  EXPECT_EQ(app[9], "4");   // sv_idle
  EXPECT_EQ(app[12], "1");  // sv_login
  EXPECT_EQ(app[13], "1");  // maxwait: the longest of the workers'
  EXPECT_EQ(app[14], "500000");
  EXPECT_EQ(app[15], "transaction");
  EXPECT_EQ(app[16], "1");  // sv_pinned
  EXPECT_EQ(d.rows[1][0], "sluice");
  EXPECT_EQ(d.rows[1][15], "statement");
}

TEST(AdminRows, ClientsAndServersLinkEachOther) {
  const ProxySnapshot s = two_workers();
  std::string wire;
  write_row_set(wire, show_clients(s));
  Decoded clients = decode(wire);
  ASSERT_EQ(clients.columns.size(), 20u);
  EXPECT_EQ(clients.columns[0].first, "type");
  EXPECT_EQ(clients.columns[17].first, "application_name");
  EXPECT_EQ(clients.columns[18].first, "worker");
  ASSERT_EQ(clients.rows.size(), 1u);
  const auto& c = clients.rows[0];
  EXPECT_EQ(c[0], "C");
  EXPECT_EQ(c[3], "waiting");
  EXPECT_EQ(c[4], "127.0.0.1");
  EXPECT_EQ(c[5], "40000");
  EXPECT_EQ(c[10], "2");  // wait
  EXPECT_EQ(c[11], "123");
  EXPECT_EQ(c[13], "c7");
  EXPECT_EQ(c[14], "s3");
  EXPECT_EQ(c[16], "TLS");
  EXPECT_EQ(c[17], "report");
  EXPECT_EQ(c[18], "1");

  wire.clear();
  write_row_set(wire, show_servers(s));
  Decoded servers = decode(wire);
  ASSERT_EQ(servers.rows.size(), 1u);
  const auto& server = servers.rows[0];
  EXPECT_EQ(server[0], "S");
  EXPECT_EQ(server[3], "active") << "pinned is PgBouncer's active";
  EXPECT_EQ(server[4], "db.internal");
  EXPECT_EQ(server[5], "5432");
  EXPECT_EQ(server[13], "s3");
  EXPECT_EQ(server[14], "c7");
  EXPECT_EQ(server[15], "4242");
  EXPECT_EQ(server.back(), "pinned");
}

TEST(AdminRows, StatsPerDatabaseAsNumeric) {
  std::string wire;
  write_row_set(wire, show_stats(two_workers()));
  const Decoded d = decode(wire);
  ASSERT_EQ(d.columns.size(), 15u);
  EXPECT_EQ(d.columns[0], (std::pair<std::string, uint32_t>{"database", 25}));
  EXPECT_EQ(d.columns[1], (std::pair<std::string, uint32_t>{"total_xact_count", 1700}));
  EXPECT_EQ(d.columns[14], (std::pair<std::string, uint32_t>{"avg_wait_time", 1700}));
  ASSERT_EQ(d.rows.size(), 2u);
  const auto& app = d.rows[0];
  EXPECT_EQ(app[0], "app");
  EXPECT_EQ(app[1], "80");    // transactions, both workers
  EXPECT_EQ(app[2], "200");   // queries
  EXPECT_EQ(app[5], "8000");  // time lent
  EXPECT_EQ(app[7], "1600");  // time waited
  EXPECT_EQ(app[8], "8");     // per second over 10 s
  EXPECT_EQ(app[12], "100");  // average transaction: 8000 µs / 80
}

TEST(AdminRows, StatsHalvesUnderPgBouncersShortNames) {
  std::string wire;
  write_row_set(wire, show_stats_totals(two_workers()));
  Decoded d = decode(wire);
  const std::vector<std::string> names = {"database",       "xact_count", "query_count",
                                          "bytes_received", "bytes_sent", "xact_time",
                                          "query_time",     "wait_time"};
  ASSERT_EQ(d.columns.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(d.columns[i].first, names[i]);
  EXPECT_EQ(d.rows[0][0], "app");
  EXPECT_EQ(d.rows[0][1], "80");
  EXPECT_EQ(d.rows[0][7], "1600");
  wire.clear();
  write_row_set(wire, show_stats_averages(two_workers()));
  d = decode(wire);
  ASSERT_EQ(d.columns.size(), names.size());
  EXPECT_EQ(d.rows[0][1], "8");    // transactions per second
  EXPECT_EQ(d.rows[0][5], "100");  // average transaction
}

TEST(AdminRows, TargetsInRdsWords) {
  ProxySnapshot s = two_workers();
  s.health = {TargetState::kUnavailable, TargetHealthReason::kAuthFailure, "bad password"};
  std::string wire;
  write_row_set(wire, show_targets(s));
  const Decoded d = decode(wire);
  ASSERT_EQ(d.rows.size(), 1u);
  EXPECT_EQ(d.columns[2].first, "state");
  EXPECT_EQ(d.rows[0][2], "UNAVAILABLE");
  EXPECT_EQ(d.rows[0][3], "AUTH_FAILURE");
  EXPECT_EQ(d.rows[0][4], "bad password");
  EXPECT_EQ(d.rows[0][5], std::nullopt) << "never checked";
}

TEST(AdminRows, TargetsListEveryHostWithItsRole) {
  ProxySnapshot s = two_workers();
  TargetHealth::HostReport primary;
  primary.address = {"db-b", 5433};
  primary.role = HostRole::kPrimary;
  primary.status = {TargetState::kAvailable, TargetHealthReason::kNone, "logged in"};
  primary.checked_at = WallClock::now();
  TargetHealth::HostReport standby;
  standby.address = {"db-a", 5432};
  standby.role = HostRole::kStandby;
  standby.status = {TargetState::kAvailable, TargetHealthReason::kNone, "a standby"};
  s.hosts = {primary, standby};
  std::string wire;
  write_row_set(wire, show_targets(s));
  const Decoded d = decode(wire);
  ASSERT_EQ(d.rows.size(), 2u);
  EXPECT_EQ(d.columns.back().first, "role");
  EXPECT_EQ(d.rows[0][0], "db-b");
  EXPECT_EQ(d.rows[0][1], "5433");
  EXPECT_EQ(d.rows[0][6], "primary");
  EXPECT_NE(d.rows[0][5], std::nullopt);
  EXPECT_EQ(d.rows[1][0], "db-a");
  EXPECT_EQ(d.rows[1][6], "standby");
  EXPECT_EQ(d.rows[1][5], std::nullopt) << "never checked";
}

TEST(AdminRows, ConfigShowsPathsNeverSecrets) {
  Config c;
  c.admin_users = {"ops", "oncall"};
  c.auth.push_back({"/etc/sluice/app.json", AuthType::kScramSha256});
  const RowSet rows = show_config(c);
  ASSERT_EQ(rows.columns.size(), 4u);
  EXPECT_EQ(rows.columns[0].name, "key");
  bool saw_admins = false, saw_secret = false;
  for (const auto& row : rows.rows) {
    if (row[0] == "admin_users") saw_admins = row[1] == "ops, oncall";
    if (row[0] == "auth.secret_file") saw_secret = row[1] == "/etc/sluice/app.json";
  }
  EXPECT_TRUE(saw_admins);
  EXPECT_TRUE(saw_secret);
}

TEST(AdminRows, DatabasesAndListsForExporters) {
  ProxySnapshot s = two_workers();
  s.paused = true;
  std::string wire;
  write_row_set(wire, show_databases(s));
  Decoded d = decode(wire);
  ASSERT_EQ(d.columns.size(), 13u);
  EXPECT_EQ(d.columns[11].first, "paused");
  ASSERT_EQ(d.rows.size(), 2u);
  EXPECT_EQ(d.rows[0][0], "app");
  EXPECT_EQ(d.rows[0][5], "20");  // pool_size: the cap
  EXPECT_EQ(d.rows[0][10], "8");  // current connections, both workers
  EXPECT_EQ(d.rows[0][11], "1");  // paused
  wire.clear();
  write_row_set(wire, show_lists(s));
  d = decode(wire);
  ASSERT_FALSE(d.rows.empty());
  EXPECT_EQ(d.rows[0][0], "databases");
  EXPECT_EQ(d.rows[0][1], "2");
}

TEST(AdminRows, NullsAndEmptyStringsDiffer) {
  RowSet rows;
  rows.columns = {{"a", ColumnType::kText}, {"b", ColumnType::kText}};
  rows.rows = {{std::nullopt, ""}};
  std::string wire;
  write_row_set(wire, rows, "SHOW");
  const Decoded d = decode(wire);
  ASSERT_EQ(d.rows.size(), 1u);
  EXPECT_EQ(d.rows[0][0], std::nullopt);
  EXPECT_EQ(d.rows[0][1], "");
}

TEST(AdminRows, HelpIsANoticeThenShow) {
  std::string wire;
  write_admin_help(wire);
  ASSERT_FALSE(wire.empty());
  EXPECT_EQ(wire[0], 'N');
  EXPECT_NE(wire.find("SHOW HELP|VERSION|POOLS"), std::string::npos);
  EXPECT_EQ(decode(wire).tag, "SHOW");
}

TEST(AdminRows, TimesAsPgBouncerWritesThem) {
  EXPECT_EQ(admin_time(WallClock::from_time_t(1796443200)), "2026-12-05 04:00:00 UTC");
  EXPECT_EQ(admin_time(WallClock::from_time_t(1796443200)), "2026-12-05 04:00:00 UTC");
  EXPECT_EQ(admin_time(WallClock::from_time_t(1796443261)), "2026-12-05 04:01:01 UTC");
}

TEST(AdminRows, NamesClientsChoseArePrintableAscii) {
  EXPECT_EQ(printable_ascii("report-1"), "report-1");
  EXPECT_EQ(printable_ascii("a\x1b[2Jb\xff\xc3\xa9"), "a?[2Jb???");
}

TEST(AdminRows, RowsSentInBatchesAreTheSameBytes) {
  const RowSet rows = show_clients(two_workers());
  RowSet many = rows;
  for (int i = 0; i < 10; ++i) many.rows.push_back(rows.rows[0]);
  std::string whole, parts;
  write_row_set(whole, many);
  write_row_description(parts, many.columns);
  for (size_t i = 0; i < many.rows.size(); i += 4) write_data_rows(parts, many, i, i + 4);
  write_complete(parts, "SHOW");
  EXPECT_EQ(parts, whole);
  EXPECT_EQ(decode(parts).rows.size(), 11u);
}

}  // namespace
}  // namespace sluice::proxy
