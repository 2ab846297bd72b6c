// SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL speaks it: both the server side
// (clients logging in to the proxy) and the client side (the proxy logging in to servers).
// Pure: randomness (nonces, salts) is passed in, so the RFC test vectors can be replayed.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sluice::auth {

using Sha256 = std::array<uint8_t, 32>;

constexpr int kDefaultScramIterations = 4096;

// What a server keeps about a password: derived once per secret, never per connection.
struct ScramVerifier {
  std::string salt;  // raw bytes
  int iterations = kDefaultScramIterations;
  Sha256 stored_key{};
  Sha256 server_key{};
};

// Derives the verifier from a password (PBKDF2-HMAC-SHA-256).
ScramVerifier derive_scram_verifier(std::string_view password, std::string_view salt,
                                    int iterations);

// Parses PostgreSQL's stored form "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey
// b64>".
std::optional<ScramVerifier> parse_scram_verifier(std::string_view text);

// The most passwords one user may have at once for clients: a rotation's current and previous.
constexpr size_t kMaxScramCandidates = 2;

// Server side of one SCRAM exchange. During a rotation a user has more than one valid password:
// their verifiers share one salt and iteration count (the proxy derives them itself), so a
// single exchange can check the proof against each and sign with the one that matched.
class ScramServer {
 public:
  // `server_nonce` is the random part the server appends to the client's nonce
  // (printable ASCII without ','; callers pass base64 of 18 random bytes).
  ScramServer(const ScramVerifier& verifier, std::string server_nonce);
  ScramServer(ScramVerifier&&, std::string) = delete;  // keeps a reference: no temporaries
  // 1 to kMaxScramCandidates verifiers, all with the first's salt and iteration count (what the
  // client is told); throws std::invalid_argument otherwise. The caller keeps them alive.
  ScramServer(std::span<const ScramVerifier* const> candidates, std::string server_nonce);

  // client-first-message -> server-first-message. nullopt on a malformed message
  // or on channel binding ("p=..."), which the proxy does not offer.
  std::optional<std::string> handle_client_first(std::string_view client_first);

  // client-final-message -> server-final-message ("v=..."). nullopt when the proof is
  // wrong or the message malformed. The proof is compared in constant time.
  // Every candidate is checked, however many there are and whichever matches, so the time
  // taken tells nothing about them.
  std::optional<std::string> handle_client_final(std::string_view client_final);

  // The index of the candidate the proof matched; nullopt before a successful client-final.
  std::optional<size_t> matched() const { return matched_; }

 private:
  const ScramVerifier& verifier_;  // the first candidate: its salt and iterations are sent
  std::array<const ScramVerifier*, kMaxScramCandidates> candidates_{};
  size_t candidate_count_ = 0;
  std::optional<size_t> matched_;
  std::string server_nonce_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string combined_nonce_;
  std::string gs2_header_;  // "n,," or "y,,"; the client-final "c=" must echo it
  bool done_ = false;       // one client-final per exchange, right or wrong
};

// Client side of one SCRAM exchange.
// PBKDF2's result for one password, remembered for the salt and iteration count it was made
// with: a server keeps its verifier's salt, so every login after the first skips the iterations
// (4096 of HMAC-SHA-256 for PostgreSQL's default, about 1 ms). One entry; thread-safe.
class SaltedPasswordCache {
 public:
  std::optional<Sha256> find(std::string_view salt, uint32_t iterations) const;
  void store(std::string_view salt, uint32_t iterations, const Sha256& salted);

 private:
  mutable std::mutex mutex_;
  std::string salt_;
  uint32_t iterations_ = 0;
  Sha256 salted_{};
};

class ScramClient {
 public:
  // `client_nonce`: printable ASCII without ','; callers pass base64 of 18 random bytes.
  // `cache`, if given, is this password's (it must outlive the client).
  ScramClient(std::string password, std::string client_nonce, SaltedPasswordCache* cache = nullptr);

  // "n,,n=,r=<nonce>" (PostgreSQL ignores the SCRAM user name; the startup packet names the user).
  std::string client_first();

  // server-first-message -> client-final-message. nullopt when malformed, when the server
  // nonce does not start with ours, or when the iteration count is absurd (< 1 or > 10^7).
  std::optional<std::string> handle_server_first(std::string_view server_first);

  // True when the server's signature ("v=...") is the one we expect (constant-time compare).
  bool verify_server_final(std::string_view server_final) const;

 private:
  std::string password_;
  std::string client_nonce_;
  SaltedPasswordCache* cache_;
  std::string client_first_bare_;
  Sha256 server_signature_{};
  bool have_signature_ = false;
};

}  // namespace sluice::auth
