#include "cli/shorthand.hpp"

#include <cctype>
#include <string>

namespace sluice::cli {
namespace json = boost::json;
namespace {

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  json::object document() {
    json::object out = pairs('\0');
    if (pos_ != text_.size()) fail("',' or the end");
    return out;
  }

 private:
  // key=values[,key=values]… up to `close` (or the end when close is '\0').
  json::object pairs(char close) {
    json::object out;
    skip_space();
    if (close && peek() == close) return out;
    for (;;) {
      const std::string key = this->key();
      expect('=');
      json::value v = values(close);
      if (out.contains(key)) fail_with("the key \"" + key + "\" appears twice");
      out[key] = std::move(v);
      skip_space();
      if (peek() != ',') return out;
      ++pos_;
    }
  }

  std::string key() {
    skip_space();
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != '=' && text_[pos_] != ',' &&
           !std::isspace(static_cast<unsigned char>(text_[pos_])) && !is_bracket(text_[pos_]))
      ++pos_;
    if (pos_ == start) fail("a key");
    return std::string(text_.substr(start, pos_ - start));
  }

  // One value, or several (a list) while the next comma-separated part is not "key=".
  json::value values(char close) {
    json::value first = value(close);
    if (!first.is_string() || peek() != ',' || starts_pair_after_comma()) return first;
    json::array list{std::move(first)};
    while (peek() == ',' && !starts_pair_after_comma()) {
      ++pos_;
      list.push_back(value(close));
    }
    return list;
  }

  bool starts_pair_after_comma() const {
    size_t p = pos_ + 1;
    while (p < text_.size() && std::isspace(static_cast<unsigned char>(text_[p]))) ++p;
    const size_t start = p;
    while (p < text_.size() && text_[p] != '=' && text_[p] != ',' && !is_bracket(text_[p]) &&
           text_[p] != '"' && text_[p] != '\'')
      ++p;
    return p > start && p < text_.size() && text_[p] == '=';
  }

  json::value value(char close) {
    skip_space();
    if (peek() == '[') {
      ++pos_;
      json::array list;
      skip_space();
      if (peek() != ']') {
        for (;;) {
          list.push_back(value(']'));
          skip_space();
          if (peek() != ',') break;
          ++pos_;
        }
      }
      expect(']');
      return list;
    }
    if (peek() == '{') {
      ++pos_;
      json::object inner = pairs('}');
      expect('}');
      return inner;
    }
    if (peek() == '"' || peek() == '\'') return quoted();
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != ',' &&
           !(close && (text_[pos_] == close || (close == '}' && text_[pos_] == ']'))))
      ++pos_;
    std::string_view bare = text_.substr(start, pos_ - start);
    while (!bare.empty() && std::isspace(static_cast<unsigned char>(bare.back())))
      bare.remove_suffix(1);
    return json::string(bare);
  }

  json::value quoted() {
    const char quote = text_[pos_++];
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size() && text_[pos_ + 1] == quote) ++pos_;
      out += text_[pos_++];
    }
    if (pos_ == text_.size()) fail(std::string("a closing ") + quote);
    ++pos_;
    skip_space();
    return json::string(out);
  }

  static bool is_bracket(char c) { return c == '[' || c == ']' || c == '{' || c == '}'; }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("'") + c + "'");
    ++pos_;
  }
  [[noreturn]] void fail(const std::string& expected) const {
    const std::string received =
        pos_ < text_.size() ? "'" + std::string(1, text_[pos_]) + "'" : "the end";
    fail_with("expected " + expected + ", received " + received + " at position " +
              std::to_string(pos_));
  }
  [[noreturn]] void fail_with(const std::string& why) const {
    throw ShorthandError(why + " in \"" + std::string(text_) + "\"");
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

json::object parse_shorthand(std::string_view text) {
  return Parser(text).document();
}

}  // namespace sluice::cli
