// Startup phase: decode_startup, the startup-phase encoders and parse_options.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "pgwire/codec.hpp"

namespace sluice::pgwire {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

Bytes bytes_of(const std::string& s) {
  return Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string be32(uint32_t v) {
  std::string out;
  MessageWriter(out).int32(v);
  return out;
}

// A startup-phase packet with the given code and raw body (length word computed).
std::string packet(uint32_t code, std::string_view body = {}) {
  std::string out;
  MessageWriter w(out);
  w.begin_untyped();
  w.int32(code);
  w.bytes(body);
  w.end();
  return out;
}

std::string startup_body(const Params& params) {
  std::string body;
  for (const auto& [k, v] : params) {
    body.append(k).push_back('\0');
    body.append(v).push_back('\0');
  }
  body.push_back('\0');
  return body;
}

StartupPacket decode(const std::string& pkt) {
  // Always go through the framer first, as the proxy does.
  Bytes p;
  EXPECT_EQ(peek_startup_packet(bytes_of(pkt), p), FrameStatus::kReady);
  return decode_startup(p);
}

ProtocolViolation violation(const StartupPacket& sp) {
  const auto* v = std::get_if<ProtocolViolation>(&sp);
  EXPECT_NE(v, nullptr) << "expected a ProtocolViolation, got variant index " << sp.index();
  return v ? *v : ProtocolViolation{};
}

// ---------------------------------------------------------------- StartupMessage

TEST(DecodeStartup, RoundTripsWriteStartup) {
  const Params params = {{"user", "alice"}, {"database", "shop"}, {"application_name", "psql"}};
  std::string buf;
  write_startup(buf, params);
  EXPECT_EQ(buf.substr(0, 8), be32(static_cast<uint32_t>(buf.size())) + be32(kProtocolVersion3));
  EXPECT_EQ(buf.back(), '\0');

  const StartupPacket sp = decode(buf);
  const auto* msg = std::get_if<StartupMessage>(&sp);
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(msg->protocol, kProtocolVersion3);
  EXPECT_EQ(msg->params, params);  // in the order sent
  ASSERT_NE(msg->find("user"), nullptr);
  EXPECT_EQ(*msg->find("user"), "alice");
  EXPECT_EQ(*msg->find("application_name"), "psql");
  EXPECT_EQ(msg->find("options"), nullptr);
  EXPECT_EQ(msg->find("USER"), nullptr);
}

TEST(DecodeStartup, DatabaseDefaultsToUser) {
  const StartupPacket sp = decode(packet(kProtocolVersion3, startup_body({{"user", "bob"}})));
  const auto* msg = std::get_if<StartupMessage>(&sp);
  ASSERT_NE(msg, nullptr);
  ASSERT_NE(msg->find("database"), nullptr);
  EXPECT_EQ(*msg->find("database"), "bob");
  EXPECT_EQ(*msg->find("user"), "bob");
}

TEST(DecodeStartup, EmptyDatabaseDefaultsToUser) {
  const StartupPacket sp =
      decode(packet(kProtocolVersion3, startup_body({{"database", ""}, {"user", "bob"}})));
  const auto* msg = std::get_if<StartupMessage>(&sp);
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(*msg->find("database"), "bob");
}

TEST(DecodeStartup, EmptyValuesAreAllowed) {
  const StartupPacket sp =
      decode(packet(kProtocolVersion3, startup_body({{"user", "u"}, {"options", ""}})));
  const auto* msg = std::get_if<StartupMessage>(&sp);
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(*msg->find("options"), "");
}

TEST(DecodeStartup, MinorVersionIsAcceptedAndKept) {
  const uint32_t v3_2 = (3u << 16) | 2u;
  const StartupPacket sp = decode(packet(v3_2, startup_body({{"user", "u"}})));
  const auto* msg = std::get_if<StartupMessage>(&sp);
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(msg->protocol, v3_2);
}

TEST(ProtocolNegotiation, OnlyANewerMinorOrProtocolOptionsAskForIt) {
  StartupMessage plain;
  plain.protocol = 3u << 16;
  plain.params = {{"user", "u"}, {"application_name", "x"}};
  EXPECT_FALSE(protocol_negotiation_needed(plain).has_value());

  StartupMessage newer = plain;
  newer.protocol = (3u << 16) | 2u;
  ASSERT_TRUE(protocol_negotiation_needed(newer).has_value());
  EXPECT_TRUE(protocol_negotiation_needed(newer)->empty());

  StartupMessage options = plain;
  options.params.emplace_back("_pq_.compression", "on");
  options.params.emplace_back("_pq_.other", "1");
  EXPECT_EQ(protocol_negotiation_needed(options),
            (std::vector<std::string>{"_pq_.compression", "_pq_.other"}));
}

TEST(ProtocolNegotiation, NegotiateProtocolVersionLayout) {
  std::string out;
  const std::vector<std::string> unrecognized{"_pq_.a", "_pq_.bc"};
  write_negotiate_protocol_version(out, 3u << 16, unrecognized);
  const std::string expected = std::string("v\0\0\0\x1b", 5) + std::string("\0\x03\0\0", 4) +
                               std::string("\0\0\0\x02", 4) + std::string("_pq_.a\0", 7) +
                               std::string("_pq_.bc\0", 8);
  EXPECT_EQ(out, expected);
}

TEST(DecodeStartup, MissingUser) {
  for (const Params& params : {Params{}, Params{{"database", "db"}}, Params{{"user", ""}}}) {
    const ProtocolViolation v = violation(decode(packet(kProtocolVersion3, startup_body(params))));
    EXPECT_EQ(v.sqlstate, "28000");
    EXPECT_EQ(v.message, "A user name is missing from the connection startup packet.");
  }
}

TEST(DecodeStartup, DuplicateKeyIsRejected) {
  const ProtocolViolation v = violation(decode(
      packet(kProtocolVersion3, startup_body({{"user", "a"}, {"database", "d"}, {"user", "b"}}))));
  EXPECT_EQ(v.sqlstate, "08P01");
  EXPECT_NE(v.message.find("duplicate"), std::string::npos) << v.message;
  EXPECT_NE(v.message.find("\"user\""), std::string::npos) << v.message;
}

TEST(DecodeStartup, ReplicationIsRefused) {
  for (const char* value : {"true", "database", "false"}) {
    const ProtocolViolation v = violation(
        decode(packet(kProtocolVersion3, startup_body({{"user", "u"}, {"replication", value}}))));
    EXPECT_EQ(v.sqlstate, "0A000");
    EXPECT_EQ(v.message, "replication connections are not supported by this proxy");
  }
}

TEST(DecodeStartup, MissingFinalTerminator) {
  // "user\0alice\0" with no closing NUL.
  const ProtocolViolation v =
      violation(decode(packet(kProtocolVersion3, std::string("user\0alice\0", 11))));
  EXPECT_EQ(v.sqlstate, "08P01");
  EXPECT_FALSE(v.message.empty());
}

TEST(DecodeStartup, EmptyBodyHasNoTerminator) {
  EXPECT_EQ(violation(decode(packet(kProtocolVersion3))).sqlstate, "08P01");
}

TEST(DecodeStartup, OddNumberOfStrings) {
  // Key without a value: the key's NUL is the last byte.
  EXPECT_EQ(
      violation(decode(packet(kProtocolVersion3, std::string("user\0alice\0db\0", 14)))).sqlstate,
      "08P01");
  // Key, then what would have been the terminator is consumed as an empty value.
  EXPECT_EQ(
      violation(decode(packet(kProtocolVersion3, std::string("user\0alice\0db\0\0", 15)))).sqlstate,
      "08P01");
}

TEST(DecodeStartup, UnterminatedKeyOrValue) {
  EXPECT_EQ(
      violation(decode(packet(kProtocolVersion3, std::string("user\0alice\0data", 15)))).sqlstate,
      "08P01");
  EXPECT_EQ(violation(decode(packet(kProtocolVersion3, std::string("user\0ali", 8)))).sqlstate,
            "08P01");
}

TEST(DecodeStartup, EmptyKeyBeforeEnd) {
  const ProtocolViolation v = violation(
      decode(packet(kProtocolVersion3, std::string("user\0alice\0\0database\0d\0\0", 24))));
  EXPECT_EQ(v.sqlstate, "08P01");
}

TEST(DecodeStartup, GarbageAfterTerminator) {
  EXPECT_EQ(
      violation(decode(packet(kProtocolVersion3, std::string("user\0alice\0\0\0", 13)))).sqlstate,
      "08P01");
  EXPECT_EQ(
      violation(decode(packet(kProtocolVersion3, std::string("user\0alice\0\0x", 13)))).sqlstate,
      "08P01");
}

TEST(DecodeStartup, ErrorMessagesQuoteHostileKeysSafely) {
  const std::string key = std::string("bad\x01\xff", 5) + std::string(500, 'k');
  const ProtocolViolation v = violation(decode(packet(
      kProtocolVersion3, std::string(key) + '\0' + "v" + '\0' + key + '\0' + "v" + '\0' + '\0')));
  EXPECT_EQ(v.sqlstate, "08P01");
  EXPECT_LT(v.message.size(), 200u);
  for (char c : v.message) {
    EXPECT_TRUE(c >= 0x20 && c < 0x7f) << static_cast<int>(c);
  }
}

// ---------------------------------------------------------------- protocol versions

TEST(DecodeStartup, Protocol2IsRejected) {
  const ProtocolViolation v = violation(decode(packet(131072, startup_body({{"user", "u"}}))));
  EXPECT_EQ(v.sqlstate, "0A000");
  EXPECT_EQ(v.message, "unsupported frontend protocol 2.0: server supports 3.0 to 3.0");
}

TEST(DecodeStartup, OtherMajorVersionsAreRejected) {
  EXPECT_EQ(violation(decode(packet((1u << 16) | 5u, "x"))).message,
            "unsupported frontend protocol 1.5: server supports 3.0 to 3.0");
  EXPECT_EQ(violation(decode(packet(4u << 16, startup_body({{"user", "u"}})))).message,
            "unsupported frontend protocol 4.0: server supports 3.0 to 3.0");
  EXPECT_EQ(violation(decode(packet(0, ""))).sqlstate, "0A000");
}

TEST(DecodeStartup, UnknownRequestCode) {
  const ProtocolViolation v = violation(decode(packet(80877105)));
  EXPECT_EQ(v.sqlstate, "0A000");
  EXPECT_EQ(v.message, "unsupported frontend protocol 1234.5681: server supports 3.0 to 3.0");
  EXPECT_EQ(violation(decode(packet(0xffffffffu))).message,
            "unsupported frontend protocol 65535.65535: server supports 3.0 to 3.0");
}

// ---------------------------------------------------------------- special requests

TEST(DecodeStartup, SslRequest) {
  std::string buf;
  write_ssl_request(buf);
  EXPECT_EQ(buf, be32(8) + be32(kSslRequestCode));
  const StartupPacket sp = decode(buf);
  EXPECT_TRUE(std::holds_alternative<SslRequest>(sp));
}

TEST(DecodeStartup, SslRequestWithExtraBytesIsRejected) {
  EXPECT_EQ(violation(decode(packet(kSslRequestCode, "xx"))).sqlstate, "08P01");
}

TEST(DecodeStartup, GssEncRequest) {
  const StartupPacket sp = decode(packet(kGssEncRequestCode));
  EXPECT_TRUE(std::holds_alternative<GssEncRequest>(sp));
  EXPECT_EQ(violation(decode(packet(kGssEncRequestCode, "x"))).sqlstate, "08P01");
}

TEST(DecodeStartup, CancelRequestRoundTrip) {
  std::string buf;
  write_cancel_request(buf, 0xdeadbeef, 0x01020304);
  EXPECT_EQ(buf, be32(16) + be32(kCancelRequestCode) + be32(0xdeadbeef) + be32(0x01020304));
  const StartupPacket sp = decode(buf);
  const auto* c = std::get_if<CancelRequest>(&sp);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->process_id, 0xdeadbeefu);
  EXPECT_EQ(c->secret_key, 0x01020304u);
}

TEST(DecodeStartup, CancelRequestWrongLength) {
  EXPECT_EQ(violation(decode(packet(kCancelRequestCode))).sqlstate, "08P01");
  EXPECT_EQ(violation(decode(packet(kCancelRequestCode, std::string(7, 'x')))).sqlstate, "08P01");
  EXPECT_EQ(violation(decode(packet(kCancelRequestCode, std::string(9, 'x')))).sqlstate, "08P01");
  EXPECT_EQ(violation(decode(packet(kCancelRequestCode, std::string(16, 'x')))).sqlstate, "08P01");
}

TEST(DecodeStartup, InconsistentLengthWordIsRejected) {
  // decode_startup is handed the packet directly: the length word must match its size.
  std::string buf = packet(kProtocolVersion3, startup_body({{"user", "u"}}));
  buf += "extra";
  EXPECT_EQ(violation(decode_startup(bytes_of(buf))).sqlstate, "08P01");
  EXPECT_EQ(violation(decode_startup(bytes_of(buf.substr(0, 7)))).sqlstate, "08P01");
  EXPECT_EQ(violation(decode_startup(Bytes{})).sqlstate, "08P01");
}

TEST(DecodeStartup, EveryTruncationIsRejectedWithoutCrashing) {
  std::string buf;
  const Params params = {{"user", "alice"}, {"database", "shop"}};
  write_startup(buf, params);
  for (size_t n = 0; n < buf.size(); ++n) {
    Bytes p;
    EXPECT_EQ(peek_startup_packet(bytes_of(buf.substr(0, n)), p), FrameStatus::kNeedMore);
    // Handing a truncated packet straight to the decoder must still be safe.
    std::string cut = buf.substr(0, n);
    EXPECT_TRUE(std::holds_alternative<ProtocolViolation>(decode_startup(bytes_of(cut)))) << n;
    // And with a corrected length word, the layout itself is truncated.
    if (n >= 8) {
      std::string fixed = be32(static_cast<uint32_t>(n)) + cut.substr(4);
      EXPECT_TRUE(std::holds_alternative<ProtocolViolation>(decode_startup(bytes_of(fixed)))) << n;
    }
  }
}

TEST(DecodeStartup, LargestAllowedPacket) {
  const std::string value(10000 - 8 - 5 - 1 - 1, 'v');  // "user\0" + value + "\0" + "\0"
  const std::string buf = packet(kProtocolVersion3, startup_body({{"user", value}}));
  ASSERT_EQ(buf.size(), 10000u);
  const StartupPacket sp = decode(buf);
  const auto* msg = std::get_if<StartupMessage>(&sp);
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(*msg->find("user"), value);
}

// ---------------------------------------------------------------- parse_options

Params parse_ok(std::string_view options) {
  std::string error;
  auto parsed = parse_options(options, error);
  EXPECT_TRUE(parsed.has_value()) << options << ": " << error;
  return parsed.value_or(Params{});
}

std::string parse_error(std::string_view options) {
  std::string error;
  auto parsed = parse_options(options, error);
  EXPECT_FALSE(parsed.has_value()) << options;
  EXPECT_FALSE(error.empty()) << options;
  return error;
}

TEST(ParseOptions, Empty) {
  EXPECT_EQ(parse_ok(""), Params{});
  EXPECT_EQ(parse_ok("   \t\n "), Params{});
}

TEST(ParseOptions, DashCTwoTokens) {
  EXPECT_EQ(parse_ok("-c search_path=app"), (Params{{"search_path", "app"}}));
}

TEST(ParseOptions, DashCOneToken) {
  EXPECT_EQ(parse_ok("-cstatement_timeout=5s"), (Params{{"statement_timeout", "5s"}}));
}

TEST(ParseOptions, DoubleDash) {
  EXPECT_EQ(parse_ok("--work_mem=64MB"), (Params{{"work_mem", "64MB"}}));
}

TEST(ParseOptions, DoubleDashHyphensBecomeUnderscores) {
  EXPECT_EQ(parse_ok("--work-mem=64MB"), (Params{{"work_mem", "64MB"}}));
  // Only the name is converted, never the value.
  EXPECT_EQ(parse_ok("--application-name=a-b"), (Params{{"application_name", "a-b"}}));
}

TEST(ParseOptions, MixedAndOrdered) {
  EXPECT_EQ(parse_ok("  -c a=1\t-cb.c=2   --d_e=3  -c a=4 "),
            (Params{{"a", "1"}, {"b.c", "2"}, {"d_e", "3"}, {"a", "4"}}));
}

TEST(ParseOptions, EscapedSpaces) {
  // As libpq/psql writes PGOPTIONS='-c search_path=a,\ b'.
  EXPECT_EQ(parse_ok("-c search_path=a,\\ b -c x=y"),
            (Params{{"search_path", "a, b"}, {"x", "y"}}));
  EXPECT_EQ(parse_ok("-c application_name=my\\ app\\\\x"),
            (Params{{"application_name", "my app\\x"}}));
}

TEST(ParseOptions, ValueMayContainEqualsAndBeEmpty) {
  EXPECT_EQ(parse_ok("-c a=b=c"), (Params{{"a", "b=c"}}));
  EXPECT_EQ(parse_ok("-c a="), (Params{{"a", ""}}));
}

TEST(ParseOptions, CustomDottedNames) {
  EXPECT_EQ(parse_ok("-c myext.Setting_2=on"), (Params{{"myext.Setting_2", "on"}}));
}

TEST(ParseOptions, RejectsOtherSwitches) {
  EXPECT_NE(parse_error("-d 5").find("-d"), std::string::npos);
  EXPECT_NE(parse_error("-c a=1 -B 100").find("-B"), std::string::npos);
  EXPECT_NE(parse_error("search_path=x").find("search_path=x"), std::string::npos);
  EXPECT_NE(parse_error("-").find("\"-\""), std::string::npos);
}

TEST(ParseOptions, RejectsMissingValue) {
  EXPECT_NE(parse_error("-c search_path").find("search_path"), std::string::npos);
  EXPECT_NE(parse_error("-csearch_path").find("search_path"), std::string::npos);
  EXPECT_NE(parse_error("--search_path").find("search_path"), std::string::npos);
  EXPECT_NE(parse_error("--").find("--"), std::string::npos);
}

TEST(ParseOptions, RejectsDanglingDashC) {
  EXPECT_NE(parse_error("-c").find("-c"), std::string::npos);
  EXPECT_NE(parse_error("-c a=1 -c").find("-c"), std::string::npos);
}

TEST(ParseOptions, RejectsBadNames) {
  EXPECT_NE(parse_error("-c =x").find("=x"), std::string::npos);
  EXPECT_NE(parse_error("-c a;b=x").find("a;b=x"), std::string::npos);
  EXPECT_NE(parse_error("--a$b=x").find("a$b=x"), std::string::npos);
  EXPECT_NE(parse_error("-c na\\ me=x").find("na me=x"), std::string::npos);
  parse_error(std::string_view("-c a\0b=x", 8));
}

TEST(ParseOptions, LongHostileTokenIsBoundedInError) {
  const std::string error = parse_error(std::string(5000, 'z'));
  EXPECT_LT(error.size(), 300u);
}

}  // namespace
}  // namespace sluice::pgwire
