#include "proxy/prepared_statements.hpp"
#include "proxy/response_tracker.hpp"

#include <gtest/gtest.h>

namespace sluice::proxy {
namespace {

using Kind = ResponseTracker::Kind;
using Verdict = ResponseTracker::Verdict;

pgwire::Bytes bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(StatementRegistry, SameDefinitionSameStatementWhileInUse) {
  StatementRegistry registry;
  auto a = registry.intern(bytes(std::string_view("select 1\0\0\0", 11)));
  auto b = registry.intern(bytes(std::string_view("select 1\0\0\0", 11)));
  auto c = registry.intern(bytes(std::string_view("select 2\0\0\0", 11)));
  EXPECT_EQ(a, b);
  EXPECT_NE(a->id, c->id);
  EXPECT_NE(a->server_name, c->server_name);
  EXPECT_EQ(registry.size(), 2u);
  a.reset();
  b.reset();
  EXPECT_EQ(registry.size(), 1u) << "an unused definition is forgotten";
}

TEST(StatementRegistry, StatementsMayOutliveTheRegistry) {
  StatementRef kept;
  {
    StatementRegistry registry;
    kept = registry.intern(bytes("x"));
  }
  EXPECT_EQ(kept->definition, "x");
  EXPECT_EQ(kept.use_count(), 1);
  kept.reset();  // its deleter must not touch the destroyed registry (ASan build checks)
}

TEST(StatementCache, EvictsLeastRecentlyUsed) {
  StatementRegistry registry;
  auto s1 = registry.intern(bytes("1"));
  auto s2 = registry.intern(bytes("2"));
  auto s3 = registry.intern(bytes("3"));
  StatementCache cache(2);
  EXPECT_EQ(cache.add(s1), nullptr);
  EXPECT_EQ(cache.add(s2), nullptr);
  EXPECT_TRUE(cache.has(*s1));  // s1 is now the most recent
  EXPECT_EQ(cache.add(s3), s2);
  EXPECT_FALSE(cache.has(*s2));
  EXPECT_TRUE(cache.has(*s1));
  EXPECT_TRUE(cache.has(*s3));
  cache.restore(s2);  // a Close the server skipped: back without evicting
  EXPECT_EQ(cache.size(), 3u);
  cache.remove(*s1);
  EXPECT_FALSE(cache.has(*s1));
}

struct TrackerFixture : ::testing::Test {
  StatementRegistry registry;
  StatementCache server{10};
  ClientStatements client;
  ResponseTracker tracker;
  std::string before, after, replacement;

  Verdict reply(char type, std::string_view body = {}) {
    before.clear();
    after.clear();
    if (type == 'Z') tracker.note_ready(body.empty() ? 'I' : body[0]);
    return tracker.on_server_message(type, bytes(body), before, after, replacement, client, server);
  }
  Verdict error(std::string_view sqlstate, std::string_view message) {
    const std::string body = error_body(sqlstate, message);
    return reply('E', body);
  }
};

TEST_F(TrackerFixture, AnswersAtOnceWhenNothingIsOwed) {
  std::string out;
  tracker.answer({Kind::kCloseComplete, nullptr, "x"}, out, client);
  EXPECT_EQ(out, std::string("3\0\0\0\4", 5));
  EXPECT_TRUE(tracker.empty());
}

TEST_F(TrackerFixture, AnswerWaitsForTheRepliesBeforeIt) {
  std::string out;
  tracker.expect({Kind::kBind, nullptr, {}});
  tracker.answer({Kind::kParseComplete, nullptr, "s"}, out, client);
  tracker.expect({Kind::kSync, nullptr, {}});
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(reply('2'), Verdict::kForward);
  EXPECT_TRUE(before.empty());
  EXPECT_EQ(after, std::string("1\0\0\0\4", 5)) << "ParseComplete right after BindComplete";
  EXPECT_EQ(reply('Z'), Verdict::kForward);
  EXPECT_TRUE(tracker.empty());
}

TEST_F(TrackerFixture, RepliesToTheProxysOwnMessagesAreDropped) {
  auto s = registry.intern(bytes("q"));
  tracker.expect({Kind::kSwallowClose, s, {}});
  tracker.expect({Kind::kSwallowParse, s, {}});
  tracker.expect({Kind::kBind, nullptr, {}});
  EXPECT_EQ(reply('3'), Verdict::kDrop);
  EXPECT_EQ(reply('1'), Verdict::kDrop);
  EXPECT_EQ(reply('2'), Verdict::kForward);
  EXPECT_TRUE(tracker.empty());
}

TEST_F(TrackerFixture, FailedParseForgetsTheStatementAndSkipsToSync) {
  auto bad = registry.intern(bytes("bad"));
  auto later = registry.intern(bytes("later"));
  client.emplace("bad", bad);
  client.emplace("later", later);
  server.add(bad);
  server.add(later);
  tracker.expect({Kind::kParse, bad, "bad"});
  tracker.expect({Kind::kParse, later, "later"});  // skipped by the server
  std::string out;
  tracker.answer({Kind::kCloseComplete, later, "gone"}, out,
                 client);  // skipped: the name comes back
  tracker.expect({Kind::kSync, nullptr, {}});
  EXPECT_EQ(reply('E'), Verdict::kForward);
  EXPECT_TRUE(after.empty()) << "answers after the error were skipped, not sent";
  EXPECT_FALSE(client.contains("bad"));
  EXPECT_FALSE(client.contains("later"));
  EXPECT_TRUE(client.contains("gone"));
  EXPECT_FALSE(server.has(*bad));
  EXPECT_FALSE(server.has(*later));
  EXPECT_EQ(reply('Z'), Verdict::kForward);
  EXPECT_TRUE(tracker.empty());
}

TEST_F(TrackerFixture, FailAsReplacesTheServersError) {
  tracker.expect(
      {Kind::kFailAs, nullptr, error_body("26000", "prepared statement \"x\" does not exist")});
  tracker.expect({Kind::kExecute, nullptr, {}});
  tracker.expect({Kind::kSync, nullptr, {}});
  EXPECT_EQ(error("26000", "prepared statement \"sluice_missing\" does not exist"),
            Verdict::kReplace);
  EXPECT_NE(replacement.find("prepared statement \"x\" does not exist"), std::string::npos);
  EXPECT_EQ(reply('Z'), Verdict::kForward);
  EXPECT_TRUE(tracker.empty());
}

TEST_F(TrackerFixture, FailAsKeepsAFailedTransactionsOwnError) {
  tracker.expect({Kind::kFailAs, nullptr, error_body("42P05", "already exists")});
  tracker.expect({Kind::kSync, nullptr, {}});
  EXPECT_EQ(error("25P02", "current transaction is aborted"), Verdict::kForward);
  EXPECT_EQ(reply('Z', "E"), Verdict::kForward);
  EXPECT_TRUE(tracker.empty());
}

TEST_F(TrackerFixture, SqlPrepareFailureForgetsTheStatementAndMovesThePosition) {
  auto s = registry.intern(bytes(std::string_view("SELECT nosuch\0\0\0", 16)));
  client.emplace("c", s);
  server.add(s);
  // Client: "PREPARE c AS SELECT nosuch" (nosuch at 21); server: "PREPARE sluice_1 AS …" (28).
  tracker.expect({Kind::kSqlPrepare, s, "c"});
  tracker.expect({Kind::kSimpleQuery, nullptr, {}, ResponseTracker::Rewrite{0, 8, 8, 1}});
  std::string body = error_body("42703", "column \"nosuch\" does not exist");
  body.insert(body.size() - 1, std::string("P28\0", 4));
  EXPECT_EQ(reply('E', body), Verdict::kReplace);
  EXPECT_NE(replacement.find(std::string("P21\0", 4)), std::string::npos);
  EXPECT_EQ(replacement.find("P28"), std::string::npos);
  EXPECT_FALSE(client.contains("c"));
  EXPECT_FALSE(server.has(*s));
  EXPECT_EQ(reply('Z'), Verdict::kForward);
  EXPECT_TRUE(tracker.empty());
}

TEST_F(TrackerFixture, TheProxysPrepareBeforeExecuteIsDroppedOrUndone) {
  auto s = registry.intern(bytes(std::string_view("SELECT 1\0\0\0", 11)));
  auto evicted = registry.intern(bytes(std::string_view("SELECT 2\0\0\0", 11)));
  server.add(s);
  tracker.expect({Kind::kSwallowSqlDeallocate, evicted});
  tracker.expect({Kind::kSwallowSqlPrepare, s});
  tracker.expect({Kind::kSimpleQuery, nullptr, {}, ResponseTracker::Rewrite{40, 8, 8, 1}});
  EXPECT_EQ(reply('C'), Verdict::kDrop);
  EXPECT_EQ(reply('C'), Verdict::kDrop);
  EXPECT_EQ(reply('T'), Verdict::kForward);
  EXPECT_EQ(reply('C'), Verdict::kForward);
  EXPECT_EQ(reply('Z'), Verdict::kForward);
  EXPECT_TRUE(tracker.empty());

  // Now the proxy's DEALLOCATE fails (a failed transaction): nothing after it ran.
  server.remove(*evicted);
  tracker.expect({Kind::kSwallowSqlDeallocate, evicted});
  tracker.expect({Kind::kSwallowSqlPrepare, s});
  tracker.expect({Kind::kSimpleQuery, nullptr, {}, ResponseTracker::Rewrite{40, 8, 8, 1}});
  std::string body = error_body("25P02", "current transaction is aborted");
  EXPECT_EQ(reply('E', body), Verdict::kForward) << "no position to move";
  EXPECT_TRUE(server.has(*evicted)) << "the server still has what it did not deallocate";
  EXPECT_FALSE(server.has(*s));
  EXPECT_EQ(reply('Z', "E"), Verdict::kForward);
  EXPECT_TRUE(tracker.empty());
}

TEST_F(TrackerFixture, FailAsQueryReplacesOnlyTheArrangedError) {
  tracker.expect({Kind::kFailAsQuery, nullptr, error_body("42P05", "already exists")});
  tracker.expect({Kind::kSimpleQuery});
  EXPECT_EQ(error("26000", "prepared statement \"sluice_missing\" does not exist"),
            Verdict::kReplace);
  EXPECT_NE(replacement.find("42P05"), std::string::npos);
  EXPECT_EQ(reply('Z', "T"), Verdict::kForward);
  tracker.expect({Kind::kFailAsQuery, nullptr, error_body("42P05", "already exists")});
  tracker.expect({Kind::kSimpleQuery});
  EXPECT_EQ(error("25P02", "current transaction is aborted"), Verdict::kForward);
  EXPECT_EQ(reply('Z', "E"), Verdict::kForward);
  EXPECT_TRUE(tracker.empty());
}

TEST_F(TrackerFixture, LocalAnswersCarryTheTransactionStatusOfTheirTurn) {
  auto s = registry.intern(bytes(std::string_view("SELECT 1\0\0\0", 11)));
  client.emplace("a", s);
  std::string out;
  tracker.answer({Kind::kLocalDeallocate, s, "a"}, out, client);
  EXPECT_EQ(out, std::string("C\0\0\0\017DEALLOCATE\0Z\0\0\0\5I", 22));
  EXPECT_FALSE(client.contains("a"));

  // Behind a query whose transaction fails: PostgreSQL's refusal, and the name stays.
  client.emplace("a", s);
  out.clear();
  tracker.expect({Kind::kSimpleQuery});
  tracker.answer({Kind::kLocalDeallocateAll}, out, client);
  tracker.answer({Kind::kLocalPrepare, s, "a"}, out, client);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(reply('Z', "E"), Verdict::kForward);
  EXPECT_NE(after.find("25P02"), std::string::npos);
  EXPECT_EQ(after.back(), 'E');
  EXPECT_FALSE(client.contains("a")) << "a refused PREPARE never made its name";
  EXPECT_TRUE(tracker.empty());

  client.emplace("b", s);
  out.clear();
  tracker.note_ready('T');
  tracker.answer({Kind::kLocalDeallocateAll}, out, client);
  EXPECT_EQ(out, std::string("C\0\0\0\023DEALLOCATE ALL\0Z\0\0\0\5T", 26));
  EXPECT_TRUE(client.empty());
}

TEST(ErrorPosition, MovesBackOntoTheClientsText) {
  const ResponseTracker::Rewrite rewrite{10, 8, 8, 1};  // 10 characters of prefix
  auto with_position = [](std::string_view p) {
    std::string body = error_body("42601", "syntax error");
    body.insert(body.size() - 1, "P" + std::string(p) + std::string(1, '\0'));
    return body;
  };
  auto position = [&](std::string_view p) -> std::string {
    const std::string body = with_position(p);
    auto moved = error_for_client(bytes(body), rewrite);
    if (!moved) return "unchanged";
    const size_t at = moved->find('P');
    if (at == std::string::npos) return "dropped";
    return moved->substr(at + 1, moved->find('\0', at) - at - 1);
  };
  EXPECT_EQ(position("5"), "dropped");     // inside the proxy's prefix
  EXPECT_EQ(position("12"), "2");          // before the name
  EXPECT_EQ(position("20"), "9");          // inside the server's name: the name's start
  EXPECT_EQ(position("30"), "13");         // after it: shifted by the names' difference
  EXPECT_EQ(position("x1"), "unchanged");  // not a number: left alone
  const std::string none = error_body("42601", "syntax error");
  EXPECT_FALSE(error_for_client(bytes(none), rewrite));
  EXPECT_EQ(character_count("h\xc3\xa9llo"), 5);
  const std::string named =
      error_body("42601", "wrong number of parameters for prepared statement \"sluice_2\"");
  auto renamed = error_for_client(bytes(named), rewrite, std::string_view("sluice_2\0Typed", 14));
  ASSERT_TRUE(renamed);
  EXPECT_NE(renamed->find("statement \"Typed\""), std::string::npos);
}

TEST_F(TrackerFixture, ErrorInsideASimpleQueryDoesNotSkip) {
  tracker.expect({Kind::kSimpleQuery, nullptr, {}});
  tracker.expect({Kind::kSync, nullptr, {}});
  EXPECT_EQ(reply('E'), Verdict::kForward);
  EXPECT_EQ(reply('Z'), Verdict::kForward);
  EXPECT_FALSE(tracker.empty()) << "the Sync still owes its ReadyForQuery";
  EXPECT_EQ(reply('Z'), Verdict::kForward);
  EXPECT_TRUE(tracker.empty());
}

TEST_F(TrackerFixture, AsynchronousMessagesPassWhenNothingIsOwed) {
  EXPECT_EQ(reply('N'), Verdict::kForward);
  EXPECT_EQ(reply('A'), Verdict::kForward);
  EXPECT_EQ(reply('E'), Verdict::kForward);
}

}  // namespace
}  // namespace sluice::proxy
