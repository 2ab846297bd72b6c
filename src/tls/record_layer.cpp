#include "tls/record_layer.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace sluice::tls {
namespace {

constexpr uint8_t kChangeCipherSpec = 20;
constexpr uint8_t kAlertType = 21;
constexpr uint8_t kHandshakeType = 22;
constexpr uint8_t kApplicationData = 23;
constexpr uint8_t kNewSessionTicket = 4;
constexpr uint8_t kKeyUpdate = 24;
constexpr size_t kIvSize = 12;
// AES-GCM may protect 2^24.5 full records per key (RFC 8446 5.5); we change keys well before.
constexpr uint64_t kDefaultWriteKeyLifetime = uint64_t{1} << 23;

// Algorithms fetched once per process: fetching per use costs a provider lookup each time.
struct Algorithms {
  EVP_CIPHER* aes128_gcm = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  EVP_CIPHER* aes256_gcm = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  EVP_CIPHER* chacha20_poly1305 = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  EVP_MD* sha384 = EVP_MD_fetch(nullptr, "SHA2-384", nullptr);
};
const Algorithms& algorithms() {
  static const Algorithms instance;  // process lifetime: freed by OpenSSL's own cleanup
  return instance;
}

struct SuiteParameters {
  const EVP_CIPHER* cipher;
  const EVP_MD* digest;
  size_t digest_block;  // the digest's input block: HMAC pads its key to it
  size_t key_size;
  size_t hash_size;
};
SuiteParameters parameters(Suite suite) {
  const Algorithms& a = algorithms();
  switch (suite) {
    case Suite::kAes128GcmSha256:
      return {a.aes128_gcm, a.sha256, 64, 16, 32};
    case Suite::kAes256GcmSha384:
      return {a.aes256_gcm, a.sha384, 128, 32, 48};
    case Suite::kChaCha20Poly1305Sha256:
      return {a.chacha20_poly1305, a.sha256, 64, 32, 32};
  }
  return {nullptr, nullptr, 0, 0, 0};
}

// HKDF-Expand-Label(secret, label, "", length) (RFC 8446 7.1), for a length within one hash
// output (every key, IV and next secret here): HKDF-Expand is then its first block alone,
// HMAC(secret, info || 0x01) (RFC 5869 2.3), and HMAC (RFC 2104) is two digests over the padded
// key. Done here with the digest fetched once: OpenSSL 3.0's HKDF (EVP_KDF) looks its digest up
// by name on every derivation, which cost 20,000 instructions per key or IV, this about 6,000.
bool expand_label(const SuiteParameters& suite, const TrafficSecret& secret, std::string_view label,
                  uint8_t* out, size_t length) {
  if (!suite.digest || length > suite.hash_size || secret.size > suite.digest_block) return false;
  uint8_t info[2 + 1 + 255 + 1 + 1];
  const std::string_view prefix = "tls13 ";
  if (prefix.size() + label.size() > 255) return false;
  size_t n = 0;
  info[n++] = static_cast<uint8_t>(length >> 8);
  info[n++] = static_cast<uint8_t>(length);
  info[n++] = static_cast<uint8_t>(prefix.size() + label.size());
  std::memcpy(info + n, prefix.data(), prefix.size());
  n += prefix.size();
  std::memcpy(info + n, label.data(), label.size());
  n += label.size();
  info[n++] = 0;        // empty context
  info[n++] = 1;        // HKDF-Expand's block counter
  struct KeyMaterial {  // wiped however we leave
    uint8_t pad[128];
    uint8_t inner[EVP_MAX_MD_SIZE];
    uint8_t outer[EVP_MAX_MD_SIZE];
    ~KeyMaterial() { OPENSSL_cleanse(this, sizeof *this); }
  } k;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  if (!md) return false;
  std::memset(k.pad, 0x36, suite.digest_block);
  for (size_t i = 0; i < secret.size; ++i) k.pad[i] ^= secret.bytes[i];
  unsigned int inner_size = 0, outer_size = 0;
  bool ok = EVP_DigestInit_ex2(md, suite.digest, nullptr) == 1 &&
            EVP_DigestUpdate(md, k.pad, suite.digest_block) == 1 &&
            EVP_DigestUpdate(md, info, n) == 1 && EVP_DigestFinal_ex(md, k.inner, &inner_size) == 1;
  for (size_t i = 0; i < suite.digest_block; ++i) k.pad[i] ^= 0x36 ^ 0x5c;
  ok = ok && EVP_DigestInit_ex2(md, suite.digest, nullptr) == 1 &&
       EVP_DigestUpdate(md, k.pad, suite.digest_block) == 1 &&
       EVP_DigestUpdate(md, k.inner, inner_size) == 1 &&
       EVP_DigestFinal_ex(md, k.outer, &outer_size) == 1 && outer_size == suite.hash_size;
  EVP_MD_CTX_free(md);
  if (ok) std::memcpy(out, k.outer, length);
  return ok;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<Suite> suite_from_id(uint16_t iana_id) {
  switch (iana_id) {
    case 0x1301:
      return Suite::kAes128GcmSha256;
    case 0x1302:
      return Suite::kAes256GcmSha384;
    case 0x1303:
      return Suite::kChaCha20Poly1305Sha256;
    default:
      return std::nullopt;
  }
}

void TrafficSecret::wipe() {
  OPENSSL_cleanse(bytes, sizeof bytes);
  size = 0;
}

bool note_key_log_line(std::string_view line, HandshakeSecrets& secrets) {
  TrafficSecret* target = nullptr;
  constexpr std::string_view kClient = "CLIENT_TRAFFIC_SECRET_0 ";
  constexpr std::string_view kServer = "SERVER_TRAFFIC_SECRET_0 ";
  if (line.starts_with(kClient))
    target = &secrets.client;
  else if (line.starts_with(kServer))
    target = &secrets.server;
  else
    return true;
  line.remove_prefix(kClient.size());
  const size_t space = line.find(' ');  // after the client random
  if (space == std::string_view::npos) return false;
  const std::string_view hex = line.substr(space + 1);
  if (hex.size() != 64 && hex.size() != 96) return false;
  TrafficSecret secret;
  for (size_t i = 0; i < hex.size() / 2; ++i) {
    const int high = hex_digit(hex[2 * i]);
    const int low = hex_digit(hex[2 * i + 1]);
    if (high < 0 || low < 0) {
      secret.wipe();
      return false;
    }
    secret.bytes[i] = static_cast<uint8_t>(high << 4 | low);
  }
  secret.size = static_cast<uint8_t>(hex.size() / 2);
  *target = secret;
  secret.wipe();
  return true;
}

size_t count_records(std::string_view bytes) {
  size_t records = 0;
  while (bytes.size() >= kRecordHeaderSize) {
    const size_t length = static_cast<uint8_t>(bytes[3]) << 8 | static_cast<uint8_t>(bytes[4]);
    if (bytes.size() < kRecordHeaderSize + length) break;
    bytes.remove_prefix(kRecordHeaderSize + length);
    ++records;
  }
  return records;
}

class Protection {
 public:
  Protection(Suite suite, const TrafficSecret& secret, uint64_t seq, bool encrypt)
      : suite_(parameters(suite)), secret_(secret), seq_(seq), encrypt_(encrypt) {
    derived_ = derive();
  }
  ~Protection() {
    release();
    secret_.wipe();
    OPENSSL_cleanse(key_, sizeof key_);
    OPENSSL_cleanse(iv_, sizeof iv_);
  }
  Protection(const Protection&) = delete;
  Protection& operator=(const Protection&) = delete;

  bool usable() const { return derived_; }
  uint64_t sequence() const { return seq_; }
  // The next traffic secret (RFC 8446 7.2): after a KeyUpdate, in its direction.
  bool update() {
    TrafficSecret next;
    next.size = secret_.size;
    if (!expand_label(suite_, secret_, "traffic upd", next.bytes, next.size)) return false;
    secret_ = next;
    next.wipe();
    release();
    seq_ = 0;
    derived_ = derive();
    return derived_;
  }
  void release() {
    EVP_CIPHER_CTX_free(cipher_);
    cipher_ = nullptr;
  }

  // header: the record's 5 bytes (the AEAD's additional data). Encrypts `content` then the
  // one-byte inner content type into `out` (room for both), the tag after them.
  bool seal(const uint8_t header[kRecordHeaderSize], const uint8_t* content, size_t size,
            uint8_t content_type, uint8_t* out) {
    if (!start_record()) return false;
    int n = 0;
    if (EVP_EncryptUpdate(cipher_, nullptr, &n, header, kRecordHeaderSize) != 1) return false;
    if (size > 0 && EVP_EncryptUpdate(cipher_, out, &n, content, static_cast<int>(size)) != 1)
      return false;
    if (EVP_EncryptUpdate(cipher_, out + size, &n, &content_type, 1) != 1) return false;
    if (EVP_EncryptFinal_ex(cipher_, out + size + 1, &n) != 1) return false;
    return EVP_CIPHER_CTX_ctrl(cipher_, EVP_CTRL_AEAD_GET_TAG, kTagSize, out + size + 1) == 1;
  }
  // Decrypts `size` bytes of ciphertext in place and checks the tag that follows them.
  bool open(const uint8_t header[kRecordHeaderSize], uint8_t* data, size_t size) {
    if (!start_record()) return false;
    int n = 0;
    if (EVP_DecryptUpdate(cipher_, nullptr, &n, header, kRecordHeaderSize) != 1) return false;
    if (size > 0 && EVP_DecryptUpdate(cipher_, data, &n, data, static_cast<int>(size)) != 1)
      return false;
    if (EVP_CIPHER_CTX_ctrl(cipher_, EVP_CTRL_AEAD_SET_TAG, kTagSize, data + size) != 1)
      return false;
    return EVP_DecryptFinal_ex(cipher_, data + size, &n) == 1;
  }

 private:
  bool derive() {
    if (!suite_.cipher || secret_.size != suite_.hash_size) return false;
    return expand_label(suite_, secret_, "key", key_, suite_.key_size) &&
           expand_label(suite_, secret_, "iv", iv_, kIvSize);
  }
  // The per-record nonce: the IV with the sequence number XORed into its last 8 bytes.
  bool start_record() {
    if (!derived_ || seq_ == UINT64_MAX) return false;  // a sequence number never wraps
    if (!cipher_) {
      cipher_ = EVP_CIPHER_CTX_new();
      if (!cipher_ || EVP_CipherInit_ex2(cipher_, suite_.cipher, key_, nullptr, encrypt_ ? 1 : 0,
                                         nullptr) != 1) {
        release();
        return false;
      }
    }
    uint8_t nonce[kIvSize];
    std::memcpy(nonce, iv_, kIvSize);
    for (int i = 0; i < 8; ++i) nonce[kIvSize - 1 - i] ^= static_cast<uint8_t>(seq_ >> (8 * i));
    ++seq_;
    return EVP_CipherInit_ex2(cipher_, nullptr, nullptr, nonce, encrypt_ ? 1 : 0, nullptr) == 1;
  }

  SuiteParameters suite_;
  TrafficSecret secret_;
  uint8_t key_[32] = {};
  uint8_t iv_[kIvSize] = {};
  uint64_t seq_;
  bool encrypt_;
  bool derived_ = false;
  EVP_CIPHER_CTX* cipher_ = nullptr;  // made at the first record, dropped while idle
};

RecordLayer::RecordLayer(Role role, Suite suite, const HandshakeSecrets& secrets, uint64_t read_seq,
                         uint64_t write_seq)
    : role_(role), write_key_lifetime_(kDefaultWriteKeyLifetime) {
  const TrafficSecret& theirs = role == Role::kServer ? secrets.client : secrets.server;
  const TrafficSecret& ours = role == Role::kServer ? secrets.server : secrets.client;
  read_ = std::make_unique<Protection>(suite, theirs, read_seq, false);
  write_ = std::make_unique<Protection>(suite, ours, write_seq, true);
}

RecordLayer::~RecordLayer() = default;

uint64_t RecordLayer::read_sequence() const {
  return read_->sequence();
}
uint64_t RecordLayer::write_sequence() const {
  return write_->sequence();
}
void RecordLayer::set_write_key_lifetime(uint64_t records) {
  write_key_lifetime_ = records;
}
void RecordLayer::release_idle_memory() {
  read_->release();
  write_->release();
}

size_t RecordLayer::sealed_size(size_t plaintext) {
  const size_t records = plaintext == 0 ? 0 : (plaintext + kMaxPlaintext - 1) / kMaxPlaintext;
  return plaintext + (records + 1) * kRecordOverhead + 8;  // + a KeyUpdate, should one be due
}

bool RecordLayer::seal_record(uint8_t content_type, std::string_view content, std::string& out) {
  const size_t length = content.size() + 1 + kTagSize;
  const uint8_t header[kRecordHeaderSize] = {kApplicationData, 0x03, 0x03,
                                             static_cast<uint8_t>(length >> 8),
                                             static_cast<uint8_t>(length)};
  const size_t start = out.size();
  out.resize(start + kRecordHeaderSize + length);
  auto* record = reinterpret_cast<uint8_t*>(out.data() + start);
  std::memcpy(record, header, kRecordHeaderSize);
  if (!write_->seal(header, reinterpret_cast<const uint8_t*>(content.data()), content.size(),
                    content_type, record + kRecordHeaderSize)) {
    out.resize(start);
    return false;
  }
  return true;
}

bool RecordLayer::send_key_update(bool request_update, std::string& out) {
  const char message[] = {static_cast<char>(kKeyUpdate), 0, 0, 1,
                          static_cast<char>(request_update ? 1 : 0)};
  return seal_record(kHandshakeType, std::string_view(message, sizeof message), out) &&
         write_->update();
}

bool RecordLayer::seal(std::string_view plaintext, std::string& out) {
  out.reserve(out.size() + sealed_size(plaintext.size()));
  while (!plaintext.empty()) {
    if (write_->sequence() >= write_key_lifetime_ && !send_key_update(false, out)) return false;
    const std::string_view piece = plaintext.substr(0, kMaxPlaintext);
    plaintext.remove_prefix(piece.size());
    if (!seal_record(kApplicationData, piece, out)) return false;
  }
  return true;
}

bool RecordLayer::seal_alert(Alert alert, std::string& out) {
  const bool warning = alert == Alert::kCloseNotify || alert == Alert::kUserCanceled;
  const char body[] = {static_cast<char>(warning ? 1 : 2), static_cast<char>(alert)};
  return seal_record(kAlertType, std::string_view(body, sizeof body), out);
}

std::optional<Alert> RecordLayer::on_handshake(std::string_view messages, std::string& replies) {
  // Messages are taken whole from one record: the peers we know never split a KeyUpdate or a
  // NewSessionTicket across records, and refusing that keeps no partial state here.
  while (!messages.empty()) {
    if (messages.size() < 4) return Alert::kUnexpectedMessage;
    const auto type = static_cast<uint8_t>(messages[0]);
    const size_t length = static_cast<uint8_t>(messages[1]) << 16 |
                          static_cast<uint8_t>(messages[2]) << 8 |
                          static_cast<uint8_t>(messages[3]);
    if (messages.size() - 4 < length) return Alert::kUnexpectedMessage;
    const std::string_view body = messages.substr(4, length);
    messages.remove_prefix(4 + length);
    if (type == kNewSessionTicket && role_ == Role::kClient) continue;  // we never resume
    if (type != kKeyUpdate) return Alert::kUnexpectedMessage;
    // KeyUpdate ends its record (RFC 8446 5.1: the next record is under the new key).
    if (length != 1 || !messages.empty()) return Alert::kDecodeError;
    const auto request = static_cast<uint8_t>(body[0]);
    if (request > 1) return Alert::kDecodeError;
    if (!read_->update()) return Alert::kInternalError;
    if (request == 1 && !send_key_update(false, replies)) return Alert::kInternalError;
  }
  return std::nullopt;
}

RecordLayer::Opened RecordLayer::open(uint8_t* records, size_t size, std::string& replies) {
  Opened result;
  while (size - result.consumed >= kRecordHeaderSize) {
    uint8_t* record = records + result.consumed;
    const size_t length = size_t{record[3]} << 8 | record[4];
    if (record[0] != kApplicationData) {
      // After the handshake every record is protected; a change_cipher_spec now is an error
      // (RFC 8446 5), and anything else is not TLS 1.3 at all.
      result.error =
          record[0] == kChangeCipherSpec ? Alert::kUnexpectedMessage : Alert::kDecodeError;
      return result;
    }
    if (length > kMaxPlaintext + 256) {
      result.error = Alert::kRecordOverflow;
      return result;
    }
    if (length < 1 + kTagSize) {
      result.error = Alert::kBadRecordMac;  // too short to hold a tag
      return result;
    }
    if (size - result.consumed < kRecordHeaderSize + length) break;  // not whole yet
    uint8_t header[kRecordHeaderSize];
    std::memcpy(header, record, kRecordHeaderSize);
    uint8_t* inner = record + kRecordHeaderSize;
    size_t inner_size = length - kTagSize;
    if (!read_->open(header, inner, inner_size)) {
      result.error = Alert::kBadRecordMac;
      return result;
    }
    result.consumed += kRecordHeaderSize + length;
    // The inner plaintext is content, the content type, then zero padding.
    while (inner_size > 0 && inner[inner_size - 1] == 0) --inner_size;
    if (inner_size == 0) {
      result.error = Alert::kUnexpectedMessage;  // no content type at all
      return result;
    }
    const uint8_t content_type = inner[--inner_size];
    if (inner_size > kMaxPlaintext) {
      result.error = Alert::kRecordOverflow;
      return result;
    }
    if (content_type == kApplicationData) {
      // Packed behind the application data before it: the plaintext never overtakes the
      // ciphertext still to open (every record shrinks by at least its overhead).
      std::memmove(records + result.plaintext, inner, inner_size);
      result.plaintext += inner_size;
      continue;
    }
    const std::string_view content(reinterpret_cast<const char*>(inner), inner_size);
    if (content_type == kAlertType) {
      if (content.size() != 2) {
        result.error = Alert::kDecodeError;
        return result;
      }
      if (static_cast<uint8_t>(content[1]) == static_cast<uint8_t>(Alert::kUserCanceled)) continue;
      // close_notify, or the peer's fatal alert: either way the stream ends here.
      result.peer_closed = true;
      return result;
    }
    if (content_type == kHandshakeType) {
      if (content.empty()) {
        result.error = Alert::kUnexpectedMessage;  // RFC 8446 5.1: never zero-length
        return result;
      }
      if (auto alert = on_handshake(content, replies)) {
        result.error = alert;
        return result;
      }
      continue;
    }
    result.error = Alert::kUnexpectedMessage;
    return result;
  }
  return result;
}

}  // namespace sluice::tls
