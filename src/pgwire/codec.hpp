// PostgreSQL protocol 3.0 codec: framing, decoding and encoding of messages.
// Pure: no sockets, no clocks, no allocation beyond the values it returns.
// Every byte handed to the decoders is treated as hostile: lengths are checked
// against the buffer and against the configured limits before anything is read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sluice::pgwire {

using Bytes = std::span<const uint8_t>;

// A startup-phase packet may not exceed this many bytes (length word included),
// the same limit PostgreSQL itself applies.
constexpr size_t kMaxStartupPacketSize = 10000;
constexpr uint32_t kProtocolVersion3 = 196608;  // 3.0
constexpr uint32_t kSslRequestCode = 80877103;
constexpr uint32_t kGssEncRequestCode = 80877104;
constexpr uint32_t kCancelRequestCode = 80877102;

// The int32 at `p` in the wire's byte order (big-endian), as unsigned; `p` must hold 4 bytes.
inline uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// The same bytes as text (no copy).
inline std::string_view as_text(Bytes bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// ---------------------------------------------------------------- framing

enum class FrameStatus {
  kNeedMore,   // the buffer does not hold a whole frame yet
  kReady,      // `frame` is set
  kTooLarge,   // the declared length exceeds the limit
  kMalformed,  // the declared length is impossible (< 4)
};

// A typed message: one type byte, then an int32 length that counts itself.
struct Frame {
  char type = 0;
  Bytes body;  // the bytes after the length word; points into the caller's buffer
  // A streamed message's head (peek_frame_head) holds only the body's first bytes: how many
  // are still to come. Zero for a whole message.
  size_t unread = 0;
  // The bytes of this frame in the buffer (for a head, only those present).
  size_t wire_size() const { return 5 + body.size(); }
};

// Looks for one typed frame at the start of `buf`. Never reads past `buf`.
// `max_message_size` bounds the whole frame (type byte + length + body).
// Inline: it runs for every message both ways.
inline FrameStatus peek_frame(Bytes buf, size_t max_message_size, Frame& frame) {
  if (buf.size() < 5) return FrameStatus::kNeedMore;
  const uint32_t length = read_be32(buf.data() + 1);
  // The wire carries lengths as signed int32: anything with the sign bit set is negative.
  if ((length & 0x80000000u) != 0 || length < 4) return FrameStatus::kMalformed;
  // length < 2^31, so 1 + length cannot overflow size_t.
  const size_t total = size_t{1} + length;
  if (total > max_message_size) return FrameStatus::kTooLarge;
  if (buf.size() < total) return FrameStatus::kNeedMore;
  frame.type = static_cast<char>(buf[0]);
  frame.body = buf.subspan(5, total - 5);
  return FrameStatus::kReady;
}

// The head of a message too large to hold whole, so that it can be passed on as it arrives: once
// at least `head_size` bytes of it are in `buf`, `frame` gets its type, the body bytes present
// and `unread`. kNeedMore before that (or when the message is whole and no larger than
// `head_size`: peek_frame takes it), kTooLarge over `max_message_size`.
FrameStatus peek_frame_head(Bytes buf, size_t head_size, size_t max_message_size, Frame& frame);

// Looks for one untyped startup-phase packet (StartupMessage, SSLRequest, GSSENCRequest,
// CancelRequest) at the start of `buf`; `packet` gets the whole packet, length word included.
// Packets over kMaxStartupPacketSize or under 8 bytes are kTooLarge / kMalformed.
FrameStatus peek_startup_packet(Bytes buf, Bytes& packet);

// ---------------------------------------------------------------- startup phase

struct StartupMessage {
  uint32_t protocol = 0;
  // In the order the client sent them. Keys are unique (a repeated key is a protocol error).
  std::vector<std::pair<std::string, std::string>> params;
  const std::string* find(std::string_view key) const;
};
struct SslRequest {};
struct GssEncRequest {};
struct CancelRequest {
  uint32_t process_id = 0;
  uint32_t secret_key = 0;
};
// A packet we refuse: its SQLSTATE and a message fit for a FATAL ErrorResponse.
struct ProtocolViolation {
  std::string sqlstate;
  std::string message;
};
using StartupPacket =
    std::variant<StartupMessage, SslRequest, GssEncRequest, CancelRequest, ProtocolViolation>;

// Decodes a whole startup-phase packet as returned by peek_startup_packet.
// Protocol 2.x, other major versions and unknown request codes become a ProtocolViolation
// with SQLSTATE 0A000 ("unsupported frontend protocol ..."); bad layout with 08P01.
// A missing "user" is reported as 28000 "A user name is missing from the connection startup
// packet."; "database" defaults to the user name.
StartupPacket decode_startup(Bytes packet);

// Splits the value of the `options` startup parameter into (name, value) pairs.
// Accepts "-c name=value", "-cname=value" and "--name=value", with backslash-escaped spaces
// as libpq writes them. Returns nullopt (and sets `error`) for anything else.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_options(
    std::string_view options, std::string& error);

// ---------------------------------------------------------------- message names

// Human-readable names ("Query", "RowDescription", ...) for logs; "unknown" otherwise.
std::string_view frontend_message_name(char type);
std::string_view backend_message_name(char type);
// True for every message type a client may send after startup:
// Q P B E D C H S F d c f X p (p covers PasswordMessage, SASLInitialResponse, SASLResponse).
bool is_frontend_message_type(char type);

// ---------------------------------------------------------------- decoding (bodies)

// ErrorResponse ('E') and NoticeResponse ('N') fields, keyed by their one-letter codes.
struct ErrorFields {
  std::vector<std::pair<char, std::string>> fields;
  std::string_view get(char code) const;  // "" when absent
  std::string_view severity() const { return get('S'); }
  std::string_view sqlstate() const { return get('C'); }
  std::string_view message() const { return get('M'); }
};
std::optional<ErrorFields> decode_error_fields(Bytes body);
// The same ErrorResponse body with another severity (both the localized 'S' and the 'V'
// field), every other field as it was: how a server's FATAL reaches a client that keeps its
// session. Nothing when `body` is malformed.
std::optional<std::string> error_with_severity(Bytes body, std::string_view severity);

struct ParameterStatus {
  std::string name;
  std::string value;
};
std::optional<ParameterStatus> decode_parameter_status(Bytes body);

// ReadyForQuery: 'I' idle, 'T' in a transaction block, 'E' in a failed transaction block.
std::optional<char> decode_ready_for_query(Bytes body);

struct BackendKeyData {
  uint32_t process_id = 0;
  uint32_t secret_key = 0;
};
std::optional<BackendKeyData> decode_backend_key_data(Bytes body);

// Authentication request ('R'): the int32 code and whatever follows it
// (salt for MD5, mechanism list for SASL, SASL data for SASLContinue/SASLFinal).
struct AuthenticationRequest {
  uint32_t code = 0;  // 0 Ok, 3 cleartext, 5 MD5, 10 SASL, 11 SASLContinue, 12 SASLFinal
  Bytes data;
};
std::optional<AuthenticationRequest> decode_authentication(Bytes body);
// The NUL-terminated mechanism names of an AuthenticationSASL request.
std::optional<std::vector<std::string>> decode_sasl_mechanisms(Bytes data);

// DataRow ('D'): the column values (nullopt for NULL), as text or binary bytes.
std::optional<std::vector<std::optional<std::string_view>>> decode_data_row(Bytes body);

// Query ('Q'): the SQL text.
std::optional<std::string_view> decode_query(Bytes body);

// Parse ('P'): statement name and SQL text. `definition` is everything after the name (the
// SQL, its NUL and the parameter types): what makes two statements the same.
struct ParseMessage {
  std::string_view statement;
  std::string_view query;
  Bytes definition;
};
std::optional<ParseMessage> decode_parse(Bytes body);
// Execute ('E'): the portal's name (the row limit stays in the message).
std::optional<std::string_view> decode_execute_portal(Bytes body);

// Bind ('B'): portal and statement names; `rest` (parameters and formats) is passed through.
struct BindMessage {
  std::string_view portal;
  std::string_view statement;
  Bytes rest;
};
std::optional<BindMessage> decode_bind(Bytes body);

// Describe ('D') and Close ('C'): 'S' statement or 'P' portal, and the name.
struct TargetMessage {
  char kind = 0;
  std::string_view name;
};
std::optional<TargetMessage> decode_describe_or_close(Bytes body);

// SASLInitialResponse (a 'p' during SASL): mechanism and the client-first-message.
struct SaslInitialResponse {
  std::string_view mechanism;
  std::string_view data;  // empty when the client sent length -1
};
std::optional<SaslInitialResponse> decode_sasl_initial_response(Bytes body);
// PasswordMessage (cleartext or "md5..."): the NUL-terminated string.
std::optional<std::string_view> decode_password(Bytes body);

// ---------------------------------------------------------------- encoding

// Appends messages to a byte string. Build one message at a time:
//   w.begin('Q'); w.cstring(sql); w.end();
class MessageWriter {
 public:
  explicit MessageWriter(std::string& out) : out_(out) {}
  void begin(char type);  // typed message
  void begin_untyped();   // startup-phase packet (length word only)
  void int32(uint32_t v);
  void int16(uint16_t v);
  void byte(char c);
  void cstring(std::string_view s);  // bytes then NUL
  void bytes(std::string_view s);
  void end();  // patches the length word
  // A message whose body is still to come (`unread` more bytes, streamed after it): end() with
  // those counted in its length.
  void end_with_unread(size_t unread);

 private:
  std::string& out_;
  size_t start_ = 0;
};

// Backend messages (sent by the proxy to clients).
void write_error(std::string& out, std::string_view severity, std::string_view sqlstate,
                 std::string_view message, std::string_view detail = {});
void write_notice(std::string& out, std::string_view sqlstate, std::string_view message);
void write_auth_ok(std::string& out);
void write_auth_cleartext(std::string& out);
void write_auth_md5(std::string& out, std::span<const uint8_t, 4> salt);
void write_auth_sasl(std::string& out, std::span<const std::string_view> mechanisms);
void write_auth_sasl_continue(std::string& out, std::string_view data);
void write_auth_sasl_final(std::string& out, std::string_view data);
void write_parameter_status(std::string& out, std::string_view name, std::string_view value);
void write_backend_key_data(std::string& out, uint32_t process_id, uint32_t secret_key);
// NegotiateProtocolVersion: the newest version of the client's major protocol spoken here
// (as PostgreSQL sends it: major << 16 | minor), and the protocol options (`_pq_.*`) not
// recognised.
void write_negotiate_protocol_version(std::string& out, uint32_t newest_version,
                                      std::span<const std::string> unrecognized);
// What a server that speaks 3.0 and no protocol options owes a client that asked for a newer
// minor version or for `_pq_.*` options: the options to name in NegotiateProtocolVersion.
// Nothing when the client asked for neither (then no such message is sent), as PostgreSQL does.
std::optional<std::vector<std::string>> protocol_negotiation_needed(const StartupMessage& startup);
void write_ready_for_query(std::string& out, char status);
void write_command_complete(std::string& out, std::string_view tag);
void write_empty_query_response(std::string& out);
void write_parse_complete(std::string& out);
void write_close_complete(std::string& out);

// Frontend messages (sent by the proxy to servers).
void write_startup(std::string& out,
                   std::span<const std::pair<std::string, std::string>> params);  // protocol 3.0
void write_ssl_request(std::string& out);
void write_cancel_request(std::string& out, uint32_t process_id, uint32_t secret_key);
void write_query(std::string& out, std::string_view sql);
void write_password(std::string& out, std::string_view password);
void write_sasl_initial_response(std::string& out, std::string_view mechanism,
                                 std::string_view data);
void write_sasl_response(std::string& out, std::string_view data);
void write_sync(std::string& out);
// Parse of a statement `definition` (as in ParseMessage) under `name`.
void write_parse(std::string& out, std::string_view name, Bytes definition);
// Bind with the parameters and formats `rest` (as in BindMessage).
// `unread`: bytes of `rest` still to come (a streamed Bind's parameters, sent after it).
void write_bind(std::string& out, std::string_view portal, std::string_view statement, Bytes rest,
                size_t unread = 0);
// Describe and Close: `kind` 'S' (statement) or 'P' (portal).
void write_describe(std::string& out, char kind, std::string_view name);
void write_close(std::string& out, char kind, std::string_view name);
void write_terminate(std::string& out);

}  // namespace sluice::pgwire
