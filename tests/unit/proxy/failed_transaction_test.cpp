#include "proxy/failed_transaction.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace sluice::proxy {
namespace {

using Outcome = FailedTransaction::Outcome;

// One client message as the session hands it over (a whole frame).
struct Message {
  std::string wire;
  pgwire::Frame frame() const {
    pgwire::Frame f;
    const pgwire::Bytes bytes(reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
    EXPECT_EQ(pgwire::peek_frame(bytes, 1 << 20, f), pgwire::FrameStatus::kReady);
    return f;
  }
};
Message typed(char type, std::string body) {
  std::string out;
  pgwire::MessageWriter w(out);
  w.begin(type);
  w.bytes(body);
  w.end();
  return {out};
}
Message query(std::string_view sql) {
  std::string out;
  pgwire::write_query(out, sql);
  return {out};
}
Message parse(std::string_view name, std::string_view sql) {
  return typed('P', std::string(name) + '\0' + std::string(sql) + '\0' + std::string(2, '\0'));
}
Message bind(std::string_view portal, std::string_view statement) {
  return typed('B',
               std::string(portal) + '\0' + std::string(statement) + '\0' + std::string(6, '\0'));
}
Message execute(std::string_view portal) {
  return typed('E', std::string(portal) + '\0' + std::string(4, '\0'));
}
Message describe(char kind, std::string_view name) {
  return typed('D', std::string(1, kind) + std::string(name) + '\0');
}
Message sync() {
  return typed('S', "");
}

// The message types in `bytes`, with each ErrorResponse's SQLSTATE and each ReadyForQuery's
// status: "E25P02 Z(E)".
std::string summary(std::string_view bytes) {
  std::string out;
  while (bytes.size() >= 5) {
    const size_t length = pgwire::read_be32(reinterpret_cast<const uint8_t*>(bytes.data()) + 1);
    const std::string_view body = bytes.substr(5, length - 4);
    if (!out.empty()) out += ' ';
    out += bytes[0];
    if (bytes[0] == 'E') {
      auto fields = pgwire::decode_error_fields(
          pgwire::Bytes(reinterpret_cast<const uint8_t*>(body.data()), body.size()));
      out += fields ? std::string(fields->sqlstate()) : "?";
      if (fields && fields->severity() != "ERROR") out += "!" + std::string(fields->severity());
    } else if (bytes[0] == 'Z') {
      out += "(" + std::string(body) + ")";
    } else if (bytes[0] == 'C') {
      out += "(" + std::string(body.substr(0, body.size() - 1)) + ")";
    }
    bytes.remove_prefix(1 + length);
  }
  return out;
}

struct Failed : ::testing::Test {
  ClientStatements known;
  std::string out;
  Outcome send(FailedTransaction& tx, const Message& m) { return tx.answer(m.frame(), known, out); }
};

TEST(TransactionBlockEnd, TheStatementsThatEndABlock) {
  EXPECT_EQ(transaction_block_end("commit"), BlockEnd::kCommit);
  EXPECT_EQ(transaction_block_end("END WORK"), BlockEnd::kCommit);
  EXPECT_EQ(transaction_block_end("rollback"), BlockEnd::kRollback);
  EXPECT_EQ(transaction_block_end("ABORT"), BlockEnd::kRollback);
  for (const char* sql :
       {"ROLLBACK", "rollback;", "  Commit  ", "END", "abort work", "ROLLBACK TRANSACTION;",
        "commit and no chain", "/* c */ rollback -- done\n", "ROLLBACK;  "})
    EXPECT_NE(transaction_block_end(sql), BlockEnd::kNone) << sql;
  for (const char* sql : {"", ";", "ROLLBACK TO SAVEPOINT a", "rollback to a", "COMMIT AND CHAIN",
                          "ROLLBACK PREPARED 'x'", "COMMIT PREPARED 'x'", "ROLLBACK; SELECT 1",
                          "select 'rollback'", "rollbacks", "BEGIN", "end if", "commit work work"})
    EXPECT_EQ(transaction_block_end(sql), BlockEnd::kNone) << sql;
}

TEST_F(Failed, RollbackEndsTheBlockAndOtherCommandsAreRefused) {
  FailedTransaction tx(/*loss_reported=*/true, /*skipping=*/false);
  EXPECT_EQ(send(tx, query("select 1")), Outcome::kAnswered);
  EXPECT_EQ(send(tx, query("update t set a = 1")), Outcome::kAnswered);
  EXPECT_EQ(summary(out), "E25P02 Z(E) E25P02 Z(E)");
  out.clear();
  EXPECT_EQ(send(tx, query("ROLLBACK")), Outcome::kEnded);
  EXPECT_EQ(summary(out), "C(ROLLBACK) Z(I)");
}

TEST_F(Failed, CommitOfTheFailedBlockRollsBack) {
  FailedTransaction tx(true, false);
  EXPECT_EQ(send(tx, query("COMMIT")), Outcome::kEnded);
  EXPECT_EQ(summary(out), "C(ROLLBACK) Z(I)");
}

TEST_F(Failed, ACommitBeforeTheClientWasToldIsRefused) {
  // Answered "ROLLBACK" without an error, the client would believe it committed.
  FailedTransaction tx(/*loss_reported=*/false, false);
  EXPECT_EQ(send(tx, query("COMMIT")), Outcome::kAnswered);
  EXPECT_EQ(send(tx, query("COMMIT")), Outcome::kEnded);
  EXPECT_EQ(summary(out), "E08006 Z(E) C(ROLLBACK) Z(I)");
}

TEST_F(Failed, AnExtendedCommitBeforeTheClientWasToldIsRefused) {
  FailedTransaction tx(false, false);
  for (const auto& m : {parse("", "COMMIT"), bind("", ""), execute("")}) send(tx, m);
  EXPECT_EQ(send(tx, sync()), Outcome::kAnswered);
  EXPECT_EQ(summary(out), "E08006 Z(E)");
}

TEST_F(Failed, ARollbackBeforeTheClientWasToldEndsTheBlock) {
  FailedTransaction tx(false, false);
  EXPECT_EQ(send(tx, query("ROLLBACK")), Outcome::kEnded);
  EXPECT_EQ(summary(out), "C(ROLLBACK) Z(I)");
}

TEST_F(Failed, AnUnreportedLossIsExplainedOnceThenTheUsualError) {
  FailedTransaction tx(/*loss_reported=*/false, false);
  send(tx, query("select 1"));
  send(tx, query("select 2"));
  EXPECT_EQ(summary(out), "E08006 Z(E) E25P02 Z(E)");
}

TEST_F(Failed, TheServersErrorBetweenRequestsIsToldAtTheNextCommand) {
  std::string cause;
  pgwire::write_error(cause, "ERROR", "57P01", "terminating connection");
  FailedTransaction tx(false, false, cause.substr(5));
  send(tx, query("select 1"));
  send(tx, query("select 2"));
  EXPECT_EQ(summary(out), "E57P01 Z(E) E25P02 Z(E)");
}

TEST_F(Failed, ExtendedRollbackIsAnsweredPartByPart) {
  FailedTransaction tx(true, false);
  for (const auto& m : {parse("", "ROLLBACK"), bind("", ""), describe('P', ""), execute("")})
    EXPECT_EQ(send(tx, m), Outcome::kAnswered);
  EXPECT_EQ(send(tx, sync()), Outcome::kEnded);
  EXPECT_EQ(summary(out), "1 2 n C(ROLLBACK) Z(I)");
}

TEST_F(Failed, DescribingTheRollbackStatementSaysNoParametersNoRows) {
  FailedTransaction tx(true, false);
  send(tx, parse("s1", "ROLLBACK"));
  send(tx, describe('S', "s1"));
  EXPECT_EQ(summary(out), "1 t n");
}

TEST_F(Failed, ExtendedCommandsAreRefusedAndSkippedToSync) {
  FailedTransaction tx(true, false);
  for (const auto& m : {parse("", "select 1"), bind("", ""), execute("")})
    EXPECT_EQ(send(tx, m), Outcome::kAnswered);
  EXPECT_EQ(send(tx, sync()), Outcome::kAnswered);
  EXPECT_EQ(summary(out), "E25P02 Z(E)") << "one error, then everything up to Sync dropped";
}

TEST_F(Failed, ABatchCutByTheLossIsSkippedToItsSync) {
  FailedTransaction tx(true, /*skipping=*/true);
  send(tx, bind("", ""));
  send(tx, execute(""));
  EXPECT_EQ(send(tx, sync()), Outcome::kAnswered);
  EXPECT_EQ(summary(out), "Z(E)");
}

TEST_F(Failed, ABindToARollbackPreparedBeforeTheLossEndsTheBlock) {
  PreparedStatement statement;
  statement.definition = std::string("ROLLBACK\0\0\0", 11);
  known.emplace("S_3", std::make_shared<const PreparedStatement>(statement));
  FailedTransaction tx(true, false);
  send(tx, bind("", "S_3"));
  send(tx, execute(""));
  EXPECT_EQ(send(tx, sync()), Outcome::kEnded);
  EXPECT_EQ(summary(out), "2 C(ROLLBACK) Z(I)");
}

TEST_F(Failed, MalformedMessagesAreReported) {
  FailedTransaction tx(true, false);
  EXPECT_EQ(send(tx, typed('Q', "no terminator")), Outcome::kMalformed);
  EXPECT_EQ(send(tx, typed('B', "x")), Outcome::kMalformed);
}

TEST_F(Failed, CopyMessagesAndFlushAreIgnored) {
  FailedTransaction tx(true, false);
  EXPECT_EQ(send(tx, typed('d', "row")), Outcome::kAnswered);
  EXPECT_EQ(send(tx, typed('c', "")), Outcome::kAnswered);
  EXPECT_EQ(send(tx, typed('H', "")), Outcome::kAnswered);
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace sluice::proxy
