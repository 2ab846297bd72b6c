// TLS contexts: the proxy's server side (clients) and client side (PostgreSQL servers).
// TLS 1.2 is the floor everywhere.
#pragma once

#include <memory>
#include <string>

#include "proxy/asio.hpp"
#include "proxy/config.hpp"

namespace sluice::proxy {

// With empty paths, makes an ephemeral self-signed ECDSA P-256 certificate.
// `fingerprint` gets the certificate's SHA-256 fingerprint (hex with colons), for the log.
std::unique_ptr<ssl::context> make_server_tls_context(const std::string& cert_file,
                                                      const std::string& key_file,
                                                      std::string& fingerprint);

// For connections to the target. verify-full verifies the chain against `ca_file`
// (or the system store) and the host name; prefer and require do not verify.
std::unique_ptr<ssl::context> make_client_tls_context(TargetTls mode, const std::string& ca_file);

}  // namespace sluice::proxy
