// SQL-level prepared statements (PREPARE, EXECUTE, DEALLOCATE) read from a simple query, so
// the proxy can give each client its own statement names on any server connection instead of
// pinning. Only a query that is one such statement is recognised; anything else (several
// statements in one string, say) is left to the pinning rules.
//
// Pure: no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::proxy {

struct SqlPreparedCommand {
  enum class Kind {
    kPrepare,        // PREPARE name [(types)] AS statement
    kExecute,        // EXECUTE name [(args)], also inside EXPLAIN … and CREATE TABLE … AS
    kDeallocate,     // DEALLOCATE [PREPARE] name
    kDeallocateAll,  // DEALLOCATE [PREPARE] ALL
  };
  Kind kind = Kind::kExecute;
  std::string name;  // the statement name as PostgreSQL folds it (kDeallocateAll: empty)
  // Where EXECUTE (kExecute) or the first word starts.
  size_t keyword_begin = 0;
  // Where the name is written in the query, to put the server's name in its place.
  size_t name_begin = 0;
  size_t name_end = 0;
  // Where the statement ends: before its ';' and what follows (spaces, comments).
  size_t statement_end = 0;
  // kPrepare: the statement after AS, and whether a parameter type list comes before AS.
  std::string_view body;
  bool declares_types = false;
};

// `sql` as one of the commands above, or nothing. Cheap when the first word rules it out.
std::optional<SqlPreparedCommand> parse_sql_prepared_command(std::string_view sql);

// False when `sql` cannot be one of them: it starts (after spaces) with another letter. Inline,
// as it runs on every query: nearly all of them stop here.
inline bool may_be_sql_prepared_command(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size() && (sql[i] == ' ' || (sql[i] >= '\t' && sql[i] <= '\r')))
    ++i;  // \t \n \v \f \r
  if (i == sql.size()) return false;
  switch (sql[i] | 0x20) {  // ASCII lower case; '-' and '/' (comments) stay as they are
    case 'p':               // PREPARE
    case 'e':               // EXECUTE, EXPLAIN
    case 'd':               // DEALLOCATE
    case 'c':               // CREATE
    case '-':
    case '/':
      return true;
    default:
      return false;
  }
}

}  // namespace sluice::proxy
