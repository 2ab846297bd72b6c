#include "cloud/certificates.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

#include "auth/openssl_ptr.hpp"

namespace sluice::cloud {
namespace {

using Bio = auth::OpenSslPtr<BIO, BIO_free_all>;
using Bignum = auth::OpenSslPtr<BIGNUM, BN_free>;
using Certificate = auth::OpenSslPtr<X509, X509_free>;
using Extension = auth::OpenSslPtr<X509_EXTENSION, X509_EXTENSION_free>;
using GeneralName = auth::OpenSslPtr<GENERAL_NAME, GENERAL_NAME_free>;
using GeneralNames = auth::OpenSslPtr<GENERAL_NAMES, GENERAL_NAMES_free>;
using Ia5String = auth::OpenSslPtr<ASN1_IA5STRING, ASN1_IA5STRING_free>;
using KeyContext = auth::OpenSslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using OctetString = auth::OpenSslPtr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using PrivateKey = auth::OpenSslPtr<EVP_PKEY, EVP_PKEY_free>;

// X.509's upper bound for a commonName (ub-common-name, RFC 5280 appendix A).
constexpr size_t kMaxCommonName = 64;

// Throws `what` followed by every error OpenSSL queued on this thread (draining the queue, so a
// later TLS call does not find our errors).
[[noreturn]] void throw_openssl(const std::string& what) {
  std::string detail;
  while (const unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    detail += detail.empty() ? "" : "; ";
    detail += text;
  }
  throw std::runtime_error(detail.empty() ? what : what + ": " + detail);
}

// Never prompt on the terminal for a passphrase (OpenSSL's default for encrypted PEM).
int no_passphrase(char*, int, int, void*) {
  return 0;
}

Bio memory_bio(const std::string& text) {
  if (text.size() > INT_MAX) throw std::runtime_error("PEM text too large");
  Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) throw_openssl("cannot allocate a BIO");
  return bio;
}

Certificate parse_certificate(const std::string& pem, const std::string& what) {
  ERR_clear_error();
  Bio bio = memory_bio(pem);
  Certificate cert(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
  if (!cert) throw_openssl("malformed " + what + " certificate PEM");
  return cert;
}

PrivateKey parse_private_key(const std::string& pem, const std::string& what) {
  ERR_clear_error();
  Bio bio = memory_bio(pem);
  PrivateKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) throw_openssl("malformed " + what + " private key PEM");
  return key;
}

std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
}

std::string certificate_pem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) throw_openssl("cannot encode certificate");
  return bio_contents(bio.get());
}

// PKCS#8, unencrypted ("BEGIN PRIVATE KEY"). The secure-memory BIO clears its buffer when freed.
std::string private_key_pem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw_openssl("cannot encode private key");
  return bio_contents(bio.get());
}

PrivateKey generate_p256_key() {
  KeyContext ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") != 1 ||
      EVP_PKEY_generate(ctx.get(), &key) != 1)
    throw_openssl("cannot generate an EC P-256 key");
  return PrivateKey(key);
}

// Version 3, a random positive 128-bit serial, notBefore an hour ago, notAfter `days` from now.
Certificate new_certificate(EVP_PKEY* key, int days) {
  if (days < 1) throw std::runtime_error("certificate validity must be at least one day");
  Certificate cert(X509_new());
  Bignum serial(BN_new());
  if (!cert || !serial) throw_openssl("cannot allocate a certificate");
  do {
    if (BN_rand(serial.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1)
      throw_openssl("no randomness for a serial number");
  } while (BN_is_zero(serial.get()));
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) ||
      !X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) ||
      !X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr) ||
      X509_set_pubkey(cert.get(), key) != 1)
    throw_openssl("cannot fill in a certificate");
  return cert;
}

void add_common_name(X509* cert, const std::string& common_name) {
  const auto* text = reinterpret_cast<const unsigned char*>(common_name.c_str());
  if (X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8, text, -1, -1,
                                 0) != 1)
    throw_openssl("cannot set the certificate's common name");
}

// An extension in OpenSSL's configuration syntax; only ever given constant values, never names.
void add_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  Extension ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    throw_openssl(std::string("cannot add extension ") + OBJ_nid2sn(nid) + "=" + value);
}

void sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) throw_openssl("cannot sign certificate");
}

// A DNS name as a SAN may hold it: LDH labels (plus '_'), a wildcard only as the whole leftmost
// label. Keeps names out of anything that might parse them.
void check_dns_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 253 && name.front() != '.' && name.back() != '.' &&
            name.find("..") == std::string::npos;
  for (size_t i = 0; ok && i < name.size(); ++i) {
    const char c = name[i];
    if (c == '*')
      ok = i == 0 && name.size() > 2 && name[1] == '.';
    else
      ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  }
  if (!ok) throw std::runtime_error("not a DNS name for a certificate: '" + name + "'");
}

OctetString parse_ip(const std::string& text) {
  OctetString ip(a2i_IPADDRESS(text.c_str()));
  if (!ip) {
    ERR_clear_error();
    throw std::runtime_error("not an IP address: '" + text + "'");
  }
  return ip;
}

std::optional<std::string> ip_text(const ASN1_OCTET_STRING* ip) {
  const int size = ASN1_STRING_length(ip);
  const int family = size == 4 ? AF_INET : size == 16 ? AF_INET6 : 0;
  char text[INET6_ADDRSTRLEN];
  if (family == 0 || !inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text))
    return std::nullopt;
  return std::string(text);
}

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// (GEN_DNS or GEN_IPADD, text) for each DNS and IP entry of the certificate's subjectAltName.
std::vector<std::pair<int, std::string>> typed_alt_names(X509* cert) {
  int critical = 0;
  GeneralNames names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, nullptr)));
  if (!names && critical != -1) throw_openssl("malformed subjectAltName");
  std::vector<std::pair<int, std::string>> out;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      out.emplace_back(GEN_DNS,
                       std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                   static_cast<size_t>(ASN1_STRING_length(dns))));
    } else if (name->type == GEN_IPADD) {
      if (auto text = ip_text(name->d.iPAddress)) out.emplace_back(GEN_IPADD, std::move(*text));
    }
  }
  return out;
}

// --- files ----------------------------------------------------------------------------------

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return std::nullopt;
  return text;
}

bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

[[noreturn]] void throw_errno(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

// Replaces `path` by rename, so readers see the old file or the new one, never part of one.
void write_file_atomically(const std::string& path, const std::string& data, mode_t mode) {
  std::string temp = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);  // mode 0600 from the start
  if (fd < 0) throw_errno("cannot create", temp);
  const bool written = write_all(fd, data) && ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!written || ::rename(temp.c_str(), path.c_str()) != 0) {
    const int failure = written ? errno : saved;
    ::unlink(temp.c_str());
    errno = failure;
    throw_errno("cannot write", path);
  }
}

// Checks that `ca` is a usable CA: both halves parse, the key is the certificate's, and the
// certificate may sign others.
void check_certificate_authority(X509* cert, EVP_PKEY* key) {
  ERR_clear_error();
  if (X509_check_private_key(cert, key) != 1)
    throw_openssl("CA private key does not match the CA certificate");
  if (X509_check_ca(cert) == 0) {
    ERR_clear_error();
    throw std::runtime_error("CA certificate is not a certificate authority");
  }
}

}  // namespace

PemPair make_certificate_authority(const std::string& common_name, int days) {
  ERR_clear_error();
  if (common_name.empty()) throw std::runtime_error("a CA needs a common name");
  PrivateKey key = generate_p256_key();
  Certificate cert = new_certificate(key.get(), days);
  add_common_name(cert.get(), common_name);
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1)
    throw_openssl("cannot set the CA's issuer");
  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  sign(cert.get(), key.get());
  return {certificate_pem(cert.get()), private_key_pem(key.get())};
}

PemPair issue_server_certificate(const PemPair& ca, const std::vector<std::string>& dns_names,
                                 const std::vector<std::string>& ip_addresses, int days) {
  Certificate ca_cert = parse_certificate(ca.cert_pem, "CA");
  PrivateKey ca_key = parse_private_key(ca.key_pem, "CA");
  check_certificate_authority(ca_cert.get(), ca_key.get());
  if (dns_names.empty() && ip_addresses.empty())
    throw std::runtime_error("a server certificate needs at least one DNS name or IP address");

  GeneralNames names(GENERAL_NAMES_new());
  if (!names) throw_openssl("cannot allocate subjectAltName");
  // Takes ownership of `value` (an IA5String or an OctetString), whatever happens.
  auto push = [&](int type, ASN1_STRING* value) {
    GeneralName name(GENERAL_NAME_new());
    if (!name) {
      ASN1_STRING_free(value);
      throw_openssl("cannot allocate subjectAltName");
    }
    GENERAL_NAME_set0_value(name.get(), type, value);  // `name` owns `value` from here
    if (sk_GENERAL_NAME_push(names.get(), name.get()) <= 0) throw_openssl("subjectAltName");
    name.release();  // `names` owns it now
  };
  for (const std::string& dns : dns_names) {
    check_dns_name(dns);
    Ia5String value(ASN1_IA5STRING_new());
    if (!value || ASN1_STRING_set(value.get(), dns.data(), static_cast<int>(dns.size())) != 1)
      throw_openssl("cannot encode DNS name");
    push(GEN_DNS, value.release());
  }
  for (const std::string& ip : ip_addresses) push(GEN_IPADD, parse_ip(ip).release());

  PrivateKey key = generate_p256_key();
  Certificate cert = new_certificate(key.get(), days);
  // RFC 5280 4.2.1.6: with an empty subject, subjectAltName must be critical.
  const std::string& common_name = dns_names.empty() ? ip_addresses.front() : dns_names.front();
  const bool has_subject = common_name.size() <= kMaxCommonName;
  if (has_subject) add_common_name(cert.get(), common_name);
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())) != 1)
    throw_openssl("cannot set the certificate's issuer");
  // Never outlive the CA: a chain is only as valid as its shortest-lived certificate.
  if (ASN1_TIME_compare(X509_get0_notAfter(cert.get()), X509_get0_notAfter(ca_cert.get())) > 0 &&
      X509_set1_notAfter(cert.get(), X509_get0_notAfter(ca_cert.get())) != 1)
    throw_openssl("cannot set the certificate's notAfter");

  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, ca_cert.get(), cert.get(), nullptr, nullptr, 0);
  add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
  add_extension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth");
  add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), has_subject ? 0 : 1,
                        X509V3_ADD_DEFAULT) != 1)
    throw_openssl("cannot add subjectAltName");
  sign(cert.get(), ca_key.get());
  return {certificate_pem(cert.get()), private_key_pem(key.get())};
}

std::vector<std::string> subject_alt_names(const std::string& cert_pem) {
  Certificate cert = parse_certificate(cert_pem, "server");
  std::vector<std::string> out;
  for (auto& [type, text] : typed_alt_names(cert.get())) out.push_back(std::move(text));
  return out;
}

int days_until_expiry(const std::string& cert_pem) {
  Certificate cert = parse_certificate(cert_pem, "server");
  int days = 0;
  int seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert.get())) != 1)
    throw_openssl("malformed notAfter");
  // Both parts carry the same sign; round down so an hour past expiry is already -1.
  return seconds < 0 ? days - 1 : days;
}

LocalCertificateAuthority LocalCertificateAuthority::load_or_create(
    const std::string& dir, const std::string& common_name) {
  std::error_code error;
  if (std::filesystem::create_directories(dir, error))
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, error);
  if (error) throw std::runtime_error("cannot create directory " + dir + ": " + error.message());
  const std::string key_path = dir + "/ca.key";
  const std::string cert_path = dir + "/ca.pem";

  if (::access(key_path.c_str(), F_OK) != 0) {
    PemPair ca = make_certificate_authority(common_name, kCaDays);
    // O_EXCL: of two processes starting at once, one makes the CA and the other loads it.
    const int fd = ::open(key_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      const bool written = write_all(fd, ca.key_pem) && ::fchmod(fd, 0600) == 0 && ::fsync(fd) == 0;
      ::close(fd);
      if (!written) {
        ::unlink(key_path.c_str());
        throw std::runtime_error("cannot write " + key_path);
      }
      write_file_atomically(cert_path, ca.cert_pem, 0644);
      return LocalCertificateAuthority(dir, std::move(ca));
    }
    if (errno != EEXIST) throw_errno("cannot create", key_path);
  }

  // Another process creating the CA opens the key empty, fills it, then renames the certificate
  // into place: give it a moment.
  std::optional<std::string> key_pem;
  std::optional<std::string> cert_pem;
  for (int tries = 0;; ++tries) {
    key_pem = read_file(key_path);
    if (!key_pem) throw_errno("cannot read", key_path);
    cert_pem = read_file(cert_path);
    if ((cert_pem && !key_pem->empty()) || tries == 50) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!cert_pem)
    throw std::runtime_error(key_path + " exists without " + cert_path +
                             " (an interrupted creation?); remove it to create a new CA");
  PemPair ca{std::move(*cert_pem), std::move(*key_pem)};
  Certificate cert = parse_certificate(ca.cert_pem, cert_path);
  PrivateKey key = parse_private_key(ca.key_pem, key_path);
  check_certificate_authority(cert.get(), key.get());
  return LocalCertificateAuthority(dir, std::move(ca));
}

std::pair<std::string, std::string> LocalCertificateAuthority::server_certificate(
    const std::string& name, const std::vector<std::string>& dns_names,
    const std::vector<std::string>& ip_addresses) {
  bool ok = !name.empty() && name.front() != '.' && name != "ca";
  for (const char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  if (!ok) throw std::runtime_error("not a certificate name: '" + name + "'");
  if (dns_names.empty() && ip_addresses.empty())
    throw std::runtime_error("a server certificate needs at least one DNS name or IP address");
  const std::string cert_path = dir_ + "/" + name + ".pem";
  const std::string key_path = dir_ + "/" + name + ".key";

  // DNS names compare without case, IP addresses in canonical form ("::0:1" is "::1").
  std::set<std::pair<int, std::string>> wanted;
  for (const std::string& dns : dns_names) {
    check_dns_name(dns);
    wanted.emplace(GEN_DNS, lowercase(dns));
  }
  for (const std::string& ip : ip_addresses) {
    auto text = ip_text(parse_ip(ip).get());
    if (!text) throw std::runtime_error("not an IP address: '" + ip + "'");
    wanted.emplace(GEN_IPADD, std::move(*text));
  }

  auto current = [&] {
    const auto cert_pem = read_file(cert_path);
    const auto key_pem = read_file(key_path);
    if (!cert_pem || !key_pem) return false;
    try {
      Certificate cert = parse_certificate(*cert_pem, cert_path);
      PrivateKey key = parse_private_key(*key_pem, key_path);
      Certificate ca = parse_certificate(ca_.cert_pem, "CA");
      if (X509_check_private_key(cert.get(), key.get()) != 1 ||
          X509_check_issued(ca.get(), cert.get()) != X509_V_OK ||
          X509_verify(cert.get(), X509_get0_pubkey(ca.get())) != 1)
        return false;  // a stale pair, or signed by a CA since replaced
      std::set<std::pair<int, std::string>> have;
      for (auto& [type, text] : typed_alt_names(cert.get()))
        have.emplace(type, type == GEN_DNS ? lowercase(text) : text);
      return have == wanted && days_until_expiry(*cert_pem) >= kRenewWithinDays;
    } catch (const std::runtime_error&) {
      return false;  // unreadable: issue a new one
    }
  };
  const bool keep = current();
  ERR_clear_error();
  if (!keep) {
    const PemPair issued = issue_server_certificate(ca_, dns_names, ip_addresses, kServerDays);
    // Each file is replaced whole, but between the two renames the pair on disk does not match:
    // load them after this returns, not while it runs.
    write_file_atomically(key_path, issued.key_pem, 0600);
    write_file_atomically(cert_path, issued.cert_pem, 0644);
  }
  return {cert_path, key_path};
}

}  // namespace sluice::cloud
