// TLS 1.3's record layer (RFC 8446 section 5), for connections whose handshake OpenSSL has
// finished. Pure: bytes in, bytes out, no sockets.
//
// Why not stay with OpenSSL for the records: an idle OpenSSL 3.0 connection keeps about 15 KB
// (the SSL object, its session, two cipher contexts, its record buffers' bookkeeping) and OpenSSL
// cannot shed it; the way it offers out is kernel TLS, which this project's kernels do not have
// (CONFIG_TLS unset). After the handshake a TLS 1.3 connection needs only two traffic secrets and
// two sequence numbers, about 250 bytes. So once OpenSSL has done the handshake, sluice takes
// the application traffic secrets from OpenSSL's key log callback and frees the SSL object; the
// records are then sealed and opened here, with OpenSSL's AEAD ciphers (EVP), and the cipher
// contexts themselves are dropped while the connection idles. This is what kernel TLS does in
// the kernel; the handshake, certificates and every cryptographic primitive stay OpenSSL's.
//
// What is handled after the handshake: application data, alerts (close_notify ends the stream,
// user_canceled is ignored, anything else is fatal), KeyUpdate in both directions (answered
// when requested, and sent by us before a key's AEAD limit), NewSessionTicket from a server (to
// a client: ignored; we never resume). Anything else is a protocol error: the caller sends the
// alert sealed_alert() makes and closes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::tls {

// The TLS 1.3 cipher suites sluice negotiates (their IANA numbers).
enum class Suite : uint16_t {
  kAes128GcmSha256 = 0x1301,
  kAes256GcmSha384 = 0x1302,
  kChaCha20Poly1305Sha256 = 0x1303,
};
std::optional<Suite> suite_from_id(uint16_t iana_id);

// An application traffic secret (RFC 8446 7.1): 32 bytes for SHA-256 suites, 48 for SHA-384.
struct TrafficSecret {
  uint8_t bytes[48] = {};
  uint8_t size = 0;
  bool empty() const { return size == 0; }
  void wipe();
};

// The two application traffic secrets of a handshake, as OpenSSL's key log callback announces
// them (SSL_CTX_set_keylog_callback).
struct HandshakeSecrets {
  TrafficSecret client;  // CLIENT_TRAFFIC_SECRET_0: what the client sends under
  TrafficSecret server;  // SERVER_TRAFFIC_SECRET_0
  bool complete() const { return !client.empty() && !server.empty(); }
  void wipe() {
    client.wipe();
    server.wipe();
  }
  ~HandshakeSecrets() { wipe(); }
};
// Takes what it needs from one key log line ("LABEL <client random hex> <secret hex>"); lines of
// other labels (handshake secrets, TLS 1.2's CLIENT_RANDOM) are ignored. False if a line of
// ours is malformed.
bool note_key_log_line(std::string_view line, HandshakeSecrets& secrets);

// How many whole records `bytes` holds (5-byte headers walked; a partial last one not counted).
size_t count_records(std::string_view bytes);

constexpr size_t kRecordHeaderSize = 5;
constexpr size_t kMaxPlaintext = 16384;  // 2^14
constexpr size_t kTagSize = 16;
// A record's most bytes on the wire: header, 2^14 + 256 of ciphertext (RFC 8446 5.2).
constexpr size_t kMaxRecordSize = kRecordHeaderSize + kMaxPlaintext + 256;
// Bytes a record adds to its content: header, the inner content type, the tag.
constexpr size_t kRecordOverhead = kRecordHeaderSize + 1 + kTagSize;

// TLS alert descriptions sent on errors (RFC 8446 6).
enum class Alert : uint8_t {
  kCloseNotify = 0,
  kUnexpectedMessage = 10,
  kBadRecordMac = 20,
  kRecordOverflow = 22,
  kDecodeError = 50,
  kInternalError = 80,
  kUserCanceled = 90,
};

// One direction's protection: key, IV and sequence number, derived from a traffic secret.
class Protection;

class RecordLayer {
 public:
  enum class Role { kServer, kClient };
  // `read_seq` / `write_seq`: records already protected under these secrets (session tickets
  // the server sent at the end of the handshake count).
  RecordLayer(Role role, Suite suite, const HandshakeSecrets& secrets, uint64_t read_seq,
              uint64_t write_seq);
  ~RecordLayer();
  RecordLayer(const RecordLayer&) = delete;
  RecordLayer& operator=(const RecordLayer&) = delete;

  // Appends `plaintext` to `out` as application data records (any length, 0 gives nothing).
  // A KeyUpdate goes first when the write key nears its limit. False only if OpenSSL fails.
  bool seal(std::string_view plaintext, std::string& out);
  // The bytes seal() would append for `plaintext`, at most (to reserve room).
  static size_t sealed_size(size_t plaintext);
  // close_notify, or a fatal alert before closing on an error.
  bool seal_alert(Alert alert, std::string& out);
  // Seals one record of any inner content type carrying `content` (≤ 2^14 bytes): what a peer
  // might send, for tests and the fuzzer.
  bool seal_record(uint8_t content_type, std::string_view content, std::string& out);

  struct Opened {
    size_t consumed = 0;         // bytes of the input taken (whole records only)
    size_t plaintext = 0;        // application data now at the start of the input
    bool peer_closed = false;    // close_notify (or a fatal alert from the peer) was read
    std::optional<Alert> error;  // a protocol error: send this alert, then close
  };
  // Opens the whole records at the start of `records`, in place: their application data is
  // packed at its start. Stops after close_notify or an error. Handshake messages the protocol
  // asks an answer for (KeyUpdate with update_requested) append it to `replies`, sealed.
  Opened open(uint8_t* records, size_t size, std::string& replies);

  // Drops the cipher contexts (made again from the keys at the next record): for idle
  // connections, whose memory should be little more than the keys.
  void release_idle_memory();

  uint64_t read_sequence() const;
  uint64_t write_sequence() const;
  // Makes the write key change after `records` more records (tests; the default is the AEAD
  // limit RFC 8446 5.5 sets for AES-GCM, 2^24.5 records, with margin).
  void set_write_key_lifetime(uint64_t records);

 private:
  bool send_key_update(bool request_update, std::string& out);
  // A handshake record's messages, after the handshake: KeyUpdate, NewSessionTicket (client).
  std::optional<Alert> on_handshake(std::string_view messages, std::string& replies);

  Role role_;
  std::unique_ptr<Protection> read_;
  std::unique_ptr<Protection> write_;
  uint64_t write_key_lifetime_;
};

}  // namespace sluice::tls
