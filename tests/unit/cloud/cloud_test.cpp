#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <filesystem>

#include "cloud/api.hpp"
#include "cloud/ids.hpp"
#include "cloud/sealed.hpp"
#include "cloud/secretsmanager.hpp"
#include "cloud/store.hpp"
#include "common/sigv4.hpp"

namespace sluice::cloud {
namespace {
namespace json = boost::json;

struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/sluice-cloud-test-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

TEST(Ids, FormatsAndAlphabets) {
  const std::string id = uuid4();
  ASSERT_EQ(id.size(), 36u);
  EXPECT_EQ(id[8], '-');
  EXPECT_EQ(id[14], '4');                                          // version 4
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos);  // RFC 4122 variant
  EXPECT_NE(uuid4(), id);
  const std::string chars = random_chars("ab", 64);
  EXPECT_EQ(chars.size(), 64u);
  EXPECT_EQ(chars.find_first_not_of("ab"), std::string::npos);
  EXPECT_NE(chars.find('a'), std::string::npos);
  EXPECT_NE(chars.find('b'), std::string::npos);
}

TEST(SigV4, ReadsTheCredentialScope) {
  auto scope = parse_authorization(
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/us-west-2/secretsmanager/aws4_request, "
      "SignedHeaders=host;x-amz-date, Signature=abcdef");
  ASSERT_TRUE(scope);
  EXPECT_EQ(scope->access_key, "AKIDEXAMPLE");
  EXPECT_EQ(scope->date, "20261127");
  EXPECT_EQ(scope->region, "us-west-2");
  EXPECT_EQ(scope->service, "secretsmanager");
  EXPECT_FALSE(parse_authorization("Basic dXNlcjpwYXNz"));
  EXPECT_FALSE(parse_authorization("AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/rds"));
  EXPECT_FALSE(parse_authorization("AWS4-HMAC-SHA256 Credential=AKID//us-east-1/rds/aws4_request"));
  EXPECT_FALSE(parse_authorization("AWS4-HMAC-SHA256 SignedHeaders=host"));
}

TEST(SealingKey, RoundTripAndTamperEvidence) {
  TempDir dir;
  const std::string path = dir.path + "/secrets.key";
  SealingKey key = SealingKey::load_or_create(path);
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  const std::string sealed = key.seal("hunter2", "arn/v1");
  EXPECT_EQ(sealed.find("hunter2"), std::string::npos);
  EXPECT_EQ(key.open(sealed, "arn/v1"), "hunter2");
  EXPECT_FALSE(key.open(sealed, "arn/v2")) << "another record's context must not open it";
  std::string flipped = sealed;
  flipped[14] ^= 1;
  EXPECT_FALSE(key.open(flipped, "arn/v1"));
  EXPECT_FALSE(key.open("short", "arn/v1"));
  // The same file gives the same key.
  EXPECT_EQ(SealingKey::load_or_create(path).open(sealed, "arn/v1"), "hunter2");
}

TEST(Store, DocumentsByKindAndId) {
  TempDir dir;
  Store store(dir.path + "/state.db");
  EXPECT_TRUE(store.insert("secret", "a", "{\"n\":1}"));
  EXPECT_FALSE(store.insert("secret", "a", "{\"n\":2}"));
  EXPECT_TRUE(store.insert("secret", "b", "{}"));
  EXPECT_TRUE(store.insert("role", "a", "{}"));
  EXPECT_EQ(store.get("secret", "a"), "{\"n\":1}");
  store.put("secret", "a", "{\"n\":3}");
  EXPECT_EQ(store.get("secret", "a"), "{\"n\":3}");
  auto listed = store.list("secret");
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].first, "a");
  EXPECT_TRUE(store.remove("secret", "a"));
  EXPECT_FALSE(store.remove("secret", "a"));
  EXPECT_FALSE(store.get("secret", "a"));
}

struct SecretsFixture : ::testing::Test {
  TempDir dir;
  Store store{dir.path + "/state.db"};
  SealingKey key = SealingKey::load_or_create(dir.path + "/secrets.key");
  SecretsManager secrets{store, key, "512662829295"};

  json::object call(std::string_view operation, json::object input) {
    return secrets.handle(operation, input, "us-east-1");
  }
  std::string error_of(std::string_view operation, json::object input) {
    try {
      call(operation, std::move(input));
    } catch (const ApiError& e) {
      return e.code;
    }
    return "no error";
  }
};

TEST_F(SecretsFixture, CreateGetPutDescribeDelete) {
  auto created =
      call("CreateSecret", {{"Name", "db-creds"}, {"SecretString", "{\"password\":\"p1\"}"}});
  const std::string arn(created.at("ARN").as_string());
  EXPECT_TRUE(arn.starts_with("arn:aws:secretsmanager:us-east-1:512662829295:secret:db-creds-"))
      << arn;
  EXPECT_EQ(
      arn.size(),
      std::string("arn:aws:secretsmanager:us-east-1:512662829295:secret:db-creds-").size() + 6);
  EXPECT_EQ(call("GetSecretValue", {{"SecretId", "db-creds"}}).at("SecretString"),
            "{\"password\":\"p1\"}");
  EXPECT_EQ(call("GetSecretValue", {{"SecretId", arn}}).at("Name"), "db-creds");
  // The same name with another suffix (its last character changed, whatever it was).
  const std::string other_suffix = arn.substr(0, arn.size() - 1) + (arn.back() == 'x' ? "y" : "x");
  EXPECT_EQ(error_of("GetSecretValue", {{"SecretId", other_suffix}}), "ResourceNotFoundException");

  auto put = call("PutSecretValue", {{"SecretId", "db-creds"}, {"SecretString", "pw-number-two"}});
  EXPECT_EQ(call("GetSecretValue", {{"SecretId", "db-creds"}}).at("SecretString"), "pw-number-two");
  EXPECT_EQ(call("GetSecretValue", {{"SecretId", "db-creds"}, {"VersionStage", "AWSPREVIOUS"}})
                .at("SecretString"),
            "{\"password\":\"p1\"}");
  auto described = call("DescribeSecret", {{"SecretId", "db-creds"}});
  EXPECT_EQ(described.at("VersionIdsToStages").as_object().size(), 2u);
  EXPECT_EQ(secrets.current_string("db-creds"), "pw-number-two");

  // Nothing in the store shows the value (its '-' never occurs in base64 or hex by chance).
  for (const auto& [id, document] : store.list("secret"))
    EXPECT_EQ(document.find("pw-number-two"), std::string::npos);

  EXPECT_EQ(error_of("CreateSecret", {{"Name", "db-creds"}, {"SecretString", "x"}}),
            "ResourceExistsException");
  EXPECT_EQ(error_of("DeleteSecret", {{"SecretId", "db-creds"}, {"RecoveryWindowInDays", 3}}),
            "InvalidParameterException");
  call("DeleteSecret", {{"SecretId", "db-creds"}, {"RecoveryWindowInDays", 7}});
  EXPECT_EQ(error_of("GetSecretValue", {{"SecretId", "db-creds"}}), "InvalidRequestException");
  EXPECT_EQ(call("ListSecrets", {}).at("SecretList").as_array().size(), 0u);
  EXPECT_EQ(
      call("ListSecrets", {{"IncludePlannedDeletion", true}}).at("SecretList").as_array().size(),
      1u);
  call("DeleteSecret", {{"SecretId", "db-creds"}, {"ForceDeleteWithoutRecovery", true}});
  EXPECT_EQ(error_of("DescribeSecret", {{"SecretId", "db-creds"}}), "ResourceNotFoundException");
  EXPECT_FALSE(secrets.current_string("db-creds"));
}

// Secrets Manager's rotation: a version staged AWSPENDING, then AWSCURRENT moved to it (and
// AWSPREVIOUS to the version it left, with the time it was demoted).
TEST_F(SecretsFixture, RotationMovesStagingLabels) {
  const std::string v1(
      call("CreateSecret", {{"Name", "db"}, {"SecretString", "one"}}).at("VersionId").as_string());
  auto pending = call(
      "PutSecretValue",
      {{"SecretId", "db"}, {"SecretString", "two"}, {"VersionStages", json::array{"AWSPENDING"}}});
  EXPECT_EQ(pending.at("VersionStages"), (json::array{"AWSPENDING"}));
  const std::string v2(pending.at("VersionId").as_string());
  EXPECT_EQ(call("GetSecretValue", {{"SecretId", "db"}}).at("SecretString"), "one");
  EXPECT_EQ(call("GetSecretValue", {{"SecretId", "db"}, {"VersionStage", "AWSPENDING"}})
                .at("SecretString"),
            "two");
  EXPECT_EQ(call("GetSecretValue", {{"SecretId", "db"}, {"VersionId", v2}}).at("SecretString"),
            "two");
  EXPECT_EQ(error_of("GetSecretValue",
                     {{"SecretId", "db"}, {"VersionId", v2}, {"VersionStage", "AWSCURRENT"}}),
            "ResourceNotFoundException");

  // Moving a label that another version has needs RemoveFromVersionId naming that version.
  EXPECT_EQ(error_of("UpdateSecretVersionStage",
                     {{"SecretId", "db"}, {"VersionStage", "AWSCURRENT"}, {"MoveToVersionId", v2}}),
            "InvalidParameterException");
  EXPECT_EQ(error_of("UpdateSecretVersionStage", {{"SecretId", "db"},
                                                  {"VersionStage", "AWSCURRENT"},
                                                  {"MoveToVersionId", v2},
                                                  {"RemoveFromVersionId", v2}}),
            "InvalidParameterException");
  EXPECT_EQ(error_of("UpdateSecretVersionStage", {{"SecretId", "db"},
                                                  {"VersionStage", "AWSCURRENT"},
                                                  {"MoveToVersionId", "no-such-version"},
                                                  {"RemoveFromVersionId", v1}}),
            "ResourceNotFoundException");
  EXPECT_EQ(
      error_of("UpdateSecretVersionStage",
               {{"SecretId", "db"}, {"VersionStage", "AWSCURRENT"}, {"RemoveFromVersionId", v1}}),
      "InvalidParameterException")
      << "AWSCURRENT can only move";
  EXPECT_EQ(error_of("UpdateSecretVersionStage", {{"SecretId", "db"}, {"VersionStage", "X"}}),
            "InvalidParameterException");
  auto moved = call("UpdateSecretVersionStage", {{"SecretId", "db"},
                                                 {"VersionStage", "AWSCURRENT"},
                                                 {"MoveToVersionId", v2},
                                                 {"RemoveFromVersionId", v1}});
  EXPECT_EQ(moved.at("Name"), "db");
  EXPECT_EQ(call("GetSecretValue", {{"SecretId", "db"}}).at("SecretString"), "two");
  const auto stages = call("DescribeSecret", {{"SecretId", "db"}}).at("VersionIdsToStages");
  EXPECT_EQ(stages.as_object().at(v1), (json::array{"AWSPREVIOUS"}));
  EXPECT_EQ(stages.as_object().at(v2), (json::array{"AWSPENDING", "AWSCURRENT"}));
  // What the proxies get: the previous version knows when it stopped being current.
  const auto staged = secrets.staged_strings("db");
  ASSERT_EQ(staged.size(), 2u);
  EXPECT_EQ(staged[0].secret_string, "one");
  EXPECT_TRUE(staged[0].demoted);
  EXPECT_FALSE(staged[1].demoted);
  EXPECT_GE(*staged[0].demoted, staged[1].created);

  // Removing a label; a version left without any is deprecated: listed only on request.
  call("UpdateSecretVersionStage",
       {{"SecretId", "db"}, {"VersionStage", "AWSPREVIOUS"}, {"RemoveFromVersionId", v1}});
  EXPECT_EQ(
      call("DescribeSecret", {{"SecretId", "db"}}).at("VersionIdsToStages").as_object().size(), 1u);
  const auto listed = call("ListSecretVersionIds", {{"SecretId", "db"}});
  ASSERT_EQ(listed.at("Versions").as_array().size(), 1u);
  EXPECT_EQ(listed.at("Versions").as_array()[0].as_object().at("VersionId").as_string(), v2);
  const auto all = call("ListSecretVersionIds", {{"SecretId", "db"}, {"IncludeDeprecated", true}});
  ASSERT_EQ(all.at("Versions").as_array().size(), 2u);
  EXPECT_FALSE(all.at("Versions").as_array()[0].as_object().contains("VersionStages"));
  EXPECT_EQ(call("GetSecretValue", {{"SecretId", "db"}, {"VersionId", v1}}).at("SecretString"),
            "one");
  const auto page = call("ListSecretVersionIds",
                         {{"SecretId", "db"}, {"IncludeDeprecated", true}, {"MaxResults", 1}});
  EXPECT_EQ(page.at("Versions").as_array().size(), 1u);
  ASSERT_TRUE(page.contains("NextToken"));
  EXPECT_EQ(
      call("ListSecretVersionIds",
           {{"SecretId", "db"}, {"IncludeDeprecated", true}, {"NextToken", page.at("NextToken")}})
          .at("Versions")
          .as_array()
          .size(),
      1u);
}

TEST_F(SecretsFixture, PutSecretValueStagesAndIdempotency) {
  // A secret's first version is AWSCURRENT whatever it is staged as.
  call("CreateSecret", {{"Name", "empty"}});
  auto first = call(
      "PutSecretValue",
      {{"SecretId", "empty"}, {"SecretString", "a"}, {"VersionStages", json::array{"AWSPENDING"}}});
  EXPECT_EQ(first.at("VersionStages"), (json::array{"AWSPENDING", "AWSCURRENT"}));
  // The same token and value again: nothing changes; another value: refused.
  const std::string token = "0123456789abcdef0123456789abcdef";
  auto put = [&](std::string_view value) {
    return call("PutSecretValue",
                {{"SecretId", "empty"}, {"SecretString", value}, {"ClientRequestToken", token}});
  };
  EXPECT_EQ(put("b").at("VersionId").as_string(), token);
  EXPECT_EQ(put("b").at("VersionId").as_string(), token);
  EXPECT_EQ(call("ListSecretVersionIds", {{"SecretId", "empty"}}).at("Versions").as_array().size(),
            2u);
  EXPECT_EQ(error_of("PutSecretValue",
                     {{"SecretId", "empty"}, {"SecretString", "c"}, {"ClientRequestToken", token}}),
            "ResourceExistsException");
  EXPECT_EQ(
      error_of("PutSecretValue",
               {{"SecretId", "empty"}, {"SecretString", "c"}, {"VersionStages", json::array{}}}),
      "InvalidParameterException");
  EXPECT_EQ(
      error_of("PutSecretValue",
               {{"SecretId", "empty"}, {"SecretString", "c"}, {"VersionStages", json::array{1}}}),
      "InvalidParameterException");
}

TEST_F(SecretsFixture, BadInputGetsTheServicesErrors) {
  EXPECT_EQ(error_of("CreateSecret", {{"SecretString", "x"}}), "InvalidParameterException");
  EXPECT_EQ(error_of("CreateSecret", {{"Name", "bad name!"}}), "InvalidParameterException");
  EXPECT_EQ(
      error_of("CreateSecret", {{"Name", "n"}, {"SecretString", "x"}, {"SecretBinary", "eA=="}}),
      "InvalidParameterException");
  EXPECT_EQ(error_of("CreateSecret", {{"Name", 42}}), "InvalidParameterException");
  EXPECT_FALSE(store.get("secret", "n")) << "nothing half-created";
  EXPECT_EQ(error_of("GetSecretValue", {}), "InvalidParameterException");
  EXPECT_EQ(error_of("GetSecretValue", {{"SecretId", "nope"}}), "ResourceNotFoundException");
  EXPECT_EQ(error_of("RotateSecret", {{"SecretId", "nope"}}), "UnknownOperationException");
  call("CreateSecret", {{"Name", "bin"}, {"SecretBinary", "AAEC"}});
  EXPECT_EQ(call("GetSecretValue", {{"SecretId", "bin"}}).at("SecretBinary"), "AAEC");
}

}  // namespace
}  // namespace sluice::cloud
