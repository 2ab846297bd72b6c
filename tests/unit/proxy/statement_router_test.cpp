// The statement router on plain data: client messages in, the server's bytes, the proxy's own
// answers and the tracker's expectations out. No sockets.
#include "proxy/statement_router.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace sluice::proxy {
namespace {

using Kind = ResponseTracker::Kind;

pgwire::Bytes bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Events : StatementEvents {
  std::optional<PinReason> pinned_reason;
  std::vector<std::string> settings_changes;
  bool pinned() const override { return pinned_reason.has_value(); }
  void pin(PinReason reason) override { pinned_reason = reason; }
  void settings_changed(std::string_view sql) override { settings_changes.emplace_back(sql); }
};

// Every message the server is sent, as type and body.
std::vector<std::pair<char, std::string>> messages(std::string_view wire) {
  std::vector<std::pair<char, std::string>> out;
  pgwire::Frame frame;
  while (pgwire::peek_frame(bytes(wire), 1 << 20, frame) == pgwire::FrameStatus::kReady) {
    out.emplace_back(frame.type, std::string(reinterpret_cast<const char*>(frame.body.data()),
                                             frame.body.size()));
    wire.remove_prefix(frame.wire_size());
  }
  return out;
}

struct Router : ::testing::Test {
  StatementRegistry registry;
  ResponseTracker tracker;
  std::string to_server, to_client;
  Events events;
  StatementCache server{10};
  ClientStatements statements;
  StatementRouter router{registry, true, tracker, to_server, to_client, events, statements};
  std::string wire;  // the client's current message
  std::optional<pgwire::ParseMessage> parse;

  pgwire::Frame frame() {
    pgwire::Frame f;
    EXPECT_EQ(pgwire::peek_frame(bytes(wire), 1 << 20, f), pgwire::FrameStatus::kReady);
    parse.reset();
    if (f.type == 'P') parse = pgwire::decode_parse(f.body);
    return f;
  }
  static std::string definition(std::string_view sql) {
    std::string d(sql);
    d.append("\0\0\0", 3);
    return d;
  }
  bool send_parse(std::string_view name, std::string_view sql, StatementCache& on) {
    wire.clear();
    pgwire::write_parse(wire, name, bytes(definition(sql)));
    auto f = frame();
    return router.route_extended(f, parse, on);
  }
  bool send_bind(std::string_view statement, StatementCache& on) {
    wire.clear();
    static constexpr uint8_t kNoParameters[6] = {};
    pgwire::write_bind(wire, "", statement, kNoParameters);
    auto f = frame();
    return router.route_extended(f, parse, on);
  }
  std::string error_reply(std::string_view sqlstate, std::string_view message) {
    std::string before, after, replacement;
    const std::string body = error_body(sqlstate, message);
    auto verdict = tracker.on_server_message('E', bytes(body), before, after, replacement,
                                             router.statements(), server);
    EXPECT_EQ(verdict, ResponseTracker::Verdict::kReplace);
    return replacement;
  }
};

TEST_F(Router, NamedParseIsRenamedAndPreparedOnce) {
  ASSERT_TRUE(send_parse("mine", "SELECT 1", server));
  auto sent = messages(to_server);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, 'P');
  EXPECT_EQ(sent[0].second.substr(0, 9), std::string("sluice_1\0", 9));
  EXPECT_TRUE(router.statements().contains("mine"));

  // Another client preparing the same SQL on this connection: the proxy answers for it.
  ResponseTracker other_tracker;
  std::string other_server, other_client;
  Events other_events;
  ClientStatements other_statements;
  StatementRouter other(registry, true, other_tracker, other_server, other_client, other_events,
                        other_statements);
  wire.clear();
  pgwire::write_parse(wire, "theirs", bytes(definition("SELECT 1")));
  auto f = frame();
  ASSERT_TRUE(other.route_extended(f, parse, server));
  EXPECT_TRUE(other_server.empty()) << "already prepared on this connection";
  EXPECT_EQ(other_client, std::string("1\0\0\0\4", 5)) << "ParseComplete from the proxy";
}

TEST_F(Router, BindOnAConnectionWithoutTheStatementPreparesItFirst) {
  ASSERT_TRUE(send_parse("mine", "SELECT 1", server));
  StatementCache fresh{10};
  to_server.clear();
  ASSERT_TRUE(send_bind("mine", fresh));
  auto sent = messages(to_server);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].first, 'P');
  EXPECT_EQ(sent[1].first, 'B');
  EXPECT_NE(sent[1].second.find(std::string("sluice_1\0", 9)), std::string::npos);
}

TEST_F(Router, BindOfAnUnknownStatementFailsAsPostgreSQLWould) {
  ASSERT_TRUE(send_bind("nope", server));
  auto sent = messages(to_server);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_NE(sent[0].second.find(kMissingStatement), std::string::npos);
  const std::string replacement = error_reply("26000", "prepared statement \"sluice_missing\"");
  EXPECT_NE(replacement.find("prepared statement \"nope\" does not exist"), std::string::npos);
  EXPECT_NE(replacement.find("26000"), std::string::npos);
}

TEST_F(Router, ParseOfAnExistingNameIsRefused) {
  ASSERT_TRUE(send_parse("mine", "SELECT 1", server));
  ASSERT_TRUE(send_parse("mine", "SELECT 2", server));
  tracker.clear();
  to_server.clear();
  ASSERT_TRUE(send_parse("mine", "SELECT 3", server));
  EXPECT_NE(error_reply("26000", "x").find("already exists"), std::string::npos);
}

TEST_F(Router, WithoutStatementSupportNamedParsePins) {
  ClientStatements off_statements;
  StatementRouter off(registry, false, tracker, to_server, to_client, events, off_statements);
  wire.clear();
  pgwire::write_parse(wire, "mine", bytes(definition("SELECT 1")));
  auto f = frame();
  ASSERT_TRUE(off.route_extended(f, parse, server));
  EXPECT_EQ(events.pinned_reason, PinReason::kNamedProtocolStatement);
  EXPECT_EQ(to_server, wire) << "forwarded as written";
}

TEST_F(Router, UnnamedSetNotesASettingsChange) {
  ASSERT_TRUE(send_parse("", "SET search_path = app", server));
  ASSERT_EQ(events.settings_changes.size(), 1u);
  EXPECT_EQ(events.settings_changes[0], "SET search_path = app");
  EXPECT_FALSE(events.pinned());
}

TEST_F(Router, SqlPrepareAndExecuteAreTranslated) {
  ASSERT_TRUE(router.route_query("PREPARE q AS SELECT 1", &server));
  auto sent = messages(to_server);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].second, std::string("PREPARE sluice_1 AS SELECT 1\0", 29));
  to_server.clear();
  ASSERT_TRUE(router.route_query("EXECUTE q", &server));
  sent = messages(to_server);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].second, std::string("EXECUTE sluice_1\0", 17));
  EXPECT_EQ(tracker.outstanding_requests(), 2);
  EXPECT_FALSE(router.route_query("SELECT 1", &server)) << "not a prepared-statement command";
}

TEST_F(Router, DeallocateIsAnsweredWithoutAServer) {
  ASSERT_TRUE(router.route_query("PREPARE q AS SELECT 1", &server));
  tracker.clear();
  wire.clear();
  pgwire::write_query(wire, "DEALLOCATE q");
  EXPECT_TRUE(router.answered_without_server(frame()));
  to_client.clear();
  ASSERT_TRUE(router.route_query("DEALLOCATE q", nullptr));
  EXPECT_EQ(to_client, std::string("C\0\0\0\017DEALLOCATE\0Z\0\0\0\5I", 22));
  EXPECT_FALSE(router.statements().contains("q"));
  EXPECT_FALSE(router.route_query("EXECUTE q", nullptr)) << "needs a server: the caller fails it";
}

TEST_F(Router, CloseOfTheClientsStatementIsAnsweredByTheProxy) {
  ASSERT_TRUE(send_parse("mine", "SELECT 1", server));
  tracker.clear();
  wire.clear();
  pgwire::write_close(wire, 'S', "mine");
  EXPECT_FALSE(router.close_needs_server(frame()));
  to_server.clear();
  auto closed = router.close_client_statement(frame());
  ASSERT_TRUE(closed.has_value());
  EXPECT_TRUE(*closed);
  EXPECT_TRUE(to_server.empty()) << "the server keeps it for other clients";
  EXPECT_EQ(to_client, std::string("3\0\0\0\4", 5));
  EXPECT_FALSE(router.statements().contains("mine"));

  wire.clear();
  pgwire::write_close(wire, 'P', "portal");
  EXPECT_TRUE(router.close_needs_server(frame()));
  EXPECT_EQ(router.close_client_statement(frame()), std::optional<bool>(false));
}

}  // namespace
}  // namespace sluice::proxy
