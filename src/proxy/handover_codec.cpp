#include "proxy/handover_codec.hpp"

#include <algorithm>

namespace sluice::proxy::handover {
namespace {

constexpr std::string_view kMagic = "SLHO";

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}
void put32(std::string& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v >> 16));
  put16(out, static_cast<uint16_t>(v & 0xffff));
}
void put_text(std::string& out, const std::string& text) {
  if (text.size() > kMaxLabelSize) throw HandoverError("handover: text too long to send");
  put16(out, static_cast<uint16_t>(text.size()));
  out += text;
}

// Reads big-endian fields off the front of a message, refusing to run past its end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}
  uint8_t u8() { return static_cast<uint8_t>(take(1)[0]); }
  uint16_t u16() {
    auto b = take(2);
    return static_cast<uint16_t>((static_cast<uint8_t>(b[0]) << 8) | static_cast<uint8_t>(b[1]));
  }
  uint32_t u32() {
    const uint32_t high = u16();
    return (high << 16) | u16();
  }
  std::string text() {
    const uint16_t size = u16();
    if (size > kMaxLabelSize) throw HandoverError("handover: text field too long");
    return std::string(take(size));
  }
  std::string_view take(size_t n) {
    if (rest_.size() < n) throw HandoverError("handover: message cut short");
    auto part = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return part;
  }
  void expect_end() const {
    if (!rest_.empty()) throw HandoverError("handover: trailing bytes after the message");
  }

 private:
  std::string_view rest_;
};

}  // namespace

std::string encode(const Message& message) {
  std::string out(kMagic);
  put16(out, kProtocolVersion);
  out.push_back(static_cast<char>(message.type));
  switch (message.type) {
    case MessageType::kHello:
    case MessageType::kReady:
    case MessageType::kDone:
      put32(out, message.pid);
      break;
    case MessageType::kListener:
      out.push_back(static_cast<char>(message.kind));
      put_text(out, message.label);
      put32(out, message.count);
      break;
    case MessageType::kEnd:
      put32(out, message.pid);
      put32(out, message.count);
      break;
    case MessageType::kRefused:
      put_text(out, message.reason);
      break;
  }
  return out;
}

Message decode(std::string_view bytes) {
  if (bytes.size() > kMaxMessageSize) throw HandoverError("handover: message too long");
  Reader in(bytes);
  if (in.take(std::min(bytes.size(), kMagic.size())) != kMagic)
    throw HandoverError("handover: not a sluice-proxy handover message");
  const uint16_t version = in.u16();
  if (version != kProtocolVersion)
    throw HandoverError("handover: the other sluice-proxy speaks handover version " +
                        std::to_string(version) + ", this one " + std::to_string(kProtocolVersion));
  Message message;
  const uint8_t type = in.u8();
  switch (type) {
    case static_cast<uint8_t>(MessageType::kHello):
    case static_cast<uint8_t>(MessageType::kReady):
    case static_cast<uint8_t>(MessageType::kDone):
      message.type = static_cast<MessageType>(type);
      message.pid = in.u32();
      break;
    case static_cast<uint8_t>(MessageType::kListener): {
      message.type = MessageType::kListener;
      const uint8_t kind = in.u8();
      if (kind != static_cast<uint8_t>(ListenerKind::kClient) &&
          kind != static_cast<uint8_t>(ListenerKind::kMetrics))
        throw HandoverError("handover: unknown listener kind " + std::to_string(kind));
      message.kind = static_cast<ListenerKind>(kind);
      message.label = in.text();
      if (message.label.empty()) throw HandoverError("handover: listener without a label");
      message.count = in.u32();
      if (message.count == 0 || message.count > kMaxDescriptorsPerMessage)
        throw HandoverError("handover: a listener message carries 1 to " +
                            std::to_string(kMaxDescriptorsPerMessage) + " sockets");
      break;
    }
    case static_cast<uint8_t>(MessageType::kEnd):
      message.type = MessageType::kEnd;
      message.pid = in.u32();
      message.count = in.u32();
      break;
    case static_cast<uint8_t>(MessageType::kRefused):
      message.type = MessageType::kRefused;
      message.reason = in.text();
      break;
    default:
      throw HandoverError("handover: unknown message type " + std::to_string(type));
  }
  in.expect_end();
  return message;
}

std::vector<ListenerChunk> chunk_listener(const Listener& listener) {
  std::vector<ListenerChunk> chunks;
  for (size_t first = 0; first < listener.fds.size(); first += kMaxDescriptorsPerMessage) {
    const size_t count = std::min(kMaxDescriptorsPerMessage, listener.fds.size() - first);
    chunks.push_back(
        {Message::listener(listener.kind, listener.label, static_cast<uint32_t>(count)), first});
  }
  return chunks;
}

void OfferCollector::add(const Message& message, const std::vector<int>& fds) {
  // Taken first: whatever goes wrong below, the caller closes them through all_fds().
  auto keep_fds = [&](Listener& listener) {
    listener.fds.insert(listener.fds.end(), fds.begin(), fds.end());
  };
  if (complete_) {
    if (!fds.empty()) listeners_.push_back({ListenerKind::kClient, "(after the end)", fds});
    throw HandoverError("handover: a message after the end of the offer");
  }
  switch (message.type) {
    case MessageType::kListener: {
      auto same = std::find_if(listeners_.begin(), listeners_.end(), [&](const Listener& l) {
        return l.kind == message.kind && l.label == message.label;
      });
      if (same == listeners_.end()) {
        listeners_.push_back({message.kind, message.label, {}});
        same = listeners_.end() - 1;
      }
      keep_fds(*same);
      ++listener_messages_;
      if (fds.size() != message.count)
        throw HandoverError("handover: listener " + message.label + " announced " +
                            std::to_string(message.count) + " sockets but " +
                            std::to_string(fds.size()) + " arrived");
      break;
    }
    case MessageType::kEnd:
      if (!fds.empty()) listeners_.push_back({ListenerKind::kClient, "(end)", fds});
      if (message.count != listener_messages_)
        throw HandoverError("handover: the offer announced " + std::to_string(message.count) +
                            " listener messages but " + std::to_string(listener_messages_) +
                            " arrived");
      complete_ = true;
      break;
    case MessageType::kRefused:
      if (!fds.empty()) listeners_.push_back({ListenerKind::kClient, "(refused)", fds});
      throw HandoverError("the running sluice-proxy refused the handover: " + message.reason);
    default:
      if (!fds.empty()) listeners_.push_back({ListenerKind::kClient, "(unexpected)", fds});
      throw HandoverError("handover: unexpected message type " +
                          std::to_string(static_cast<int>(message.type)) + " in the offer");
  }
}

std::vector<Listener> OfferCollector::take() {
  if (!complete_) throw HandoverError("handover: the offer is incomplete");
  return std::move(listeners_);
}

std::vector<int> OfferCollector::all_fds() const {
  std::vector<int> fds;
  for (const auto& listener : listeners_)
    fds.insert(fds.end(), listener.fds.begin(), listener.fds.end());
  return fds;
}

std::vector<std::vector<size_t>> assign_sockets(size_t sockets, size_t workers) {
  std::vector<std::vector<size_t>> assignment(workers);
  if (sockets == 0 || workers == 0) return assignment;
  if (sockets >= workers) {
    for (size_t s = 0; s < sockets; ++s) assignment[s % workers].push_back(s);
  } else {
    for (size_t w = 0; w < workers; ++w) assignment[w].push_back(w % sockets);
  }
  return assignment;
}

}  // namespace sluice::proxy::handover
