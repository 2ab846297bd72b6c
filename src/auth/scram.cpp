// SCRAM-SHA-256 (RFC 5802 / RFC 7677).
//
// No SASLprep: passwords are used exactly as given. PostgreSQL applies SASLprep but falls back
// to the raw bytes when it fails, so this matches PostgreSQL for ASCII passwords and for any
// password that SASLprep leaves unchanged (e.g. already-NFKC UTF-8 without mapped characters).
#include "auth/scram.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <stdexcept>
#include <vector>

#include "auth/crypto.hpp"
#include "auth/openssl_ptr.hpp"

namespace sluice::auth {

namespace {

constexpr std::string_view kVerifierPrefix = "SCRAM-SHA-256$";
constexpr int kMaxClientIterations = 10'000'000;  // bound the PBKDF2 work a server can demand

std::string_view view(const Sha256& h) {
  return {reinterpret_cast<const char*>(h.data()), h.size()};
}

// SHA-256, looked up once. EVP_sha256() and the one-shot HMAC() look the algorithm up in
// OpenSSL 3's provider store on every call, which costs more than hashing a SCRAM message:
// HMAC() takes about 1.2 us here, the HMAC below 0.4.
const EVP_MD* sha256_md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  if (!md) throw std::runtime_error("SHA-256 unavailable");
  return md;
}

// OpenSSL failures here mean a broken library, not bad input, hence exceptions.
void digest(EVP_MD_CTX* ctx, std::string_view a, std::string_view b, Sha256& out) {
  unsigned int len = 0;
  if (EVP_DigestInit_ex2(ctx, sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx, a.data(), a.size()) != 1 ||
      EVP_DigestUpdate(ctx, b.data(), b.size()) != 1 ||
      EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != out.size())
    throw std::runtime_error("SHA-256 failed");
}

// HMAC-SHA-256 (RFC 2104). SCRAM's keys are all 32 bytes, within SHA-256's 64-byte block.
Sha256 hmac(const Sha256& key, std::string_view msg) {
  OpenSslPtr<EVP_MD_CTX, EVP_MD_CTX_free> ctx(EVP_MD_CTX_new());
  if (!ctx) throw std::runtime_error("HMAC-SHA-256 failed");
  struct Secrets {  // key material: wiped however we leave
    std::array<char, 64> pad;
    Sha256 inner;
    ~Secrets() { OPENSSL_cleanse(this, sizeof *this); }
  } s;
  s.pad.fill(0x36);
  for (size_t i = 0; i < key.size(); ++i) s.pad[i] = static_cast<char>(key[i] ^ 0x36);
  Sha256 out{};
  digest(ctx.get(), {s.pad.data(), s.pad.size()}, msg, s.inner);
  for (char& c : s.pad) c = static_cast<char>(c ^ 0x36 ^ 0x5c);
  digest(ctx.get(), {s.pad.data(), s.pad.size()}, view(s.inner), out);
  return out;
}

Sha256 sha256(const Sha256& data) {
  Sha256 out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, sha256_md(), nullptr) != 1 ||
      len != out.size())
    throw std::runtime_error("SHA-256 failed");
  return out;
}

Sha256 salted_password(std::string_view password, std::string_view salt, int iterations) {
  if (iterations < 1) throw std::invalid_argument("SCRAM iteration count must be positive");
  Sha256 out{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(out.size()), out.data()) != 1)
    throw std::runtime_error("PBKDF2-HMAC-SHA-256 failed");
  return out;
}

Sha256 xor_keys(const Sha256& a, const Sha256& b) {
  Sha256 out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = a[i] ^ b[i];
  return out;
}

// RFC 5802 "printable": %x21-7E except ','.
bool valid_nonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (char c : nonce)
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  return true;
}

// Plain decimal in [1, max]: digits only, no sign, no leading zero.
std::optional<int> parse_iterations(std::string_view text, int max) {
  if (text.empty() || text.size() > 10 || text[0] == '0' ||
      text.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  long long value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);  // cannot fail: <= 10 digits
  if (value < 1 || value > max) return std::nullopt;
  return static_cast<int>(value);
}

// Splits "a=..,b=..,c=.." into values, requiring exactly the attributes in `names`, in order.
// SCRAM values never contain ',' (saslnames escape it as "=2C"), so splitting is exact.
std::optional<std::vector<std::string_view>> split_attrs(std::string_view msg,
                                                         std::string_view names) {
  std::vector<std::string_view> values;
  for (size_t i = 0; i < names.size(); ++i) {
    size_t comma = msg.find(',');
    if ((comma == std::string_view::npos) != (i + 1 == names.size())) return std::nullopt;
    std::string_view field = msg.substr(0, comma);
    if (field.size() < 2 || field[0] != names[i] || field[1] != '=') return std::nullopt;
    values.push_back(field.substr(2));
    if (comma != std::string_view::npos) msg.remove_prefix(comma + 1);
  }
  return values;
}

std::optional<Sha256> decode_key(std::string_view b64) {
  auto raw = base64_decode(b64);
  if (!raw || raw->size() != Sha256{}.size()) return std::nullopt;
  Sha256 key{};
  raw->copy(reinterpret_cast<char*>(key.data()), key.size());
  return key;
}

std::optional<std::string> decode_salt(std::string_view b64) {
  auto salt = base64_decode(b64);
  if (!salt || salt->empty()) return std::nullopt;
  return salt;
}

}  // namespace

ScramVerifier derive_scram_verifier(std::string_view password, std::string_view salt,
                                    int iterations) {
  const Sha256 salted = salted_password(password, salt, iterations);
  ScramVerifier v;
  v.salt = std::string(salt);
  v.iterations = iterations;
  v.stored_key = sha256(hmac(salted, "Client Key"));
  v.server_key = hmac(salted, "Server Key");
  return v;
}

std::optional<ScramVerifier> parse_scram_verifier(std::string_view text) {
  if (!text.starts_with(kVerifierPrefix)) return std::nullopt;
  text.remove_prefix(kVerifierPrefix.size());
  // "<iter>:<salt>$<StoredKey>:<ServerKey>"; base64 has no ':' or '$', so any stray
  // separator ends up inside a base64 field and fails to decode.
  const size_t dollar = text.find('$');
  if (dollar == std::string_view::npos) return std::nullopt;
  const std::string_view params = text.substr(0, dollar), keys = text.substr(dollar + 1);
  const size_t colon1 = params.find(':'), colon2 = keys.find(':');
  if (colon1 == std::string_view::npos || colon2 == std::string_view::npos) return std::nullopt;

  auto iterations = parse_iterations(params.substr(0, colon1), INT_MAX);
  auto salt = decode_salt(params.substr(colon1 + 1));
  auto stored_key = decode_key(keys.substr(0, colon2));
  auto server_key = decode_key(keys.substr(colon2 + 1));
  if (!iterations || !salt || !stored_key || !server_key) return std::nullopt;
  return ScramVerifier{std::move(*salt), *iterations, *stored_key, *server_key};
}

ScramServer::ScramServer(const ScramVerifier& verifier, std::string server_nonce)
    : verifier_(verifier), server_nonce_(std::move(server_nonce)) {
  candidates_[0] = &verifier;
  candidate_count_ = 1;
}

namespace {

const ScramVerifier& first_candidate(std::span<const ScramVerifier* const> candidates) {
  if (candidates.empty() || candidates.size() > kMaxScramCandidates || !candidates[0])
    throw std::invalid_argument("SCRAM needs 1 to kMaxScramCandidates verifiers");
  return *candidates[0];
}

}  // namespace

ScramServer::ScramServer(std::span<const ScramVerifier* const> candidates, std::string server_nonce)
    : verifier_(first_candidate(candidates)), server_nonce_(std::move(server_nonce)) {
  for (const ScramVerifier* candidate : candidates) {
    // The client is told one salt and iteration count: a proof for any other is meaningless.
    if (!candidate || candidate->salt != verifier_.salt ||
        candidate->iterations != verifier_.iterations)
      throw std::invalid_argument("SCRAM candidates must share the salt and iteration count");
    candidates_[candidate_count_++] = candidate;
  }
}

std::optional<std::string> ScramServer::handle_client_first(std::string_view client_first) {
  if (!gs2_header_.empty() || done_ || !valid_nonce(server_nonce_)) return std::nullopt;
  // gs2-header: we offer no channel binding, so "p=" is refused, and an authzid ("n,a=..,")
  // is refused because the user is fixed by the startup packet.
  if (!client_first.starts_with("n,,") && !client_first.starts_with("y,,")) return std::nullopt;
  const std::string_view gs2 = client_first.substr(0, 3), bare = client_first.substr(3);

  // client-first-message-bare: "n=<user>,r=<nonce>". The user is ignored (PostgreSQL clients
  // send it empty); a leading "m=" extension fails the attribute check.
  auto attrs = split_attrs(bare, "nr");
  if (!attrs || !valid_nonce((*attrs)[1])) return std::nullopt;

  gs2_header_ = gs2;
  client_first_bare_ = bare;
  combined_nonce_ = std::string((*attrs)[1]) + server_nonce_;
  server_first_ = "r=" + combined_nonce_ + ",s=" + base64_encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  return server_first_;
}

std::optional<std::string> ScramServer::handle_client_final(std::string_view client_final) {
  if (gs2_header_.empty() || done_) return std::nullopt;
  done_ = true;  // a single attempt per exchange

  // "c=<b64 gs2 header>,r=<nonce>,p=<b64 proof>"; extensions are not accepted.
  auto attrs = split_attrs(client_final, "crp");
  if (!attrs) return std::nullopt;
  const auto& a = *attrs;
  auto binding = base64_decode(a[0]);
  if (!binding || *binding != gs2_header_ || a[1] != combined_nonce_) return std::nullopt;
  auto proof = decode_key(a[2]);
  if (!proof) return std::nullopt;

  // The proof is the last attribute; strip ",p=<proof>" to get the signed part.
  const std::string_view without_proof =
      client_final.substr(0, client_final.size() - a[2].size() - 3);
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  // The same work for one candidate as for the most there can be (the last is checked again,
  // its answer ignored), so a user with two passwords, one with a single password and the
  // decoy for an unknown user all take the same time.
  std::optional<size_t> matched;
  for (size_t i = 0; i < kMaxScramCandidates; ++i) {
    const ScramVerifier& candidate = *candidates_[std::min(i, candidate_count_ - 1)];
    const Sha256 client_key = xor_keys(*proof, hmac(candidate.stored_key, auth_message));
    const Sha256 stored_key = sha256(client_key);
    const bool equal =
        CRYPTO_memcmp(stored_key.data(), candidate.stored_key.data(), stored_key.size()) == 0;
    if (equal && i < candidate_count_ && !matched) matched = i;
  }
  if (!matched) return std::nullopt;
  matched_ = matched;
  return "v=" + base64_encode(view(hmac(candidates_[*matched]->server_key, auth_message)));
}

ScramClient::ScramClient(std::string password, std::string client_nonce, SaltedPasswordCache* cache)
    : password_(std::move(password)), client_nonce_(std::move(client_nonce)), cache_(cache) {}

std::string ScramClient::client_first() {
  client_first_bare_ = "n=,r=" + client_nonce_;
  return "n,," + client_first_bare_;
}

std::optional<std::string> ScramClient::handle_server_first(std::string_view server_first) {
  if (client_first_bare_.empty() || have_signature_) return std::nullopt;
  // "r=<nonce>,s=<b64 salt>,i=<iterations>"; no "m=" and no extensions.
  auto attrs = split_attrs(server_first, "rsi");
  if (!attrs) return std::nullopt;
  const std::string_view nonce = (*attrs)[0];
  // The server must extend our nonce, or it could replay an old exchange.
  if (!valid_nonce(nonce) || nonce.size() <= client_nonce_.size() ||
      !nonce.starts_with(client_nonce_))
    return std::nullopt;
  auto salt = decode_salt((*attrs)[1]);
  auto iterations = parse_iterations((*attrs)[2], kMaxClientIterations);
  if (!salt || !iterations) return std::nullopt;

  Sha256 salted{};
  if (auto known = cache_ ? cache_->find(*salt, *iterations) : std::nullopt) {
    salted = *known;
  } else {
    salted = salted_password(password_, *salt, *iterations);
    if (cache_) cache_->store(*salt, *iterations, salted);
  }
  const Sha256 client_key = hmac(salted, "Client Key");
  // "biws" = base64("n,,"): we never use channel binding.
  const std::string without_proof = "c=biws,r=" + std::string(nonce);
  const std::string auth_message =
      client_first_bare_ + "," + std::string(server_first) + "," + without_proof;
  const Sha256 proof = xor_keys(client_key, hmac(sha256(client_key), auth_message));
  server_signature_ = hmac(hmac(salted, "Server Key"), auth_message);
  have_signature_ = true;
  return without_proof + ",p=" + base64_encode(view(proof));
}

std::optional<Sha256> SaltedPasswordCache::find(std::string_view salt, uint32_t iterations) const {
  std::lock_guard lock(mutex_);
  if (iterations_ == 0 || iterations != iterations_ || salt.size() != salt_.size() ||
      CRYPTO_memcmp(salt.data(), salt_.data(), salt.size()) != 0)
    return std::nullopt;
  return salted_;
}

void SaltedPasswordCache::store(std::string_view salt, uint32_t iterations, const Sha256& salted) {
  std::lock_guard lock(mutex_);
  salt_.assign(salt);
  iterations_ = iterations;
  salted_ = salted;
}

bool ScramClient::verify_server_final(std::string_view server_final) const {
  if (!have_signature_ || !server_final.starts_with("v=")) return false;  // also rejects "e=..."
  auto signature = decode_key(server_final.substr(2));
  return signature &&
         CRYPTO_memcmp(signature->data(), server_signature_.data(), signature->size()) == 0;
}

}  // namespace sluice::auth
