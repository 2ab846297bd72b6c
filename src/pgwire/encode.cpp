// Encoding: MessageWriter and the messages the proxy sends to clients and servers.
#include "pgwire/codec.hpp"

namespace sluice::pgwire {

void MessageWriter::begin(char type) {
  out_.push_back(type);
  begin_untyped();
}

void MessageWriter::begin_untyped() {
  start_ = out_.size();
  out_.append(4, '\0');
}

void MessageWriter::int32(uint32_t v) {
  out_.push_back(static_cast<char>((v >> 24) & 0xff));
  out_.push_back(static_cast<char>((v >> 16) & 0xff));
  out_.push_back(static_cast<char>((v >> 8) & 0xff));
  out_.push_back(static_cast<char>(v & 0xff));
}

void MessageWriter::int16(uint16_t v) {
  out_.push_back(static_cast<char>((v >> 8) & 0xff));
  out_.push_back(static_cast<char>(v & 0xff));
}

void MessageWriter::byte(char c) {
  out_.push_back(c);
}

void MessageWriter::cstring(std::string_view s) {
  out_.append(s);
  out_.push_back('\0');
}

void MessageWriter::bytes(std::string_view s) {
  out_.append(s);
}

void MessageWriter::end() {
  end_with_unread(0);
}

void MessageWriter::end_with_unread(size_t unread) {
  const auto length = static_cast<uint32_t>(out_.size() - start_ + unread);
  out_[start_ + 0] = static_cast<char>((length >> 24) & 0xff);
  out_[start_ + 1] = static_cast<char>((length >> 16) & 0xff);
  out_[start_ + 2] = static_cast<char>((length >> 8) & 0xff);
  out_[start_ + 3] = static_cast<char>(length & 0xff);
}

namespace {

void write_auth(std::string& out, uint32_t code, std::string_view data = {}) {
  MessageWriter w(out);
  w.begin('R');
  w.int32(code);
  w.bytes(data);
  w.end();
}

void write_empty(std::string& out, char type) {
  MessageWriter w(out);
  w.begin(type);
  w.end();
}

void write_single_cstring(std::string& out, char type, std::string_view s) {
  MessageWriter w(out);
  w.begin(type);
  w.cstring(s);
  w.end();
}

}  // namespace

// ---------------------------------------------------------------- backend messages

std::optional<std::string> error_with_severity(Bytes body, std::string_view severity) {
  auto fields = decode_error_fields(body);
  if (!fields) return std::nullopt;
  std::string out;
  out.reserve(body.size() + severity.size());
  for (const auto& [code, value] : fields->fields) {
    out += code;
    out += (code == 'S' || code == 'V') ? std::string_view(severity) : std::string_view(value);
    out += '\0';
  }
  out += '\0';
  return out;
}

void write_error(std::string& out, std::string_view severity, std::string_view sqlstate,
                 std::string_view message, std::string_view detail) {
  MessageWriter w(out);
  w.begin('E');
  w.byte('S');
  w.cstring(severity);
  w.byte('V');
  w.cstring(severity);
  w.byte('C');
  w.cstring(sqlstate);
  w.byte('M');
  w.cstring(message);
  if (!detail.empty()) {
    w.byte('D');
    w.cstring(detail);
  }
  w.byte('\0');
  w.end();
}

void write_notice(std::string& out, std::string_view sqlstate, std::string_view message) {
  MessageWriter w(out);
  w.begin('N');
  w.byte('S');
  w.cstring("NOTICE");
  w.byte('V');
  w.cstring("NOTICE");
  w.byte('C');
  w.cstring(sqlstate);
  w.byte('M');
  w.cstring(message);
  w.byte('\0');
  w.end();
}

void write_auth_ok(std::string& out) {
  write_auth(out, 0);
}

void write_auth_cleartext(std::string& out) {
  write_auth(out, 3);
}

void write_auth_md5(std::string& out, std::span<const uint8_t, 4> salt) {
  write_auth(out, 5, std::string_view(reinterpret_cast<const char*>(salt.data()), salt.size()));
}

void write_auth_sasl(std::string& out, std::span<const std::string_view> mechanisms) {
  MessageWriter w(out);
  w.begin('R');
  w.int32(10);
  for (std::string_view m : mechanisms) w.cstring(m);
  w.byte('\0');
  w.end();
}

void write_auth_sasl_continue(std::string& out, std::string_view data) {
  write_auth(out, 11, data);
}

void write_auth_sasl_final(std::string& out, std::string_view data) {
  write_auth(out, 12, data);
}

void write_parameter_status(std::string& out, std::string_view name, std::string_view value) {
  MessageWriter w(out);
  w.begin('S');
  w.cstring(name);
  w.cstring(value);
  w.end();
}

void write_backend_key_data(std::string& out, uint32_t process_id, uint32_t secret_key) {
  MessageWriter w(out);
  w.begin('K');
  w.int32(process_id);
  w.int32(secret_key);
  w.end();
}

void write_negotiate_protocol_version(std::string& out, uint32_t newest_version,
                                      std::span<const std::string> unrecognized) {
  MessageWriter w(out);
  w.begin('v');
  w.int32(newest_version);
  w.int32(static_cast<uint32_t>(unrecognized.size()));
  for (const std::string& option : unrecognized) w.cstring(option);
  w.end();
}

std::optional<std::vector<std::string>> protocol_negotiation_needed(const StartupMessage& startup) {
  std::vector<std::string> unrecognized;
  for (const auto& [name, value] : startup.params)
    if (name.starts_with("_pq_.")) unrecognized.push_back(name);
  if ((startup.protocol & 0xffff) == 0 && unrecognized.empty()) return std::nullopt;
  return unrecognized;
}

void write_ready_for_query(std::string& out, char status) {
  MessageWriter w(out);
  w.begin('Z');
  w.byte(status);
  w.end();
}

void write_command_complete(std::string& out, std::string_view tag) {
  write_single_cstring(out, 'C', tag);
}

void write_empty_query_response(std::string& out) {
  write_empty(out, 'I');
}

// ---------------------------------------------------------------- frontend messages

void write_startup(std::string& out, std::span<const std::pair<std::string, std::string>> params) {
  MessageWriter w(out);
  w.begin_untyped();
  w.int32(kProtocolVersion3);
  for (const auto& [key, value] : params) {
    w.cstring(key);
    w.cstring(value);
  }
  w.byte('\0');
  w.end();
}

void write_ssl_request(std::string& out) {
  MessageWriter w(out);
  w.begin_untyped();
  w.int32(kSslRequestCode);
  w.end();
}

void write_cancel_request(std::string& out, uint32_t process_id, uint32_t secret_key) {
  MessageWriter w(out);
  w.begin_untyped();
  w.int32(kCancelRequestCode);
  w.int32(process_id);
  w.int32(secret_key);
  w.end();
}

void write_query(std::string& out, std::string_view sql) {
  write_single_cstring(out, 'Q', sql);
}

void write_password(std::string& out, std::string_view password) {
  write_single_cstring(out, 'p', password);
}

void write_sasl_initial_response(std::string& out, std::string_view mechanism,
                                 std::string_view data) {
  MessageWriter w(out);
  w.begin('p');
  w.cstring(mechanism);
  w.int32(static_cast<uint32_t>(data.size()));
  w.bytes(data);
  w.end();
}

void write_sasl_response(std::string& out, std::string_view data) {
  MessageWriter w(out);
  w.begin('p');
  w.bytes(data);
  w.end();
}

void write_sync(std::string& out) {
  write_empty(out, 'S');
}

void write_terminate(std::string& out) {
  write_empty(out, 'X');
}

void write_parse(std::string& out, std::string_view name, Bytes definition) {
  MessageWriter w(out);
  w.begin('P');
  w.cstring(name);
  w.bytes({reinterpret_cast<const char*>(definition.data()), definition.size()});
  w.end();
}

void write_bind(std::string& out, std::string_view portal, std::string_view statement, Bytes rest,
                size_t unread) {
  MessageWriter w(out);
  w.begin('B');
  w.cstring(portal);
  w.cstring(statement);
  w.bytes({reinterpret_cast<const char*>(rest.data()), rest.size()});
  w.end_with_unread(unread);
}

namespace {
// Describe and Close share one layout: 'S' or 'P', then the name.
void write_targeted(std::string& out, char type, char kind, std::string_view name) {
  MessageWriter w(out);
  w.begin(type);
  w.byte(kind);
  w.cstring(name);
  w.end();
}
}  // namespace

void write_describe(std::string& out, char kind, std::string_view name) {
  write_targeted(out, 'D', kind, name);
}

void write_close(std::string& out, char kind, std::string_view name) {
  write_targeted(out, 'C', kind, name);
}

void write_parse_complete(std::string& out) {
  write_empty(out, '1');
}

void write_close_complete(std::string& out) {
  write_empty(out, '3');
}

}  // namespace sluice::pgwire
