// The region's TLS certificates: a local root CA (what clients name as sslrootcert) and the
// server certificates it signs for proxy and cluster endpoints. EC P-256 keys, SHA-256
// signatures, PKCS#8 unencrypted private keys in PEM. Nothing here logs key material.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sluice::cloud {

struct PemPair {
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed CA: EC P-256 key, CN = common_name, basicConstraints critical CA:TRUE, keyUsage
// critical keyCertSign+cRLSign, subjectKeyIdentifier, valid `days` from now (notBefore an hour in
// the past for clock skew), random 128-bit serial. Throws std::runtime_error on failure.
PemPair make_certificate_authority(const std::string& common_name, int days);

// A server certificate signed by `ca`: EC P-256 key, CN = the first DNS name (the first IP address
// when there is no DNS name; no CN when that does not fit the 64 characters X.509 allows, in which
// case subjectAltName is critical), subjectAltName with every DNS name (wildcards such as
// "*.proxy-abc.us-east-1.rds.sluice.internal" allowed) and IP address given, extendedKeyUsage
// serverAuth, keyUsage critical digitalSignature, basicConstraints critical CA:FALSE,
// subject and authority key identifiers, valid `days` (never past the CA's own notAfter).
// Throws std::runtime_error with OpenSSL's error text on failure, when there is no name at all or
// a name is not a DNS name or IP address, or when `ca` is malformed (unparsable, key not the
// certificate's, or not a CA).
PemPair issue_server_certificate(const PemPair& ca, const std::vector<std::string>& dns_names,
                                 const std::vector<std::string>& ip_addresses, int days);

// The DNS and IP SAN entries of a PEM certificate, in the certificate's order (IP addresses in
// their canonical text form: "10.0.0.1", "::1"). Empty when there is no subjectAltName. Throws on
// malformed PEM.
std::vector<std::string> subject_alt_names(const std::string& cert_pem);

// Whole days until notAfter, rounded down (negative once expired). Throws on malformed PEM.
int days_until_expiry(const std::string& cert_pem);

// The region's CA on disk: DIR/ca.pem (the bundle clients use as sslrootcert) and DIR/ca.key
// (mode 0600, created with O_EXCL, so two processes starting at once agree on one CA). Loads them
// when present, creates them (and DIR, mode 0700) otherwise; a ca.pem whose ca.key is gone is
// replaced by a new CA, since nothing can be issued under it. Issues server certificates into
// DIR/<name>.pem and DIR/<name>.key (0600), reissuing when either file is missing or unreadable,
// the key is not the certificate's, the certificate is not signed by this CA, its SANs are not
// exactly the names wanted, or it expires within 30 days. Files are replaced by rename, so a
// reader never sees half a file. Not thread-safe; one instance per thread.
class LocalCertificateAuthority {
 public:
  static constexpr int kCaDays = 3650;
  static constexpr int kServerDays = 365;
  static constexpr int kRenewWithinDays = 30;

  static LocalCertificateAuthority load_or_create(
      const std::string& dir, const std::string& common_name = "sluice local RDS root CA");

  const std::string& bundle_pem() const { return ca_.cert_pem; }
  std::string bundle_path() const { return dir_ + "/ca.pem"; }

  // Returns {cert path, key path}. `name` is a file stem: letters, digits, '.', '_' and '-', not
  // starting with '.', and not "ca". Throws std::runtime_error on a bad name or I/O failure.
  std::pair<std::string, std::string> server_certificate(
      const std::string& name, const std::vector<std::string>& dns_names,
      const std::vector<std::string>& ip_addresses);

 private:
  LocalCertificateAuthority(std::string dir, PemPair ca)
      : dir_(std::move(dir)), ca_(std::move(ca)) {}

  std::string dir_;
  PemPair ca_;
};

}  // namespace sluice::cloud
