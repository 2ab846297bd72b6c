#include "auth/scram.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <span>
#include <stdexcept>
#include <string>

#include "auth/crypto.hpp"

namespace sluice::auth {
namespace {

// RFC 7677 section 3 test vector.
constexpr std::string_view kPassword = "pencil";
constexpr std::string_view kClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kSaltB64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// Independently computed (Python hashlib/hmac) for the same parameters, but with the
// client-first-message-bare that ScramClient sends: "n=,r=rOprNGfwEbeRWgbNEkqO".
constexpr std::string_view kEmptyUserClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=";
constexpr std::string_view kEmptyUserServerFinal = "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=";
// Same, with the RFC's bare message but gs2 header "y,," (client supports binding, server not).
constexpr std::string_view kYClientFinal =
    "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=FoqiHTtQEDE8lz1CdaEe3tK4mS+iMDTl77SPyDS53DY=";
constexpr std::string_view kYServerFinal = "v=dI4KpiQJwBr1+V+K6U1dA6l6I4I9DUNXWND4pcpRU3U=";
// PostgreSQL's stored form of the RFC verifier (Python).
constexpr std::string_view kRfcVerifierText =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

std::string b64(const Sha256& key) {
  return base64_encode(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
}

ScramClient rfc_client() {
  return ScramClient(std::string(kPassword), std::string(kClientNonce));
}

std::string format_verifier(const ScramVerifier& v) {
  return "SCRAM-SHA-256$" + std::to_string(v.iterations) + ":" + base64_encode(v.salt) + "$" +
         b64(v.stored_key) + ":" + b64(v.server_key);
}

class ScramTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rfc_verifier_ = new ScramVerifier(
        derive_scram_verifier(kPassword, *base64_decode(kSaltB64), kDefaultScramIterations));
  }
  static void TearDownTestSuite() { delete rfc_verifier_; }

  // A server that has already answered the RFC client-first message.
  static ScramServer rfc_server_after_first() {
    ScramServer server(*rfc_verifier_, std::string(kServerNonce));
    EXPECT_EQ(server.handle_client_first(kRfcClientFirst), std::string(kRfcServerFirst));
    return server;
  }

  static ScramVerifier* rfc_verifier_;
};
ScramVerifier* ScramTest::rfc_verifier_ = nullptr;

TEST_F(ScramTest, DeriveMatchesIndependentComputation) {
  EXPECT_EQ(format_verifier(*rfc_verifier_), kRfcVerifierText);
}

TEST_F(ScramTest, ServerReplaysRfc7677Vector) {
  ScramServer server = rfc_server_after_first();
  EXPECT_EQ(server.handle_client_final(kRfcClientFinal), std::string(kRfcServerFinal));
}

TEST_F(ScramTest, ServerWithParsedVerifierReplaysRfc7677Vector) {
  const auto verifier = parse_scram_verifier(kRfcVerifierText);
  ASSERT_TRUE(verifier);
  ScramServer server(*verifier, std::string(kServerNonce));
  EXPECT_EQ(server.handle_client_first(kRfcClientFirst), std::string(kRfcServerFirst));
  EXPECT_EQ(server.handle_client_final(kRfcClientFinal), std::string(kRfcServerFinal));
}

TEST_F(ScramTest, ServerAcceptsYHeaderWhenEchoed) {
  ScramServer server(*rfc_verifier_, std::string(kServerNonce));
  ASSERT_TRUE(server.handle_client_first("y,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
  EXPECT_EQ(server.handle_client_final(kYClientFinal), std::string(kYServerFinal));
}

TEST_F(ScramTest, ClientMatchesIndependentComputation) {
  ScramClient client = rfc_client();
  EXPECT_EQ(client.client_first(), "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
  EXPECT_EQ(client.handle_server_first(kRfcServerFirst), std::string(kEmptyUserClientFinal));
  EXPECT_FALSE(client.verify_server_final(kRfcServerFinal));  // signs a different AuthMessage
  EXPECT_TRUE(client.verify_server_final(kEmptyUserServerFinal));
}

TEST_F(ScramTest, ClientAgainstServerWithRfcParameters) {
  ScramClient client = rfc_client();
  ScramServer server(*rfc_verifier_, std::string(kServerNonce));
  const auto server_first = server.handle_client_first(client.client_first());
  ASSERT_EQ(server_first, std::string(kRfcServerFirst));
  const auto client_final = client.handle_server_first(*server_first);
  ASSERT_TRUE(client_final);
  const auto server_final = server.handle_client_final(*client_final);
  ASSERT_EQ(server_final, std::string(kEmptyUserServerFinal));
  EXPECT_TRUE(client.verify_server_final(*server_final));
}

TEST_F(ScramTest, ClientAgainstServerWithRandomParameters) {
  const ScramVerifier verifier = derive_scram_verifier("s3cr\xc3\xa9t", random_bytes(16), 4096);
  ScramClient client("s3cr\xc3\xa9t", base64_encode(random_bytes(18)));
  ScramServer server(verifier, base64_encode(random_bytes(18)));
  const auto server_first = server.handle_client_first(client.client_first());
  ASSERT_TRUE(server_first);
  const auto client_final = client.handle_server_first(*server_first);
  ASSERT_TRUE(client_final);
  const auto server_final = server.handle_client_final(*client_final);
  ASSERT_TRUE(server_final);
  EXPECT_TRUE(client.verify_server_final(*server_final));
}

// A rotation: one user, two passwords, one salt. One exchange accepts either and signs with the
// key of the one that matched; a third password matches neither.
std::optional<std::string> login_against(ScramServer& server, const std::string& password,
                                         bool& signature_ok) {
  ScramClient client(password, base64_encode(random_bytes(18)));
  const auto server_first = server.handle_client_first(client.client_first());
  if (!server_first) return std::nullopt;
  const auto client_final = client.handle_server_first(*server_first);
  if (!client_final) return std::nullopt;
  auto server_final = server.handle_client_final(*client_final);
  signature_ok = server_final && client.verify_server_final(*server_final);
  return server_final;
}

TEST_F(ScramTest, OneExchangeChecksEveryCandidate) {
  const std::string salt = random_bytes(16);
  const ScramVerifier current = derive_scram_verifier("new-password", salt, 4096);
  const ScramVerifier previous = derive_scram_verifier("old-password", salt, 4096);
  const ScramVerifier* both[] = {&current, &previous};
  struct Case {
    std::string password;
    std::optional<size_t> matched;
  };
  for (const Case& c : {Case{"new-password", 0}, Case{"old-password", 1}, Case{"other", {}}}) {
    ScramServer server{std::span(both), base64_encode(random_bytes(18))};
    bool signature_ok = false;
    const auto final_message = login_against(server, c.password, signature_ok);
    EXPECT_EQ(final_message.has_value(), c.matched.has_value()) << c.password;
    EXPECT_EQ(server.matched(), c.matched) << c.password;
    // The client checks the server's signature: it must be the matching password's.
    EXPECT_EQ(signature_ok, c.matched.has_value()) << c.password;
  }
  // Only the first candidate: the previous password is refused.
  ScramServer current_only{std::span(both, 1), base64_encode(random_bytes(18))};
  bool signature_ok = false;
  EXPECT_FALSE(login_against(current_only, "old-password", signature_ok));
  EXPECT_FALSE(current_only.matched());
}

TEST_F(ScramTest, CandidatesMustShareSaltAndIterations) {
  const ScramVerifier a = derive_scram_verifier("a", "salt-one", 4096);
  const ScramVerifier other_salt = derive_scram_verifier("b", "salt-two", 4096);
  const ScramVerifier other_count = derive_scram_verifier("b", "salt-one", 4097);
  const ScramVerifier* mixed_salt[] = {&a, &other_salt};
  const ScramVerifier* mixed_count[] = {&a, &other_count};
  const ScramVerifier* three[] = {&a, &a, &a};
  EXPECT_THROW((ScramServer{std::span(mixed_salt), "n"}), std::invalid_argument);
  EXPECT_THROW((ScramServer{std::span(mixed_count), "n"}), std::invalid_argument);
  EXPECT_THROW((ScramServer{std::span(three), "n"}), std::invalid_argument);
  EXPECT_THROW((ScramServer{std::span<const ScramVerifier* const>(), "n"}), std::invalid_argument);
}

TEST_F(ScramTest, CachedSaltedPasswordGivesTheSameExchange) {
  // The RFC's exchange twice through one cache: the second skips PBKDF2 and must still produce
  // the RFC's proof; the cache remembers the salt and the iteration count it was made with.
  SaltedPasswordCache cache;
  for (int round = 0; round < 2; ++round) {
    ScramClient client(std::string(kPassword), std::string(kClientNonce), &cache);
    client.client_first();
    const auto client_final = client.handle_server_first(kRfcServerFirst);
    ASSERT_TRUE(client_final) << round;
    EXPECT_EQ(*client_final, std::string(kEmptyUserClientFinal)) << round;
  }
  const auto salt = base64_decode(kSaltB64);
  ASSERT_TRUE(salt);
  EXPECT_TRUE(cache.find(*salt, 4096));
  EXPECT_FALSE(cache.find(*salt, 4097)) << "another iteration count is another key";
  EXPECT_FALSE(cache.find(std::string(salt->size(), 'x'), 4096)) << "another salt too";
}

TEST_F(ScramTest, ACacheFilledWithAnotherPasswordsKeyIsNotTrusted) {
  // Only ever one password per cache (a credential's); a wrong entry makes the server refuse,
  // it never makes a login succeed.
  SaltedPasswordCache cache;
  const auto salt = base64_decode(kSaltB64);
  ASSERT_TRUE(salt);
  cache.store(*salt, 4096, Sha256{});
  ScramClient client(std::string(kPassword), std::string(kClientNonce), &cache);
  client.client_first();
  const auto client_final = client.handle_server_first(kRfcServerFirst);
  ASSERT_TRUE(client_final);
  EXPECT_NE(*client_final, std::string(kEmptyUserClientFinal));
}

TEST_F(ScramTest, WrongPasswordFailsBothWays) {
  ScramClient client("pencil2", std::string(kClientNonce));
  ScramServer server(*rfc_verifier_, std::string(kServerNonce));
  const auto client_final =
      client.handle_server_first(*server.handle_client_first(client.client_first()));
  ASSERT_TRUE(client_final);
  EXPECT_EQ(server.handle_client_final(*client_final), std::nullopt);
  // And a server that knows another password cannot impersonate the right one.
  EXPECT_FALSE(client.verify_server_final(kEmptyUserServerFinal));
}

TEST_F(ScramTest, EmptyPasswordWorks) {
  const ScramVerifier verifier = derive_scram_verifier("", "salt", 1);
  ScramClient client("", "abc");
  ScramServer server(verifier, "def");
  const auto server_first = server.handle_client_first(client.client_first());
  ASSERT_EQ(server_first, "r=abcdef,s=c2FsdA==,i=1");
  const auto server_final = server.handle_client_final(*client.handle_server_first(*server_first));
  ASSERT_TRUE(server_final);
  EXPECT_TRUE(client.verify_server_final(*server_final));
}

TEST_F(ScramTest, TamperedProofFails) {
  const auto proof = *base64_decode(kRfcClientFinal.substr(kRfcClientFinal.find(",p=") + 3));
  const std::string prefix(kRfcClientFinal.substr(0, kRfcClientFinal.find(",p=") + 3));
  for (size_t byte = 0; byte < proof.size(); ++byte) {
    std::string bad = proof;
    bad[byte] = static_cast<char>(bad[byte] ^ 0x01);
    ScramServer server = rfc_server_after_first();
    EXPECT_EQ(server.handle_client_final(prefix + base64_encode(bad)), std::nullopt) << byte;
  }
}

TEST_F(ScramTest, EverySingleByteMutationOfClientFinalFails) {
  const std::string good(kRfcClientFinal);
  for (size_t i = 0; i < good.size(); ++i) {
    for (char c : {',', '=', '\0', '\xff', ' ', 'A', 'p'}) {
      if (good[i] == c) continue;
      std::string bad = good;
      bad[i] = c;
      ScramServer server = rfc_server_after_first();
      EXPECT_EQ(server.handle_client_final(bad), std::nullopt) << i << " " << int(c);
    }
  }
}

TEST_F(ScramTest, ClientFinalRejectsNonceAndBindingMismatch) {
  const std::string proof(kRfcClientFinal.substr(kRfcClientFinal.find(",p=")));
  const std::string combined = std::string(kClientNonce) + std::string(kServerNonce);
  const std::string bad[] = {
      "c=biws,r=" + std::string(kClientNonce) + proof,  // only the client's half
      "c=biws,r=" + combined + "x" + proof,             // extended
      "c=biws,r=" + combined.substr(0, combined.size() - 1) + proof,
      "c=biws,r=X" + combined.substr(1) + proof,
      "c=eSws,r=" + combined + proof,                  // "y,," but client sent "n,,"
      "c=cD10bHMtdW5pcXVlLCw=,r=" + combined + proof,  // "p=tls-unique,,"
      "c=biwsAAAA,r=" + combined + proof,              // header plus binding data
      "c=,r=" + combined + proof,
      "c=biw=,r=" + combined + proof,
  };
  for (const auto& msg : bad) {
    ScramServer server = rfc_server_after_first();
    EXPECT_EQ(server.handle_client_final(msg), std::nullopt) << msg;
  }
  // A "y,," client must echo "y,,", not "n,,".
  ScramServer server(*rfc_verifier_, std::string(kServerNonce));
  ASSERT_TRUE(server.handle_client_first("y,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
  EXPECT_EQ(server.handle_client_final(kRfcClientFinal), std::nullopt);
}

TEST_F(ScramTest, ClientFinalRejectsMalformedShapes) {
  const std::string combined = std::string(kClientNonce) + std::string(kServerNonce);
  const std::string proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  const std::string bad[] = {
      "",
      "c=biws,r=" + combined + ",x=ext,p=" + proof,  // extension before the proof
      "r=" + combined + ",c=biws,p=" + proof,        // wrong order
      "c=biws,r=" + combined,                        // no proof
      "c=biws,r=" + combined + ",p=" + proof + ",",  // trailing comma
      "c=biws,r=" + combined + ",p=" + proof + ",x=1",
      "c=biws,r=" + combined + ",p=" + proof.substr(0, 40),       // 30-byte proof
      "c=biws,r=" + combined + ",p=" + proof + "AAAA",            // 35-byte proof
      "c=biws,r=" + combined + ",p=" + proof.substr(0, 43) + "",  // bad padding
      "c=biws,r=" + combined + ",p=" + proof + "\n",
      "c=biws,,r=" + combined + ",p=" + proof,
      " c=biws,r=" + combined + ",p=" + proof,
      "c=biws,r=" + combined + ",p=",
  };
  for (const auto& msg : bad) {
    ScramServer server = rfc_server_after_first();
    EXPECT_EQ(server.handle_client_final(msg), std::nullopt) << msg;
  }
}

TEST_F(ScramTest, ServerStateMachine) {
  {
    ScramServer server(*rfc_verifier_, std::string(kServerNonce));
    EXPECT_EQ(server.handle_client_final(kRfcClientFinal), std::nullopt);  // final before first
  }
  {
    ScramServer server = rfc_server_after_first();
    EXPECT_EQ(server.handle_client_first(kRfcClientFirst), std::nullopt);  // first twice
    EXPECT_TRUE(server.handle_client_final(kRfcClientFinal));
    EXPECT_EQ(server.handle_client_final(kRfcClientFinal), std::nullopt);  // final twice
    EXPECT_EQ(server.handle_client_first(kRfcClientFirst), std::nullopt);  // restart after done
  }
  {
    ScramServer server = rfc_server_after_first();
    EXPECT_EQ(server.handle_client_final("c=biws"), std::nullopt);
    EXPECT_EQ(server.handle_client_final(kRfcClientFinal), std::nullopt);  // one attempt only
  }
  {
    ScramServer server(*rfc_verifier_, "");  // no server nonce: would not extend the client's
    EXPECT_EQ(server.handle_client_first(kRfcClientFirst), std::nullopt);
  }
}

TEST_F(ScramTest, ClientFirstAcceptsAnyUser) {
  for (std::string_view user : {"", "user", "=2Cx=3D", "\xc3\xa9l\xc3\xa8ve", "x\x01y"}) {
    ScramServer server(*rfc_verifier_, "srv");
    EXPECT_EQ(server.handle_client_first("n,,n=" + std::string(user) + ",r=abc"),
              "r=abcsrv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        << user;
  }
}

TEST_F(ScramTest, ClientFirstRejectsBindingAuthzidAndMalformed) {
  const std::string bad[] = {
      "p=tls-server-end-point,,n=,r=abc",  // channel binding requested
      "p=tls-unique,,n=,r=abc",
      "n,a=user,n=,r=abc",  // authzid
      "y,a=,n=,r=abc",
      "n,,m=ext,n=,r=abc",  // mandatory extension
      "n,,n=,r=abc,x=ext",  // trailing extension
      "n,,n=,r=abc,",
      "n,,r=abc",
      "n,,n=,r=",
      "n,,n=,r=ab c",
      "n,,n=,r=ab\x7f",
      "n,,n=,r=ab\x01",
      "n,,n=,r=\xc3\xa9",
      std::string("n,,n=,r=ab\0c", 12),
      "n,,n=,s=abc",
      "n,,n=,r=abc,r=def",
      "x,,n=,r=abc",
      "n,n=,r=abc",
      "n,,",
      "n,",
      "",
      "N,,n=,r=abc",
      " n,,n=,r=abc",
      "n,,n,r=abc",
  };
  for (const auto& msg : bad) {
    ScramServer server(*rfc_verifier_, "srv");
    EXPECT_EQ(server.handle_client_first(msg), std::nullopt) << msg;
  }
}

TEST_F(ScramTest, TruncatedMessagesAreRejected) {
  const std::string first(kRfcClientFirst);
  const size_t nonce_start = first.find(",r=") + 3;
  for (size_t len = 0; len < first.size(); ++len) {
    ScramServer server(*rfc_verifier_, std::string(kServerNonce));
    const auto reply = server.handle_client_first(first.substr(0, len));
    // Cutting inside the nonce leaves a valid (shorter) nonce; anything earlier is malformed.
    if (len <= nonce_start) {
      EXPECT_EQ(reply, std::nullopt) << len;
    } else {
      EXPECT_EQ(reply, "r=" + first.substr(nonce_start, len - nonce_start) +
                           std::string(kServerNonce) + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    }
  }

  const std::string final_msg(kRfcClientFinal);
  for (size_t len = 0; len < final_msg.size(); ++len) {
    ScramServer server = rfc_server_after_first();
    EXPECT_EQ(server.handle_client_final(final_msg.substr(0, len)), std::nullopt) << len;
  }

  const std::string server_first(kRfcServerFirst);
  const size_t iterations_start = server_first.find(",i=") + 3;
  for (size_t len = 0; len <= iterations_start; ++len) {
    ScramClient client = rfc_client();
    client.client_first();
    EXPECT_EQ(client.handle_server_first(server_first.substr(0, len)), std::nullopt) << len;
  }

  const std::string server_final(kEmptyUserServerFinal);
  ScramClient client = rfc_client();
  client.client_first();
  ASSERT_TRUE(client.handle_server_first(kRfcServerFirst));
  for (size_t len = 0; len < server_final.size(); ++len)
    EXPECT_FALSE(client.verify_server_final(server_final.substr(0, len))) << len;
  EXPECT_TRUE(client.verify_server_final(server_final));
}

TEST_F(ScramTest, SingleByteMutationsOfFirstMessagesAreHandled) {
  // Some mutations stay valid (e.g. inside a nonce); the point is no crash and sane output.
  const std::string first(kRfcClientFirst), server_first(kRfcServerFirst);
  for (char c : {',', '=', '\0', '\xff', ' ', 'p', 'y', '9'}) {
    for (size_t i = 0; i < first.size(); ++i) {
      std::string msg = first;
      msg[i] = c;
      ScramServer server(*rfc_verifier_, std::string(kServerNonce));
      if (auto reply = server.handle_client_first(msg)) {
        EXPECT_TRUE(reply->starts_with("r="));
      }
    }
    for (size_t i = 0; i < server_first.size(); ++i) {
      std::string msg = server_first;
      msg[i] = c;
      ScramClient client = rfc_client();
      client.client_first();
      if (auto reply = client.handle_server_first(msg)) {
        EXPECT_TRUE(reply->starts_with("c=biws,r=" + std::string(kClientNonce)));
      }
    }
  }
}

TEST_F(ScramTest, ClientRejectsBadServerFirst) {
  const std::string n(kClientNonce);
  const std::string bad[] = {
      "r=" + n + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",                // server added nothing
      "r=XOprNGfwEbeRWgbNEkqO123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",  // not our nonce
      "r=" + n.substr(1) + "123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
      "r=" + n + "1 2,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",  // unprintable
      "r=" + n + "\x80,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
      "r=" + n + "x,i=4096",                                   // no salt
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==",               // no iterations
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,x=ext",  // extension
      "m=ext,r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
      "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=" + n + "x,i=4096",  // wrong order
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",   // bad base64
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ$$,i=4096",
      "r=" + n + "x,s=,i=4096",  // empty salt
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=+4096",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=04096",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096 ",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i= 4096",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0x100",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4e3",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000001",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999999999999",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=",
      "e=other-error",
      "",
  };
  for (const auto& msg : bad) {
    ScramClient client = rfc_client();
    client.client_first();
    EXPECT_EQ(client.handle_server_first(msg), std::nullopt) << msg;
  }
}

TEST_F(ScramTest, ClientStateMachine) {
  {
    ScramClient client = rfc_client();
    EXPECT_EQ(client.handle_server_first(kRfcServerFirst), std::nullopt);  // before client_first
    EXPECT_FALSE(client.verify_server_final(kEmptyUserServerFinal));
  }
  {
    ScramClient client = rfc_client();
    client.client_first();
    ASSERT_TRUE(client.handle_server_first(kRfcServerFirst));
    EXPECT_EQ(client.handle_server_first(kRfcServerFirst), std::nullopt);  // twice
    EXPECT_TRUE(client.verify_server_final(kEmptyUserServerFinal));
  }
  {  // The smallest accepted iteration count.
    ScramClient client = rfc_client();
    client.client_first();
    EXPECT_TRUE(client.handle_server_first("r=" + std::string(kClientNonce) + "x,s=c2FsdA==,i=1"));
  }
}

TEST_F(ScramTest, ClientRejectsBadServerFinal) {
  ScramClient client = rfc_client();
  client.client_first();
  ASSERT_TRUE(client.handle_server_first(kRfcServerFirst));
  const std::string good(kEmptyUserServerFinal);
  const std::string bad[] = {
      "",
      "e=invalid-proof",
      "e=other-error",
      std::string(kRfcServerFinal),
      good + ",x=ext",
      good + " ",
      "V" + good.substr(1),
      " " + good,
      "v=",
      "v=" + base64_encode(std::string(32, '\0')),
      good.substr(0, good.size() - 2) + "h=",  // non-canonical form of "...g="
  };
  for (const auto& msg : bad) EXPECT_FALSE(client.verify_server_final(msg)) << msg;
  for (size_t i = 2; i < good.size(); ++i) {
    std::string flipped = good;
    flipped[i] = flipped[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(client.verify_server_final(flipped)) << i;
  }
  EXPECT_TRUE(client.verify_server_final(good));
}

// Generated by PostgreSQL 15 (CREATE ROLE ... PASSWORD ...; SELECT rolpassword FROM pg_authid).
constexpr std::string_view kPgPencil =
    "SCRAM-SHA-256$4096:sQbSwQ5oMyyhohte7SdwZg==$ixF+Mf3az2ZfF3T9DeHTfFygALPnbDFyrUL4fdAoV94=:"
    "WstWrAjvfJQ7fR5iqctYSIBBWVkjA4Cgd202D0unND4=";
// Password "pässwörd ✓" (UTF-8, already NFKC, so SASLprep leaves it unchanged).
constexpr std::string_view kPgUtf8 =
    "SCRAM-SHA-256$4096:8VWh63Fu4sPg8O4sjEJFEw==$R3qoFXJcMzyygV4tQhgrTmEBtyAykKTQBiDGDneV7X8=:"
    "Jq6GK7qQpmBR5TqjKIbuKf3p2ID3laoFJK42ICs8/vQ=";
constexpr std::string_view kUtf8Password = "p\xc3\xa4ssw\xc3\xb6rd \xe2\x9c\x93";

TEST_F(ScramTest, RealPostgresVerifiers) {
  for (auto [text, password] :
       {std::pair{kPgPencil, kPassword}, std::pair{kPgUtf8, kUtf8Password}}) {
    const auto parsed = parse_scram_verifier(text);
    ASSERT_TRUE(parsed) << text;
    EXPECT_EQ(parsed->iterations, 4096);
    EXPECT_EQ(parsed->salt.size(), 16u);
    const ScramVerifier derived = derive_scram_verifier(password, parsed->salt, parsed->iterations);
    EXPECT_EQ(derived.stored_key, parsed->stored_key);
    EXPECT_EQ(derived.server_key, parsed->server_key);
    EXPECT_EQ(format_verifier(derived), text);

    // A full exchange against the stored verifier, as the proxy's frontend would run it.
    ScramClient client(std::string(password), "clientnonce");
    ScramServer server(*parsed, "servernonce");
    const auto server_final = server.handle_client_final(
        *client.handle_server_first(*server.handle_client_first(client.client_first())));
    ASSERT_TRUE(server_final);
    EXPECT_TRUE(client.verify_server_final(*server_final));
  }
}

TEST_F(ScramTest, VerifierFormatRoundTrip) {
  for (int iterations : {1, 2, 4096}) {
    for (size_t salt_len : {1u, 2u, 3u, 16u, 28u}) {
      const ScramVerifier v = derive_scram_verifier("pw", random_bytes(salt_len), iterations);
      const auto parsed = parse_scram_verifier(format_verifier(v));
      ASSERT_TRUE(parsed);
      EXPECT_EQ(parsed->salt, v.salt);
      EXPECT_EQ(parsed->iterations, v.iterations);
      EXPECT_EQ(parsed->stored_key, v.stored_key);
      EXPECT_EQ(parsed->server_key, v.server_key);
    }
  }
  const auto big = parse_scram_verifier("SCRAM-SHA-256$2147483647:c2FsdA==$" + b64(Sha256{}) + ":" +
                                        b64(Sha256{}));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->iterations, 2147483647);
}

TEST_F(ScramTest, DeriveRejectsNonPositiveIterations) {
  EXPECT_THROW(derive_scram_verifier("pw", "salt", 0), std::invalid_argument);
  EXPECT_THROW(derive_scram_verifier("pw", "salt", -5), std::invalid_argument);
}

TEST_F(ScramTest, ParseVerifierRejectsMalformed) {
  const std::string key = b64(Sha256{});
  const std::string key31 = base64_encode(std::string(31, 'k'));
  const std::string key33 = base64_encode(std::string(33, 'k'));
  const std::string good = "SCRAM-SHA-256$4096:c2FsdA==$" + key + ":" + key;
  ASSERT_TRUE(parse_scram_verifier(good));
  const std::string bad[] = {
      "",
      "SCRAM-SHA-256$",
      "scram-sha-256$4096:c2FsdA==$" + key + ":" + key,
      "SCRAM-SHA-1$4096:c2FsdA==$" + key + ":" + key,
      "md553f48b7c4b76a86ce72276c5755f217d",
      "SCRAM-SHA-256$0:c2FsdA==$" + key + ":" + key,
      "SCRAM-SHA-256$-1:c2FsdA==$" + key + ":" + key,
      "SCRAM-SHA-256$+4096:c2FsdA==$" + key + ":" + key,
      "SCRAM-SHA-256$04096:c2FsdA==$" + key + ":" + key,
      "SCRAM-SHA-256$2147483648:c2FsdA==$" + key + ":" + key,
      "SCRAM-SHA-256$99999999999:c2FsdA==$" + key + ":" + key,
      "SCRAM-SHA-256$:c2FsdA==$" + key + ":" + key,
      "SCRAM-SHA-256$4096$" + key + ":" + key,
      "SCRAM-SHA-256$4096:$" + key + ":" + key,
      "SCRAM-SHA-256$4096:c2FsdA=$" + key + ":" + key,
      "SCRAM-SHA-256$4096:c2FsdA==" + key + ":" + key,
      "SCRAM-SHA-256$4096:c2FsdA==$" + key,
      "SCRAM-SHA-256$4096:c2FsdA==$" + key + key,
      "SCRAM-SHA-256$4096:c2FsdA==$" + key + ":",
      "SCRAM-SHA-256$4096:c2FsdA==$:" + key,
      "SCRAM-SHA-256$4096:c2FsdA==$" + key31 + ":" + key,
      "SCRAM-SHA-256$4096:c2FsdA==$" + key + ":" + key33,
      "SCRAM-SHA-256$4096:c2FsdA==$" + key + ":" + key + ":" + key,
      "SCRAM-SHA-256$4096:c2FsdA==$" + key + ":" + key + "$",
      "SCRAM-SHA-256$4096:c2Fs:dA==$" + key + ":" + key,
      "SCRAM-SHA-256$4096:c2FsdA==$" + key + ":" + key + " ",
      "SCRAM-SHA-256$4096:c2FsdA==$" + key + ":" + key + "\n",
      " SCRAM-SHA-256$4096:c2FsdA==$" + key + ":" + key,
  };
  for (const auto& text : bad) EXPECT_EQ(parse_scram_verifier(text), std::nullopt) << text;
  for (size_t len = 0; len < good.size(); ++len)
    EXPECT_EQ(parse_scram_verifier(good.substr(0, len)), std::nullopt) << len;
}

}  // namespace
}  // namespace sluice::auth
