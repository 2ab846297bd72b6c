#include "proxy/pinning.hpp"

#include "proxy/sql_lexer.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sluice::proxy {

std::string_view pin_reason_text(PinReason reason) {
  switch (reason) {
    case PinReason::kSetStatement:
      return "SET statement or set_config() in session scope";
    case PinReason::kSetRole:
      return "SET ROLE or SET SESSION AUTHORIZATION";
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
    case PinReason::kSetRole:
      return "set_role";
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

using sql::has;
using sql::is;
using sql::is_letters;
using sql::kSpace;
using sql::kSpecial;
using sql::kWordChar;
using sql::kWordStart;

// What one statement's words say so far. The first word is classified once; later words are
// looked at only when that word (or a following '(') makes them matter.
class StatementScan {
 public:
  // Feeds the next bare word. Returns a reason as soon as one is certain.
  std::optional<PinReason> word(std::string_view w, bool followed_by_paren) {
    const size_t index = count_++;
    if (followed_by_paren) {
      if (is(w, "set_config")) changes_settings = true;
      if (is(w, "nextval") || is(w, "setval")) return PinReason::kSequenceFunction;
      // Session-level advisory locks; the _xact_ variants end with the transaction.
      if (is(w, "pg_advisory_lock") || is(w, "pg_advisory_lock_shared") ||
          is(w, "pg_try_advisory_lock") || is(w, "pg_try_advisory_lock_shared"))
        return PinReason::kAdvisoryLock;
    }
    if (index == 0) return first_word(w);
    switch (lead_) {
      case Lead::kOther:
        return std::nullopt;
      case Lead::kSet:
        if (index == 1) {
          // Transaction-scoped forms end with the transaction: nothing to carry.
          if (is(w, "local") || is(w, "transaction") || is(w, "constraints")) {
            set_decided_ = true;
            return std::nullopt;
          }
          // Who the session is cannot be re-applied per transaction.
          if (is(w, "role")) return PinReason::kSetRole;
          set_session_ = is(w, "session");
          changes_settings = true;
          return std::nullopt;
        }
        if (index == 2 && set_session_ && (is(w, "authorization") || is(w, "role")))
          return PinReason::kSetRole;
        return std::nullopt;
      case Lead::kDeclare:
        if (previous_was_with_ && is(w, "hold")) return PinReason::kHoldCursor;
        previous_was_with_ = is(w, "with");
        return std::nullopt;
      case Lead::kCreate:
      case Lead::kSelect:
        if (temp_search_over_) return std::nullopt;
        // CREATE [GLOBAL|LOCAL] TEMP[ORARY] …, CREATE OR REPLACE TEMP VIEW, SELECT … INTO TEMP.
        if (is(w, "temp") || is(w, "temporary")) return PinReason::kTemporaryObject;
        if (lead_ == Lead::kCreate && (is(w, "table") || is(w, "sequence") || is(w, "view") ||
                                       is(w, "function") || is(w, "index")))
          temp_search_over_ = true;
        return std::nullopt;
    }
    return std::nullopt;
  }

  // The statement ended (';' or end of text).
  std::optional<PinReason> end() {
    if (count_ == 1 && lead_ == Lead::kSet && !set_decided_) changes_settings = true;
    const bool changed = changes_settings;
    *this = StatementScan();
    changes_settings = changed;  // across statements
    return std::nullopt;
  }

  bool changes_settings = false;  // SET, RESET or set_config() seen: tracked, not pinned

 private:
  enum class Lead { kOther, kSet, kDeclare, kCreate, kSelect };

  std::optional<PinReason> first_word(std::string_view w) {
    if (is(w, "select")) {
      lead_ = Lead::kSelect;
      return std::nullopt;
    }
    if (is(w, "set")) {
      lead_ = Lead::kSet;
      return std::nullopt;
    }
    if (is(w, "declare")) {
      lead_ = Lead::kDeclare;
      return std::nullopt;
    }
    if (is(w, "create")) {
      lead_ = Lead::kCreate;
      return std::nullopt;
    }
    if (is(w, "reset")) {
      changes_settings = true;
      return std::nullopt;
    }
    if (is(w, "prepare") || is(w, "execute") || is(w, "deallocate"))
      return PinReason::kPreparedStatement;
    if (is(w, "discard")) return PinReason::kDiscard;
    if (is(w, "listen")) return PinReason::kListen;
    if (is(w, "load")) return PinReason::kLoad;
    return std::nullopt;
  }

  size_t count_ = 0;
  Lead lead_ = Lead::kOther;
  bool set_decided_ = false;
  bool set_session_ = false;
  bool previous_was_with_ = false;
  bool temp_search_over_ = false;
};

// Walks the bare words of `sql` (outside literals, quoted names and comments), statement by
// statement. `on_word(word, followed_by_paren)` and `on_end()` return true to stop early.
template <class OnWord, class OnEnd>
void walk_words(std::string_view sql, OnWord on_word, OnEnd on_end) {
  size_t i = 0;
  const size_t n = sql.size();
  while (i < n) {
    const char c = sql[i];
    if (has(c, kWordStart)) {
      size_t j = i + 1;
      while (j < n && has(sql[j], kWordChar)) ++j;
      size_t k = j;
      while (k < n && has(sql[k], kSpace)) ++k;
      if (on_word(sql.substr(i, j - i), k < n && sql[k] == '(')) return;
      i = j;
      continue;
    }
    if (!has(c, kSpecial)) {
      ++i;
      continue;
    }
    if (c == ';') {
      if (on_end()) return;
      ++i;
      continue;
    }
    const size_t past = sql::skip_quoted_or_comment(sql, i);
    i = past == i ? i + 1 : past;
  }
  on_end();
}

// Whether `sql` holds no '(' and no ';' (each would send it to the full scan); `into` tells
// whether "into" occurs in it, in any case. 16 bytes at a time where SSE2 is there: this runs
// on every query, and a memchr per byte of interest cost more than the rest of the decision.
bool no_calls_nor_statement_ends(std::string_view sql, bool& into) {
  const char* p = sql.data();
  const size_t n = sql.size();
  // One byte of interest ('(', ';', 'i' or 'I') at `k`: false to stop the scan.
  auto look_at = [&](size_t k) {
    const char c = p[k];
    if (c == '(' || c == ';') return false;
    if (!into && is_letters(sql.substr(k, 4), "into")) into = true;
    return true;
  };
#if defined(__SSE2__)
  if (n >= 16) {
    const __m128i paren = _mm_set1_epi8('(');
    const __m128i semicolon = _mm_set1_epi8(';');
    const __m128i letter_i = _mm_set1_epi8('i');
    const __m128i case_bit = _mm_set1_epi8(0x20);  // 'I' | 0x20 == 'i'; no other byte gives 'i'
    for (size_t i = 0;; i += 16) {
      if (i + 16 > n) i = n - 16;  // the last block overlaps the one before: no read past the end
      const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      const __m128i hits =
          _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(block, paren), _mm_cmpeq_epi8(block, semicolon)),
                       _mm_cmpeq_epi8(_mm_or_si128(block, case_bit), letter_i));
      for (auto mask = static_cast<unsigned>(_mm_movemask_epi8(hits)); mask != 0; mask &= mask - 1)
        if (!look_at(i + static_cast<size_t>(__builtin_ctz(mask)))) return false;
      if (i + 16 == n) return true;
    }
  }
#endif
  for (size_t k = 0; k < n; ++k) {
    const char c = p[k];
    if ((c == '(' || c == ';' || (c | 0x20) == 'i') && !look_at(k)) return false;
  }
  return true;
}

// Statements that change nothing in the session when there is no function call in them.
bool stateless_lead(std::string_view first) {
  switch (first[0] | 0x20) {
    case 'a':
      return is_letters(first, "abort");
    case 'b':
      return is_letters(first, "begin");
    case 'c':
      return is_letters(first, "commit") || is_letters(first, "copy");
    case 'd':
      return is_letters(first, "delete");
    case 'e':
      return is_letters(first, "end");
    case 'f':
      return is_letters(first, "fetch");
    case 'i':
      return is_letters(first, "insert");
    case 'l':
      return is_letters(first, "lock");
    case 'm':
      return is_letters(first, "move");
    case 'r':
      return is_letters(first, "rollback") || is_letters(first, "release");
    case 's':
      return is_letters(first, "savepoint") || is_letters(first, "show") ||
             is_letters(first, "start");
    case 't':
      return is_letters(first, "truncate");
    case 'u':
      return is_letters(first, "update");
    case 'v':
      return is_letters(first, "values");
    default:
      return false;
  }
}

// The common statement decided without the full scan: one statement, no function call (so no
// '(' anywhere) and a first word that cannot change the session. Anything else, and anything
// that merely looks special (a ';' or '(' inside a literal or a comment), takes the full scan.
bool plainly_stateless(std::string_view sql) {
  size_t end = sql.size();
  while (end > 0 && has(sql[end - 1], kSpace)) --end;
  if (end > 0 && sql[end - 1] == ';') --end;  // the usual terminator
  sql = sql.substr(0, end);
  size_t i = 0;
  while (i < sql.size() && has(sql[i], kSpace)) ++i;
  // SELECT, by far the most common, is recognised without walking its letters one by one.
  constexpr std::string_view kSelect = "select";
  bool select = is_letters(sql.substr(i, kSelect.size()), kSelect) &&
                (i + kSelect.size() == sql.size() || !has(sql[i + kSelect.size()], kWordChar));
  if (!select) {
    size_t j = i;
    while (j < sql.size() && has(sql[j], kWordChar)) ++j;
    const std::string_view first = sql.substr(i, j - i);
    if (first.empty() || !has(first[0], kWordStart)) return false;
    select = is_letters(first, kSelect);
    if (!select && !stateless_lead(first)) return false;
  }
  bool into = false;
  if (!no_calls_nor_statement_ends(sql, into)) return false;
  // SELECT … INTO TEMP creates a table: any INTO at all goes to the full scan.
  return !(select && into);
}

}  // namespace

StatementEffects statement_effects(std::string_view sql) {
  if (plainly_stateless(sql)) return {};
  StatementScan statement;
  StatementEffects effects;
  walk_words(
      sql,
      [&](std::string_view word, bool followed_by_paren) {
        effects.pin = statement.word(word, followed_by_paren);
        return effects.pin.has_value();
      },
      [&] {
        effects.pin = statement.end();
        return effects.pin.has_value();
      });
  effects.changes_settings = statement.changes_settings;
  return effects;
}

std::optional<PinReason> statement_pin_reason(std::string_view sql) {
  const StatementEffects effects = statement_effects(sql);
  if (effects.pin) return effects.pin;
  if (effects.changes_settings) return PinReason::kSetStatement;
  return std::nullopt;
}

void collect_custom_setting_names(std::string_view sql, std::vector<std::string>& out) {
  auto name_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  size_t i = 0;
  while (i < sql.size()) {
    if (!name_char(sql[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    bool dotted = false;
    while (j < sql.size() && (name_char(sql[j]) || (sql[j] == '.' && j + 1 < sql.size() &&
                                                    name_char(sql[j + 1]) && j > i))) {
      dotted |= sql[j] == '.';
      ++j;
    }
    const std::string_view name = sql.substr(i, j - i);
    if (dotted && name.size() <= 63 && !(name[0] >= '0' && name[0] <= '9') &&
        std::find(out.begin(), out.end(), name) == out.end())
      out.emplace_back(name);
    i = j;
  }
}

bool drops_all_statements(std::string_view sql) {
  std::string_view first, second;
  size_t count = 0;
  bool drops = false;
  walk_words(
      sql,
      [&](std::string_view word, bool) {
        if (count == 0) first = word;
        if (count == 1) second = word;
        if (count == 1 && (is(first, "discard") || is(first, "deallocate")) && is(word, "all"))
          drops = true;
        if (count == 2 && is(first, "deallocate") && is(second, "prepare") && is(word, "all"))
          drops = true;
        ++count;
        return drops;
      },
      [&] {
        count = 0;
        return drops;
      });
  return drops;
}

}  // namespace sluice::proxy
