// The few lexical rules of PostgreSQL's SQL that the proxy needs to read statements safely:
// which bytes form words, and how far a comment, literal, quoted name or dollar-quoted body
// reaches, so that nothing inside one is mistaken for a keyword or a statement's end.
// Pure and allocation-free: it runs on every query.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace sluice::proxy::sql {

enum CharClass : uint8_t {
  kWordStart = 1,  // letters, '_', and every non-ASCII byte (PostgreSQL allows them in names)
  kWordChar = 2,   // inside a word: the above, digits and '$'
  kSpace = 4,
  kSpecial = 8,  // may open a comment, literal, quoted name or dollar quote, or end a statement
};
inline constexpr std::array<uint8_t, 256> kCharClass = [] {
  std::array<uint8_t, 256> table{};
  for (int c = 0; c < 256; ++c) {
    const bool start = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
    if (start) table[c] |= kWordStart | kWordChar;
    if ((c >= '0' && c <= '9') || c == '$') table[c] |= kWordChar;
  }
  for (char c : {' ', '\t', '\n', '\r', '\f', '\v'}) table[static_cast<uint8_t>(c)] |= kSpace;
  for (char c : {'-', '/', '\'', '"', '$', ';'}) table[static_cast<uint8_t>(c)] |= kSpecial;
  return table;
}();

inline bool has(char c, CharClass cls) {
  return kCharClass[static_cast<uint8_t>(c)] & cls;
}

// `word` equals the lowercase keyword `lower`, ignoring ASCII case.
inline bool is(std::string_view word, std::string_view lower) {
  if (word.size() != lower.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    char c = word[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// The same for a keyword of lowercase ASCII letters only, a word (8 bytes) at a time: for the
// few comparisons made on every query. A byte ORed with 0x20 equals a lowercase letter only
// when it is that letter in either case.
inline bool is_letters(std::string_view word, std::string_view lower) {
  if (word.size() != lower.size()) return false;
  size_t i = 0;
  for (; i + 8 <= word.size(); i += 8) {
    uint64_t a, b;
    std::memcpy(&a, word.data() + i, 8);
    std::memcpy(&b, lower.data() + i, 8);
    if ((a | 0x2020202020202020u) != b) return false;
  }
  if (i + 4 <= word.size()) {
    uint32_t a, b;
    std::memcpy(&a, word.data() + i, 4);
    std::memcpy(&b, lower.data() + i, 4);
    if ((a | 0x20202020u) != b) return false;
    i += 4;
  }
  for (; i < word.size(); ++i)
    if ((word[i] | 0x20) != lower[i]) return false;
  return true;
}

// When sql[i] opens a comment, a string literal, a quoted name or a dollar-quoted body, the
// index just past its end (or sql.size() when it never ends); otherwise i itself.
size_t skip_quoted_or_comment(std::string_view sql, size_t i);

}  // namespace sluice::proxy::sql
