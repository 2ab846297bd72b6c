#include "auth/crypto.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>

namespace sluice::auth {
namespace {

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(constant_time_equals("", ""));
  EXPECT_TRUE(constant_time_equals("abc", "abc"));
  EXPECT_TRUE(constant_time_equals(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(constant_time_equals("abc", "abd"));
  EXPECT_FALSE(constant_time_equals("abc", "ab"));
  EXPECT_FALSE(constant_time_equals("", "a"));
  EXPECT_FALSE(constant_time_equals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [raw, text] : vectors) {
    EXPECT_EQ(base64_encode(raw), text);
    EXPECT_EQ(base64_decode(text), raw) << text;
  }
}

TEST(Base64, BinaryRoundTripAllLengthsAndBytes) {
  std::string raw;
  for (int len = 0; len <= 300; ++len) {
    const std::string text = base64_encode(raw);
    EXPECT_EQ(text.size() % 4, 0u);
    EXPECT_EQ(base64_decode(text), raw) << "length " << len;
    raw += static_cast<char>(len * 37 + 11);  // covers every byte value
  }
  EXPECT_EQ(base64_encode("\xff\xfe\xfd"), "//79");
  EXPECT_EQ(base64_encode("\xfb\xef"), "++8=");
}

TEST(Base64, RejectsMalformedInput) {
  const std::string bad[] = {
      "Z",
      "Zg",
      "Zg=",
      "Zm9vY",
      "Zg===",
      "====",
      "Z===",
      "=Zg=",
      "Z=g=",
      "Zm9v=",
      "Zg==Zg==",
      "Zg==Zm9v",
      "Zm9v\n",
      " Zm9v",
      "Zm9v ",
      "Zm 9v",
      "Zm9v\r\n",
      "Zm-v",
      "Zm_v",
      "Zm9.",
      "Zm9v\t",
      "Zh==",  // non-canonical: low bits set before "=="
      "Zm9=",  // non-canonical: low bits set before "="
      std::string("Zm\0v", 4),
      "Zm\xffv",
      "Zm9v\x80===",
  };
  for (const auto& text : bad) EXPECT_EQ(base64_decode(text), std::nullopt) << text;
}

TEST(RandomBytes, ReturnsRequestedLengthAndVaries) {
  EXPECT_EQ(random_bytes(0), "");
  const std::string a = random_bytes(32), b = random_bytes(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(b.size(), 32u);
  EXPECT_NE(a, b);  // 2^-256 chance of a false failure
  EXPECT_EQ(random_bytes(1000).size(), 1000u);
}

TEST(PooledRandomBytes, NeverRepeatsAcrossRefillsAndServesLargeRequests) {
  EXPECT_EQ(pooled_random_bytes(0), "");
  std::set<std::string> seen;
  for (size_t i = 0; i < 3 * kRandomPoolSize / 18; ++i) {  // three refills of the pool
    const std::string nonce = pooled_random_bytes(18);
    ASSERT_EQ(nonce.size(), 18u);
    EXPECT_TRUE(seen.insert(nonce).second) << "repeated at " << i;
  }
  EXPECT_EQ(pooled_random_bytes(kRandomPoolSize + 1).size(), kRandomPoolSize + 1);
}

TEST(PooledRandomBytes, AForkedChildDoesNotHandOutItsParentsBytes) {
  pooled_random_bytes(1);  // the pool is full now, and the child would inherit it
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string mine = pooled_random_bytes(32);
    const ssize_t written = write(fds[1], mine.data(), mine.size());
    _exit(written == 32 ? 0 : 1);
  }
  close(fds[1]);
  const std::string parents = pooled_random_bytes(32);
  char childs[32];
  size_t got = 0;
  while (got < sizeof childs) {
    const ssize_t n = read(fds[0], childs + got, sizeof childs - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_EQ(got, sizeof childs);
  EXPECT_NE(parents, std::string(childs, sizeof childs));
}

}  // namespace
}  // namespace sluice::auth
