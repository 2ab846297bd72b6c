// Decoding of message bodies (the bytes after the type byte and length word).
// Every read is bounds-checked; any layout violation yields nullopt.
#include <cstring>

#include "pgwire/codec.hpp"

namespace sluice::pgwire {
namespace {

// A forward-only cursor over a hostile byte span.
class Reader {
 public:
  explicit Reader(Bytes b) : b_(b) {}

  size_t remaining() const { return b_.size() - pos_; }
  bool at_end() const { return pos_ == b_.size(); }

  std::optional<uint8_t> u8() {
    if (remaining() < 1) return std::nullopt;
    return b_[pos_++];
  }

  std::optional<uint16_t> u16() {
    if (remaining() < 2) return std::nullopt;
    const uint8_t* p = b_.data() + pos_;
    pos_ += 2;
    return static_cast<uint16_t>((uint16_t{p[0]} << 8) | uint16_t{p[1]});
  }

  std::optional<uint32_t> u32() {
    if (remaining() < 4) return std::nullopt;
    const uint8_t* p = b_.data() + pos_;
    pos_ += 4;
    return read_be32(p);
  }

  // A NUL-terminated string; the NUL is consumed but not returned.
  std::optional<std::string_view> cstring() {
    if (remaining() == 0) return std::nullopt;
    const auto* begin = reinterpret_cast<const char*>(b_.data() + pos_);
    const void* nul = std::memchr(begin, 0, remaining());
    if (nul == nullptr) return std::nullopt;
    const auto len = static_cast<size_t>(static_cast<const char*>(nul) - begin);
    pos_ += len + 1;
    return std::string_view(begin, len);
  }

  std::optional<std::string_view> raw(size_t n) {
    if (remaining() < n) return std::nullopt;
    const auto* begin = reinterpret_cast<const char*>(b_.data() + pos_);
    pos_ += n;
    return std::string_view(begin, n);
  }

  Bytes rest() const { return b_.subspan(pos_); }

 private:
  Bytes b_;
  size_t pos_ = 0;
};

// Bodies that are exactly one NUL-terminated string.
std::optional<std::string_view> single_cstring(Bytes body) {
  Reader r(body);
  auto s = r.cstring();
  if (!s || !r.at_end()) return std::nullopt;
  return s;
}

}  // namespace

std::string_view ErrorFields::get(char code) const {
  for (const auto& [c, value] : fields) {
    if (c == code) return value;
  }
  return {};
}

std::optional<ErrorFields> decode_error_fields(Bytes body) {
  Reader r(body);
  ErrorFields out;
  while (true) {
    auto code = r.u8();
    if (!code) return std::nullopt;  // missing terminator
    if (*code == 0) break;
    auto value = r.cstring();
    if (!value) return std::nullopt;
    out.fields.emplace_back(static_cast<char>(*code), std::string(*value));
  }
  if (!r.at_end()) return std::nullopt;
  return out;
}

std::optional<ParameterStatus> decode_parameter_status(Bytes body) {
  Reader r(body);
  auto name = r.cstring();
  if (!name) return std::nullopt;
  auto value = r.cstring();
  if (!value || !r.at_end()) return std::nullopt;
  return ParameterStatus{std::string(*name), std::string(*value)};
}

std::optional<char> decode_ready_for_query(Bytes body) {
  if (body.size() != 1) return std::nullopt;
  const char status = static_cast<char>(body[0]);
  if (status != 'I' && status != 'T' && status != 'E') return std::nullopt;
  return status;
}

std::optional<BackendKeyData> decode_backend_key_data(Bytes body) {
  if (body.size() != 8) return std::nullopt;
  Reader r(body);
  BackendKeyData out;
  out.process_id = *r.u32();
  out.secret_key = *r.u32();
  return out;
}

std::optional<AuthenticationRequest> decode_authentication(Bytes body) {
  Reader r(body);
  auto code = r.u32();
  if (!code) return std::nullopt;
  return AuthenticationRequest{*code, r.rest()};
}

std::optional<std::vector<std::string>> decode_sasl_mechanisms(Bytes data) {
  Reader r(data);
  std::vector<std::string> out;
  while (true) {
    auto name = r.cstring();
    if (!name) return std::nullopt;  // list not terminated
    if (name->empty()) break;
    out.emplace_back(*name);
  }
  if (!r.at_end()) return std::nullopt;
  return out;
}

std::optional<std::string_view> decode_query(Bytes body) {
  // As single_cstring(), without the Reader: on every query. The NUL ends the body and is the
  // only one.
  if (body.empty() || body.back() != 0) return std::nullopt;
  const std::string_view text(reinterpret_cast<const char*>(body.data()), body.size() - 1);
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  return text;
}

std::optional<std::string_view> decode_execute_portal(Bytes body) {
  Reader r(body);
  auto portal = r.cstring();
  if (!portal || !r.u32() || !r.at_end()) return std::nullopt;
  return portal;
}

std::optional<std::vector<std::optional<std::string_view>>> decode_data_row(Bytes body) {
  Reader r(body);
  auto count = r.u16();
  if (!count) return std::nullopt;
  std::vector<std::optional<std::string_view>> values;
  values.reserve(*count);
  for (uint16_t i = 0; i < *count; ++i) {
    auto length = r.u32();
    if (!length) return std::nullopt;
    if (*length == 0xFFFFFFFFu) {
      values.emplace_back(std::nullopt);
      continue;
    }
    auto value = r.raw(*length);
    if (!value) return std::nullopt;
    values.emplace_back(*value);
  }
  if (!r.at_end()) return std::nullopt;
  return values;
}

std::optional<ParseMessage> decode_parse(Bytes body) {
  Reader r(body);
  auto statement = r.cstring();
  if (!statement) return std::nullopt;
  const Bytes definition = body.subspan(statement->size() + 1);
  auto query = r.cstring();
  if (!query) return std::nullopt;
  auto nparams = r.u16();
  if (!nparams) return std::nullopt;
  // Parameter type OIDs: exactly nparams int32s and nothing else.
  if (r.remaining() != size_t{*nparams} * 4) return std::nullopt;
  return ParseMessage{*statement, *query, definition};
}

std::optional<BindMessage> decode_bind(Bytes body) {
  Reader r(body);
  auto portal = r.cstring();
  if (!portal) return std::nullopt;
  auto statement = r.cstring();
  if (!statement) return std::nullopt;
  return BindMessage{*portal, *statement, body.subspan(portal->size() + statement->size() + 2)};
}

std::optional<TargetMessage> decode_describe_or_close(Bytes body) {
  Reader r(body);
  auto kind = r.u8();
  if (!kind || (*kind != 'S' && *kind != 'P')) return std::nullopt;
  auto name = r.cstring();
  if (!name || !r.at_end()) return std::nullopt;
  return TargetMessage{static_cast<char>(*kind), *name};
}

std::optional<SaslInitialResponse> decode_sasl_initial_response(Bytes body) {
  Reader r(body);
  auto mechanism = r.cstring();
  if (!mechanism) return std::nullopt;
  auto length = r.u32();
  if (!length) return std::nullopt;
  if (*length == 0xffffffffu) {  // -1: no initial response
    if (!r.at_end()) return std::nullopt;
    return SaslInitialResponse{*mechanism, {}};
  }
  if ((*length & 0x80000000u) != 0) return std::nullopt;  // other negative lengths
  if (r.remaining() != *length) return std::nullopt;
  return SaslInitialResponse{*mechanism, *r.raw(*length)};
}

std::optional<std::string_view> decode_password(Bytes body) {
  return single_cstring(body);
}

}  // namespace sluice::pgwire
