// The decoy credential for unknown users: the same exchange as a real user's, with a salt that
// stays the same for a name (as a real user's does) and keys that match no password.
#include "proxy/secrets.hpp"

#include <gtest/gtest.h>

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
