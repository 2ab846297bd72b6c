#include "proxy/pinning.hpp"

#include "proxy/sql_lexer.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sluice::proxy {
namespace {

std::optional<PinReason> pin(std::string_view sql) {
  return statement_pin_reason(sql);
}

TEST(Pinning, PlainQueriesDoNotPin) {
  EXPECT_FALSE(pin("SELECT abalance FROM pgbench_accounts WHERE aid = 1;"));
  EXPECT_FALSE(pin("BEGIN; UPDATE accounts SET balance = balance - 1 WHERE id = 2; COMMIT;"));
  EXPECT_FALSE(pin("INSERT INTO t VALUES ($1, $2)"));
  EXPECT_FALSE(pin("COPY t FROM STDIN"));
  EXPECT_FALSE(pin(""));
  EXPECT_FALSE(pin(";;"));
}

// Single statements without '(' are decided from their first word (a shortcut); the ones that
// look the same but are not plain must still be caught.
TEST(Pinning, ShortcutForPlainStatementsMissesNothing) {
  EXPECT_FALSE(pin("  select a from b ;  "));
  EXPECT_FALSE(pin("UPDATE t SET a = 1 WHERE id = 2"));
  EXPECT_FALSE(pin("select intox, a from t"));
  // SELECT is recognised by its six letters and what follows them.
  EXPECT_FALSE(pin("select"));
  EXPECT_FALSE(pin("SeLeCt\t1"));
  EXPECT_EQ(pin("select\n* INTO TEMP t FROM u"), PinReason::kTemporaryObject);
  EXPECT_EQ(pin("select$1 ; LISTEN c"), PinReason::kListen);
  EXPECT_EQ(pin("SELECT * INTO TEMPORARY t FROM u"), PinReason::kTemporaryObject);
  EXPECT_EQ(pin("select * into temp t from u;"), PinReason::kTemporaryObject);
  EXPECT_EQ(pin("SELECT 1; SET a.b = 1"), PinReason::kSetStatement);
  EXPECT_EQ(pin("SELECT 1 ;LISTEN c"), PinReason::kListen);
  EXPECT_EQ(pin("INSERT INTO t VALUES (nextval('s'))"), PinReason::kSequenceFunction);
  EXPECT_EQ(pin("/* x */ SET a.b = 1"), PinReason::kSetStatement);
  EXPECT_EQ(pin("-- note\nLISTEN c"), PinReason::kListen);
  EXPECT_EQ(pin("\tSET a.b = 1;"), PinReason::kSetStatement);
  EXPECT_EQ(pin("set_x"), std::nullopt);
}

// The shortcut reads 16 bytes at a time (the last block overlapping the one before): what it
// looks for is found at every offset, in the middle of a block or across two.
TEST(Pinning, ShortcutFindsWhatItLooksForAtEveryOffset) {
  for (size_t pad = 0; pad < 48; ++pad) {
    const std::string filler = "SELECT a" + std::string(pad, 'b') + " FROM t";
    SCOPED_TRACE(filler);
    EXPECT_FALSE(pin(filler));
    EXPECT_FALSE(pin(filler + " WHERE aid = 1;  "));
    EXPECT_EQ(pin(filler + " WHERE x = nextval('s')"), PinReason::kSequenceFunction);
    EXPECT_EQ(pin(filler + " WHERE x = NEXTVAL ('s');"), PinReason::kSequenceFunction);
    EXPECT_EQ(pin(filler + " INTO TEMP u"), PinReason::kTemporaryObject);
    EXPECT_EQ(pin(filler + " iNtO temporary u;"), PinReason::kTemporaryObject);
    EXPECT_EQ(pin(filler + "; LISTEN c"), PinReason::kListen);
    EXPECT_EQ(pin(filler + ";LISTEN c;"), PinReason::kListen);
    EXPECT_EQ(pin("UPDATE t SET a" + std::string(pad, 'b') + " = setval('s', 1)"),
              PinReason::kSequenceFunction);
    EXPECT_FALSE(pin("UPDATE t SET a" + std::string(pad, 'i') + " = 1 WHERE b IN ('x')"));
  }
}

// The word-at-a-time keyword comparison agrees with the byte-at-a-time one: for every byte in
// every position, at every length the word path splits differently (8, 4 and single bytes).
TEST(SqlLexer, IsLettersAgreesWithIs) {
  for (std::string_view keyword : {"a", "into", "begin", "select", "rollback", "savepoint"}) {
    for (size_t at = 0; at < keyword.size(); ++at) {
      for (int c = 0; c < 256; ++c) {
        std::string word(keyword);
        word[at] = static_cast<char>(c);
        EXPECT_EQ(sql::is_letters(word, keyword), sql::is(word, keyword)) << keyword << " " << c;
      }
    }
    std::string upper(keyword);
    for (char& c : upper) c = static_cast<char>(c - 'a' + 'A');
    EXPECT_TRUE(sql::is_letters(upper, keyword));
    EXPECT_FALSE(sql::is_letters(upper + "x", keyword));
    EXPECT_FALSE(sql::is_letters(upper.substr(1), keyword));
  }
}

TEST(Pinning, SessionSetPinsButTransactionScopedSetDoesNot) {
  EXPECT_EQ(pin("SET search_path = x"), PinReason::kSetStatement);
  EXPECT_EQ(pin("  set  TimeZone TO 'UTC'"), PinReason::kSetStatement);
  EXPECT_EQ(pin("SET SESSION statement_timeout = 5"), PinReason::kSetStatement);
  EXPECT_EQ(pin("RESET ALL"), PinReason::kSetStatement);
  EXPECT_EQ(pin("SELECT set_config('a.b', '1', false)"), PinReason::kSetStatement);
  EXPECT_EQ(pin("select pg_catalog.set_config ('a.b', '1', false)"), PinReason::kSetStatement);
  EXPECT_EQ(pin("BEGIN; SET ROLE other; COMMIT"), PinReason::kSetRole);
  EXPECT_EQ(pin("SET SESSION AUTHORIZATION other"), PinReason::kSetRole);
  EXPECT_EQ(pin("SET session ROLE other"), PinReason::kSetRole);
  EXPECT_FALSE(pin("SET LOCAL ROLE other"));
  EXPECT_FALSE(pin("SET LOCAL statement_timeout = 5"));
  EXPECT_FALSE(pin("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"));
  EXPECT_FALSE(pin("SET CONSTRAINTS ALL DEFERRED"));
}

TEST(Pinning, EachKindOfSessionState) {
  EXPECT_EQ(pin("PREPARE p AS SELECT 1"), PinReason::kPreparedStatement);
  EXPECT_EQ(pin("EXECUTE p"), PinReason::kPreparedStatement);
  EXPECT_EQ(pin("DEALLOCATE p"), PinReason::kPreparedStatement);
  EXPECT_EQ(pin("DISCARD ALL"), PinReason::kDiscard);
  EXPECT_EQ(pin("CREATE TEMP TABLE t (a int)"), PinReason::kTemporaryObject);
  EXPECT_EQ(pin("create global temporary table t (a int)"), PinReason::kTemporaryObject);
  EXPECT_EQ(pin("CREATE OR REPLACE TEMP VIEW v AS SELECT 1"), PinReason::kTemporaryObject);
  EXPECT_EQ(pin("CREATE TEMPORARY SEQUENCE s"), PinReason::kTemporaryObject);
  EXPECT_EQ(pin("SELECT 1 INTO TEMP t"), PinReason::kTemporaryObject);
  EXPECT_EQ(pin("DECLARE c CURSOR WITH HOLD FOR SELECT 1"), PinReason::kHoldCursor);
  EXPECT_FALSE(pin("DECLARE c CURSOR FOR SELECT 1"));
  EXPECT_EQ(pin("LISTEN channel"), PinReason::kListen);
  EXPECT_FALSE(pin("UNLISTEN *"));
  EXPECT_EQ(pin("LOAD 'auto_explain'"), PinReason::kLoad);
  EXPECT_EQ(pin("SELECT nextval('s')"), PinReason::kSequenceFunction);
  EXPECT_EQ(pin("SELECT setval('s', 5)"), PinReason::kSequenceFunction);
  EXPECT_EQ(pin("SELECT pg_advisory_lock(1)"), PinReason::kAdvisoryLock);
  EXPECT_EQ(pin("SELECT pg_try_advisory_lock_shared(1, 2)"), PinReason::kAdvisoryLock);
  EXPECT_FALSE(pin("SELECT pg_advisory_xact_lock(1)"));
  EXPECT_FALSE(pin("CREATE TABLE temp (a int)"));  // a table named temp is not temporary
}

TEST(Pinning, KeywordsAreWholeWordsInAnyCase) {
  EXPECT_EQ(pin("sEt search_path = x"), PinReason::kSetStatement);
  EXPECT_EQ(pin("SELECT 1; Set work_mem = '8MB'"), PinReason::kSetStatement);
  EXPECT_EQ(pin("SET"), PinReason::kSetStatement);  // a syntax error, but never shared state
  // Identifiers that merely contain a keyword, in ASCII or UTF-8, are not the keyword.
  EXPECT_FALSE(pin("SELECT temperature FROM readings INTO TEMPerature_log"));
  EXPECT_FALSE(pin("SELECT tempé FROM t INTO tëmp"));
  EXPECT_FALSE(pin("SELECT reset_count, settings FROM stats"));
  EXPECT_FALSE(pin("SELECT nextval_like(1)"));
  // Only a function call counts, not a column named like one.
  EXPECT_FALSE(pin("SELECT nextval FROM t"));
}

TEST(Pinning, LiteralsCommentsAndQuotedNamesAreIgnored) {
  EXPECT_FALSE(pin("SELECT 'SET x = 1'"));
  EXPECT_FALSE(pin("SELECT 'it''s; SET x = 1'"));
  EXPECT_FALSE(pin("SELECT E'\\'; SET x = 1'"));
  EXPECT_FALSE(pin("SELECT \"set_config\" FROM t"));
  EXPECT_FALSE(pin("-- SET x = 1\nSELECT 1"));
  EXPECT_FALSE(pin("/* SET x /* nested */ = 1 */ SELECT 1"));
  EXPECT_FALSE(pin("SELECT $$; SET x = 1$$"));
  EXPECT_FALSE(pin("SELECT $tag$ LISTEN x; $tag$"));
  EXPECT_FALSE(pin("SELECT nextval"));  // a column, not a call
  EXPECT_EQ(pin("SELECT $1; SET x = 1"), PinReason::kSetStatement);
  EXPECT_EQ(pin("/* c */ SET x = 1"), PinReason::kSetStatement);
  EXPECT_EQ(pin("SELECT 1; LISTEN x"), PinReason::kListen);
}

TEST(Pinning, HostileTextNeverCrashes) {
  for (std::string_view s : {"'", "\"", "$", "$a", "$a$", "/*", "--", "E'\\", "$1$", "'''"})
    EXPECT_FALSE(pin(s)) << s;
}

TEST(Pinning, EveryReasonHasTextAndLabel) {
  for (int i = 0; i <= static_cast<int>(PinReason::kUnexpectedParameterChange); ++i) {
    EXPECT_NE(pin_reason_text(static_cast<PinReason>(i)), "unknown");
    EXPECT_NE(pin_reason_label(static_cast<PinReason>(i)), "unknown");
  }
}

}  // namespace
}  // namespace sluice::proxy

namespace sluice::proxy {
namespace {

TEST(DropsAllStatements, DeallocateAllAndDiscardAll) {
  EXPECT_TRUE(drops_all_statements("DEALLOCATE ALL"));
  EXPECT_TRUE(drops_all_statements("deallocate prepare all;"));
  EXPECT_TRUE(drops_all_statements("select 1; DISCARD ALL"));
  EXPECT_FALSE(drops_all_statements("DEALLOCATE s1"));
  EXPECT_FALSE(drops_all_statements("DISCARD TEMP"));
  EXPECT_FALSE(drops_all_statements("select 'x; discard all'"));
  EXPECT_FALSE(drops_all_statements("select 1 -- ; deallocate all"));
}

}  // namespace
}  // namespace sluice::proxy

namespace sluice::proxy {
namespace {

TEST(StatementEffects, SettingsAreTrackedAndOtherStateStillPins) {
  auto e = statement_effects("SET search_path = app; SELECT 1");
  EXPECT_TRUE(e.changes_settings);
  EXPECT_FALSE(e.pin);
  e = statement_effects("SET x.y = 1; CREATE TEMP TABLE t (a int)");
  EXPECT_TRUE(e.changes_settings);
  EXPECT_EQ(e.pin, PinReason::kTemporaryObject) << "a SET must not hide what follows it";
  e = statement_effects("select set_config('a.b', 'c', false)");
  EXPECT_TRUE(e.changes_settings);
  EXPECT_FALSE(e.pin);
  e = statement_effects("SET LOCAL work_mem = '8MB'");
  EXPECT_FALSE(e.changes_settings);
  e = statement_effects("RESET ALL");
  EXPECT_TRUE(e.changes_settings);
  e = statement_effects("SELECT 'SET x = 1'");
  EXPECT_FALSE(e.changes_settings);
}

}  // namespace
}  // namespace sluice::proxy

namespace sluice::proxy {
namespace {

TEST(CustomSettingNames, DottedNamesInTextAndLiterals) {
  std::vector<std::string> names;
  collect_custom_setting_names("select set_config('app.tenant_id', '42', false)", names);
  collect_custom_setting_names("SET my.flag = on; SET work_mem = '1MB'", names);
  collect_custom_setting_names("select set_config('app.tenant_id', '7', false)", names);
  EXPECT_EQ(names, (std::vector<std::string>{"app.tenant_id", "my.flag"}));
  names.clear();
  collect_custom_setting_names("select 1.5, .x, a., 2.b", names);
  EXPECT_TRUE(names.empty()) << names.front();
}

}  // namespace
}  // namespace sluice::proxy
