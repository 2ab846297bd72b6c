// TLS contexts: the proxy's server side (clients) and client side (PostgreSQL servers).
// TLS 1.2 is the floor everywhere.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/asio.hpp"
#include "proxy/config.hpp"
#include "tls/record_layer.hpp"

namespace sluice::proxy {

// With empty paths, makes an ephemeral self-signed ECDSA P-256 certificate.
// `fingerprint` gets the certificate's SHA-256 fingerprint (hex with colons), for the log.
// The certificate chain goes out as the file has it (nothing is built per handshake); TLS 1.3
// prefers AES-128-GCM; session tickets follow session_tickets_for().
// `hand_over_records`: TLS 1.3 connections' records go to tls::RecordLayer after the handshake
// (their application traffic secrets are taken from OpenSSL's key log); false keeps them with
// OpenSSL, which saves OpenSSL's formatting of two key log lines (about 0.1M instructions).
// With it, the context switches its own key log on and off during handshakes: one thread at a
// time may use it (a worker has its own: make_server_tls_contexts).
std::unique_ptr<ssl::context> make_server_tls_context(const std::string& cert_file,
                                                      const std::string& key_file,
                                                      std::string& fingerprint,
                                                      bool hand_over_records = true);

// `count` such contexts, one per worker thread, with one certificate, chain and key (one
// ephemeral certificate, when the paths are empty) and one set of session ticket keys, so that
// a client resumes with a ticket from any of them. The TLS 1.2 session-id cache is each one's.
std::vector<std::unique_ptr<ssl::context>> make_server_tls_contexts(const std::string& cert_file,
                                                                    const std::string& key_file,
                                                                    std::string& fingerprint,
                                                                    bool hand_over_records,
                                                                    size_t count);

// Key log lines OpenSSL formatted for any context of the process so far (for tests: a TLS 1.3
// handshake that hands its records over should cost 3, the exporter secret's included).
uint64_t key_log_lines_seen();

// How many TLS 1.3 session tickets a client's handshake earns: 0 or 1 (OpenSSL's default is 2
// for everyone). `offers_ticket`: its ClientHello carries a pre_shared_key, i.e. it is resuming;
// it gets the ticket for its next resumption. `can_resume`: it lists psk_dhe_ke in
// psk_key_exchange_modes; without that no ticket is usable (RFC 8446 4.2.9) and none is sent.
// `first_contacts`: how many clients before it could resume but offered no ticket; one in
// kFirstTicketEvery of those gets one. libpq never resumes but looks just like a client that
// would, so this is what tells them apart: a client that resumes keeps resuming once it has a
// ticket, and one that never does costs an eighth of a ticket per login instead of two.
constexpr uint64_t kFirstTicketEvery = 8;
int session_tickets_for(bool offers_ticket, bool can_resume, uint64_t first_contacts);

// Has the handshake of `ssl` report its TLS 1.3 application traffic secrets into `secrets`
// (through the key log callback both contexts below install; nothing is logged), so that the
// connection's records can be handed over to a tls::RecordLayer after the handshake.
void capture_traffic_secrets(SSL* ssl, tls::HandshakeSecrets* secrets);

// For connections to the target. verify-full verifies the chain against `ca_file`
// (or the system store) and the host name; prefer and require do not verify.
std::unique_ptr<ssl::context> make_client_tls_context(TargetTls mode, const std::string& ca_file);

}  // namespace sluice::proxy
