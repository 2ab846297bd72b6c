#include "proxy/sql_prepared.hpp"

#include <vector>

#include "proxy/sql_lexer.hpp"

namespace sluice::proxy {
namespace {

using sql::has;
using sql::is;

struct Token {
  enum class Kind { kWord, kQuotedName, kOther } kind;
  size_t begin;
  size_t end;
  int depth;  // parentheses open before it
};

// The tokens of the first statement, and where it ends. False when more than comments and
// spaces follow its ';' (several statements), or a quoted name never closes.
bool tokenize(std::string_view text, std::vector<Token>& tokens, size_t& statement_end) {
  size_t i = 0;
  const size_t n = text.size();
  int depth = 0;
  statement_end = n;
  bool ended = false;
  while (i < n) {
    const char c = text[i];
    if (has(c, sql::kSpace)) {
      ++i;
      continue;
    }
    if (ended) {
      // Only comments may follow the statement.
      const size_t past = sql::skip_quoted_or_comment(text, i);
      if (past == i || (c != '-' && c != '/')) return false;
      i = past;
      continue;
    }
    if (has(c, sql::kWordStart)) {
      size_t j = i + 1;
      while (j < n && has(text[j], sql::kWordChar)) ++j;
      tokens.push_back({Token::Kind::kWord, i, j, depth});
      i = j;
      continue;
    }
    if (c == ';') {
      statement_end = i;
      ended = true;
      ++i;
      continue;
    }
    if (c == '"') {
      const size_t past = sql::skip_quoted_or_comment(text, i);
      if (past == n && text[n - 1] != '"') return false;
      // "a""b" is one name: the scan stops at the first quote of "", so join what follows.
      size_t end = past;
      while (end < n && text[end] == '"') end = sql::skip_quoted_or_comment(text, end);
      tokens.push_back({Token::Kind::kQuotedName, i, end, depth});
      i = end;
      continue;
    }
    const size_t past = sql::skip_quoted_or_comment(text, i);
    if (past != i) {
      if (c != '-' && c != '/') tokens.push_back({Token::Kind::kOther, i, past, depth});
      i = past;
      continue;
    }
    if (c == '(') ++depth;
    tokens.push_back({Token::Kind::kOther, i, i + 1, depth});
    if (c == ')') --depth;
    ++i;
  }
  // Trailing spaces are not part of the statement.
  if (!ended && !tokens.empty()) statement_end = tokens.back().end;
  return true;
}

// A name token as PostgreSQL reads it: unquoted names fold to lower case, quoted ones keep
// their case with "" meaning one quote. Names longer than 63 bytes are truncated by the server.
std::optional<std::string> name_of(std::string_view text, const Token& token) {
  const std::string_view raw = text.substr(token.begin, token.end - token.begin);
  std::string name;
  if (token.kind == Token::Kind::kWord) {
    for (char c : raw) name += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  } else if (token.kind == Token::Kind::kQuotedName) {
    for (size_t i = 1; i + 1 < raw.size(); ++i) {
      name += raw[i];
      if (raw[i] == '"') ++i;  // the second quote of ""
    }
    if (name.empty()) return std::nullopt;  // "" is not a name
  } else {
    return std::nullopt;
  }
  if (name.size() > 63) name.resize(63);
  return name;
}

}  // namespace

std::optional<SqlPreparedCommand> parse_sql_prepared_command(std::string_view text) {
  if (!may_be_sql_prepared_command(text)) return std::nullopt;
  size_t i = 0;
  // The first word decides whether the full look is needed at all.
  while (i < text.size()) {
    if (has(text[i], sql::kSpace)) {
      ++i;
      continue;
    }
    const size_t past = sql::skip_quoted_or_comment(text, i);
    if (past == i || (text[i] != '-' && text[i] != '/')) break;
    i = past;
  }
  size_t j = i;
  while (j < text.size() && has(text[j], sql::kWordChar)) ++j;
  const std::string_view first = text.substr(i, j - i);
  if (!is(first, "prepare") && !is(first, "execute") && !is(first, "deallocate") &&
      !is(first, "explain") && !is(first, "create"))
    return std::nullopt;

  std::vector<Token> tokens;
  SqlPreparedCommand command;
  command.keyword_begin = i;
  if (!tokenize(text, tokens, command.statement_end) || tokens.size() < 2) return std::nullopt;
  auto word = [&](size_t k, std::string_view lower) {
    return k < tokens.size() && tokens[k].kind == Token::Kind::kWord &&
           is(text.substr(tokens[k].begin, tokens[k].end - tokens[k].begin), lower);
  };
  auto take_name = [&](size_t k) {
    if (k >= tokens.size()) return false;
    auto name = name_of(text, tokens[k]);
    if (!name) return false;
    command.name = std::move(*name);
    command.name_begin = tokens[k].begin;
    command.name_end = tokens[k].end;
    return true;
  };
  // EXECUTE name [( … )] and nothing after it.
  auto execute_at = [&](size_t k) -> std::optional<SqlPreparedCommand> {
    if (!word(k, "execute") || !take_name(k + 1)) return std::nullopt;
    command.keyword_begin = tokens[k].begin;
    const size_t after = k + 2;
    if (after < tokens.size()) {
      const Token& open = tokens[after];
      if (text[open.begin] != '(' || text[tokens.back().begin] != ')' ||
          tokens.back().depth != open.depth)
        return std::nullopt;
    }
    command.kind = SqlPreparedCommand::Kind::kExecute;
    return command;
  };

  if (word(0, "execute")) return execute_at(0);
  if (word(0, "explain")) {
    // EXPLAIN [(options)] [ANALYZE] [VERBOSE] EXECUTE name …
    size_t k = 1;
    if (k < tokens.size() && text[tokens[k].begin] == '(') {
      const int depth = tokens[k].depth;
      ++k;
      while (k < tokens.size() && !(text[tokens[k].begin] == ')' && tokens[k].depth == depth)) ++k;
      ++k;
    }
    while (word(k, "analyze") || word(k, "analyse") || word(k, "verbose")) ++k;
    return execute_at(k);
  }
  if (word(0, "create")) {
    // CREATE … TABLE name [(columns)] AS EXECUTE name [(args)] [WITH [NO] DATA]
    for (size_t k = 1; k + 2 < tokens.size(); ++k)
      if (tokens[k].depth == 0 && word(k, "as") && word(k + 1, "execute") && take_name(k + 2)) {
        command.keyword_begin = tokens[k + 1].begin;
        command.kind = SqlPreparedCommand::Kind::kExecute;
        return command;
      }
    return std::nullopt;
  }
  if (word(0, "deallocate")) {
    size_t k = word(1, "prepare") && tokens.size() > 2 ? 2 : 1;
    if (k + 1 != tokens.size()) return std::nullopt;
    if (word(k, "all")) {
      command.kind = SqlPreparedCommand::Kind::kDeallocateAll;
      return command;
    }
    if (!take_name(k)) return std::nullopt;
    command.kind = SqlPreparedCommand::Kind::kDeallocate;
    return command;
  }
  // PREPARE name [(type, …)] AS statement
  if (!take_name(1)) return std::nullopt;
  size_t k = 2;
  if (k < tokens.size() && text[tokens[k].begin] == '(') {
    command.declares_types = true;
    const int depth = tokens[k].depth;
    ++k;
    while (k < tokens.size() && !(text[tokens[k].begin] == ')' && tokens[k].depth == depth)) ++k;
    ++k;
  }
  if (!word(k, "as") || k + 1 >= tokens.size()) return std::nullopt;
  command.kind = SqlPreparedCommand::Kind::kPrepare;
  const size_t body_begin = tokens[k + 1].begin;
  command.body = text.substr(body_begin, command.statement_end - body_begin);
  return command;
}

}  // namespace sluice::proxy
