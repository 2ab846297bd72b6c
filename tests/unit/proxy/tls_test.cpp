// The proxy's server-side TLS context, driven by OpenSSL clients over memory BIOs: which TLS 1.3
// clients get session tickets, that resumption works (TLS 1.3 and 1.2), the cipher preference,
// and that the certificate chain goes out as configured.
#include "proxy/tls.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "auth/openssl_ptr.hpp"

namespace sluice::proxy {
namespace {

using Ssl = auth::OpenSslPtr<SSL, SSL_free>;
using SslCtx = auth::OpenSslPtr<SSL_CTX, SSL_CTX_free>;
using Session = auth::OpenSslPtr<SSL_SESSION, SSL_SESSION_free>;
using Key = auth::OpenSslPtr<EVP_PKEY, EVP_PKEY_free>;
using Cert = auth::OpenSslPtr<X509, X509_free>;

TEST(SessionTickets, OnlyClientsThatCanResumeGetThem) {
  // Without psk_dhe_ke no ticket is usable: none, whatever else.
  for (uint64_t n = 0; n < 2 * kFirstTicketEvery; ++n) {
    EXPECT_EQ(session_tickets_for(false, false, n), 0);
    EXPECT_EQ(session_tickets_for(true, false, n), 0);
  }
  // A resuming client always gets its next one.
  for (uint64_t n = 0; n < 2 * kFirstTicketEvery; ++n)
    EXPECT_EQ(session_tickets_for(true, true, n), 1);
  // Of those that could resume but have none, one in kFirstTicketEvery.
  int given = 0;
  for (uint64_t n = 0; n < 4 * kFirstTicketEvery; ++n) given += session_tickets_for(false, true, n);
  EXPECT_EQ(given, 4);
  EXPECT_EQ(session_tickets_for(false, true, 0), 1);
}

// A client context that counts the session tickets it receives and keeps the last session.
struct Client {
  explicit Client(int max_version = TLS1_3_VERSION) : ctx(SSL_CTX_new(TLS_client_method())) {
    SSL_CTX_set_max_proto_version(ctx.get(), max_version);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_set_app_data(ctx.get(), this);
    SSL_CTX_sess_set_new_cb(ctx.get(), [](SSL* ssl, SSL_SESSION* session) {
      auto* self = static_cast<Client*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
      ++self->tickets;
      self->last.reset(session);  // ours now
      return 1;
    });
  }
  SslCtx ctx;
  int tickets = 0;
  Session last;
};

struct Outcome {
  bool ok = false;
  bool resumed = false;
  int tickets = 0;  // received during this connection
  std::string cipher;
  int chain_length = 0;     // certificates the server sent
  std::string fingerprint;  // of the server's certificate, as make_server_tls_context logs it
};

void pump(BIO* from, BIO* to) {
  char buf[4096];
  int n;
  while ((n = BIO_read(from, buf, sizeof buf)) > 0) BIO_write(to, buf, n);
}

// One connection: handshake, the client reads what the server sent after it (TLS 1.3 tickets),
// then both say close_notify (a session that ends without one is not resumable).
Outcome connect(ssl::context& server_ctx, Client& client, SSL_SESSION* resume = nullptr,
                tls::HandshakeSecrets* capture = nullptr) {
  Outcome out;
  Ssl c(SSL_new(client.ctx.get())), s(SSL_new(server_ctx.native_handle()));
  if (capture) capture_traffic_secrets(s.get(), capture);
  BIO *c_in = BIO_new(BIO_s_mem()), *c_out = BIO_new(BIO_s_mem());
  BIO *s_in = BIO_new(BIO_s_mem()), *s_out = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(c_in, -1);
  BIO_set_mem_eof_return(s_in, -1);
  SSL_set_bio(c.get(), c_in, c_out);
  SSL_set_bio(s.get(), s_in, s_out);
  SSL_set_connect_state(c.get());
  SSL_set_accept_state(s.get());
  if (resume) SSL_set_session(c.get(), resume);
  const int before = client.tickets;
  bool c_done = false, s_done = false;
  for (int round = 0; round < 10 && !(c_done && s_done); ++round) {
    if (!c_done) {
      const int r = SSL_do_handshake(c.get());
      if (r == 1)
        c_done = true;
      else if (SSL_get_error(c.get(), r) != SSL_ERROR_WANT_READ)
        break;
    }
    pump(c_out, s_in);
    if (!s_done) {
      const int r = SSL_do_handshake(s.get());
      if (r == 1)
        s_done = true;
      else if (SSL_get_error(s.get(), r) != SSL_ERROR_WANT_READ)
        break;
    }
    pump(s_out, c_in);
  }
  out.ok = c_done && s_done;
  if (!out.ok) return out;
  char byte;
  EXPECT_LE(SSL_read(c.get(), &byte, 1), 0);  // takes in the tickets; no data
  SSL_shutdown(c.get());
  pump(c_out, s_in);
  SSL_shutdown(s.get());
  pump(s_out, c_in);
  SSL_shutdown(c.get());
  out.resumed = SSL_session_reused(c.get()) == 1;
  out.tickets = client.tickets - before;
  out.cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(c.get()));
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(c.get());  // the server's own first
  out.chain_length = chain ? sk_X509_num(chain) : 0;
  if (out.chain_length > 0) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    X509_digest(sk_X509_value(chain, 0), EVP_sha256(), md, &len);
    for (unsigned int i = 0; i < len; ++i) {
      char hex[4];
      std::snprintf(hex, sizeof hex, i ? ":%02X" : "%02X", md[i]);
      out.fingerprint += hex;
    }
  }
  return out;
}

std::unique_ptr<ssl::context> ephemeral_server() {
  std::string fingerprint;
  return make_server_tls_context("", "", fingerprint);
}

TEST(ServerTls, EphemeralCertificateIsTheOneWhoseFingerprintIsLogged) {
  std::string fingerprint;
  auto server = make_server_tls_context("", "", fingerprint);
  Client client;
  const Outcome o = connect(*server, client);
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.chain_length, 1);
  EXPECT_EQ(o.fingerprint, fingerprint);
  EXPECT_EQ(fingerprint.size(), 32u * 3 - 1);
}

TEST(ServerTls, FreshTls13ClientsGetATicketOneTimeInEight) {
  auto server = ephemeral_server();
  Client client;
  int tickets = 0;
  for (uint64_t i = 0; i < 2 * kFirstTicketEvery; ++i) {
    const Outcome o = connect(*server, client);  // never offers a ticket, as libpq
    ASSERT_TRUE(o.ok);
    EXPECT_FALSE(o.resumed);
    EXPECT_LE(o.tickets, 1);
    tickets += o.tickets;
  }
  EXPECT_EQ(tickets, 2);
}

TEST(ServerTls, Tls13ClientsThatResumeKeepResuming) {
  auto server = ephemeral_server();
  Client client;
  for (uint64_t i = 0; i < kFirstTicketEvery && !client.last; ++i)
    ASSERT_TRUE(connect(*server, client).ok);
  ASSERT_TRUE(client.last) << "no ticket in " << kFirstTicketEvery << " first contacts";
  for (int i = 0; i < 5; ++i) {
    Session ticket(client.last.release());
    const Outcome o = connect(*server, client, ticket.get());
    ASSERT_TRUE(o.ok);
    EXPECT_TRUE(o.resumed) << "round " << i;
    EXPECT_EQ(o.tickets, 1) << "a resumed client gets the ticket for its next resumption";
  }
}

TEST(ServerTls, Tls12ClientsResumeWithTheirTicket) {
  auto server = ephemeral_server();
  Client client(TLS1_2_VERSION);
  const Outcome first = connect(*server, client);
  ASSERT_TRUE(first.ok);
  EXPECT_FALSE(first.resumed);
  ASSERT_TRUE(client.last);
  Session ticket(client.last.release());
  const Outcome again = connect(*server, client, ticket.get());
  ASSERT_TRUE(again.ok);
  EXPECT_TRUE(again.resumed);
}

// The client's own key log: what the server's secrets must be.
struct LoggingClient : Client {
  explicit LoggingClient(int max_version = TLS1_3_VERSION) : Client(max_version) {
    SSL_CTX_set_keylog_callback(ctx.get(), [](const SSL* ssl, const char* line) {
      auto* self = static_cast<Client*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
      tls::note_key_log_line(line, static_cast<LoggingClient*>(self)->secrets);
    });
  }
  tls::HandshakeSecrets secrets;
};

bool same(const tls::TrafficSecret& a, const tls::TrafficSecret& b) {
  return a.size == b.size && a.size > 0 && std::memcmp(a.bytes, b.bytes, a.size) == 0;
}

TEST(ServerTls, KeyLogIsOnOnlyWhereTheApplicationSecretsComeOut) {
  auto server = ephemeral_server();
  LoggingClient client;
  tls::HandshakeSecrets taken;
  // Full handshakes and resumed ones (no certificate) alike: 3 lines formatted of the 5
  // (the exporter secret comes out just before the server's traffic secret).
  for (int round = 0; round < 2 * static_cast<int>(kFirstTicketEvery); ++round) {
    Session ticket(client.last.release());
    const uint64_t before = key_log_lines_seen();
    const Outcome o = connect(*server, client, ticket.get(), &taken);
    ASSERT_TRUE(o.ok);
    EXPECT_EQ(key_log_lines_seen() - before, 3u) << "round " << round;
    ASSERT_TRUE(taken.complete());
    EXPECT_TRUE(same(taken.client, client.secrets.client));
    EXPECT_TRUE(same(taken.server, client.secrets.server));
    if (round > static_cast<int>(kFirstTicketEvery)) {
      EXPECT_TRUE(o.resumed);
    }
    taken.wipe();
    client.secrets.wipe();
  }
  // Nothing asked for, nothing formatted: neither without a capture nor over TLS 1.2 (whose
  // records stay with OpenSSL).
  const uint64_t before = key_log_lines_seen();
  ASSERT_TRUE(connect(*server, client).ok);
  LoggingClient old(TLS1_2_VERSION);
  ASSERT_TRUE(connect(*server, old, nullptr, &taken).ok);
  EXPECT_FALSE(taken.complete());
  EXPECT_EQ(key_log_lines_seen() - before, 0u);  // the clients log through their own callback
}

TEST(ServerTls, ContextsOfTheWorkersShareCertificateAndTicketKeys) {
  std::string fingerprint;
  auto contexts = make_server_tls_contexts("", "", fingerprint, true, 3);
  ASSERT_EQ(contexts.size(), 3u);
  Client client;
  for (auto& ctx : contexts) {
    const Outcome o = connect(*ctx, client);
    ASSERT_TRUE(o.ok);
    EXPECT_EQ(o.fingerprint, fingerprint);
  }
  // A ticket from one resumes on another, TLS 1.3 and TLS 1.2.
  for (uint64_t i = 0; i < kFirstTicketEvery && !client.last; ++i)
    ASSERT_TRUE(connect(*contexts[0], client).ok);
  ASSERT_TRUE(client.last);
  Session ticket(client.last.release());
  EXPECT_TRUE(connect(*contexts[2], client, ticket.get()).resumed);
  Client old(TLS1_2_VERSION);
  ASSERT_TRUE(connect(*contexts[1], old).ok);
  ASSERT_TRUE(old.last);
  Session old_ticket(old.last.release());
  EXPECT_TRUE(connect(*contexts[0], old, old_ticket.get()).resumed);
}

TEST(ServerTls, PrefersAes128GcmAndHonoursChaCha20First) {
  auto server = ephemeral_server();
  Client plain;
  EXPECT_EQ(connect(*server, plain).cipher, "TLS_AES_128_GCM_SHA256");
  Client aes256;
  SSL_CTX_set_ciphersuites(aes256.ctx.get(), "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(connect(*server, aes256).cipher, "TLS_AES_256_GCM_SHA384");
  Client chacha;  // no AES hardware: ChaCha20 first
  SSL_CTX_set_ciphersuites(chacha.ctx.get(), "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(connect(*server, chacha).cipher, "TLS_CHACHA20_POLY1305_SHA256");
}

TEST(ServerTls, RefusesTls11) {
  auto server = ephemeral_server();
  Client old(TLS1_1_VERSION);
  SSL_CTX_set_security_level(old.ctx.get(), 0);
  EXPECT_FALSE(connect(*server, old).ok);
}

// A P-256 certificate for `cn`, signed by `issuer` (itself when null).
Cert certificate(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ca ? 1 : 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer ? issuer : cert.get()));
  if (ca) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    X509_EXTENSION* ext =
        X509V3_EXT_nconf_nid(nullptr, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256());
  return cert;
}

TEST(ServerTls, SendsTheConfiguredChainAsItIs) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("sluice-tls-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  Key ca_key(EVP_EC_gen("P-256")), leaf_key(EVP_EC_gen("P-256"));
  Cert ca = certificate(ca_key.get(), "test CA", nullptr, nullptr, true);
  Cert leaf = certificate(leaf_key.get(), "localhost", ca.get(), ca_key.get(), false);
  auto write = [&](const std::string& name, auto&& body) {
    const std::string path = (dir / name).string();
    FILE* f = std::fopen(path.c_str(), "w");
    body(f);
    std::fclose(f);
    return path;
  };
  const std::string key_file = write("leaf.key", [&](FILE* f) {
    PEM_write_PrivateKey(f, leaf_key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  const std::string leaf_only = write("leaf.crt", [&](FILE* f) { PEM_write_X509(f, leaf.get()); });
  const std::string with_ca = write("chain.crt", [&](FILE* f) {
    PEM_write_X509(f, leaf.get());
    PEM_write_X509(f, ca.get());
  });
  std::string fingerprint;
  auto alone = make_server_tls_context(leaf_only, key_file, fingerprint);
  auto chained = make_server_tls_context(with_ca, key_file, fingerprint);
  Client client;
  EXPECT_EQ(connect(*alone, client).chain_length, 1);
  EXPECT_EQ(connect(*chained, client).chain_length, 2);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::proxy
