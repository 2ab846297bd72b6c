#include "proxy/tls.hpp"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <stdexcept>

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

void harden(ssl::context& ctx) {
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                  ssl::context::single_dh_use);
}

}  // namespace

std::unique_ptr<ssl::context> make_server_tls_context(const std::string& cert_file,
                                                      const std::string& key_file,
                                                      std::string& fingerprint) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  harden(*ctx);
  SSL_CTX* native = ctx->native_handle();
  // Resumed sessions skip the certificate signature: cheaper reconnect storms.
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_session_id_context(native, reinterpret_cast<const unsigned char*>("sluice"), 6);
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
  SSL_CTX_use_certificate(native, cert.get());
  SSL_CTX_use_PrivateKey(native, key.get());
  fingerprint = hex_fingerprint(cert.get());
  return ctx;
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
