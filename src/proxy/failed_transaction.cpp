#include "proxy/failed_transaction.hpp"

#include <algorithm>
#include <array>

#include "proxy/sql_lexer.hpp"

namespace sluice::proxy {
namespace {

// The statement's words, lowercase-compared later; false when anything but words, spaces,
// comments and one final semicolon is there (a literal, a second statement).
bool words_of(std::string_view sql, std::array<std::string_view, 6>& words, size_t& count) {
  count = 0;
  bool ended = false;  // past the semicolon
  for (size_t i = 0; i < sql.size();) {
    const char c = sql[i];
    if (sql::has(c, sql::kSpace)) {
      ++i;
      continue;
    }
    if ((c == '-' || c == '/') && i + 1 < sql.size()) {
      const size_t past = sql::skip_quoted_or_comment(sql, i);
      if (past != i) {
        i = past;
        continue;
      }
    }
    if (c == ';' && !ended) {
      ended = true;
      ++i;
      continue;
    }
    if (ended || !sql::has(c, sql::kWordStart) || count == words.size()) return false;
    size_t end = i + 1;
    while (end < sql.size() && sql::has(sql[end], sql::kWordChar)) ++end;
    words[count++] = sql.substr(i, end - i);
    i = end;
  }
  return true;
}

void write_no_data(std::string& out) {
  pgwire::MessageWriter w(out);
  w.begin('n');
  w.end();
}

void write_bind_complete(std::string& out) {
  pgwire::MessageWriter w(out);
  w.begin('2');
  w.end();
}

bool contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

void remember(std::vector<std::string>& names, std::string_view name, bool yes) {
  std::erase(names, name);
  if (yes) names.emplace_back(name);
}

}  // namespace

BlockEnd transaction_block_end(std::string_view sql) {
  std::array<std::string_view, 6> words;
  size_t n = 0;
  if (!words_of(sql, words, n) || n == 0) return BlockEnd::kNone;
  BlockEnd kind = BlockEnd::kNone;
  if (sql::is(words[0], "commit") || sql::is(words[0], "end")) kind = BlockEnd::kCommit;
  if (sql::is(words[0], "rollback") || sql::is(words[0], "abort")) kind = BlockEnd::kRollback;
  if (kind == BlockEnd::kNone) return kind;
  size_t i = 1;
  if (i < n && (sql::is(words[i], "work") || sql::is(words[i], "transaction"))) ++i;
  if (i == n) return kind;
  // AND NO CHAIN ends the block; AND CHAIN would start another, which needs a server.
  const bool no_chain = i + 3 == n && sql::is(words[i], "and") && sql::is(words[i + 1], "no") &&
                        sql::is(words[i + 2], "chain");
  return no_chain ? kind : BlockEnd::kNone;
}

bool FailedTransaction::ends_block(std::string_view sql) const {
  const BlockEnd end = transaction_block_end(sql);
  return end == BlockEnd::kRollback || (end == BlockEnd::kCommit && loss_reported_);
}

void FailedTransaction::refuse(std::string& out) {
  if (!loss_reported_ && !cause_.empty()) {
    loss_reported_ = true;
    pgwire::MessageWriter w(out);
    w.begin('E');
    w.bytes(cause_);
    w.end();
    return;
  }
  if (!loss_reported_) {
    loss_reported_ = true;
    pgwire::write_error(out, "ERROR", "08006",
                        "the connection to the database server was lost; the transaction was "
                        "rolled back",
                        "End the transaction block (ROLLBACK) and run the transaction again.");
    return;
  }
  pgwire::write_error(out, "ERROR", "25P02",
                      "current transaction is aborted, commands ignored until end of transaction "
                      "block");
}

bool FailedTransaction::ends_block(std::string_view statement,
                                   const ClientStatements& known) const {
  if (contains(parsed_ends_, statement)) return true;
  auto it = known.find(statement);
  return it != known.end() && it->second && ends_block(it->second->text());
}

FailedTransaction::Outcome FailedTransaction::answer(const pgwire::Frame& frame,
                                                     const ClientStatements& known,
                                                     std::string& out) {
  const char type = frame.type;
  if (type == 'Q') {
    auto sql = pgwire::decode_query(frame.body);
    if (!sql) return Outcome::kMalformed;
    if (ends_block(*sql)) {
      pgwire::write_command_complete(out, "ROLLBACK");
      pgwire::write_ready_for_query(out, 'I');
      return Outcome::kEnded;
    }
    refuse(out);
    pgwire::write_ready_for_query(out, 'E');
    return Outcome::kAnswered;
  }
  if (type == 'F') {
    refuse(out);
    pgwire::write_ready_for_query(out, 'E');
    return Outcome::kAnswered;
  }
  if (type == 'S') {
    skipping_ = false;
    pgwire::write_ready_for_query(out, ended_ ? 'I' : 'E');
    return ended_ ? Outcome::kEnded : Outcome::kAnswered;
  }
  if (type != 'P' && type != 'B' && type != 'D' && type != 'E' && type != 'C')
    return Outcome::kAnswered;  // Flush, and COPY messages outside COPY: nothing to say
  // Extended protocol: after an error, everything up to Sync is dropped, as PostgreSQL does.
  if (frame.unread > 0) {
    // Only the head of a large message is here (the rest is dropped as it comes): never one
    // that ends a block, which carries no parameters.
    if (!skipping_) refuse(out);
    skipping_ = true;
    return Outcome::kAnswered;
  }
  bool ok = false;
  if (type == 'P') {
    auto parse = pgwire::decode_parse(frame.body);
    if (!parse) return Outcome::kMalformed;
    if (skipping_) return Outcome::kAnswered;
    ok = ends_block(parse->query);
    remember(parsed_ends_, parse->statement, ok);
    if (ok) pgwire::write_parse_complete(out);
  } else if (type == 'B') {
    auto bind = pgwire::decode_bind(frame.body);
    if (!bind) return Outcome::kMalformed;
    if (skipping_) return Outcome::kAnswered;
    ok = ends_block(bind->statement, known);
    remember(bound_ends_, bind->portal, ok);
    if (ok) write_bind_complete(out);
  } else if (type == 'D' || type == 'C') {
    auto target = pgwire::decode_describe_or_close(frame.body);
    if (!target) return Outcome::kMalformed;
    if (skipping_) return Outcome::kAnswered;
    if (type == 'C') {
      pgwire::write_close_complete(out);
      return Outcome::kAnswered;
    }
    // Transaction control takes no parameters and returns no rows.
    ok =
        target->kind == 'S' ? ends_block(target->name, known) : contains(bound_ends_, target->name);
    if (ok && target->kind == 'S') {
      pgwire::MessageWriter w(out);
      w.begin('t');
      w.int16(0);
      w.end();
    }
    if (ok) write_no_data(out);
  } else {  // Execute
    auto portal = pgwire::decode_execute_portal(frame.body);
    if (!portal) return Outcome::kMalformed;
    if (skipping_) return Outcome::kAnswered;
    ok = contains(bound_ends_, *portal);
    if (ok) {
      pgwire::write_command_complete(out, "ROLLBACK");
      ended_ = true;
    }
  }
  if (!ok) {
    refuse(out);
    skipping_ = true;
  }
  return Outcome::kAnswered;
}

}  // namespace sluice::proxy
