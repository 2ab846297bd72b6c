// The zero-downtime upgrade's wire format (handover.hpp moves the bytes and the descriptors):
// pure encoding and decoding, and the pure decisions around it.
//
// A running sluice-proxy offers its listening sockets on a Unix socket (`handover_socket`); a
// new one started with --takeover connects and they speak, one message per SOCK_SEQPACKET
// packet, each starting with "SLHO", the protocol version and the message type:
//   new -> old  Hello{pid}                     who asks, in which version
//   old -> new  Listener{kind, label, count}*  `count` descriptors ride along (SCM_RIGHTS); a
//                                              listener's sockets may span several messages
//   old -> new  End{pid, listener messages}    the offer is complete
//   new -> old  Ready{pid}                     the new process holds the sockets and accepts
//   old -> new  Done{pid}                      the old process stops accepting and drains
//   old -> new  Refused{reason}                instead of the offer (unsupported version, ...)
// Until Ready arrives the old process keeps accepting: a new process that fails first costs
// nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::proxy::handover {

// Raised for a message that is malformed, from another version or out of turn.
class HandoverError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr uint16_t kProtocolVersion = 1;
// Descriptors per message: well under the kernel's SCM_MAX_FD (253).
inline constexpr size_t kMaxDescriptorsPerMessage = 64;
// A label is a `listen` entry as written (HOST:PORT or fd:N): short.
inline constexpr size_t kMaxLabelSize = 1024;
inline constexpr size_t kMaxMessageSize = 2048;

enum class MessageType : uint8_t {
  kHello = 1,
  kListener = 2,
  kEnd = 3,
  kReady = 4,
  kDone = 5,
  kRefused = 6,
};

// Which of the proxy's listeners a socket is: clients' (admission names them by label) or the
// metrics endpoint's.
enum class ListenerKind : uint8_t { kClient = 1, kMetrics = 2 };

struct Message {
  MessageType type = MessageType::kHello;
  uint32_t pid = 0;                           // Hello, End, Ready, Done: the sender's
  ListenerKind kind = ListenerKind::kClient;  // Listener
  std::string label;                          // Listener
  uint32_t count = 0;  // Listener: descriptors attached; End: Listener messages sent
  std::string reason;  // Refused

  bool operator==(const Message&) const = default;

  static Message hello(uint32_t pid) { return with_pid(MessageType::kHello, pid); }
  static Message listener(ListenerKind kind, std::string label, uint32_t count) {
    Message m;
    m.type = MessageType::kListener;
    m.kind = kind;
    m.label = std::move(label);
    m.count = count;
    return m;
  }
  static Message end(uint32_t pid, uint32_t listener_messages) {
    Message m = with_pid(MessageType::kEnd, pid);
    m.count = listener_messages;
    return m;
  }
  static Message ready(uint32_t pid) { return with_pid(MessageType::kReady, pid); }
  static Message done(uint32_t pid) { return with_pid(MessageType::kDone, pid); }
  static Message refused(std::string reason) {
    Message m;
    m.type = MessageType::kRefused;
    m.reason = std::move(reason);
    return m;
  }

 private:
  static Message with_pid(MessageType type, uint32_t pid) {
    Message m;
    m.type = type;
    m.pid = pid;
    return m;
  }
};

std::string encode(const Message& message);
// Throws HandoverError for anything but one whole message of this version.
Message decode(std::string_view bytes);

// One listener of a proxy and its sockets (one per worker of the proxy that bound them; one for
// an inherited fd:N). The descriptors are not owned here.
struct Listener {
  ListenerKind kind = ListenerKind::kClient;
  std::string label;
  std::vector<int> fds;
};

// The Listener messages that offer `listener`, each naming the slice of its fds it carries:
// [first, first + count).
struct ListenerChunk {
  Message message;
  size_t first = 0;
};
std::vector<ListenerChunk> chunk_listener(const Listener& listener);

// Gathers an offer message by message on the taking side.
class OfferCollector {
 public:
  // `fds` arrived with `message`; they become the collector's (released by take()). Throws
  // HandoverError when the message or its descriptors do not fit the protocol.
  void add(const Message& message, const std::vector<int>& fds);
  bool complete() const { return complete_; }
  // The listeners offered, by kind and label in the order first offered.
  std::vector<Listener> take();
  // Every descriptor received so far (to close them when the handover fails).
  std::vector<int> all_fds() const;

 private:
  std::vector<Listener> listeners_;
  uint32_t listener_messages_ = 0;
  bool complete_ = false;
};

// Which received sockets each of `workers` workers accepts from: every socket is taken by at
// least one worker and every worker has at least one. With more sockets than workers a worker
// takes several; with fewer, workers share one (each its own duplicate).
std::vector<std::vector<size_t>> assign_sockets(size_t sockets, size_t workers);

}  // namespace sluice::proxy::handover
