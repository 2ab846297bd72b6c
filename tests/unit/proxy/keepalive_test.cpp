#include "proxy/keepalive.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sluice::proxy {
namespace {

int option(int fd, int level, int name) {
  int value = -1;
  socklen_t length = sizeof value;
  EXPECT_EQ(::getsockopt(fd, level, name, &value, &length), 0);
  return value;
}

struct Socket {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ~Socket() { ::close(fd); }
};

TEST(Keepalive, SetsTheConfiguredProbes) {
  Socket s;
  ASSERT_GE(s.fd, 0);
  EXPECT_EQ(apply_keepalive(s.fd, {.enabled = true, .idle = 7, .interval = 3, .count = 5}), "");
  EXPECT_EQ(option(s.fd, SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(option(s.fd, IPPROTO_TCP, TCP_KEEPIDLE), 7);
  EXPECT_EQ(option(s.fd, IPPROTO_TCP, TCP_KEEPINTVL), 3);
  EXPECT_EQ(option(s.fd, IPPROTO_TCP, TCP_KEEPCNT), 5);
}

TEST(Keepalive, DisabledTurnsThemOff) {
  Socket s;
  ASSERT_EQ(apply_keepalive(s.fd, {}), "");
  ASSERT_EQ(option(s.fd, SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(apply_keepalive(s.fd, {.enabled = false}), "");
  EXPECT_EQ(option(s.fd, SOL_SOCKET, SO_KEEPALIVE), 0);
}

TEST(Keepalive, ReportsWhatTheKernelRefused) {
  EXPECT_NE(apply_keepalive(-1, {}).find("SO_KEEPALIVE"), std::string::npos);
  Socket s;
  // Linux caps TCP_KEEPCNT at 127 (the configuration allows no more).
  EXPECT_NE(apply_keepalive(s.fd, {.count = 1000}).find("TCP_KEEPCNT"), std::string::npos);
}

}  // namespace
}  // namespace sluice::proxy
