#include "proxy/sql_lexer.hpp"

namespace sluice::proxy::sql {

size_t skip_quoted_or_comment(std::string_view sql, size_t i) {
  const size_t n = sql.size();
  auto past = [&](std::string_view end, size_t from) {
    const size_t at = sql.find(end, from);
    return at == std::string_view::npos ? n : at + end.size();
  };
  const char c = sql[i];
  if (c == '-' && i + 1 < n && sql[i + 1] == '-') return past("\n", i);
  if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
    // Block comments nest in PostgreSQL.
    int depth = 0;
    while (i < n) {
      if (sql.compare(i, 2, "/*") == 0) {
        ++depth;
        i += 2;
      } else if (sql.compare(i, 2, "*/") == 0) {
        i += 2;
        if (--depth == 0) return i;
      } else {
        ++i;
      }
    }
    return n;
  }
  if (c == '\'') {
    // '' inside a literal is an escaped quote; E'' strings may also use \'.
    const bool escapes = i > 0 && (sql[i - 1] == 'e' || sql[i - 1] == 'E');
    ++i;
    while (i < n) {
      if (escapes && sql[i] == '\\') {
        i += 2;
        continue;
      }
      if (sql[i] == '\'') {
        if (i + 1 < n && sql[i + 1] == '\'') {
          i += 2;
          continue;
        }
        return i + 1;
      }
      ++i;
    }
    return n;
  }
  if (c == '"') return past("\"", i + 1);  // "" inside is two adjacent quoted parts: same reach
  if (c == '$') {
    // $tag$ … $tag$ (a bare $1 is a parameter).
    size_t j = i + 1;
    while (j < n && has(sql[j], kWordChar) && sql[j] != '$') ++j;
    if (j < n && sql[j] == '$' && (j == i + 1 || !(sql[i + 1] >= '0' && sql[i + 1] <= '9'))) {
      const std::string_view tag = sql.substr(i, j - i + 1);
      return past(tag, j + 1);
    }
    return j;
  }
  return i;
}

}  // namespace sluice::proxy::sql
