// Framing: finding whole typed messages and startup-phase packets in a byte buffer.
#include <algorithm>

#include "pgwire/codec.hpp"

namespace sluice::pgwire {
namespace {

// The wire carries lengths as signed int32; anything with the sign bit set is negative.
constexpr uint32_t kSignBit = 0x80000000u;

}  // namespace

FrameStatus peek_frame_head(Bytes buf, size_t head_size, size_t max_message_size, Frame& frame) {
  if (buf.size() < 5 || buf.size() < head_size) return FrameStatus::kNeedMore;
  const uint32_t length = read_be32(buf.data() + 1);
  if ((length & kSignBit) != 0 || length < 4) return FrameStatus::kMalformed;
  const size_t total = size_t{1} + length;
  if (total > max_message_size) return FrameStatus::kTooLarge;
  if (total <= head_size) return FrameStatus::kNeedMore;
  const size_t present = std::min(total, buf.size());
  frame.type = static_cast<char>(buf[0]);
  frame.body = buf.subspan(5, present - 5);
  frame.unread = total - present;
  return FrameStatus::kReady;
}

FrameStatus peek_startup_packet(Bytes buf, Bytes& packet) {
  if (buf.size() < 4) return FrameStatus::kNeedMore;
  const uint32_t length = read_be32(buf.data());
  if ((length & kSignBit) != 0 || length < 8) return FrameStatus::kMalformed;
  if (length > kMaxStartupPacketSize) return FrameStatus::kTooLarge;
  if (buf.size() < length) return FrameStatus::kNeedMore;
  packet = buf.first(length);
  return FrameStatus::kReady;
}

}  // namespace sluice::pgwire
