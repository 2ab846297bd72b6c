#include "proxy/sql_prepared.hpp"

#include <gtest/gtest.h>

namespace sluice::proxy {
namespace {

using Kind = SqlPreparedCommand::Kind;

std::string written_name(std::string_view sql, const SqlPreparedCommand& command) {
  return std::string(sql.substr(command.name_begin, command.name_end - command.name_begin));
}

TEST(SqlPreparedCommand, PrepareWithAndWithoutTypes) {
  const std::string_view plain = "PREPARE Foo AS SELECT $1::int;";
  auto command = parse_sql_prepared_command(plain);
  ASSERT_TRUE(command);
  EXPECT_EQ(command->kind, Kind::kPrepare);
  EXPECT_EQ(command->name, "foo");  // unquoted names fold to lower case
  EXPECT_EQ(written_name(plain, *command), "Foo");
  EXPECT_EQ(command->body, "SELECT $1::int");
  EXPECT_FALSE(command->declares_types);
  EXPECT_EQ(plain.substr(command->statement_end), ";");

  const std::string_view typed =
      "prepare \"My \"\"Q\"\"\" (int, numeric(10, 2)) as\n  select $1, $2  ";
  command = parse_sql_prepared_command(typed);
  ASSERT_TRUE(command);
  EXPECT_EQ(command->name, "My \"Q\"");
  EXPECT_EQ(written_name(typed, *command), "\"My \"\"Q\"\"\"");
  EXPECT_TRUE(command->declares_types);
  EXPECT_EQ(command->body, "select $1, $2");
}

TEST(SqlPreparedCommand, ExecuteForms) {
  const std::string_view with_args = "EXECUTE q1 (1, 'a;b', $$x)$$) -- trailing\n";
  auto command = parse_sql_prepared_command(with_args);
  ASSERT_TRUE(command);
  EXPECT_EQ(command->kind, Kind::kExecute);
  EXPECT_EQ(command->name, "q1");
  EXPECT_EQ(written_name(with_args, *command), "q1");

  const std::string_view explain = "EXPLAIN (ANALYZE, COSTS off) EXECUTE q2(3)";
  command = parse_sql_prepared_command(explain);
  ASSERT_TRUE(command);
  EXPECT_EQ(command->name, "q2");
  EXPECT_EQ(written_name(explain, *command), "q2");

  command = parse_sql_prepared_command("explain analyze verbose execute q3");
  ASSERT_TRUE(command);
  EXPECT_EQ(command->name, "q3");

  const std::string_view create = "CREATE TEMP TABLE t (a) AS EXECUTE q4 (1) WITH NO DATA";
  command = parse_sql_prepared_command(create);
  ASSERT_TRUE(command);
  EXPECT_EQ(command->kind, Kind::kExecute);
  EXPECT_EQ(command->name, "q4");
}

TEST(SqlPreparedCommand, Deallocate) {
  auto command = parse_sql_prepared_command("DEALLOCATE PREPARE q1");
  ASSERT_TRUE(command);
  EXPECT_EQ(command->kind, Kind::kDeallocate);
  EXPECT_EQ(command->name, "q1");
  command = parse_sql_prepared_command("deallocate all;");
  ASSERT_TRUE(command);
  EXPECT_EQ(command->kind, Kind::kDeallocateAll);
  command = parse_sql_prepared_command("DEALLOCATE prepare");  // a statement named "prepare"
  ASSERT_TRUE(command);
  EXPECT_EQ(command->kind, Kind::kDeallocate);
  EXPECT_EQ(command->name, "prepare");
}

TEST(SqlPreparedCommand, LeavesEverythingElseToPinning) {
  for (std::string_view sql : {
           "SELECT 1",
           "PREPARE a AS SELECT 1; EXECUTE a",  // several statements
           "EXECUTE a; SELECT 1",
           "EXPLAIN SELECT execute FROM t",  // a column named execute
           "CREATE TABLE t AS SELECT 1",
           "PREPARE a SELECT 1",  // no AS
           "PREPARE a AS",
           "EXECUTE",
           "EXECUTE a b",
           "DEALLOCATE a b",
           "PREPARE \"\" AS SELECT 1",
           "EXECUTE \"unterminated",
           "SELECT 'EXECUTE a'",
           "/* PREPARE a AS SELECT 1 */ SELECT 2",
       })
    EXPECT_FALSE(parse_sql_prepared_command(sql)) << sql;
}

TEST(SqlPreparedCommand, CommentsAroundTheStatement) {
  auto command = parse_sql_prepared_command("/* hello */ -- line\n EXECUTE a /* x */ ; /* end */");
  ASSERT_TRUE(command);
  EXPECT_EQ(command->name, "a");
}

TEST(SqlPreparedCommand, LongNamesAreTruncatedAsTheServerDoes) {
  const std::string sql = "EXECUTE " + std::string(70, 'n');
  auto command = parse_sql_prepared_command(sql);
  ASSERT_TRUE(command);
  EXPECT_EQ(command->name, std::string(63, 'n'));
}

}  // namespace
}  // namespace sluice::proxy
