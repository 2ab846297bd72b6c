#include "auth/crypto.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace sluice::auth
