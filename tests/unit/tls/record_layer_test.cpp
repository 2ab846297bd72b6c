// tls::RecordLayer against real OpenSSL peers: OpenSSL does the handshake on both sides (memory
// BIOs), then one side's records are handed over to the RecordLayer, as the proxy does, and the
// other side (still OpenSSL) must read and write through it: every cipher suite, either role,
// session tickets, key updates both ways, close_notify, and what a hostile peer may send.
#include "tls/record_layer.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

namespace sluice::tls {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using SslCtx = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX, SSL_CTX_free>>;
using Ssl = std::unique_ptr<SSL, Deleter<SSL, SSL_free>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;

int secrets_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
void on_key_log(const SSL* ssl, const char* line) {
  if (auto* secrets = static_cast<HandshakeSecrets*>(SSL_get_ex_data(ssl, secrets_index()))) {
    EXPECT_TRUE(note_key_log_line(line, *secrets));
  }
}

SslCtx server_context(const char* suites, size_t tickets) {
  static Key key(EVP_EC_gen("P-256"));
  static Cert cert = [] {
    Cert c(X509_new());
    X509_set_version(c.get(), 2);
    X509_gmtime_adj(X509_getm_notBefore(c.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(c.get()), 3600);
    X509_set_pubkey(c.get(), key.get());
    X509_set_issuer_name(c.get(), X509_get_subject_name(c.get()));
    X509_sign(c.get(), key.get(), EVP_sha256());
    return c;
  }();
  SslCtx ctx(SSL_CTX_new(TLS_server_method()));
  SSL_CTX_use_certificate(ctx.get(), cert.get());
  SSL_CTX_use_PrivateKey(ctx.get(), key.get());
  SSL_CTX_set_ciphersuites(ctx.get(), suites);
  SSL_CTX_set_num_tickets(ctx.get(), tickets);
  SSL_CTX_set_keylog_callback(ctx.get(), on_key_log);
  return ctx;
}

SslCtx client_context(const char* suites) {
  SslCtx ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_ciphersuites(ctx.get(), suites);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_keylog_callback(ctx.get(), on_key_log);
  return ctx;
}

Ssl with_memory_bios(SSL* ssl) {
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(in, -1);
  SSL_set_bio(ssl, in, out);
  return Ssl(ssl);
}

std::string drain(BIO* bio) {
  std::string bytes(BIO_ctrl_pending(bio), '\0');
  if (!bytes.empty()) BIO_read(bio, bytes.data(), static_cast<int>(bytes.size()));
  return bytes;
}
void feed(SSL* ssl, std::string_view bytes) {
  if (!bytes.empty()) BIO_write(SSL_get_rbio(ssl), bytes.data(), static_cast<int>(bytes.size()));
}

// One connection: OpenSSL on both ends for the handshake; then `ours` (server or client) is
// handed over to a RecordLayer and `peer` stays OpenSSL.
struct Connection {
  Connection(RecordLayer::Role role, const char* suites = "TLS_AES_128_GCM_SHA256",
             size_t tickets = 0, std::string_view early_request = {})
      : role(role),
        server_ctx(server_context(suites, tickets)),
        client_ctx(client_context(suites)) {
    Ssl server = with_memory_bios(SSL_new(server_ctx.get()));
    Ssl client = with_memory_bios(SSL_new(client_ctx.get()));
    SSL_set_accept_state(server.get());
    SSL_set_connect_state(client.get());
    SSL* mine = role == RecordLayer::Role::kServer ? server.get() : client.get();
    SSL_set_ex_data(mine, secrets_index(), &secrets);
    bool server_done = false;
    bool client_done = false;
    uint64_t written_by_last_step = 0;
    for (int round = 0; round < 10 && !(server_done && client_done); ++round) {
      if (!client_done) {
        client_done = SSL_do_handshake(client.get()) == 1;
        // A client that writes its first request right behind its Finished (libpq does).
        if (client_done && !early_request.empty()) {
          EXPECT_GT(
              SSL_write(client.get(), early_request.data(), static_cast<int>(early_request.size())),
              0);
        }
        feed(server.get(), drain(SSL_get_wbio(client.get())));
      }
      if (!server_done) {
        server_done = SSL_do_handshake(server.get()) == 1;
        if (server_done) {
          char* data = nullptr;
          const long size = BIO_get_mem_data(SSL_get_wbio(server.get()), &data);
          written_by_last_step = count_records({data, static_cast<size_t>(size)});
        }
        feed(client.get(), drain(SSL_get_wbio(server.get())));
      }
    }
    EXPECT_TRUE(server_done && client_done);
    EXPECT_TRUE(secrets.complete());
    const auto suite = suite_from_id(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(mine)));
    EXPECT_TRUE(suite.has_value());
    EXPECT_FALSE(SSL_has_pending(mine));
    inbound = drain(SSL_get_rbio(mine));  // what came after the Finished
    records = std::make_unique<RecordLayer>(
        role, *suite, secrets, 0, role == RecordLayer::Role::kServer ? written_by_last_step : 0);
    peer = role == RecordLayer::Role::kServer ? std::move(client) : std::move(server);
  }

  // The peer writes; returns its records.
  std::string peer_writes(std::string_view plaintext) {
    for (size_t at = 0; at < plaintext.size();) {
      size_t n = 0;
      EXPECT_EQ(SSL_write_ex(peer.get(), plaintext.data() + at, plaintext.size() - at, &n), 1);
      at += n;
    }
    return drain(SSL_get_wbio(peer.get()));
  }
  // Opens records (after what is held): the plaintext, or an error.
  RecordLayer::Opened open(std::string_view bytes, std::string& plaintext) {
    inbound.append(bytes);
    RecordLayer::Opened opened =
        records->open(reinterpret_cast<uint8_t*>(inbound.data()), inbound.size(), replies);
    plaintext.append(inbound.data(), opened.plaintext);
    inbound.erase(0, opened.consumed);
    return opened;
  }
  // What the peer reads of `records`, until it would block or the stream ends.
  std::string peer_reads(std::string_view bytes, int* last_error = nullptr) {
    feed(peer.get(), bytes);
    std::string plaintext;
    char buffer[4096];
    for (;;) {
      size_t n = 0;
      const int result = SSL_read_ex(peer.get(), buffer, sizeof buffer, &n);
      if (result != 1) {
        if (last_error) *last_error = SSL_get_error(peer.get(), result);
        break;
      }
      plaintext.append(buffer, n);
    }
    // A key update the peer answers (or any record it writes while reading) comes back to us.
    to_us.append(drain(SSL_get_wbio(peer.get())));
    return plaintext;
  }

  RecordLayer::Role role;
  SslCtx server_ctx;
  SslCtx client_ctx;
  HandshakeSecrets secrets;
  std::unique_ptr<RecordLayer> records;
  Ssl peer;
  std::string inbound;  // records for us not opened yet
  std::string replies;  // records we must send (KeyUpdate answers)
  std::string to_us;    // records the peer wrote while reading
};

std::string pattern(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

class EverySuite : public ::testing::TestWithParam<std::tuple<const char*, RecordLayer::Role>> {};

TEST_P(EverySuite, DataBothWaysInEverySize) {
  const auto [suite, role] = GetParam();
  Connection c(role, suite);
  for (size_t size :
       {size_t{1}, size_t{5}, size_t{16383}, size_t{16384}, size_t{16385}, size_t{100000}}) {
    const std::string message = pattern(size);
    std::string received;
    const auto opened = c.open(c.peer_writes(message), received);
    EXPECT_FALSE(opened.error);
    EXPECT_EQ(received, message) << size;
    std::string sealed;
    ASSERT_TRUE(c.records->seal(message, sealed));
    EXPECT_LE(sealed.size(), message.size() + RecordLayer::sealed_size(message.size()));
    EXPECT_EQ(c.peer_reads(sealed), message) << size;
  }
  EXPECT_TRUE(c.replies.empty());
}

TEST_P(EverySuite, RecordsArrivingByteByByte) {
  const auto [suite, role] = GetParam();
  Connection c(role, suite);
  const std::string message = pattern(20000);
  const std::string records = c.peer_writes(message);
  std::string received;
  for (char byte : records) EXPECT_FALSE(c.open(std::string_view(&byte, 1), received).error);
  EXPECT_EQ(received, message);
  EXPECT_TRUE(c.inbound.empty());
}

TEST_P(EverySuite, KeyUpdatesBothWays) {
  const auto [suite, role] = GetParam();
  Connection c(role, suite);
  // The peer updates its key and asks us to update ours.
  ASSERT_EQ(SSL_key_update(c.peer.get(), SSL_KEY_UPDATE_REQUESTED), 1);
  std::string received;
  EXPECT_FALSE(c.open(c.peer_writes("after the update"), received).error);
  EXPECT_EQ(received, "after the update");
  ASSERT_FALSE(c.replies.empty());  // our KeyUpdate, under the old key
  std::string sealed = c.replies;
  ASSERT_TRUE(c.records->seal("under our new key", sealed));
  EXPECT_EQ(c.peer_reads(sealed), "under our new key");
  // Our own update when the key's lifetime runs out, several times over.
  c.records->set_write_key_lifetime(2);
  const std::string message = pattern(5 * 16384 + 10);
  sealed.clear();
  ASSERT_TRUE(c.records->seal(message, sealed));
  EXPECT_EQ(c.peer_reads(sealed), message);
  received.clear();
  EXPECT_FALSE(c.open(c.peer_writes("still fine"), received).error);
  EXPECT_EQ(received, "still fine");
}

TEST_P(EverySuite, IdleConnectionsDropTheirCipherContexts) {
  const auto [suite, role] = GetParam();
  Connection c(role, suite);
  std::string received;
  EXPECT_FALSE(c.open(c.peer_writes("one"), received).error);
  c.records->release_idle_memory();
  EXPECT_FALSE(c.open(c.peer_writes("two"), received).error);
  EXPECT_EQ(received, "onetwo");
  std::string sealed;
  ASSERT_TRUE(c.records->seal("three", sealed));
  c.records->release_idle_memory();
  ASSERT_TRUE(c.records->seal("four", sealed));
  EXPECT_EQ(c.peer_reads(sealed), "threefour");
}

INSTANTIATE_TEST_SUITE_P(
    Records, EverySuite,
    ::testing::Combine(::testing::Values("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                         "TLS_CHACHA20_POLY1305_SHA256"),
                       ::testing::Values(RecordLayer::Role::kServer, RecordLayer::Role::kClient)));

TEST(RecordLayer, SessionTicketsCountTowardsTheServersSequence) {
  // The server's last handshake step sent two tickets under the application key: our first
  // record must carry sequence number 2, or the client cannot open it.
  Connection c(RecordLayer::Role::kServer, "TLS_AES_128_GCM_SHA256", 2);
  EXPECT_EQ(c.records->write_sequence(), 2u);
  std::string sealed;
  ASSERT_TRUE(c.records->seal("hello", sealed));
  EXPECT_EQ(c.peer_reads(sealed), "hello");
}

TEST(RecordLayer, AClientIgnoresTheServersSessionTickets) {
  Connection c(RecordLayer::Role::kClient, "TLS_AES_128_GCM_SHA256", 0);
  // The server sends two tickets after the handshake, then data.
  ASSERT_EQ(SSL_new_session_ticket(c.peer.get()), 1);
  ASSERT_EQ(SSL_new_session_ticket(c.peer.get()), 1);
  ASSERT_EQ(SSL_do_handshake(c.peer.get()), 1);
  std::string received;
  const auto opened = c.open(c.peer_writes("data"), received);
  EXPECT_FALSE(opened.error);
  EXPECT_EQ(received, "data");
}

TEST(RecordLayer, WhatFollowedTheFinishedIsOpened) {
  Connection c(RecordLayer::Role::kServer, "TLS_AES_128_GCM_SHA256", 1, "startup packet");
  ASSERT_FALSE(c.inbound.empty());
  std::string received;
  EXPECT_FALSE(c.open("", received).error);
  EXPECT_EQ(received, "startup packet");
}

TEST(RecordLayer, CloseNotifyBothWays) {
  Connection c(RecordLayer::Role::kServer);
  std::string received;
  const std::string data = c.peer_writes("last words");
  ASSERT_EQ(SSL_shutdown(c.peer.get()), 0);
  const auto opened = c.open(data + drain(SSL_get_wbio(c.peer.get())), received);
  EXPECT_EQ(received, "last words");
  EXPECT_TRUE(opened.peer_closed);
  EXPECT_FALSE(opened.error);

  Connection d(RecordLayer::Role::kServer);
  std::string sealed;
  ASSERT_TRUE(d.records->seal("bye", sealed));
  ASSERT_TRUE(d.records->seal_alert(Alert::kCloseNotify, sealed));
  int error = 0;
  EXPECT_EQ(d.peer_reads(sealed, &error), "bye");
  EXPECT_EQ(error, SSL_ERROR_ZERO_RETURN);
}

TEST(RecordLayer, ATamperedRecordIsABadRecordMac) {
  for (size_t flip : {size_t{0} /* header */, size_t{7}, size_t{20} /* tag */}) {
    Connection c(RecordLayer::Role::kServer);
    std::string records = c.peer_writes("hello");
    ASSERT_LT(flip, records.size());
    records[flip == 0 ? 2 : flip] ^= 1;  // the header's version is authenticated too
    std::string received;
    const auto opened = c.open(records, received);
    ASSERT_TRUE(opened.error) << flip;
    EXPECT_EQ(*opened.error, Alert::kBadRecordMac);
    EXPECT_TRUE(received.empty());
    // The alert we send is one the peer understands.
    std::string alert;
    ASSERT_TRUE(c.records->seal_alert(*opened.error, alert));
    int error = 0;
    c.peer_reads(alert, &error);
    EXPECT_EQ(error, SSL_ERROR_SSL);
  }
}

TEST(RecordLayer, ReplayedOrReorderedRecordsFail) {
  Connection c(RecordLayer::Role::kServer);
  const std::string first = c.peer_writes("one");
  const std::string second = c.peer_writes("two");
  std::string received;
  const auto opened = c.open(second + first, received);
  ASSERT_TRUE(opened.error);
  EXPECT_EQ(*opened.error, Alert::kBadRecordMac);
}

TEST(RecordLayer, HostileRecords) {
  struct Case {
    std::string bytes;
    Alert expected;
  };
  const std::vector<Case> cases = {
      {std::string("\x14\x03\x03\x00\x01\x01", 6),
       Alert::kUnexpectedMessage},  // change_cipher_spec
      {std::string("\x16\x03\x03\x00\x04\x01\x00\x00\x00", 9),
       Alert::kDecodeError},                                             // plaintext handshake
      {std::string("\x17\x03\x03\x41\x01", 5), Alert::kRecordOverflow},  // declared 16,641 bytes
      {std::string("\x17\x03\x03\x00\x05hello", 10), Alert::kBadRecordMac},  // shorter than a tag
      {std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'x'), Alert::kBadRecordMac},
  };
  for (const Case& test : cases) {
    Connection c(RecordLayer::Role::kServer);
    std::string received;
    const auto opened = c.open(test.bytes, received);
    ASSERT_TRUE(opened.error) << test.bytes.size();
    EXPECT_EQ(*opened.error, test.expected) << test.bytes.size();
  }
}

TEST(RecordLayer, APartialRecordWaitsForTheRest) {
  Connection c(RecordLayer::Role::kServer);
  const std::string records = c.peer_writes("hello");
  std::string received;
  const auto opened = c.open(records.substr(0, records.size() - 1), received);
  EXPECT_FALSE(opened.error);
  EXPECT_EQ(opened.consumed, 0u);
  EXPECT_TRUE(received.empty());
  EXPECT_FALSE(c.open(records.substr(records.size() - 1), received).error);
  EXPECT_EQ(received, "hello");
}

TEST(KeyLog, OnlyApplicationTrafficSecretsAreTaken) {
  HandshakeSecrets secrets;
  const std::string random(64, 'a');
  EXPECT_TRUE(note_key_log_line(
      "CLIENT_HANDSHAKE_TRAFFIC_SECRET " + random + " " + std::string(64, '1'), secrets));
  EXPECT_TRUE(note_key_log_line("CLIENT_RANDOM " + random + " " + std::string(96, '2'), secrets));
  EXPECT_FALSE(secrets.complete());
  EXPECT_TRUE(
      note_key_log_line("CLIENT_TRAFFIC_SECRET_0 " + random + " " + std::string(64, 'f'), secrets));
  EXPECT_TRUE(
      note_key_log_line("SERVER_TRAFFIC_SECRET_0 " + random + " " + std::string(96, '0'), secrets));
  ASSERT_TRUE(secrets.complete());
  EXPECT_EQ(secrets.client.size, 32);
  EXPECT_EQ(secrets.client.bytes[31], 0xff);
  EXPECT_EQ(secrets.server.size, 48);
  // Malformed lines of ours are refused and change nothing.
  EXPECT_FALSE(note_key_log_line("CLIENT_TRAFFIC_SECRET_0 " + random, secrets));
  EXPECT_FALSE(
      note_key_log_line("CLIENT_TRAFFIC_SECRET_0 " + random + " " + std::string(64, 'g'), secrets));
  EXPECT_FALSE(note_key_log_line("CLIENT_TRAFFIC_SECRET_0 " + random + " abc", secrets));
  EXPECT_EQ(secrets.client.bytes[0], 0xff);
  secrets.wipe();
  EXPECT_FALSE(secrets.complete());
}

TEST(KeyLog, CountRecords) {
  EXPECT_EQ(count_records(""), 0u);
  EXPECT_EQ(count_records(std::string("\x17\x03\x03\x00\x01x", 6)), 1u);
  EXPECT_EQ(count_records(std::string("\x17\x03\x03\x00\x01x\x17\x03\x03\x00\x02y", 12)), 1u);
  EXPECT_EQ(count_records(std::string("\x17\x03\x03\x00\x00\x17\x03", 7)), 1u);
}

}  // namespace
}  // namespace sluice::tls
