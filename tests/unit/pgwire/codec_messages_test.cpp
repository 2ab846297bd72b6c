// Message names, body decoders and encoders: encode -> peek_frame -> decode round trips,
// plus malformed bodies for every decoder.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "pgwire/codec.hpp"

namespace sluice::pgwire {
namespace {

Bytes bytes_of(std::string_view s) {
  return Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string be32(uint32_t v) {
  std::string out;
  MessageWriter(out).int32(v);
  return out;
}

std::string be16(uint16_t v) {
  std::string out;
  MessageWriter(out).int16(v);
  return out;
}

// Frames `wire` (which must hold exactly one message) and returns it.
Frame frame_of(const std::string& wire, char expected_type) {
  Frame f;
  EXPECT_EQ(peek_frame(bytes_of(wire), 1 << 20, f), FrameStatus::kReady);
  EXPECT_EQ(f.type, expected_type);
  EXPECT_EQ(f.wire_size(), wire.size());
  return f;
}

std::string_view str(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// ---------------------------------------------------------------- names

TEST(MessageNames, Frontend) {
  const std::pair<char, std::string_view> expected[] = {
      {'Q', "Query"},        {'P', "Parse"},           {'B', "Bind"},     {'E', "Execute"},
      {'D', "Describe"},     {'C', "Close"},           {'H', "Flush"},    {'S', "Sync"},
      {'F', "FunctionCall"}, {'d', "CopyData"},        {'c', "CopyDone"}, {'f', "CopyFail"},
      {'X', "Terminate"},    {'p', "PasswordMessage"},
  };
  for (const auto& [type, name] : expected) {
    EXPECT_EQ(frontend_message_name(type), name) << type;
    EXPECT_TRUE(is_frontend_message_type(type)) << type;
  }
  int known = 0;
  for (int c = -128; c < 128; ++c) {
    if (is_frontend_message_type(static_cast<char>(c))) ++known;
    if (!is_frontend_message_type(static_cast<char>(c))) {
      EXPECT_EQ(frontend_message_name(static_cast<char>(c)), "unknown") << c;
    }
  }
  EXPECT_EQ(known, 14);
  EXPECT_FALSE(is_frontend_message_type('Z'));
  EXPECT_FALSE(is_frontend_message_type('\0'));
}

TEST(MessageNames, Backend) {
  const std::pair<char, std::string_view> expected[] = {
      {'R', "Authentication"},
      {'K', "BackendKeyData"},
      {'2', "BindComplete"},
      {'3', "CloseComplete"},
      {'C', "CommandComplete"},
      {'d', "CopyData"},
      {'c', "CopyDone"},
      {'G', "CopyInResponse"},
      {'H', "CopyOutResponse"},
      {'W', "CopyBothResponse"},
      {'D', "DataRow"},
      {'I', "EmptyQueryResponse"},
      {'E', "ErrorResponse"},
      {'V', "FunctionCallResponse"},
      {'v', "NegotiateProtocolVersion"},
      {'n', "NoData"},
      {'N', "NoticeResponse"},
      {'A', "NotificationResponse"},
      {'t', "ParameterDescription"},
      {'S', "ParameterStatus"},
      {'1', "ParseComplete"},
      {'s', "PortalSuspended"},
      {'Z', "ReadyForQuery"},
      {'T', "RowDescription"},
  };
  int known = 0;
  for (int c = -128; c < 128; ++c) {
    if (backend_message_name(static_cast<char>(c)) != "unknown") ++known;
  }
  EXPECT_EQ(known, 24);
  for (const auto& [type, name] : expected) EXPECT_EQ(backend_message_name(type), name) << type;
  EXPECT_EQ(backend_message_name('Q'), "unknown");
  EXPECT_EQ(backend_message_name('\0'), "unknown");
}

// ---------------------------------------------------------------- MessageWriter

TEST(MessageWriter, TypedMessageLayout) {
  std::string out = "prefix";
  MessageWriter w(out);
  w.begin('x');
  w.int32(0x01020304);
  w.int16(0xa0b0);
  w.byte('z');
  w.cstring("hi");
  w.bytes(std::string_view("\0\1", 2));
  w.end();
  const std::string expected = std::string("prefix") + "x" + be32(4 + 4 + 2 + 1 + 3 + 2) +
                               std::string("\x01\x02\x03\x04\xa0\xb0z", 7) +
                               std::string("hi\0\0\1", 5);
  EXPECT_EQ(out, expected);
}

TEST(MessageWriter, UntypedAndConsecutiveMessages) {
  std::string out;
  MessageWriter w(out);
  w.begin_untyped();
  w.int32(7);
  w.end();
  w.begin('A');
  w.end();
  EXPECT_EQ(out, be32(8) + be32(7) + "A" + be32(4));
}

// ---------------------------------------------------------------- backend messages

TEST(ErrorResponse, RoundTripWithDetail) {
  std::string out;
  write_error(out, "FATAL", "28P01", "password authentication failed", "bad password");
  const Frame f = frame_of(out, 'E');
  EXPECT_EQ(str(f.body), std::string("SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed\0"
                                     "Dbad password\0\0",
                                     68));
  const auto fields = decode_error_fields(f.body);
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->severity(), "FATAL");
  EXPECT_EQ(fields->get('V'), "FATAL");
  EXPECT_EQ(fields->sqlstate(), "28P01");
  EXPECT_EQ(fields->message(), "password authentication failed");
  EXPECT_EQ(fields->get('D'), "bad password");
  EXPECT_EQ(fields->get('H'), "");
  ASSERT_EQ(fields->fields.size(), 5u);
  EXPECT_EQ(fields->fields[0].first, 'S');
  EXPECT_EQ(fields->fields[4].first, 'D');
}

TEST(ErrorResponse, NoDetailFieldWhenEmpty) {
  std::string out;
  write_error(out, "ERROR", "42601", "syntax error");
  const auto fields = decode_error_fields(frame_of(out, 'E').body);
  ASSERT_TRUE(fields);
  ASSERT_EQ(fields->fields.size(), 4u);
  EXPECT_EQ(fields->fields[0], (std::pair<char, std::string>{'S', "ERROR"}));
  EXPECT_EQ(fields->fields[1], (std::pair<char, std::string>{'V', "ERROR"}));
  EXPECT_EQ(fields->fields[2], (std::pair<char, std::string>{'C', "42601"}));
  EXPECT_EQ(fields->fields[3], (std::pair<char, std::string>{'M', "syntax error"}));
}

TEST(ErrorResponse, SeverityReplacedAndEveryOtherFieldKept) {
  std::string out;
  write_error(out, "FATAL", "57P01", "terminating connection due to administrator command",
              "detail");
  const auto body = error_with_severity(frame_of(out, 'E').body, "ERROR");
  ASSERT_TRUE(body);
  const auto fields = decode_error_fields(bytes_of(*body));
  ASSERT_TRUE(fields);
  ASSERT_EQ(fields->fields.size(), 5u);
  EXPECT_EQ(fields->severity(), "ERROR");
  EXPECT_EQ(fields->get('V'), "ERROR");
  EXPECT_EQ(fields->sqlstate(), "57P01");
  EXPECT_EQ(fields->message(), "terminating connection due to administrator command");
  EXPECT_EQ(fields->get('D'), "detail");
}

TEST(ErrorResponse, SeverityOfAMalformedBodyIsNotReplaced) {
  const std::string unterminated("SFATAL\0C57P01", 13);
  EXPECT_FALSE(error_with_severity(bytes_of(unterminated), "ERROR"));
}

TEST(NoticeResponse, RoundTrip) {
  std::string out;
  write_notice(out, "01000", "hello");
  const auto fields = decode_error_fields(frame_of(out, 'N').body);
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->severity(), "NOTICE");
  EXPECT_EQ(fields->get('V'), "NOTICE");
  EXPECT_EQ(fields->sqlstate(), "01000");
  EXPECT_EQ(fields->message(), "hello");
  EXPECT_EQ(fields->fields.size(), 4u);
}

TEST(ErrorFields, DecodeCases) {
  EXPECT_TRUE(decode_error_fields(bytes_of(std::string("\0", 1))));  // no fields at all
  EXPECT_EQ(decode_error_fields(bytes_of(std::string("\0", 1)))->fields.size(), 0u);
  // Unknown codes are kept; empty values allowed.
  auto f = decode_error_fields(bytes_of(std::string("Zxyz\0M\0\0", 8)));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->get('Z'), "xyz");
  EXPECT_EQ(f->get('M'), "");
  EXPECT_EQ(f->fields.size(), 2u);

  EXPECT_FALSE(decode_error_fields(Bytes{}));                                   // empty
  EXPECT_FALSE(decode_error_fields(bytes_of(std::string("SERROR\0", 7))));      // no terminator
  EXPECT_FALSE(decode_error_fields(bytes_of(std::string("SERROR", 6))));        // unterminated
  EXPECT_FALSE(decode_error_fields(bytes_of(std::string("S", 1))));             // code only
  EXPECT_FALSE(decode_error_fields(bytes_of(std::string("SERROR\0\0x", 9))));   // trailing
  EXPECT_FALSE(decode_error_fields(bytes_of(std::string("SERROR\0\0\0", 9))));  // trailing NUL
}

TEST(ErrorFields, EveryTruncationFails) {
  std::string out;
  write_error(out, "ERROR", "XX000", "boom", "detail");
  const Bytes body = frame_of(out, 'E').body;
  for (size_t n = 0; n < body.size(); ++n) {
    EXPECT_FALSE(decode_error_fields(body.first(n))) << n;
  }
}

TEST(ParameterStatus, RoundTrip) {
  std::string out;
  write_parameter_status(out, "TimeZone", "Europe/Paris");
  const auto ps = decode_parameter_status(frame_of(out, 'S').body);
  ASSERT_TRUE(ps);
  EXPECT_EQ(ps->name, "TimeZone");
  EXPECT_EQ(ps->value, "Europe/Paris");

  out.clear();
  write_parameter_status(out, "x", "");
  EXPECT_EQ(decode_parameter_status(frame_of(out, 'S').body)->value, "");
}

TEST(ParameterStatus, Malformed) {
  EXPECT_FALSE(decode_parameter_status(Bytes{}));
  EXPECT_FALSE(decode_parameter_status(bytes_of(std::string("name\0", 5))));
  EXPECT_FALSE(decode_parameter_status(bytes_of(std::string("name\0value", 10))));
  EXPECT_FALSE(decode_parameter_status(bytes_of(std::string("name\0value\0x", 12))));
  EXPECT_FALSE(decode_parameter_status(bytes_of(std::string("name\0value\0\0", 12))));
}

TEST(ReadyForQuery, RoundTrip) {
  for (char status : {'I', 'T', 'E'}) {
    std::string out;
    write_ready_for_query(out, status);
    EXPECT_EQ(out, "Z" + be32(5) + status);
    EXPECT_EQ(decode_ready_for_query(frame_of(out, 'Z').body), status);
  }
}

TEST(ReadyForQuery, Malformed) {
  EXPECT_FALSE(decode_ready_for_query(Bytes{}));
  EXPECT_FALSE(decode_ready_for_query(bytes_of("X")));
  EXPECT_FALSE(decode_ready_for_query(bytes_of("i")));
  EXPECT_FALSE(decode_ready_for_query(bytes_of("II")));
  EXPECT_FALSE(decode_ready_for_query(bytes_of(std::string("\0", 1))));
}

TEST(BackendKeyData, RoundTrip) {
  std::string out;
  write_backend_key_data(out, 4242, 0xfedcba98);
  EXPECT_EQ(out, "K" + be32(12) + be32(4242) + be32(0xfedcba98));
  const auto k = decode_backend_key_data(frame_of(out, 'K').body);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->process_id, 4242u);
  EXPECT_EQ(k->secret_key, 0xfedcba98u);
}

TEST(BackendKeyData, WrongSize) {
  const std::string body = be32(1) + be32(2);
  for (size_t n = 0; n < body.size(); ++n) {
    EXPECT_FALSE(decode_backend_key_data(bytes_of(std::string_view(body).substr(0, n))));
  }
  EXPECT_FALSE(decode_backend_key_data(bytes_of(body + "x")));
}

TEST(CommandComplete, Layout) {
  std::string out;
  write_command_complete(out, "SELECT 1");
  const Frame f = frame_of(out, 'C');
  EXPECT_EQ(str(f.body), std::string("SELECT 1\0", 9));
}

TEST(EmptyQueryResponse, Layout) {
  std::string out;
  write_empty_query_response(out);
  EXPECT_EQ(out, "I" + be32(4));
}

// ---------------------------------------------------------------- authentication

TEST(Authentication, Ok) {
  std::string out;
  write_auth_ok(out);
  EXPECT_EQ(out, "R" + be32(8) + be32(0));
  const auto a = decode_authentication(frame_of(out, 'R').body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 0u);
  EXPECT_TRUE(a->data.empty());
}

TEST(Authentication, Cleartext) {
  std::string out;
  write_auth_cleartext(out);
  EXPECT_EQ(out, "R" + be32(8) + be32(3));
  const auto a = decode_authentication(frame_of(out, 'R').body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 3u);
  EXPECT_TRUE(a->data.empty());
}

TEST(Authentication, Md5) {
  std::string out;
  const std::array<uint8_t, 4> salt = {0x00, 0xff, 0x10, 0x7f};
  write_auth_md5(out, salt);
  EXPECT_EQ(out, "R" + be32(12) + be32(5) + std::string("\x00\xff\x10\x7f", 4));
  const auto a = decode_authentication(frame_of(out, 'R').body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 5u);
  ASSERT_EQ(a->data.size(), 4u);
  EXPECT_TRUE(std::equal(a->data.begin(), a->data.end(), salt.begin()));
}

TEST(Authentication, Sasl) {
  std::string out;
  const std::string_view mechs[] = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
  write_auth_sasl(out, mechs);
  const auto a = decode_authentication(frame_of(out, 'R').body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 10u);
  EXPECT_EQ(str(a->data), std::string("SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0", 34));
  const auto names = decode_sasl_mechanisms(a->data);
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}));
}

TEST(Authentication, SaslContinueAndFinal) {
  const std::string data = "r=abc,s=c2FsdA==,i=4096";
  std::string out;
  write_auth_sasl_continue(out, data);
  auto a = decode_authentication(frame_of(out, 'R').body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 11u);
  EXPECT_EQ(str(a->data), data);

  out.clear();
  write_auth_sasl_final(out, "v=signature");
  a = decode_authentication(frame_of(out, 'R').body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 12u);
  EXPECT_EQ(str(a->data), "v=signature");

  // Binary data with NULs passes through untouched.
  out.clear();
  const std::string binary("\0a\0b", 4);
  write_auth_sasl_continue(out, binary);
  EXPECT_EQ(str(decode_authentication(frame_of(out, 'R').body)->data), binary);
}

TEST(Authentication, TooShort) {
  for (size_t n = 0; n < 4; ++n) {
    EXPECT_FALSE(decode_authentication(bytes_of(std::string(n, '\0')))) << n;
  }
}

TEST(SaslMechanisms, Cases) {
  EXPECT_EQ(decode_sasl_mechanisms(bytes_of(std::string("\0", 1))), std::vector<std::string>{});
  EXPECT_FALSE(decode_sasl_mechanisms(Bytes{}));
  EXPECT_FALSE(decode_sasl_mechanisms(bytes_of("SCRAM-SHA-256")));
  EXPECT_FALSE(decode_sasl_mechanisms(bytes_of(std::string("SCRAM-SHA-256\0", 14))));
  EXPECT_FALSE(decode_sasl_mechanisms(bytes_of(std::string("A\0\0B\0\0", 6))));
  EXPECT_FALSE(decode_sasl_mechanisms(bytes_of(std::string("A\0\0x", 4))));
}

// ---------------------------------------------------------------- frontend messages

TEST(Query, RoundTrip) {
  std::string out;
  write_query(out, "SELECT 'x'");
  EXPECT_EQ(decode_query(frame_of(out, 'Q').body), "SELECT 'x'");
  out.clear();
  write_query(out, "");
  EXPECT_EQ(decode_query(frame_of(out, 'Q').body), "");
}

TEST(Query, Malformed) {
  EXPECT_FALSE(decode_query(Bytes{}));
  EXPECT_FALSE(decode_query(bytes_of("select 1")));
  EXPECT_FALSE(decode_query(bytes_of(std::string("select 1\0x", 10))));
  EXPECT_FALSE(decode_query(bytes_of(std::string("select\0 1\0", 10))));  // two NULs
  EXPECT_FALSE(decode_query(bytes_of(std::string("select 1\0\0", 10))));
}

TEST(Password, RoundTrip) {
  std::string out;
  write_password(out, "md5abcdef");
  EXPECT_EQ(decode_password(frame_of(out, 'p').body), "md5abcdef");
  EXPECT_FALSE(decode_password(Bytes{}));
  EXPECT_FALSE(decode_password(bytes_of("secret")));
  EXPECT_FALSE(decode_password(bytes_of(std::string("a\0b\0", 4))));
}

TEST(SaslInitialResponse, RoundTrip) {
  std::string out;
  write_sasl_initial_response(out, "SCRAM-SHA-256", "n,,n=,r=nonce");
  const Frame f = frame_of(out, 'p');
  EXPECT_EQ(str(f.body), std::string("SCRAM-SHA-256\0", 14) + be32(13) + "n,,n=,r=nonce");
  const auto r = decode_sasl_initial_response(f.body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(r->data, "n,,n=,r=nonce");

  out.clear();
  write_sasl_initial_response(out, "M", "");
  const auto empty = decode_sasl_initial_response(frame_of(out, 'p').body);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->data, "");
}

TEST(SaslInitialResponse, MinusOneMeansNoData) {
  const std::string body = std::string("SCRAM-SHA-256\0", 14) + be32(0xffffffffu);
  const auto r = decode_sasl_initial_response(bytes_of(body));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->mechanism, "SCRAM-SHA-256");
  EXPECT_TRUE(r->data.empty());
  EXPECT_FALSE(decode_sasl_initial_response(bytes_of(body + "x")));
}

TEST(SaslInitialResponse, Malformed) {
  const std::string mech("M\0", 2);
  EXPECT_FALSE(decode_sasl_initial_response(Bytes{}));
  EXPECT_FALSE(decode_sasl_initial_response(bytes_of("M")));
  EXPECT_FALSE(decode_sasl_initial_response(bytes_of(mech)));
  EXPECT_FALSE(decode_sasl_initial_response(bytes_of(mech + "\0\0\0")));
  EXPECT_FALSE(decode_sasl_initial_response(bytes_of(mech + be32(3) + "ab")));     // short
  EXPECT_FALSE(decode_sasl_initial_response(bytes_of(mech + be32(3) + "abcd")));   // long
  EXPECT_FALSE(decode_sasl_initial_response(bytes_of(mech + be32(0xfffffffeu))));  // -2
  EXPECT_FALSE(decode_sasl_initial_response(bytes_of(mech + be32(0x80000000u))));
  EXPECT_FALSE(decode_sasl_initial_response(bytes_of(mech + be32(0x7fffffffu) + "a")));
}

TEST(SaslInitialResponse, EveryTruncationFails) {
  std::string out;
  write_sasl_initial_response(out, "SCRAM-SHA-256", "n,,n=,r=abc");
  const Bytes body = frame_of(out, 'p').body;
  for (size_t n = 0; n < body.size(); ++n) {
    EXPECT_FALSE(decode_sasl_initial_response(body.first(n))) << n;
  }
}

TEST(SaslResponse, RawData) {
  std::string out;
  write_sasl_response(out, "c=biws,r=abc,p=proof");
  EXPECT_EQ(str(frame_of(out, 'p').body), "c=biws,r=abc,p=proof");
}

TEST(SyncAndTerminate, Layout) {
  std::string out;
  write_sync(out);
  write_terminate(out);
  EXPECT_EQ(out, "S" + be32(4) + "X" + be32(4));
}

TEST(Execute, DecodePortal) {
  const std::string named = std::string("p1\0", 3) + be32(0);
  auto portal = decode_execute_portal(bytes_of(named));
  ASSERT_TRUE(portal);
  EXPECT_EQ(*portal, "p1");
  const std::string unnamed = std::string("\0", 1) + be32(10);
  portal = decode_execute_portal(bytes_of(unnamed));
  ASSERT_TRUE(portal);
  EXPECT_EQ(*portal, "");
  const std::string no_limit("p1\0", 3);
  EXPECT_FALSE(decode_execute_portal(bytes_of(no_limit)));
  const std::string trailing = named + "x";
  EXPECT_FALSE(decode_execute_portal(bytes_of(trailing)));
  EXPECT_FALSE(decode_execute_portal(bytes_of("p1")));
}

TEST(Parse, Decode) {
  const std::string head = std::string("stmt1\0select $1, $2\0", 20);
  const std::string good = head + be16(2) + be32(23) + be32(25);
  auto p = decode_parse(bytes_of(good));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->statement, "stmt1");
  EXPECT_EQ(p->query, "select $1, $2");

  const std::string unnamed = std::string("\0select 1\0", 10) + be16(0);
  p = decode_parse(bytes_of(unnamed));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->statement, "");
  EXPECT_EQ(p->query, "select 1");

  // Parameter count must match the OID list exactly.
  EXPECT_FALSE(decode_parse(bytes_of(head + be16(2) + be32(23))));
  EXPECT_FALSE(decode_parse(bytes_of(head + be16(1) + be32(23) + be32(25))));
  EXPECT_FALSE(decode_parse(bytes_of(head + be16(0) + "x")));
  EXPECT_FALSE(decode_parse(bytes_of(head + be16(0xffff))));
  EXPECT_FALSE(decode_parse(bytes_of(head + "\0")));
  EXPECT_FALSE(decode_parse(bytes_of(head)));
  EXPECT_FALSE(decode_parse(bytes_of(std::string("stmt1\0select", 12))));
  EXPECT_FALSE(decode_parse(Bytes{}));

  const std::string full = head + be16(2) + be32(23) + be32(25);
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_FALSE(decode_parse(bytes_of(std::string_view(full).substr(0, n)))) << n;
  }
}

TEST(Bind, Decode) {
  // portal, statement, then formats/params/result formats which are not inspected.
  const std::string body =
      std::string("portal\0stmt\0", 12) + be16(0) + be16(1) + be32(1) + "7" + be16(0);
  auto b = decode_bind(bytes_of(body));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->portal, "portal");
  EXPECT_EQ(b->statement, "stmt");

  const std::string unnamed("\0\0", 2);
  b = decode_bind(bytes_of(unnamed));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->portal, "");
  EXPECT_EQ(b->statement, "");

  EXPECT_FALSE(decode_bind(Bytes{}));
  EXPECT_FALSE(decode_bind(bytes_of(std::string("portal\0", 7))));
  EXPECT_FALSE(decode_bind(bytes_of(std::string("portal\0stmt", 11))));
  EXPECT_FALSE(decode_bind(bytes_of("portal")));
}

TEST(DescribeOrClose, Decode) {
  const std::string statement("Sstmt\0", 6);
  const std::string portal("P\0", 2);
  auto t = decode_describe_or_close(bytes_of(statement));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->kind, 'S');
  EXPECT_EQ(t->name, "stmt");
  t = decode_describe_or_close(bytes_of(portal));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->kind, 'P');
  EXPECT_EQ(t->name, "");

  EXPECT_FALSE(decode_describe_or_close(Bytes{}));
  EXPECT_FALSE(decode_describe_or_close(bytes_of("S")));
  EXPECT_FALSE(decode_describe_or_close(bytes_of("Sstmt")));
  EXPECT_FALSE(decode_describe_or_close(bytes_of(std::string("Xstmt\0", 6))));
  EXPECT_FALSE(decode_describe_or_close(bytes_of(std::string("sstmt\0", 6))));
  EXPECT_FALSE(decode_describe_or_close(bytes_of(std::string("Sstmt\0x", 7))));
  EXPECT_FALSE(decode_describe_or_close(bytes_of(std::string("Sstmt\0\0", 7))));
}

// Extended-protocol messages built with MessageWriter survive framing and decoding.
TEST(ExtendedProtocol, FramedRoundTrip) {
  std::string out;
  MessageWriter w(out);
  w.begin('P');
  w.cstring("s1");
  w.cstring("select $1");
  w.int16(1);
  w.int32(23);
  w.end();
  w.begin('B');
  w.cstring("p1");
  w.cstring("s1");
  w.int16(0);
  w.int16(1);
  w.int32(2);
  w.bytes("42");
  w.int16(0);
  w.end();
  w.begin('D');
  w.byte('P');
  w.cstring("p1");
  w.end();
  w.begin('C');
  w.byte('S');
  w.cstring("s1");
  w.end();

  Bytes rest = bytes_of(out);
  Frame f;
  ASSERT_EQ(peek_frame(rest, 1 << 20, f), FrameStatus::kReady);
  ASSERT_EQ(f.type, 'P');
  EXPECT_EQ(decode_parse(f.body)->query, "select $1");
  rest = rest.subspan(f.wire_size());
  ASSERT_EQ(peek_frame(rest, 1 << 20, f), FrameStatus::kReady);
  ASSERT_EQ(f.type, 'B');
  EXPECT_EQ(decode_bind(f.body)->portal, "p1");
  EXPECT_EQ(decode_bind(f.body)->statement, "s1");
  rest = rest.subspan(f.wire_size());
  ASSERT_EQ(peek_frame(rest, 1 << 20, f), FrameStatus::kReady);
  ASSERT_EQ(f.type, 'D');
  EXPECT_EQ(decode_describe_or_close(f.body)->kind, 'P');
  rest = rest.subspan(f.wire_size());
  ASSERT_EQ(peek_frame(rest, 1 << 20, f), FrameStatus::kReady);
  ASSERT_EQ(f.type, 'C');
  EXPECT_EQ(decode_describe_or_close(f.body)->name, "s1");
  rest = rest.subspan(f.wire_size());
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(peek_frame(rest, 1 << 20, f), FrameStatus::kNeedMore);
}

}  // namespace
}  // namespace sluice::pgwire

namespace sluice::pgwire {
namespace {

TEST(DataRow, DecodesValuesAndNulls) {
  std::string body("\0\3\0\0\0\2ab\xff\xff\xff\xff\0\0\0\0", 16);
  auto row = decode_data_row(bytes_of(body));
  ASSERT_TRUE(row);
  ASSERT_EQ(row->size(), 3u);
  EXPECT_EQ((*row)[0], "ab");
  EXPECT_FALSE((*row)[1]);
  EXPECT_EQ((*row)[2], "");
}

TEST(DataRow, RejectsLengthsBeyondTheBody) {
  std::string body(
      "\0\1\0\0\0\x09"
      "ab",
      8);
  EXPECT_FALSE(decode_data_row(bytes_of(body)));
  std::string trailing("\0\0x", 3);
  EXPECT_FALSE(decode_data_row(bytes_of(trailing)));
}

}  // namespace
}  // namespace sluice::pgwire
