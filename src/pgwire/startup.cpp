// Startup phase: decoding StartupMessage / SSLRequest / GSSENCRequest / CancelRequest,
// and splitting the `options` startup parameter.
#include <algorithm>
#include <cstring>

#include "pgwire/codec.hpp"

namespace sluice::pgwire {
namespace {

ProtocolViolation layout_error(std::string message) {
  return ProtocolViolation{"08P01", std::move(message)};
}

// Client-supplied text quoted in an error message: bounded, with control and
// non-ASCII bytes replaced so the message stays printable.
std::string quoted(std::string_view s) {
  constexpr size_t kMaxQuoted = 64;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMaxQuoted; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (s.size() > kMaxQuoted) out += "...";
  out.push_back('"');
  return out;
}

// A NUL-terminated string starting at `pos` in `packet`, or nullopt if no NUL follows.
std::optional<std::string_view> cstring_at(Bytes packet, size_t pos) {
  if (pos >= packet.size()) return std::nullopt;
  const auto* begin = reinterpret_cast<const char*>(packet.data() + pos);
  const void* nul = std::memchr(begin, 0, packet.size() - pos);
  if (nul == nullptr) return std::nullopt;
  return std::string_view(begin, static_cast<size_t>(static_cast<const char*>(nul) - begin));
}

StartupPacket decode_startup_message(Bytes packet, uint32_t protocol) {
  StartupMessage msg;
  msg.protocol = protocol;
  size_t pos = 8;
  while (true) {
    if (pos >= packet.size()) {
      return layout_error("invalid startup packet layout: expected terminator as last byte");
    }
    if (packet[pos] == 0) {
      if (pos + 1 != packet.size()) {
        return layout_error(
            "invalid startup packet layout: empty parameter name before the end of the packet");
      }
      break;
    }
    const auto key = cstring_at(packet, pos);
    if (!key) {
      return layout_error("invalid startup packet layout: unterminated parameter name");
    }
    pos += key->size() + 1;
    const auto value = cstring_at(packet, pos);
    if (!value) {
      return layout_error("invalid startup packet layout: missing value for parameter " +
                          quoted(*key));
    }
    pos += value->size() + 1;
    if (msg.find(*key) != nullptr) {
      return layout_error("duplicate startup parameter " + quoted(*key));
    }
    msg.params.emplace_back(std::string(*key), std::string(*value));
  }

  if (msg.find("replication") != nullptr) {
    return ProtocolViolation{"0A000", "replication connections are not supported by this proxy"};
  }
  const std::string* user = msg.find("user");
  if (user == nullptr || user->empty()) {
    return ProtocolViolation{"28000", "A user name is missing from the connection startup packet."};
  }
  const std::string user_name = *user;  // copy: params may reallocate below
  auto database = std::find_if(msg.params.begin(), msg.params.end(),
                               [](const auto& p) { return p.first == "database"; });
  if (database == msg.params.end()) {
    msg.params.emplace_back("database", user_name);
  } else if (database->second.empty()) {
    database->second = user_name;
  }
  return msg;
}

bool is_option_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.';
}

// Splits like PostgreSQL's pg_split_opts: whitespace separates tokens, a backslash
// makes the next character literal (a trailing lone backslash is dropped).
std::vector<std::string> split_options(std::string_view options) {
  std::vector<std::string> tokens;
  size_t i = 0;
  while (true) {
    while (i < options.size() && is_option_space(options[i])) ++i;
    if (i >= options.size()) break;
    std::string token;
    while (i < options.size() && !is_option_space(options[i])) {
      if (options[i] == '\\') {
        ++i;
        if (i < options.size()) token.push_back(options[i++]);
      } else {
        token.push_back(options[i++]);
      }
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

}  // namespace

const std::string* StartupMessage::find(std::string_view key) const {
  for (const auto& [k, v] : params) {
    if (k == key) return &v;
  }
  return nullptr;
}

StartupPacket decode_startup(Bytes packet) {
  if (packet.size() < 8 || packet.size() > kMaxStartupPacketSize ||
      read_be32(packet.data()) != packet.size()) {
    return layout_error("invalid length of startup packet");
  }
  const uint32_t code = read_be32(packet.data() + 4);

  if (code == kCancelRequestCode) {
    if (packet.size() != 16) return layout_error("invalid length of cancel request packet");
    return CancelRequest{read_be32(packet.data() + 8), read_be32(packet.data() + 12)};
  }
  if (code == kSslRequestCode) {
    if (packet.size() != 8) return layout_error("invalid length of SSL negotiation request");
    return SslRequest{};
  }
  if (code == kGssEncRequestCode) {
    if (packet.size() != 8) return layout_error("invalid length of GSSAPI encryption request");
    return GssEncRequest{};
  }

  const uint32_t major = code >> 16;
  const uint32_t minor = code & 0xffff;
  if (major != 3) {
    return ProtocolViolation{"0A000", "unsupported frontend protocol " + std::to_string(major) +
                                          "." + std::to_string(minor) +
                                          ": server supports 3.0 to 3.0"};
  }
  return decode_startup_message(packet, code);
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_options(
    std::string_view options, std::string& error) {
  const std::vector<std::string> tokens = split_options(options);
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    std::string setting;
    std::string shown;  // the offending text, as the user would recognise it
    if (token == "-c") {
      if (i + 1 >= tokens.size()) {
        error = "invalid options parameter: \"-c\" must be followed by name=value";
        return std::nullopt;
      }
      setting = tokens[++i];
      shown = "-c " + setting;
    } else if (token.starts_with("--")) {
      setting = token.substr(2);
      shown = token;
    } else if (token.starts_with("-c")) {
      setting = token.substr(2);
      shown = token;
    } else {
      error = "invalid options parameter: unsupported token " + quoted(token) +
              " (only -c name=value and --name=value are accepted)";
      return std::nullopt;
    }

    const size_t eq = setting.find('=');
    if (eq == std::string::npos) {
      error = "invalid options parameter: " + quoted(shown) + " requires a value (name=value)";
      return std::nullopt;
    }
    std::string name = setting.substr(0, eq);
    // PostgreSQL's ParseLongOption turns '-' into '_' in setting names.
    std::replace(name.begin(), name.end(), '-', '_');
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_name_char)) {
      error = "invalid options parameter: invalid setting name in " + quoted(shown);
      return std::nullopt;
    }
    out.emplace_back(std::move(name), setting.substr(eq + 1));
  }
  return out;
}

}  // namespace sluice::pgwire
