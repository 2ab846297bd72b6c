// Admission rules: which sources each listener admits (the security groups' decision).
#include "proxy/admission.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

namespace sluice::proxy {
namespace {

std::optional<uint32_t> ip(const char* text) {
  in_addr a{};
  inet_pton(AF_INET, text, &a);
  return ntohl(a.s_addr);
}

TEST(Admission, ListenersAdmitTheirOwnSourcesOnly) {
  const Admission rules = Admission::parse(
      "# comment\n"
      "127.64.1.2:5432 *\n"
      "fd:3 10.0.2.4/32\n"
      "fd:3 10.0.8.0/24\n"
      "fd:4 0.0.0.0/0\n");
  EXPECT_TRUE(rules.admits("127.64.1.2:5432", ip("127.0.0.1")));
  EXPECT_TRUE(rules.admits("127.64.1.2:5432", std::nullopt));  // "*" admits IPv6 too
  EXPECT_TRUE(rules.admits("fd:3", ip("10.0.2.4")));
  EXPECT_FALSE(rules.admits("fd:3", ip("10.0.2.5")));
  EXPECT_TRUE(rules.admits("fd:3", ip("10.0.8.200")));
  EXPECT_FALSE(rules.admits("fd:3", ip("10.0.9.1")));
  EXPECT_FALSE(rules.admits("fd:3", std::nullopt));
  EXPECT_TRUE(rules.admits("fd:4", ip("192.0.2.1")));
  EXPECT_FALSE(rules.admits("fd:5", ip("10.0.2.4")));  // no lines: nobody
  EXPECT_FALSE(Admission::parse("").admits("fd:3", ip("10.0.2.4")));
}

TEST(Admission, MalformedLinesAreRefusedWithTheirNumber) {
  for (const char* bad : {"fd:3\n", "fd:3 10.0.0.0/33\n", "fd:3 10.0.0/8\n", "fd:3 ::1/128\n",
                          "fd:3 10.0.0.1 extra\n", "fd:3 10.0.0.1/x\n"}) {
    try {
      Admission::parse(std::string("# first\n") + bad);
      ADD_FAILURE() << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
    }
  }
}

TEST(AdmissionFile, ReloadsWhenChangedAndKeepsTheLastGoodRules) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("sluice-admission-" + std::to_string(::getpid())))
          .string();
  std::ofstream(path) << "fd:3 10.0.0.1/32\n";
  AdmissionFile file(path);
  file.load();
  EXPECT_TRUE(file.current().admits("fd:3", ip("10.0.0.1")));
  std::ofstream(path, std::ios::trunc) << "fd:3 10.0.0.2/32\nfd:3 10.0.0.3/32\n";
  file.refresh();
  EXPECT_FALSE(file.current().admits("fd:3", ip("10.0.0.1")));
  EXPECT_TRUE(file.current().admits("fd:3", ip("10.0.0.3")));
  std::ofstream(path, std::ios::trunc) << "fd:3 not-an-address-at-all\n";
  file.refresh();
  EXPECT_TRUE(file.current().admits("fd:3", ip("10.0.0.3")));  // the last good rules stay
  std::remove(path.c_str());
  file.refresh();  // gone for a moment (being replaced): still the last rules
  EXPECT_TRUE(file.current().admits("fd:3", ip("10.0.0.2")));
  AdmissionFile missing(path);
  EXPECT_THROW(missing.load(), std::runtime_error);
}

}  // namespace
}  // namespace sluice::proxy
