#include "cloud/certificates.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "auth/openssl_ptr.hpp"

namespace sluice::cloud {
namespace {

using Names = std::vector<std::string>;

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

using Bio = auth::OpenSslPtr<BIO, BIO_free_all>;
using Certificate = auth::OpenSslPtr<X509, X509_free>;
using PrivateKey = auth::OpenSslPtr<EVP_PKEY, EVP_PKEY_free>;
using Store = auth::OpenSslPtr<X509_STORE, X509_STORE_free>;
using StoreContext = auth::OpenSslPtr<X509_STORE_CTX, X509_STORE_CTX_free>;
using SslContext = auth::OpenSslPtr<SSL_CTX, SSL_CTX_free>;
using Ssl = auth::OpenSslPtr<SSL, SSL_free>;

const std::string kWildcard = "*.proxy-cczg0cscuj55.us-east-1.rds.sluice.internal";
const std::string kProxyHost =
    "meal-planner-proxy.proxy-cczg0cscuj55.us-east-1.rds.sluice.internal";

Certificate cert_of(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Certificate cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  EXPECT_TRUE(cert) << "unparsable certificate";
  return cert;
}

PrivateKey key_of(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PrivateKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  EXPECT_TRUE(key) << "unparsable key";
  return key;
}

std::string to_pem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string common_name(X509* cert) {
  char text[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, text, sizeof text) < 0)
    return "";
  return text;
}

// The verification a client does: chain to `ca` alone, strict RFC 5280 checks, as a TLS server.
int verify_against(const std::string& ca_pem, const std::string& cert_pem) {
  Store store(X509_STORE_new());
  Certificate ca = cert_of(ca_pem);
  Certificate cert = cert_of(cert_pem);
  EXPECT_EQ(X509_STORE_add_cert(store.get(), ca.get()), 1);
  StoreContext ctx(X509_STORE_CTX_new());
  EXPECT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr), 1);
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_X509_STRICT);
  EXPECT_EQ(X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER), 1);
  const int verified = X509_verify_cert(ctx.get());
  const int error = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  return verified == 1 ? X509_V_OK : (error == X509_V_OK ? -1 : error);
}

bool host_matches(X509* cert, const std::string& host) {
  return X509_check_host(cert, host.data(), host.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                         nullptr) == 1;
}

struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/sluice-certificates-test-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// One CA for the tests that only need some CA (key generation is cheap, but not free).
const PemPair& test_ca() {
  static const PemPair ca = make_certificate_authority("sluice test CA", 30);
  return ca;
}

TEST(CertificateAuthority, IsSelfSignedP256Ca) {
  const PemPair ca = make_certificate_authority("sluice unit CA", 30);
  Certificate cert = cert_of(ca.cert_pem);
  PrivateKey key = key_of(ca.key_pem);
  ASSERT_TRUE(cert && key);

  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(cert.get())), 1);
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(cert.get()), X509_get_issuer_name(cert.get())), 0);
  EXPECT_EQ(common_name(cert.get()), "sluice unit CA");
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  EXPECT_EQ(X509_get_version(cert.get()), X509_VERSION_3);

  // A key that is not the CA's does not verify its signature.
  const PemPair other = make_certificate_authority("other", 30);
  Certificate other_cert = cert_of(other.cert_pem);
  EXPECT_NE(X509_verify(cert.get(), X509_get0_pubkey(other_cert.get())), 1);
  EXPECT_NE(X509_check_private_key(cert.get(), key_of(other.key_pem).get()), 1);
  ERR_clear_error();

  EXPECT_EQ(X509_check_ca(cert.get()), 1);
  const uint32_t flags = X509_get_extension_flags(cert.get());
  EXPECT_TRUE(flags & EXFLAG_CA);
  EXPECT_TRUE(flags & EXFLAG_BCONS_CRITICAL);
  EXPECT_TRUE(flags & EXFLAG_KUSAGE);
  EXPECT_EQ(X509_get_key_usage(cert.get()), uint32_t{KU_KEY_CERT_SIGN | KU_CRL_SIGN});
  EXPECT_NE(X509_get0_subject_key_id(cert.get()), nullptr);

  EXPECT_TRUE(EVP_PKEY_is_a(key.get(), "EC"));
  EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 256);
  char group[64] = {};
  ASSERT_EQ(EVP_PKEY_get_group_name(key.get(), group, sizeof group, nullptr), 1);
  EXPECT_STREQ(group, "prime256v1");
  EXPECT_TRUE(contains(ca.key_pem, "-----BEGIN PRIVATE KEY-----"));  // PKCS#8, unencrypted
  EXPECT_FALSE(contains(ca.key_pem, "ENCRYPTED"));

  // notBefore an hour back, notAfter `days` ahead.
  int days = 0;
  int seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notBefore(cert.get())), 1);
  EXPECT_EQ(days, 0);
  EXPECT_NEAR(seconds, -3600, 60);
  const int left = days_until_expiry(ca.cert_pem);
  EXPECT_TRUE(left == 29 || left == 30) << left;

  // Positive, about 128 bits, different each time.
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.get());
  auth::OpenSslPtr<BIGNUM, BN_free> bn(ASN1_INTEGER_to_BN(serial, nullptr));
  EXPECT_FALSE(BN_is_negative(bn.get()));
  EXPECT_GT(BN_num_bits(bn.get()), 64);
  EXPECT_LE(BN_num_bits(bn.get()), 128);
  EXPECT_NE(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(other_cert.get())), 0);

  EXPECT_TRUE(subject_alt_names(ca.cert_pem).empty());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(CertificateServer, VerifiesAgainstItsCaAndMatchesNames) {
  const PemPair& ca = test_ca();
  const PemPair server = issue_server_certificate(ca, {kWildcard, "cluster.sluice.internal"},
                                                  {"127.0.0.1", "fd00::5"}, 20);
  Certificate cert = cert_of(server.cert_pem);
  PrivateKey key = key_of(server.key_pem);
  ASSERT_TRUE(cert && key);

  EXPECT_EQ(verify_against(ca.cert_pem, server.cert_pem), X509_V_OK);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  EXPECT_EQ(common_name(cert.get()), kWildcard);
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(cert.get()),
                          X509_get_subject_name(cert_of(ca.cert_pem).get())),
            0);
  EXPECT_EQ(subject_alt_names(server.cert_pem),
            (Names{kWildcard, "cluster.sluice.internal", "127.0.0.1", "fd00::5"}));

  // The wildcard covers exactly one label, and nothing outside its domain.
  EXPECT_TRUE(host_matches(cert.get(), kProxyHost));
  EXPECT_TRUE(host_matches(cert.get(), "cluster.sluice.internal"));
  EXPECT_FALSE(host_matches(cert.get(), "a.b.proxy-cczg0cscuj55.us-east-1.rds.sluice.internal"));
  EXPECT_FALSE(host_matches(cert.get(), "proxy-cczg0cscuj55.us-east-1.rds.sluice.internal"));
  EXPECT_FALSE(
      host_matches(cert.get(), "meal-planner-proxy.proxy-other.us-east-1.rds.amazonaws.com"));
  EXPECT_FALSE(host_matches(cert.get(), "evil.example.com"));
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "fd00:0::5", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.2", 0), 0);

  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  const uint32_t flags = X509_get_extension_flags(cert.get());
  EXPECT_TRUE(flags & EXFLAG_BCONS);
  EXPECT_FALSE(flags & EXFLAG_CA);
  EXPECT_EQ(X509_get_key_usage(cert.get()), uint32_t{KU_DIGITAL_SIGNATURE});
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), uint32_t{XKU_SSL_SERVER});
  const ASN1_OCTET_STRING* akid = X509_get0_authority_key_id(cert.get());
  ASSERT_NE(akid, nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(akid, X509_get0_subject_key_id(cert_of(ca.cert_pem).get())), 0);
  EXPECT_NE(X509_get0_subject_key_id(cert.get()), nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(key.get(), "EC"));
  EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 256);
  const int left = days_until_expiry(server.cert_pem);
  EXPECT_TRUE(left == 19 || left == 20) << left;  // less than the CA's 30

  // Another CA does not vouch for it.
  const PemPair other = make_certificate_authority("other", 30);
  EXPECT_EQ(verify_against(other.cert_pem, server.cert_pem),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

// An RDS endpoint is often longer than the 64 characters a commonName may hold: the subject is
// then empty and the SAN critical, which strict verification demands.
TEST(CertificateServer, LongFirstNameLeavesSubjectEmpty) {
  ASSERT_GT(kProxyHost.size(), 64u);
  const PemPair server = issue_server_certificate(test_ca(), {kProxyHost}, {}, 30);
  Certificate cert = cert_of(server.cert_pem);
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(cert.get())), 0);
  EXPECT_TRUE(X509_get_extension_flags(cert.get()) & EXFLAG_SAN_CRITICAL);
  EXPECT_EQ(verify_against(test_ca().cert_pem, server.cert_pem), X509_V_OK);
  EXPECT_TRUE(host_matches(cert.get(), kProxyHost));
  EXPECT_EQ(subject_alt_names(server.cert_pem), (Names{kProxyHost}));

  // IP addresses only: the first is the CN.
  const PemPair by_ip = issue_server_certificate(test_ca(), {}, {"10.1.2.3"}, 30);
  Certificate ip_cert = cert_of(by_ip.cert_pem);
  EXPECT_EQ(common_name(ip_cert.get()), "10.1.2.3");
  EXPECT_FALSE(X509_get_extension_flags(ip_cert.get()) & EXFLAG_SAN_CRITICAL);
  EXPECT_EQ(verify_against(test_ca().cert_pem, by_ip.cert_pem), X509_V_OK);
  EXPECT_EQ(X509_check_ip_asc(ip_cert.get(), "10.1.2.3", 0), 1);
}

TEST(CertificateServer, NeverOutlivesItsCa) {
  const PemPair server = issue_server_certificate(test_ca(), {"db.sluice.internal"}, {}, 3650);
  EXPECT_LE(days_until_expiry(server.cert_pem), days_until_expiry(test_ca().cert_pem));
  EXPECT_EQ(verify_against(test_ca().cert_pem, server.cert_pem), X509_V_OK);
}

TEST(CertificateServer, MalformedCaThrows) {
  const PemPair& ca = test_ca();
  auto error_of = [](const PemPair& bad) {
    try {
      issue_server_certificate(bad, {"db.sluice.internal"}, {}, 30);
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(ERR_peek_error(), 0u) << "OpenSSL errors left queued";
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  // OpenSSL's own reason is in the message.
  EXPECT_TRUE(contains(error_of({"not a certificate", ca.key_pem}), "no start line"));
  EXPECT_TRUE(contains(error_of({"", ca.key_pem}), "malformed CA certificate"));
  std::string truncated = ca.cert_pem;
  truncated.erase(truncated.size() / 2, 40);
  EXPECT_TRUE(contains(error_of({truncated, ca.key_pem}), "malformed CA certificate"));
  EXPECT_TRUE(contains(
      error_of({ca.cert_pem, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}),
      "malformed CA private key"));
  const PemPair other = make_certificate_authority("other", 30);
  EXPECT_TRUE(contains(error_of({ca.cert_pem, other.key_pem}), "does not match"));
  // A server certificate cannot sign.
  const PemPair leaf = issue_server_certificate(ca, {"leaf.sluice.internal"}, {}, 30);
  EXPECT_TRUE(contains(error_of(leaf), "not a certificate authority"));

  // Bad requests.
  EXPECT_THROW(issue_server_certificate(ca, {}, {}, 30), std::runtime_error);
  EXPECT_THROW(issue_server_certificate(ca, {"db.sluice.internal"}, {}, 0), std::runtime_error);
  for (const char* bad : {"", "a,b.internal", "a b.internal", "a.*.internal", "**.internal", "*",
                          "a..b", ".a.b", "db.internal\n"})
    EXPECT_THROW(issue_server_certificate(ca, {bad}, {}, 30), std::runtime_error) << bad;
  for (const char* bad : {"", "300.1.1.1", "1.2.3", "db.sluice.internal", "::g"})
    EXPECT_THROW(issue_server_certificate(ca, {}, {bad}, 30), std::runtime_error) << bad;
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(CertificateParsing, MalformedPemThrowsAndExpiryCountsDown) {
  EXPECT_THROW(subject_alt_names("garbage"), std::runtime_error);
  EXPECT_THROW(days_until_expiry("garbage"), std::runtime_error);
  EXPECT_THROW(days_until_expiry(test_ca().key_pem), std::runtime_error);
  EXPECT_EQ(ERR_peek_error(), 0u);

  // Re-sign the CA with notAfter two days and a minute ago.
  Certificate cert = cert_of(test_ca().cert_pem);
  PrivateKey key = key_of(test_ca().key_pem);
  ASSERT_TRUE(X509_gmtime_adj(X509_getm_notAfter(cert.get()), -2 * 86400 - 60));
  ASSERT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
  EXPECT_EQ(days_until_expiry(to_pem(cert.get())), -3);
  ASSERT_TRUE(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600));
  ASSERT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
  EXPECT_EQ(days_until_expiry(to_pem(cert.get())), 0);
}

// --- TLS end to end, over a memory BIO pair ---------------------------------------------------

struct HandshakeResult {
  bool ok = false;
  long verify_result = -1;
  std::string version;
  std::string received;
};

HandshakeResult handshake(const PemPair& server_pair, const std::string& bundle,
                          const std::string& host, int max_version) {
  SslContext server_ctx(SSL_CTX_new(TLS_server_method()));
  SslContext client_ctx(SSL_CTX_new(TLS_client_method()));
  for (SSL_CTX* ctx : {server_ctx.get(), client_ctx.get()}) {
    EXPECT_EQ(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), 1);
    EXPECT_EQ(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
  }
  Certificate cert = cert_of(server_pair.cert_pem);
  PrivateKey key = key_of(server_pair.key_pem);
  EXPECT_EQ(SSL_CTX_use_certificate(server_ctx.get(), cert.get()), 1);
  EXPECT_EQ(SSL_CTX_use_PrivateKey(server_ctx.get(), key.get()), 1);
  EXPECT_EQ(SSL_CTX_check_private_key(server_ctx.get()), 1);

  Certificate ca = cert_of(bundle);
  EXPECT_EQ(X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx.get()), ca.get()), 1);
  SSL_CTX_set_verify(client_ctx.get(), SSL_VERIFY_PEER, nullptr);
  X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(client_ctx.get()), X509_V_FLAG_X509_STRICT);

  Ssl server(SSL_new(server_ctx.get()));
  Ssl client(SSL_new(client_ctx.get()));
  EXPECT_EQ(SSL_set1_host(client.get(), host.c_str()), 1);
  EXPECT_EQ(SSL_set_tlsext_host_name(client.get(), host.c_str()), 1);
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  EXPECT_EQ(BIO_new_bio_pair(&client_bio, 0, &server_bio, 0), 1);
  SSL_set_bio(client.get(), client_bio, client_bio);  // each SSL owns its end
  SSL_set_bio(server.get(), server_bio, server_bio);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());

  HandshakeResult result;
  bool client_done = false;
  bool server_done = false;
  bool failed = false;
  auto step = [&](SSL* ssl, bool& done) {
    if (done || failed) return;
    const int rc = SSL_do_handshake(ssl);
    if (rc == 1) {
      done = true;
    } else {
      const int error = SSL_get_error(ssl, rc);
      failed = error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE;
    }
  };
  for (int round = 0; round < 20 && !failed && !(client_done && server_done); ++round) {
    step(client.get(), client_done);
    step(server.get(), server_done);
  }
  result.verify_result = SSL_get_verify_result(client.get());
  result.ok = client_done && server_done && !failed;
  if (result.ok) {
    result.version = SSL_get_version(client.get());
    EXPECT_EQ(SSL_write(client.get(), "ping", 4), 4);
    char buffer[16];
    const int n = SSL_read(server.get(), buffer, sizeof buffer);
    if (n > 0) result.received.assign(buffer, static_cast<size_t>(n));
  }
  ERR_clear_error();
  return result;
}

TEST(CertificateTls, HandshakeVerifiesHostOverTls12And13) {
  const PemPair server = issue_server_certificate(test_ca(), {kWildcard}, {"127.0.0.1"}, 30);
  const HandshakeResult tls12 = handshake(server, test_ca().cert_pem, kProxyHost, TLS1_2_VERSION);
  EXPECT_TRUE(tls12.ok);
  EXPECT_EQ(tls12.verify_result, X509_V_OK);
  EXPECT_EQ(tls12.version, "TLSv1.2");
  EXPECT_EQ(tls12.received, "ping");
  const HandshakeResult tls13 = handshake(server, test_ca().cert_pem, kProxyHost, TLS1_3_VERSION);
  EXPECT_TRUE(tls13.ok);
  EXPECT_EQ(tls13.verify_result, X509_V_OK);
  EXPECT_EQ(tls13.version, "TLSv1.3");
  EXPECT_EQ(tls13.received, "ping");
}

TEST(CertificateTls, HandshakeFailsForOtherHostOrOtherCa) {
  const PemPair server = issue_server_certificate(test_ca(), {kWildcard}, {}, 30);
  const HandshakeResult wrong_host =
      handshake(server, test_ca().cert_pem, "a.b.proxy-cczg0cscuj55.us-east-1.rds.sluice.internal",
                TLS1_3_VERSION);
  EXPECT_FALSE(wrong_host.ok);
  EXPECT_EQ(wrong_host.verify_result, X509_V_ERR_HOSTNAME_MISMATCH);
  const PemPair other = make_certificate_authority("other", 30);
  const HandshakeResult wrong_ca = handshake(server, other.cert_pem, kProxyHost, TLS1_2_VERSION);
  EXPECT_FALSE(wrong_ca.ok);
  EXPECT_EQ(wrong_ca.verify_result, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

// --- the CA on disk ----------------------------------------------------------------------------

TEST(LocalCertificateAuthority, CreatesThenReloadsTheSameCa) {
  TempDir temp;
  const std::string dir = temp.path + "/certs";  // created on demand
  const auto ca = LocalCertificateAuthority::load_or_create(dir, "sluice test root");
  EXPECT_EQ(ca.bundle_path(), dir + "/ca.pem");
  EXPECT_EQ(slurp(ca.bundle_path()), ca.bundle_pem());
  EXPECT_EQ(mode_of(dir + "/ca.key"), 0600);
  EXPECT_EQ(mode_of(dir), 0700);
  Certificate root = cert_of(ca.bundle_pem());
  EXPECT_EQ(common_name(root.get()), "sluice test root");
  EXPECT_EQ(X509_check_ca(root.get()), 1);
  EXPECT_EQ(X509_check_private_key(root.get(), key_of(slurp(dir + "/ca.key")).get()), 1);
  EXPECT_GE(days_until_expiry(ca.bundle_pem()), LocalCertificateAuthority::kCaDays - 1);

  const auto again = LocalCertificateAuthority::load_or_create(dir, "ignored when loading");
  EXPECT_EQ(again.bundle_pem(), ca.bundle_pem());
  EXPECT_EQ(slurp(dir + "/ca.pem"), ca.bundle_pem());

  // A corrupt key is an error, not a reason to replace the CA clients trust.
  spit(dir + "/ca.key", "junk");
  EXPECT_THROW(LocalCertificateAuthority::load_or_create(dir), std::runtime_error);
  EXPECT_EQ(slurp(dir + "/ca.pem"), ca.bundle_pem());
  // A missing key is: nothing can be issued under the old CA.
  std::filesystem::remove(dir + "/ca.key");
  const auto fresh = LocalCertificateAuthority::load_or_create(dir);
  EXPECT_NE(fresh.bundle_pem(), ca.bundle_pem());
  EXPECT_EQ(slurp(dir + "/ca.pem"), fresh.bundle_pem());
  EXPECT_EQ(mode_of(dir + "/ca.key"), 0600);
}

TEST(LocalCertificateAuthority, ConcurrentCreatorsAgreeOnOneCa) {
  TempDir temp;
  std::vector<std::string> bundles(6);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < bundles.size(); ++i)
    threads.emplace_back([&, i] {
      try {
        bundles[i] = LocalCertificateAuthority::load_or_create(temp.path).bundle_pem();
      } catch (const std::exception& e) {
        bundles[i] = e.what();
      }
    });
  for (auto& thread : threads) thread.join();
  for (const std::string& bundle : bundles) EXPECT_EQ(bundle, slurp(temp.path + "/ca.pem"));
}

// Another process has opened ca.key (O_EXCL) but not yet written it or ca.pem.
TEST(LocalCertificateAuthority, LoaderWaitsForACreatorInProgress) {
  TempDir temp;
  const PemPair other = make_certificate_authority("made elsewhere", 30);
  spit(temp.path + "/ca.key", "");
  std::thread creator([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    spit(temp.path + "/ca.key", other.key_pem);
    // As the real creator does: the certificate is renamed into place, never seen half-written.
    spit(temp.path + "/ca.pem.new", other.cert_pem);
    std::filesystem::rename(temp.path + "/ca.pem.new", temp.path + "/ca.pem");
  });
  std::string bundle;
  std::string error;
  try {
    bundle = LocalCertificateAuthority::load_or_create(temp.path).bundle_pem();
  } catch (const std::exception& e) {
    error = e.what();
  }
  creator.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(bundle, other.cert_pem);
}

TEST(LocalCertificateAuthority, IssuesAndReissuesServerCertificates) {
  TempDir temp;
  auto ca = LocalCertificateAuthority::load_or_create(temp.path);
  const auto [cert_path, key_path] =
      ca.server_certificate("proxy-1", {kWildcard, "proxy.sluice.internal"}, {"127.0.0.1"});
  EXPECT_EQ(cert_path, temp.path + "/proxy-1.pem");
  EXPECT_EQ(key_path, temp.path + "/proxy-1.key");
  EXPECT_EQ(mode_of(key_path), 0600);
  const std::string first = slurp(cert_path);
  EXPECT_EQ(verify_against(ca.bundle_pem(), first), X509_V_OK);
  EXPECT_EQ(X509_check_private_key(cert_of(first).get(), key_of(slurp(key_path)).get()), 1);
  EXPECT_EQ(subject_alt_names(first), (Names{kWildcard, "proxy.sluice.internal", "127.0.0.1"}));
  EXPECT_GE(days_until_expiry(first), LocalCertificateAuthority::kServerDays - 1);

  // The same names, in another order and case: kept.
  ca.server_certificate("proxy-1", {"PROXY.sluice.internal", kWildcard}, {"127.0.0.1"});
  EXPECT_EQ(slurp(cert_path), first);
  // The same names through a reloaded CA: kept.
  auto reloaded = LocalCertificateAuthority::load_or_create(temp.path);
  reloaded.server_certificate("proxy-1", {kWildcard, "proxy.sluice.internal"}, {"127.0.0.1"});
  EXPECT_EQ(slurp(cert_path), first);

  // A name more, or one fewer: reissued, with a new key.
  const std::string first_key = slurp(key_path);
  ca.server_certificate("proxy-1", {kWildcard, "proxy.sluice.internal"}, {"127.0.0.1", "::1"});
  const std::string second = slurp(cert_path);
  EXPECT_NE(second, first);
  EXPECT_NE(slurp(key_path), first_key);
  EXPECT_EQ(subject_alt_names(second),
            (Names{kWildcard, "proxy.sluice.internal", "127.0.0.1", "::1"}));
  EXPECT_EQ(X509_check_private_key(cert_of(second).get(), key_of(slurp(key_path)).get()), 1);
  EXPECT_EQ(mode_of(key_path), 0600);
  ca.server_certificate("proxy-1", {kWildcard}, {"127.0.0.1", "::1"});
  const std::string third = slurp(cert_path);
  EXPECT_NE(third, second);
  EXPECT_EQ(subject_alt_names(third), (Names{kWildcard, "127.0.0.1", "::1"}));

  // Other certificates are separate files.
  const auto [other_cert, other_key] =
      ca.server_certificate("cluster-a", {"a.sluice.internal"}, {});
  EXPECT_NE(other_cert, cert_path);
  EXPECT_EQ(slurp(cert_path), third);
  EXPECT_EQ(mode_of(other_key), 0600);

  // Nothing but the certificates and keys is left behind (no temporary files).
  std::set<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(temp.path))
    files.insert(entry.path().filename().string());
  EXPECT_EQ(files, (std::set<std::string>{"ca.key", "ca.pem", "cluster-a.key", "cluster-a.pem",
                                          "proxy-1.key", "proxy-1.pem"}));
}

TEST(LocalCertificateAuthority, ReissuesStaleOrForeignCertificates) {
  TempDir temp;
  auto ca = LocalCertificateAuthority::load_or_create(temp.path);
  const std::vector<std::string> names = {"db.sluice.internal"};
  const auto [cert_path, key_path] = ca.server_certificate("db", names, {});
  const PemPair ca_pair{ca.bundle_pem(), slurp(temp.path + "/ca.key")};

  // Expiring within 30 days.
  const PemPair expiring = issue_server_certificate(ca_pair, names, {}, 10);
  spit(cert_path, expiring.cert_pem);
  spit(key_path, expiring.key_pem);
  ca.server_certificate("db", names, {});
  EXPECT_GE(days_until_expiry(slurp(cert_path)), LocalCertificateAuthority::kServerDays - 1);

  // The key is not the certificate's.
  const std::string current = slurp(cert_path);
  spit(key_path, make_certificate_authority("x", 1).key_pem);
  ca.server_certificate("db", names, {});
  EXPECT_NE(slurp(cert_path), current);
  EXPECT_EQ(X509_check_private_key(cert_of(slurp(cert_path)).get(), key_of(slurp(key_path)).get()),
            1);

  // Signed by another CA, with the right names.
  const PemPair foreign =
      issue_server_certificate(make_certificate_authority("foreign", 30), names, {}, 300);
  spit(cert_path, foreign.cert_pem);
  spit(key_path, foreign.key_pem);
  ca.server_certificate("db", names, {});
  EXPECT_EQ(verify_against(ca.bundle_pem(), slurp(cert_path)), X509_V_OK);

  // Missing or unreadable files.
  std::filesystem::remove(key_path);
  ca.server_certificate("db", names, {});
  EXPECT_EQ(verify_against(ca.bundle_pem(), slurp(cert_path)), X509_V_OK);
  spit(cert_path, "junk");
  ca.server_certificate("db", names, {});
  EXPECT_EQ(verify_against(ca.bundle_pem(), slurp(cert_path)), X509_V_OK);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(LocalCertificateAuthority, RejectsBadNames) {
  TempDir temp;
  auto ca = LocalCertificateAuthority::load_or_create(temp.path);
  for (const char* bad : {"", "ca", "../x", "a/b", ".hidden", "a b"})
    EXPECT_THROW(ca.server_certificate(bad, {"db.sluice.internal"}, {}), std::runtime_error) << bad;
  EXPECT_THROW(ca.server_certificate("db", {}, {}), std::runtime_error);
  EXPECT_THROW(ca.server_certificate("db", {"bad name"}, {}), std::runtime_error);
  EXPECT_THROW(ca.server_certificate("db", {}, {"1.2.3.400"}), std::runtime_error);
  EXPECT_EQ(slurp(temp.path + "/ca.pem"), ca.bundle_pem());
  EXPECT_FALSE(std::filesystem::exists(temp.path + "/db.pem"));
}

}  // namespace
}  // namespace sluice::cloud
