#include "proxy/pinning.hpp"

#include <array>
#include <cctype>
#include <string>
#include <vector>

namespace sluice::proxy {

std::string_view pin_reason_text(PinReason reason) {
  switch (reason) {
    case PinReason::kSetStatement:
      return "SET statement or set_config() in session scope";
    case PinReason::kPreparedStatement:
      return "SQL PREPARE, EXECUTE or DEALLOCATE";
    case PinReason::kNamedProtocolStatement:
      return "named prepared statement (protocol Parse)";
    case PinReason::kDiscard:
      return "DISCARD statement";
    case PinReason::kTemporaryObject:
      return "temporary table, sequence or view";
    case PinReason::kHoldCursor:
      return "cursor declared WITH HOLD";
    case PinReason::kListen:
      return "LISTEN";
    case PinReason::kLoad:
      return "LOAD";
    case PinReason::kSequenceFunction:
      return "nextval() or setval() (session sequence state)";
    case PinReason::kAdvisoryLock:
      return "session-level advisory lock";
    case PinReason::kUnexpectedParameterChange:
      return "server reported an untracked setting change";
  }
  return "unknown";
}

std::string_view pin_reason_label(PinReason reason) {
  switch (reason) {
    case PinReason::kSetStatement:
      return "set";
    case PinReason::kPreparedStatement:
      return "sql_prepare";
    case PinReason::kNamedProtocolStatement:
      return "protocol_prepare";
    case PinReason::kDiscard:
      return "discard";
    case PinReason::kTemporaryObject:
      return "temporary_object";
    case PinReason::kHoldCursor:
      return "hold_cursor";
    case PinReason::kListen:
      return "listen";
    case PinReason::kLoad:
      return "load";
    case PinReason::kSequenceFunction:
      return "sequence_function";
    case PinReason::kAdvisoryLock:
      return "advisory_lock";
    case PinReason::kUnexpectedParameterChange:
      return "parameter_change";
  }
  return "unknown";
}

namespace {

// A lexical token of interest: a lowercased bare word, or a statement separator.
struct Token {
  std::string word;  // empty for ';'
  bool followed_by_paren = false;
};

bool is_word_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}

// Splits SQL into bare words and ';', skipping literals, quoted identifiers and comments.
std::vector<Token> tokenize(std::string_view sql) {
  std::vector<Token> tokens;
  size_t i = 0;
  const size_t n = sql.size();
  auto skip_until = [&](std::string_view end) {
    size_t at = sql.find(end, i);
    i = at == std::string_view::npos ? n : at + end.size();
  };
  while (i < n) {
    char c = sql[i];
    if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      skip_until("\n");
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      // Block comments nest in PostgreSQL.
      int depth = 0;
      while (i < n) {
        if (sql.compare(i, 2, "/*") == 0) {
          ++depth;
          i += 2;
        } else if (sql.compare(i, 2, "*/") == 0) {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
    } else if (c == '\'') {
      // '' inside a literal is an escaped quote; E'' strings may also use \'.
      bool escapes = i > 0 && (sql[i - 1] == 'e' || sql[i - 1] == 'E');
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
          ++i;
          break;
        }
        ++i;
      }
    } else if (c == '"') {
      ++i;
      skip_until("\"");
    } else if (c == '$') {
      // $tag$ … $tag$ (a bare $1 is a parameter).
      size_t j = i + 1;
      while (j < n && is_word_char(sql[j]) && sql[j] != '$') ++j;
      if (j < n && sql[j] == '$' &&
          (j == i + 1 || !std::isdigit(static_cast<unsigned char>(sql[i + 1])))) {
        std::string_view tag = sql.substr(i, j - i + 1);
        i = j + 1;
        skip_until(tag);
      } else {
        i = j;
      }
    } else if (c == ';') {
      tokens.push_back({});
      ++i;
    } else if (is_word_start(c)) {
      size_t j = i;
      while (j < n && is_word_char(sql[j])) ++j;
      Token t;
      t.word.reserve(j - i);
      for (size_t k = i; k < j; ++k)
        t.word += static_cast<char>(std::tolower(static_cast<unsigned char>(sql[k])));
      size_t k = j;
      while (k < n && std::isspace(static_cast<unsigned char>(sql[k]))) ++k;
      t.followed_by_paren = k < n && sql[k] == '(';
      tokens.push_back(std::move(t));
      i = j;
    } else {
      ++i;
    }
  }
  return tokens;
}

std::optional<PinReason> leading_keyword_reason(const std::vector<Token>& stmt) {
  if (stmt.empty()) return std::nullopt;
  const std::string& first = stmt[0].word;
  const std::string second = stmt.size() > 1 ? stmt[1].word : std::string();
  if (first == "set") {
    // Transaction-scoped forms end with the transaction: nothing to carry.
    if (second == "local" || second == "transaction" || second == "constraints")
      return std::nullopt;
    return PinReason::kSetStatement;
  }
  if (first == "reset") return PinReason::kSetStatement;
  if (first == "prepare" || first == "execute" || first == "deallocate")
    return PinReason::kPreparedStatement;
  if (first == "discard") return PinReason::kDiscard;
  if (first == "listen") return PinReason::kListen;
  if (first == "load") return PinReason::kLoad;
  if (first == "declare") {
    for (size_t i = 1; i + 1 < stmt.size(); ++i)
      if (stmt[i].word == "with" && stmt[i + 1].word == "hold") return PinReason::kHoldCursor;
    return std::nullopt;
  }
  if (first == "create" || first == "select") {
    // CREATE [GLOBAL|LOCAL] TEMP[ORARY] …, CREATE OR REPLACE TEMP VIEW, SELECT … INTO TEMP.
    for (size_t i = 1; i < stmt.size(); ++i) {
      const std::string& w = stmt[i].word;
      if (w == "temp" || w == "temporary") return PinReason::kTemporaryObject;
      if (first == "create" &&
          (w == "table" || w == "sequence" || w == "view" || w == "function" || w == "index"))
        break;
    }
  }
  return std::nullopt;
}

std::optional<PinReason> function_reason(const Token& t) {
  if (!t.followed_by_paren) return std::nullopt;
  const std::string& w = t.word;
  if (w == "set_config") return PinReason::kSetStatement;
  if (w == "nextval" || w == "setval") return PinReason::kSequenceFunction;
  // Session-level advisory locks; the _xact_ variants end with the transaction.
  if (w == "pg_advisory_lock" || w == "pg_advisory_lock_shared" || w == "pg_try_advisory_lock" ||
      w == "pg_try_advisory_lock_shared")
    return PinReason::kAdvisoryLock;
  return std::nullopt;
}

}  // namespace

std::optional<PinReason> statement_pin_reason(std::string_view sql) {
  std::vector<Token> tokens = tokenize(sql);
  std::vector<Token> stmt;
  auto flush = [&]() -> std::optional<PinReason> {
    auto r = leading_keyword_reason(stmt);
    stmt.clear();
    return r;
  };
  for (auto& t : tokens) {
    if (t.word.empty()) {
      if (auto r = flush()) return r;
      continue;
    }
    if (auto r = function_reason(t)) return r;
    stmt.push_back(std::move(t));
  }
  return flush();
}

}  // namespace sluice::proxy
