// Framing: peek_frame and peek_startup_packet on complete, partial and hostile buffers.
#include <gtest/gtest.h>

#include <string>

#include "pgwire/codec.hpp"

namespace sluice::pgwire {
namespace {

Bytes bytes_of(const std::string& s) {
  return Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string be32(uint32_t v) {
  std::string out;
  MessageWriter(out).int32(v);
  return out;
}

std::string header(char type, uint32_t length) {
  return std::string(1, type) + be32(length);
}

constexpr size_t kLimit = 1 << 20;

TEST(PeekFrame, EmptyBufferNeedsMore) {
  Frame f;
  EXPECT_EQ(peek_frame(Bytes{}, kLimit, f), FrameStatus::kNeedMore);
}

TEST(PeekFrame, PartialHeaderNeedsMore) {
  const std::string h = header('Q', 10);
  for (size_t n = 0; n < h.size(); ++n) {
    Frame f;
    EXPECT_EQ(peek_frame(bytes_of(h.substr(0, n)), kLimit, f), FrameStatus::kNeedMore) << n;
  }
}

TEST(PeekFrame, EmptyBodyIsReady) {
  std::string buf;
  write_sync(buf);
  ASSERT_EQ(buf, std::string("S\0\0\0\4", 5));
  Frame f;
  ASSERT_EQ(peek_frame(bytes_of(buf), kLimit, f), FrameStatus::kReady);
  EXPECT_EQ(f.type, 'S');
  EXPECT_TRUE(f.body.empty());
  EXPECT_EQ(f.wire_size(), 5u);
}

TEST(PeekFrame, ReadyFrameIgnoresFollowingBytes) {
  std::string buf;
  write_query(buf, "select 1");
  const size_t first = buf.size();
  write_terminate(buf);
  Frame f;
  ASSERT_EQ(peek_frame(bytes_of(buf), kLimit, f), FrameStatus::kReady);
  EXPECT_EQ(f.type, 'Q');
  EXPECT_EQ(f.wire_size(), first);
  EXPECT_EQ(f.body.size(), std::string("select 1").size() + 1);
  // The body points into the caller's buffer.
  EXPECT_EQ(reinterpret_cast<const char*>(f.body.data()), buf.data() + 5);

  Frame g;
  ASSERT_EQ(peek_frame(bytes_of(buf).subspan(f.wire_size()), kLimit, g), FrameStatus::kReady);
  EXPECT_EQ(g.type, 'X');
  EXPECT_EQ(g.wire_size(), 5u);
}

TEST(PeekFrame, LengthBelowFourIsMalformed) {
  for (uint32_t len : {0u, 1u, 2u, 3u}) {
    Frame f;
    EXPECT_EQ(peek_frame(bytes_of(header('Q', len)), kLimit, f), FrameStatus::kMalformed) << len;
  }
}

TEST(PeekFrame, NegativeLengthIsMalformed) {
  for (uint32_t len : {0xffffffffu, 0x80000000u, 0xfffffffcu}) {
    Frame f;
    EXPECT_EQ(peek_frame(bytes_of(header('Q', len)), kLimit, f), FrameStatus::kMalformed) << len;
    EXPECT_EQ(peek_frame(bytes_of(header('Q', len)), SIZE_MAX, f), FrameStatus::kMalformed);
  }
}

TEST(PeekFrame, HugeLengthIsTooLargeFromHeaderAlone) {
  Frame f;
  EXPECT_EQ(peek_frame(bytes_of(header('D', 0x7fffffffu)), kLimit, f), FrameStatus::kTooLarge);
}

TEST(PeekFrame, HugeLengthWithHugeLimitNeedsMore) {
  Frame f;
  EXPECT_EQ(peek_frame(bytes_of(header('D', 0x7fffffffu)), SIZE_MAX, f), FrameStatus::kNeedMore);
}

TEST(PeekFrame, LimitBoundsWholeFrame) {
  // type byte + length word + 95 bytes of body = 100 bytes on the wire.
  std::string buf = header('d', 99) + std::string(95, 'x');
  Frame f;
  EXPECT_EQ(peek_frame(bytes_of(buf), 100, f), FrameStatus::kReady);
  EXPECT_EQ(f.wire_size(), 100u);
  EXPECT_EQ(peek_frame(bytes_of(buf), 99, f), FrameStatus::kTooLarge);
  // Decided as soon as the header is in, even without the body.
  EXPECT_EQ(peek_frame(bytes_of(buf.substr(0, 5)), 99, f), FrameStatus::kTooLarge);
  EXPECT_EQ(peek_frame(bytes_of(buf.substr(0, 5)), 100, f), FrameStatus::kNeedMore);
}

TEST(PeekFrame, OversizedMessage) {
  std::string buf;
  write_query(buf, std::string(2000, 'a'));
  Frame f;
  EXPECT_EQ(peek_frame(bytes_of(buf), 1000, f), FrameStatus::kTooLarge);
  EXPECT_EQ(peek_frame(bytes_of(buf), buf.size(), f), FrameStatus::kReady);
  EXPECT_EQ(peek_frame(bytes_of(buf), buf.size() - 1, f), FrameStatus::kTooLarge);
}

TEST(PeekFrameHead, WaitsForTheHeadThenGivesWhatIsThere) {
  // A 1000-byte message whose first 300 bytes have arrived, with a 100-byte head.
  const std::string buf = header('D', 999) + std::string(295, 'r');
  Frame f;
  EXPECT_EQ(peek_frame_head(bytes_of(buf.substr(0, 99)), 100, kLimit, f), FrameStatus::kNeedMore);
  ASSERT_EQ(peek_frame_head(bytes_of(buf), 100, kLimit, f), FrameStatus::kReady);
  EXPECT_EQ(f.type, 'D');
  EXPECT_EQ(f.body.size(), 295u);
  EXPECT_EQ(f.wire_size(), 300u);
  EXPECT_EQ(f.unread, 700u);
  EXPECT_EQ(f.wire_size() + f.unread, 1000u);
}

TEST(PeekFrameHead, SmallMessagesAreLeftToPeekFrame) {
  // Whole or not, a message no larger than the head is never streamed.
  const std::string buf = header('D', 99);
  Frame f;
  EXPECT_EQ(peek_frame_head(bytes_of(buf + std::string(95, 'x')), 100, kLimit, f),
            FrameStatus::kNeedMore);
  // A large one whose head has not arrived yet waits.
  EXPECT_EQ(peek_frame_head(bytes_of(header('D', 999) + std::string(90, 'x')), 100, kLimit, f),
            FrameStatus::kNeedMore);
}

TEST(PeekFrameHead, AWholeLargeMessageHasNothingUnread) {
  const std::string buf = header('d', 503) + std::string(499, 'x') + "S";
  Frame f;
  ASSERT_EQ(peek_frame_head(bytes_of(buf), 100, kLimit, f), FrameStatus::kReady);
  EXPECT_EQ(f.wire_size(), 504u);
  EXPECT_EQ(f.unread, 0u);
}

TEST(PeekFrameHead, HostileLengthsAreRefused) {
  Frame f;
  const std::string pad(200, 'x');
  EXPECT_EQ(peek_frame_head(bytes_of(header('B', 2) + pad), 100, kLimit, f),
            FrameStatus::kMalformed);
  EXPECT_EQ(peek_frame_head(bytes_of(header('B', 0x80000001u) + pad), 100, kLimit, f),
            FrameStatus::kMalformed);
  EXPECT_EQ(peek_frame_head(bytes_of(header('B', kLimit) + pad), 100, kLimit, f),
            FrameStatus::kTooLarge);
}

TEST(MessageWriter, AStreamedMessageCountsItsUnreadRest) {
  // A renamed Bind head: the length word counts the parameters still to come.
  const std::string rest("\0\1\0\0", 4);  // one parameter format, the start of the values
  std::string out;
  write_bind(out, "", "s1", bytes_of(rest), 1000);
  Frame f;
  ASSERT_EQ(peek_frame_head(bytes_of(out), 5, kLimit, f), FrameStatus::kReady);
  EXPECT_EQ(f.wire_size(), out.size());
  EXPECT_EQ(f.unread, 1000u);
}

TEST(PeekFrame, EveryTruncationNeedsMore) {
  std::string msgs[4];
  write_query(msgs[0], "select * from t where x = 'y'");
  write_error(msgs[1], "ERROR", "42P01", "relation does not exist", "some detail");
  write_parameter_status(msgs[2], "server_version", "16.2");
  const std::string_view mechs[] = {"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"};
  write_auth_sasl(msgs[3], mechs);
  for (const std::string& msg : msgs) {
    for (size_t n = 0; n < msg.size(); ++n) {
      Frame f;
      EXPECT_EQ(peek_frame(bytes_of(msg.substr(0, n)), kLimit, f), FrameStatus::kNeedMore)
          << "prefix " << n << " of " << msg.size();
    }
    Frame f;
    EXPECT_EQ(peek_frame(bytes_of(msg), kLimit, f), FrameStatus::kReady);
  }
}

// ---------------------------------------------------------------- startup packets

TEST(PeekStartupPacket, PartialLengthNeedsMore) {
  std::string buf;
  write_ssl_request(buf);
  for (size_t n = 0; n < buf.size(); ++n) {
    Bytes p;
    EXPECT_EQ(peek_startup_packet(bytes_of(buf.substr(0, n)), p), FrameStatus::kNeedMore) << n;
  }
  Bytes p;
  ASSERT_EQ(peek_startup_packet(bytes_of(buf), p), FrameStatus::kReady);
  EXPECT_EQ(p.size(), 8u);
}

TEST(PeekStartupPacket, ShortLengthIsMalformed) {
  for (uint32_t len : {0u, 3u, 4u, 7u, 0xffffffffu, 0x80000000u}) {
    Bytes p;
    EXPECT_EQ(peek_startup_packet(bytes_of(be32(len)), p), FrameStatus::kMalformed) << len;
  }
}

TEST(PeekStartupPacket, OversizedIsTooLarge) {
  Bytes p;
  EXPECT_EQ(peek_startup_packet(bytes_of(be32(10001)), p), FrameStatus::kTooLarge);
  EXPECT_EQ(peek_startup_packet(bytes_of(be32(0x7fffffffu)), p), FrameStatus::kTooLarge);

  // A whole 10001-byte packet is refused; exactly 10000 is allowed.
  std::string big = be32(10001) + be32(kProtocolVersion3) + std::string(10001 - 8, 'a');
  EXPECT_EQ(peek_startup_packet(bytes_of(big), p), FrameStatus::kTooLarge);
  std::string max = be32(10000) + be32(kProtocolVersion3) + std::string(10000 - 8, 'a');
  ASSERT_EQ(peek_startup_packet(bytes_of(max), p), FrameStatus::kReady);
  EXPECT_EQ(p.size(), 10000u);
}

TEST(PeekStartupPacket, ReturnsWholePacketIncludingLength) {
  std::string buf;
  const std::pair<std::string, std::string> params[] = {{"user", "alice"}};
  write_startup(buf, params);
  const size_t first = buf.size();
  buf += "trailing";
  Bytes p;
  ASSERT_EQ(peek_startup_packet(bytes_of(buf), p), FrameStatus::kReady);
  EXPECT_EQ(p.size(), first);
  EXPECT_EQ(p.data(), reinterpret_cast<const uint8_t*>(buf.data()));

  for (size_t n = 4; n < first; ++n) {
    Bytes q;
    EXPECT_EQ(peek_startup_packet(bytes_of(buf.substr(0, n)), q), FrameStatus::kNeedMore) << n;
  }
}

}  // namespace
}  // namespace sluice::pgwire
