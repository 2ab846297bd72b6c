#include "proxy/prepared_statements.hpp"

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

  Verdict reply(char type) {
    before.clear();
    after.clear();
    return tracker.on_server_message(type, before, after, replacement, client, server);
  }
};

TEST_F(TrackerFixture, AnswersAtOnceWhenNothingIsOwed) {
  std::string out;
  tracker.answer({Kind::kCloseComplete, nullptr, "x"}, out);
  EXPECT_EQ(out, std::string("3\0\0\0\4", 5));
  EXPECT_TRUE(tracker.empty());
}

TEST_F(TrackerFixture, AnswerWaitsForTheRepliesBeforeIt) {
  std::string out;
  tracker.expect({Kind::kBind, nullptr, {}});
  tracker.answer({Kind::kParseComplete, nullptr, "s"}, out);
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
  tracker.answer({Kind::kCloseComplete, later, "gone"}, out);  // skipped: the name comes back
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
  EXPECT_EQ(reply('E'), Verdict::kReplace);
  EXPECT_NE(replacement.find("prepared statement \"x\" does not exist"), std::string::npos);
  EXPECT_EQ(reply('Z'), Verdict::kForward);
  EXPECT_TRUE(tracker.empty());
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
