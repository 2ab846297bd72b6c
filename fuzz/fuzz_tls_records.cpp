// libFuzzer: the TLS 1.3 record layer as the proxy's server side sees a client after the
// handshake. The input is a list of records to send, each `type, length, content`: types 20-24
// are sealed by a peer holding the right keys (so alerts, handshake messages, key updates and
// padding-free application data reach the parser behind the AEAD), 0xff puts the content on the
// wire as is (corrupt or forged records). The stream is then opened in two pieces. Nothing may
// crash, and what comes out is never more than went in.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tls/record_layer.hpp"

using namespace sluice::tls;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const HandshakeSecrets secrets = [] {
    HandshakeSecrets s;
    s.client.size = s.server.size = 32;
    for (uint8_t i = 0; i < 32; ++i) {
      s.client.bytes[i] = i;
      s.server.bytes[i] = static_cast<uint8_t>(0x80 + i);
    }
    return s;
  }();
  RecordLayer peer(RecordLayer::Role::kClient, Suite::kAes128GcmSha256, secrets, 0, 0);
  RecordLayer ours(RecordLayer::Role::kServer, Suite::kAes128GcmSha256, secrets, 0, 0);
  std::string wire;
  size_t at = 0;
  size_t split = 0;
  while (at + 2 <= size) {
    const uint8_t type = data[at];
    const size_t length = std::min<size_t>(data[at + 1], size - at - 2);
    const std::string_view content(reinterpret_cast<const char*>(data + at + 2), length);
    at += 2 + length;
    if (type == 0xff)
      wire.append(content);
    else if (type == 0xfe)
      split = wire.size();
    else if (!peer.seal_record(type, content, wire))
      std::abort();
  }
  std::string replies;
  std::string buffer = wire.substr(0, split);
  size_t plaintext = 0;
  auto opened = ours.open(reinterpret_cast<uint8_t*>(buffer.data()), buffer.size(), replies);
  if (opened.consumed > buffer.size() || opened.plaintext > opened.consumed) std::abort();
  plaintext += opened.plaintext;
  if (opened.error || opened.peer_closed) return 0;
  buffer.erase(0, opened.consumed);
  buffer.append(wire.substr(split));
  opened = ours.open(reinterpret_cast<uint8_t*>(buffer.data()), buffer.size(), replies);
  if (opened.consumed > buffer.size() || opened.plaintext > opened.consumed) std::abort();
  plaintext += opened.plaintext;
  if (plaintext > wire.size()) std::abort();
  return 0;
}
