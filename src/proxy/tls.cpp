#include "proxy/tls.hpp"

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace sluice::proxy {
namespace {

struct EvpKeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

std::string hex_fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(cert, EVP_sha256(), md, &len);
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    if (i) out += ':';
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

// Clients that could resume but offered no ticket, over the process's life (every server context).
std::atomic<uint64_t> first_contacts_seen{0};

// psk_key_exchange_modes: a length byte, then the modes. psk_dhe_ke is the only one OpenSSL
// accepts (psk_ke, resumption without a fresh key exchange, needs SSL_OP_ALLOW_NO_DHE_KEX).
constexpr unsigned char kPskDheKe = 1;  // RFC 8446 4.2.9

bool lists_psk_dhe_ke(const unsigned char* ext, size_t len) {
  if (len < 1 || ext[0] != len - 1) return false;
  for (size_t i = 1; i < len; ++i)
    if (ext[i] == kPskDheKe) return true;
  return false;
}

// Runs on every ClientHello, before the handshake picks a version: the ticket count only
// matters to TLS 1.3 (TLS 1.2 tickets go to clients that send the SessionTicket extension, and
// session ids to the cache, as before).
int on_client_hello(SSL* ssl, int* /*alert*/, void* /*arg*/) {
  const unsigned char* ext = nullptr;
  size_t len = 0;
  const bool offers_ticket = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &ext, &len) == 1;
  const bool can_resume =
      SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk_kex_modes, &ext, &len) == 1 &&
      lists_psk_dhe_ke(ext, len);
  uint64_t before = 0;
  if (can_resume && !offers_ticket)
    before = first_contacts_seen.fetch_add(1, std::memory_order_relaxed);
  SSL_set_num_tickets(ssl,
                      static_cast<size_t>(session_tickets_for(offers_ticket, can_resume, before)));
  return SSL_CLIENT_HELLO_SUCCESS;
}

int secrets_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

std::atomic<uint64_t> key_log_lines{0};

// OpenSSL announces each secret of a handshake as a key log line; the application traffic
// secrets go to the connection's HandshakeSecrets, if it asked for them. The line (which OpenSSL
// wipes after the call) is never stored or printed.
void on_key_log(const SSL* ssl, const char* line) {
  key_log_lines.fetch_add(1, std::memory_order_relaxed);
  auto* secrets = static_cast<tls::HandshakeSecrets*>(SSL_get_ex_data(ssl, secrets_index()));
  if (secrets) tls::note_key_log_line(line, *secrets);
}

// A server context's key log is on only in the two moments of a TLS 1.3 handshake that announce
// the application traffic secrets: OpenSSL 3.0 formats every secret it logs with a sprintf per
// byte (about 46,000 instructions a line), and of the five a handshake logs only those two are
// wanted. On after EncryptedExtensions went out (the server's secret comes with its Finished, in
// the same step, after the exporter secret, which cannot be skipped) and when the client's
// Finished is read (its secret); off whenever a step ends. The switch is the context's, so each
// worker thread has contexts of its own (see make_server_tls_contexts).
void on_handshake_state(const SSL* ssl, int where, int /*ret*/) {
  SSL_CTX* ctx = SSL_get_SSL_CTX(ssl);
  if (where & SSL_CB_EXIT) {
    SSL_CTX_set_keylog_callback(ctx, nullptr);
    return;
  }
  if (where != SSL_CB_ACCEPT_LOOP || SSL_version(ssl) != TLS1_3_VERSION ||
      !SSL_get_ex_data(ssl, secrets_index()))
    return;
  const OSSL_HANDSHAKE_STATE done = SSL_get_state(ssl);
  // TLS_ST_EARLY_DATA: after its Finished a TLS 1.3 server waits in this state for the
  // client's (with no early data, as here).
  if (done == TLS_ST_SW_ENCRYPTED_EXTENSIONS || done == TLS_ST_EARLY_DATA)
    SSL_CTX_set_keylog_callback(ctx, on_key_log);
}

void harden(ssl::context& ctx) {
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_keylog_callback(native, on_key_log);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                  ssl::context::single_dh_use);
}

// Everything of a server context but its certificate and key.
std::unique_ptr<ssl::context> new_server_context(bool hand_over_records) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  harden(*ctx);
  SSL_CTX* native = ctx->native_handle();
  // The key log is switched on by on_handshake_state when wanted; without the hand-over there
  // are no traffic secrets to take and OpenSSL keeps the records.
  SSL_CTX_set_keylog_callback(native, nullptr);
  if (hand_over_records) SSL_CTX_set_info_callback(native, on_handshake_state);
  // Resumed sessions skip the certificate and its signature (TLS 1.2 resumption skips the key
  // exchange too). TLS 1.3 tickets: see session_tickets_for().
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_session_id_context(native, reinterpret_cast<const unsigned char*>("sluice"), 6);
  SSL_CTX_set_num_tickets(native, 0);
  SSL_CTX_set_client_hello_cb(native, on_client_hello, nullptr);
  // AES-128-GCM first: a TLS 1.3 handshake with SHA-256 costs about 3 % less than with
  // AES-256-GCM's SHA-384, and records are cheaper too. The session is no weaker for it: its
  // key exchange (X25519, P-256) and certificate (P-256) are 128-bit strong anyway. A client
  // that puts ChaCha20 first (no AES hardware) gets ChaCha20.
  SSL_CTX_set_ciphersuites(
      native, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
  // The chain goes out as configured: without this, every handshake would build one from the
  // context's (empty) trust store, for nothing.
  SSL_CTX_set_mode(native, SSL_MODE_NO_AUTO_CHAIN);
  return ctx;
}

}  // namespace

std::unique_ptr<ssl::context> make_server_tls_context(const std::string& cert_file,
                                                      const std::string& key_file,
                                                      std::string& fingerprint,
                                                      bool hand_over_records) {
  auto ctx = new_server_context(hand_over_records);
  SSL_CTX* native = ctx->native_handle();
  if (!cert_file.empty()) {
    ctx->use_certificate_chain_file(cert_file);
    ctx->use_private_key_file(key_file, ssl::context::pem);
    if (X509* cert = SSL_CTX_get0_certificate(native)) fingerprint = hex_fingerprint(cert);
    return ctx;
  }
  // ECDSA P-256: its signatures cost a fraction of RSA-2048's, which matters for login storms.
  std::unique_ptr<EVP_PKEY, EvpKeyFree> key(EVP_EC_gen("P-256"));
  std::unique_ptr<X509, X509Free> cert(X509_new());
  if (!key || !cert) throw std::runtime_error("cannot create an ephemeral TLS key");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), static_cast<long>(time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("sluice-proxy"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (!X509_sign(cert.get(), key.get(), EVP_sha256()))
    throw std::runtime_error("cannot sign the ephemeral TLS certificate");
  // Read back from DER, as a certificate file would be: a parsed certificate keeps its encoding,
  // one built in memory is encoded afresh for every handshake's Certificate message (twice).
  unsigned char* der = nullptr;
  const int der_length = i2d_X509(cert.get(), &der);
  const unsigned char* cursor = der;
  cert.reset(der_length > 0 ? d2i_X509(nullptr, &cursor, der_length) : nullptr);
  OPENSSL_free(der);
  if (!cert) throw std::runtime_error("cannot encode the ephemeral TLS certificate");
  SSL_CTX_use_certificate(native, cert.get());
  SSL_CTX_use_PrivateKey(native, key.get());
  fingerprint = hex_fingerprint(cert.get());
  return ctx;
}

std::vector<std::unique_ptr<ssl::context>> make_server_tls_contexts(const std::string& cert_file,
                                                                    const std::string& key_file,
                                                                    std::string& fingerprint,
                                                                    bool hand_over_records,
                                                                    size_t count) {
  std::vector<std::unique_ptr<ssl::context>> contexts;
  contexts.push_back(make_server_tls_context(cert_file, key_file, fingerprint, hand_over_records));
  SSL_CTX* first = contexts.front()->native_handle();
  // The same certificate, chain and key (an ephemeral one is made once), and the same ticket
  // keys, so that a ticket from any worker resumes on every other.
  X509* cert = SSL_CTX_get0_certificate(first);
  EVP_PKEY* key = SSL_CTX_get0_privatekey(first);
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(first, &chain);
  unsigned char ticket_keys[80];  // name, HMAC key, AES key (OpenSSL 3.0)
  if (!cert || !key ||
      SSL_CTX_get_tlsext_ticket_keys(first, ticket_keys, sizeof ticket_keys) != 1) {
    OPENSSL_cleanse(ticket_keys, sizeof ticket_keys);
    throw std::runtime_error("cannot copy the TLS server context");
  }
  for (size_t i = 1; i < count; ++i) {
    auto ctx = new_server_context(hand_over_records);
    SSL_CTX* native = ctx->native_handle();
    if (SSL_CTX_use_certificate(native, cert) != 1 || SSL_CTX_use_PrivateKey(native, key) != 1 ||
        (chain && SSL_CTX_set1_chain(native, chain) != 1) ||
        SSL_CTX_set_tlsext_ticket_keys(native, ticket_keys, sizeof ticket_keys) != 1) {
      OPENSSL_cleanse(ticket_keys, sizeof ticket_keys);
      throw std::runtime_error("cannot copy the TLS server context");
    }
    contexts.push_back(std::move(ctx));
  }
  OPENSSL_cleanse(ticket_keys, sizeof ticket_keys);
  return contexts;
}

uint64_t key_log_lines_seen() {
  return key_log_lines.load(std::memory_order_relaxed);
}

void capture_traffic_secrets(SSL* ssl, tls::HandshakeSecrets* secrets) {
  SSL_set_ex_data(ssl, secrets_index(), secrets);
}

int session_tickets_for(bool offers_ticket, bool can_resume, uint64_t first_contacts) {
  if (!can_resume) return 0;
  if (offers_ticket) return 1;
  return first_contacts % kFirstTicketEvery == 0 ? 1 : 0;
}

std::unique_ptr<ssl::context> make_client_tls_context(TargetTls mode, const std::string& ca_file) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  harden(*ctx);
  if (mode == TargetTls::kVerifyFull) {
    if (ca_file.empty())
      ctx->set_default_verify_paths();
    else
      ctx->load_verify_file(ca_file);
    ctx->set_verify_mode(ssl::verify_peer);
  } else {
    ctx->set_verify_mode(ssl::verify_none);
  }
  return ctx;
}

}  // namespace sluice::proxy
