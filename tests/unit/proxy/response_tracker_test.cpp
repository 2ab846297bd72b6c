// The release rule and what is outstanding, as the backend link relies on them: a lent
// connection goes back only when every request is answered, the extended protocol is synced,
// the session is outside a transaction and nothing of the proxy's own is still due.
#include "proxy/response_tracker.hpp"

#include <gtest/gtest.h>

namespace sluice::proxy {
namespace {

using Kind = ResponseTracker::Kind;
using Verdict = ResponseTracker::Verdict;

pgwire::Bytes bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct ReleaseRule : ::testing::Test {
  StatementCache server{10};
  ClientStatements client;
  ResponseTracker tracker;
  std::string before, after, replacement;

  // One server message, as the backend link passes it on. False for an unrequested
  // ReadyForQuery.
  bool reply(char type, std::string_view body = {}) {
    before.clear();
    after.clear();
    bool requested = true;
    if (type == 'Z') requested = tracker.note_ready(body.empty() ? 'I' : body[0]);
    tracker.on_server_message(type, bytes(body), before, after, replacement, client, server);
    return requested;
  }
  void query() { tracker.expect({Kind::kSimpleQuery}); }
  // Parse, Bind, Execute and Sync of one unnamed statement.
  void extended_round() {
    tracker.note_unsynced();
    tracker.expect({Kind::kParse});
    tracker.expect({Kind::kBind});
    tracker.expect({Kind::kExecute});
    tracker.expect({Kind::kSync});
  }
};

TEST_F(ReleaseRule, FreshTrackerMayRelease) {
  EXPECT_TRUE(tracker.may_release());
  EXPECT_FALSE(tracker.busy());
  EXPECT_EQ(tracker.transaction_status(), 'I');
}

TEST_F(ReleaseRule, AtEveryReadyForQueryKind) {
  query();
  EXPECT_FALSE(tracker.may_release());
  EXPECT_TRUE(tracker.busy());
  reply('C', std::string_view("SELECT 1\0", 9));
  EXPECT_FALSE(tracker.may_release()) << "the query's ReadyForQuery has not come";
  EXPECT_TRUE(reply('Z', "I"));
  EXPECT_TRUE(tracker.may_release()) << "idle: the connection goes back";

  query();  // BEGIN
  EXPECT_TRUE(reply('Z', "T"));
  EXPECT_FALSE(tracker.may_release()) << "inside a transaction block";
  EXPECT_FALSE(tracker.busy()) << "but not waiting for the server";
  EXPECT_EQ(tracker.transaction_status(), 'T');

  query();  // a failing statement
  reply('E', error_body("22012", "division by zero"));
  EXPECT_TRUE(reply('Z', "E"));
  EXPECT_FALSE(tracker.may_release()) << "a failed transaction still holds the connection";
  EXPECT_EQ(tracker.transaction_status(), 'E');

  query();  // ROLLBACK
  EXPECT_TRUE(reply('Z', "I"));
  EXPECT_TRUE(tracker.may_release());
}

TEST_F(ReleaseRule, PipelinedExtendedProtocol) {
  extended_round();
  extended_round();
  EXPECT_EQ(tracker.outstanding_requests(), 2);
  for (char type : {'1', '2'}) reply(type);
  reply('C', std::string_view("SELECT 1\0", 9));
  EXPECT_TRUE(reply('Z', "I"));
  EXPECT_EQ(tracker.outstanding_requests(), 1);
  EXPECT_FALSE(tracker.may_release()) << "the second round is still owed";
  for (char type : {'1', '2'}) reply(type);
  reply('C', std::string_view("SELECT 1\0", 9));
  EXPECT_TRUE(reply('Z', "I"));
  EXPECT_TRUE(tracker.may_release());
}

TEST_F(ReleaseRule, OnlyAnIdleSyncOwedOnceItsBatchIsAnswered) {
  // A Parse and Sync (a driver preparing): once ParseComplete came, the Sync settles nothing.
  tracker.note_unsynced();
  tracker.expect({Kind::kParse});
  tracker.expect(Kind::kSync);
  EXPECT_FALSE(tracker.only_idle_sync_owed()) << "the Parse is still owed";
  reply('1');
  EXPECT_TRUE(tracker.only_idle_sync_owed());
  EXPECT_TRUE(reply('Z', "I"));
  EXPECT_FALSE(tracker.only_idle_sync_owed()) << "nothing owed";
  // An execution outside a block: its Sync commits.
  extended_round();
  for (char type : {'1', '2'}) reply(type);
  reply('C', std::string_view("UPDATE 1\0", 9));
  EXPECT_FALSE(tracker.only_idle_sync_owed());
  EXPECT_TRUE(reply('Z', "T"));
  // Inside a block no Sync commits.
  extended_round();
  for (char type : {'1', '2'}) reply(type);
  reply('C', std::string_view("UPDATE 1\0", 9));
  EXPECT_TRUE(tracker.only_idle_sync_owed());
  EXPECT_TRUE(reply('Z', "T"));
  // A lone Sync is a request of its own: it gets its error.
  tracker.expect(Kind::kSync);
  EXPECT_FALSE(tracker.only_idle_sync_owed());
}

TEST_F(ReleaseRule, UnsyncedMessagesHoldTheConnection) {
  tracker.note_unsynced();
  tracker.expect({Kind::kParse});
  reply('1');
  EXPECT_TRUE(tracker.empty());
  EXPECT_FALSE(tracker.may_release()) << "no Sync yet: the server may still be in a transaction";
  EXPECT_TRUE(tracker.busy());
  tracker.expect({Kind::kSync});
  EXPECT_TRUE(reply('Z', "I"));
  EXPECT_TRUE(tracker.may_release());
}

TEST_F(ReleaseRule, SyncAnsweredByTheProxy) {
  tracker.note_unsynced();
  tracker.note_synced();
  EXPECT_TRUE(tracker.may_release());
}

TEST_F(ReleaseRule, ErrorMidPipelineSkipsToSync) {
  extended_round();
  extended_round();
  reply('1');
  reply('E', error_body("42601", "syntax error"));  // the server skips to the first Sync
  EXPECT_TRUE(reply('Z', "I"));
  EXPECT_EQ(tracker.outstanding_requests(), 1);
  EXPECT_FALSE(tracker.may_release());
  for (char type : {'1', '2'}) reply(type);
  reply('C', std::string_view("SELECT 1\0", 9));
  EXPECT_TRUE(reply('Z', "I"));
  EXPECT_TRUE(tracker.empty());
  EXPECT_TRUE(tracker.may_release());
}

TEST_F(ReleaseRule, UnrequestedReadyForQueryIsRefused) {
  EXPECT_FALSE(reply('Z', "I")) << "the server's state is unknown: the link drops the connection";
  query();
  EXPECT_TRUE(reply('Z', "I"));
  EXPECT_FALSE(reply('Z', "I"));
}

TEST_F(ReleaseRule, ProxyAnswersWaitTheirTurn) {
  query();
  std::string out;
  tracker.answer({Kind::kLocalDeallocateAll}, out, client);
  EXPECT_TRUE(out.empty()) << "due after the query before it";
  EXPECT_FALSE(tracker.may_release());
  EXPECT_TRUE(reply('Z', "I"));
  EXPECT_NE(after.find("DEALLOCATE ALL"), std::string::npos);
  EXPECT_TRUE(tracker.may_release());
}

TEST_F(ReleaseRule, ClearStartsOver) {
  extended_round();
  query();
  EXPECT_TRUE(reply('Z', "T"));
  tracker.clear();
  EXPECT_TRUE(tracker.may_release());
  EXPECT_EQ(tracker.outstanding_requests(), 0);
  EXPECT_EQ(tracker.transaction_status(), 'I');
}

}  // namespace
}  // namespace sluice::proxy
