// The decoy credential for unknown users: the same exchange as a real user's, with a salt that
// stays the same for a name (as a real user's does) and keys that match no password.
#include "proxy/secrets.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>

#include "auth/md5.hpp"

namespace sluice::proxy {
namespace {

TEST(Decoy, SaltIsStablePerNameAndKeysMatchNothing) {
  const SecretStore store = SecretStore::load({});
  const Credential first = store.decoy("nobody");
  const Credential again = store.decoy("nobody");
  const Credential other = store.decoy("somebody-else");
  EXPECT_EQ(first.username, "nobody");
  EXPECT_EQ(first.scram.salt, again.scram.salt) << "a repeated attempt sees the same salt";
  EXPECT_NE(first.scram.salt, other.scram.salt);
  EXPECT_EQ(first.scram.iterations, again.scram.iterations);
  EXPECT_NE(first.scram.stored_key, again.scram.stored_key) << "random keys: no password matches";
  EXPECT_FALSE(first.md5_hash.empty());
}

TEST(Decoy, DifferentStoresSaltTheSameNameDifferently) {
  // The key is random per start: salts reveal nothing across proxies.
  EXPECT_NE(SecretStore::load({}).decoy("nobody").scram.salt,
            SecretStore::load({}).decoy("nobody").scram.salt);
}

}  // namespace
}  // namespace sluice::proxy

// ---- staged secret files (rotation) ----

namespace sluice::proxy {
namespace {

using std::chrono::seconds;

std::string version(std::string_view stages, std::string_view password, std::string_view extra = "",
                    std::string_view user = "app") {
  boost::json::object secret{{"username", user}, {"password", password}};
  return "{\"stages\": " + std::string(stages) +
         ", \"secret_string\": " + boost::json::serialize(boost::json::serialize(secret)) +
         std::string(extra) + "}";
}

std::string staged_file(std::initializer_list<std::string> versions) {
  std::string text = "{\"versions\": [";
  for (const auto& v : versions) text += (text.back() == '[' ? "" : ", ") + v;
  return text + "]}";
}

TEST(SecretFile, PlainSecretStringAsBefore) {
  SecretFileContents out;
  std::string error;
  ASSERT_TRUE(parse_secret_file(R"({"username": "app", "password": "pw", "engine": "postgres"})",
                                out, error))
      << error;
  EXPECT_EQ(out.username, "app");
  EXPECT_EQ(out.current, "pw");
  EXPECT_FALSE(out.pending);
  EXPECT_FALSE(out.previous);
  // A SecretString that happens to carry "versions" is still a SecretString.
  ASSERT_TRUE(
      parse_secret_file(R"({"username": "u", "password": "p", "versions": 3})", out, error));
  EXPECT_EQ(out.current, "p");
}

TEST(SecretFile, StagedVersions) {
  SecretFileContents out;
  std::string error;
  const std::string text =
      staged_file({version(R"(["AWSPREVIOUS"])", "old", R"(, "demoted": 1000.5)"),
                   version(R"(["AWSCURRENT"])", "now"), version(R"(["AWSPENDING"])", "next"),
                   version(R"(["LABEL"])", "other")});
  ASSERT_TRUE(parse_secret_file(text, out, error)) << error;
  EXPECT_EQ(out.username, "app");
  EXPECT_EQ(out.current, "now");
  EXPECT_EQ(out.pending, "next");
  EXPECT_EQ(out.previous, "old");
  ASSERT_TRUE(out.previous_demoted);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(
                out.previous_demoted->time_since_epoch())
                .count(),
            1000500);
  EXPECT_TRUE(out.warnings.empty());
}

TEST(SecretFile, StagedErrorsAreNamed) {
  struct Case {
    std::string text, error;
  };
  const Case cases[] = {
      {staged_file({version(R"(["AWSPENDING"])", "x")}), "has no version staged AWSCURRENT"},
      {staged_file({version(R"(["AWSCURRENT"])", "a"), version(R"(["AWSCURRENT"])", "b")}),
       "has AWSCURRENT on two versions"},
      {R"({"versions": {}})", "has a \"versions\" that is not an array"},
      {R"({"versions": [1]})", "versions[0] is not an object"},
      {R"({"versions": [{"secret_string": "{}"}]})", "versions[0] has no \"stages\" array"},
      {R"({"versions": [{"stages": ["AWSCURRENT"]}]})",
       "versions[0] has no \"secret_string\" string"},
      {staged_file({version(R"(["AWSCURRENT"])", "a"),
                    version(R"(["AWSPREVIOUS"])", "b", R"(, "demoted": "yesterday")")}),
       "version staged AWSPREVIOUS has a \"demoted\" that is not seconds since 1970"},
      {R"({"versions": [{"stages": ["AWSCURRENT"], "secret_string": "{\"password\": \"p\"}"}]})",
       "version staged AWSCURRENT has no \"username\" string"},
  };
  for (const auto& c : cases) {
    SecretFileContents out;
    std::string error;
    EXPECT_FALSE(parse_secret_file(c.text, out, error)) << c.text;
    EXPECT_EQ(error, c.error) << c.text;
  }
}

TEST(SecretFile, UnusableStagedVersionsAreLeftOutWithAWarning) {
  SecretFileContents out;
  std::string error;
  const std::string text = staged_file(
      {version(R"(["AWSCURRENT"])", "now"), version(R"(["AWSPENDING"])", "x", "", "someone-else"),
       R"({"stages": ["AWSPREVIOUS"], "secret_string": "not json"})"});
  ASSERT_TRUE(parse_secret_file(text, out, error)) << error;
  EXPECT_FALSE(out.pending);
  EXPECT_FALSE(out.previous);
  ASSERT_EQ(out.warnings.size(), 2u);
  EXPECT_EQ(out.warnings[0],
            "the version staged AWSPENDING names another user than AWSCURRENT does");
  EXPECT_EQ(out.warnings[1], "the version staged AWSPREVIOUS is not a JSON object");
  for (const auto& w : out.warnings) EXPECT_EQ(w.find("x\""), std::string::npos) << "no values";
}

TEST(SecretFile, OneVersionWithTwoLabelsIsCurrentOnly) {
  SecretFileContents out;
  std::string error;
  ASSERT_TRUE(parse_secret_file(staged_file({version(R"(["AWSCURRENT", "AWSPENDING"])", "now"),
                                             version(R"(["AWSPREVIOUS"])", "old")}),
                                out, error));
  EXPECT_EQ(out.current, "now");
  EXPECT_FALSE(out.pending);
  EXPECT_EQ(out.previous, "old");
  EXPECT_FALSE(out.previous_demoted) << "not recorded: the loader uses the file's time";
}

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/sluice-secret-XXXXXX";
    ::close(mkstemp(name));
    path = name;
    std::ofstream(path) << text;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

SecretStore load_one(const std::string& text, AuthType type = AuthType::kScramSha256) {
  static std::vector<std::unique_ptr<TempFile>> files;  // kept until the test binary ends
  files.push_back(std::make_unique<TempFile>(text));
  AuthConfig entry;
  entry.secret_file = files.back()->path;
  entry.client_password_auth_type = type;
  return SecretStore::load({entry});
}

const SystemTime kDemoted = SystemTime(seconds(1'800'000'000));

std::string rotation_file() {
  return staged_file({version(R"(["AWSCURRENT"])", "now"), version(R"(["AWSPENDING"])", "next"),
                      version(R"(["AWSPREVIOUS"])", "old", R"(, "demoted": 1800000000)")});
}

TEST(Rotation, PreviousIsAcceptedOnlyWithinTheGracePeriod) {
  const SecretStore store = load_one(rotation_file());
  const Credential& c = *store.find("app");
  ASSERT_TRUE(c.previous);
  EXPECT_EQ(c.previous_demoted, kDemoted);
  // All of one user's verifiers share one salt, so one SCRAM exchange checks them all.
  EXPECT_EQ(c.previous->scram.salt, c.scram.salt);
  EXPECT_EQ(c.previous->scram.iterations, c.scram.iterations);
  std::array<const StagedPassword*, auth::kMaxScramCandidates> out;
  EXPECT_EQ(c.client_passwords(kDemoted + seconds(299), seconds(300), out), 2u);
  EXPECT_EQ(out[0]->password, "now");
  EXPECT_EQ(out[1]->password, "old");
  EXPECT_EQ(c.client_passwords(kDemoted + seconds(300), seconds(300), out), 1u);
  EXPECT_EQ(out[0]->password, "now");
  EXPECT_EQ(out[1]->password, "now") << "padded with the last";
  EXPECT_EQ(c.client_passwords(kDemoted, seconds(0), out), 1u) << "no grace at all";
  for (const auto* p : out) EXPECT_NE(p->password, "next") << "AWSPENDING is never for clients";
}

TEST(Rotation, Md5AcceptsCurrentAndPreviousWithinGrace) {
  const SecretStore store = load_one(rotation_file(), AuthType::kMd5);
  const Credential& c = *store.find("app");
  const std::array<uint8_t, 4> salt{1, 2, 3, 4};
  auto response = [&](std::string_view password) {
    return auth::md5_client_response(auth::md5_stored_hash("app", password), salt);
  };
  const auto in_grace = kDemoted + seconds(10), after = kDemoted + seconds(301);
  EXPECT_EQ(c.check_md5(salt, response("now"), in_grace, seconds(300)), 0u);
  EXPECT_EQ(c.check_md5(salt, response("old"), in_grace, seconds(300)), 1u);
  EXPECT_EQ(c.check_md5(salt, response("now"), after, seconds(300)), 0u);
  EXPECT_FALSE(c.check_md5(salt, response("old"), after, seconds(300)));
  EXPECT_FALSE(c.check_md5(salt, response("next"), in_grace, seconds(300)));
  EXPECT_FALSE(c.check_md5(salt, response("wrong"), in_grace, seconds(300)));
  // The decoy goes through the same checks and matches nothing.
  const Credential decoy = store.decoy("nobody");
  EXPECT_FALSE(decoy.check_md5(salt, response("now"), in_grace, seconds(300)));
}

TEST(Rotation, ServerLoginsTryCurrentPendingPreviousAndRememberWhatWorked) {
  const SecretStore store = load_one(rotation_file());
  const Credential& c = *store.find("app");
  auto order = [&] {
    std::vector<std::string> names;
    for (const auto& [stage, password] : c.server_attempts()) {
      names.emplace_back(stage_name(stage));
      EXPECT_EQ(password, c.staged(stage));
    }
    return names;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(order(), (V{"AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"}));
  c.server_stage->store(Stage::kPending);
  EXPECT_EQ(order(), (V{"AWSPENDING", "AWSCURRENT", "AWSPREVIOUS"}));
  c.server_stage->store(Stage::kPrevious);
  EXPECT_EQ(order(), (V{"AWSPREVIOUS", "AWSCURRENT", "AWSPENDING"}));
  // Loading again (a reload) starts over at current.
  EXPECT_EQ(load_one(rotation_file()).find("app")->server_stage->load(), Stage::kCurrent);
}

TEST(Rotation, AReloadKeepsWhatWorkedUnlessTheFileChanged) {
  TempFile file(rotation_file());
  AuthConfig entry;
  entry.secret_file = file.path;
  const SecretStore first = SecretStore::load({entry});
  first.find("app")->server_stage->store(Stage::kPending);
  const SecretStore same = SecretStore::load({entry}, &first);
  EXPECT_EQ(same.find("app")->server_stage->load(), Stage::kPending) << "the file is unchanged";
  std::ofstream(file.path) << staged_file(
      {version(R"(["AWSCURRENT"])", "next"), version(R"(["AWSPREVIOUS"])", "now")});
  const SecretStore changed = SecretStore::load({entry}, &same);
  EXPECT_EQ(changed.find("app")->server_stage->load(), Stage::kCurrent) << "new secrets";
  EXPECT_EQ(changed.find("app")->password, "next");
}

TEST(Rotation, SamePasswordIsTriedOnce) {
  const SecretStore store = load_one(
      staged_file({version(R"(["AWSCURRENT"])", "same"), version(R"(["AWSPREVIOUS"])", "same")}));
  const auto attempts = store.find("app")->server_attempts();
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].first, Stage::kCurrent);
}

TEST(Rotation, PreviousWithoutDemotionTimeUsesTheFileTime) {
  const auto before = std::chrono::system_clock::now() - seconds(5);
  const SecretStore store = load_one(
      staged_file({version(R"(["AWSCURRENT"])", "now"), version(R"(["AWSPREVIOUS"])", "old")}));
  const Credential& c = *store.find("app");
  EXPECT_GE(c.previous_demoted, before);
  EXPECT_TRUE(c.accepts_previous(std::chrono::system_clock::now(), seconds(300)));
}

TEST(Rotation, PlainFileHasOnlyCurrent) {
  const SecretStore store = load_one(R"({"username": "app", "password": "pw"})");
  const Credential& c = *store.find("app");
  EXPECT_EQ(c.password, "pw");
  EXPECT_FALSE(c.pending);
  EXPECT_FALSE(c.previous);
  EXPECT_EQ(c.server_attempts().size(), 1u);
}

TEST(Rotation, BadFileNamesTheEntry) {
  try {
    load_one(staged_file({version(R"(["AWSPENDING"])", "x")}));
    FAIL() << "loaded a file without AWSCURRENT";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("has no version staged AWSCURRENT"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace sluice::proxy
