// The handover over a real Unix socket: the very listening socket (and its queue) moves.
#include "proxy/handover.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

namespace sluice::proxy::handover {
namespace {

int listening_socket(uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  EXPECT_EQ(::listen(fd, 16), 0);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  port = ntohs(address.sin_port);
  return fd;
}

int connect_to(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  return fd;
}

std::string socket_path() {
  return (std::filesystem::temp_directory_path() /
          ("sluice-handover-test-" + std::to_string(::getpid()) + ".sock"))
      .string();
}

bool wait_until(const std::atomic<bool>& flag) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!flag && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return flag;
}

TEST(Handover, TheListeningSocketAndItsQueueMove) {
  uint16_t port = 0;
  const int listener = listening_socket(port);
  // Queued before the handover: accepted by the new owner after it.
  const int early_client = connect_to(port);
  const std::string path = socket_path();
  std::atomic<bool> handed_over{false};
  std::atomic<uint32_t> new_pid{0};
  HandoverServer server(path);
  server.start({{ListenerKind::kClient, "127.0.0.1:0", {listener}}}, [&](uint32_t pid) {
    new_pid = pid;
    handed_over = true;
  });
  struct stat status {};
  ASSERT_EQ(::stat(path.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
  EXPECT_TRUE(socket_answers(path));

  HandoverClient client(path);
  EXPECT_EQ(client.peer_pid(), static_cast<uint32_t>(::getpid()));
  auto listeners = client.take_listeners();
  ASSERT_EQ(listeners.size(), 1u);
  ASSERT_EQ(listeners[0].fds.size(), 1u);
  EXPECT_EQ(listeners[0].label, "127.0.0.1:0");
  const int received = listeners[0].fds[0];
  EXPECT_NE(received, listener);
  EXPECT_FALSE(handed_over);  // not before Ready
  EXPECT_TRUE(client.confirm());
  ASSERT_TRUE(wait_until(handed_over));
  EXPECT_EQ(new_pid, static_cast<uint32_t>(::getpid()));
  ::close(listener);  // the old owner stops; the socket lives on in `received`
  const int late_client = connect_to(port);
  for (int i = 0; i < 2; ++i) {
    const int accepted = ::accept(received, nullptr, nullptr);
    EXPECT_GE(accepted, 0);
    ::close(accepted);
  }
  server.stop();
  // Handed over: the file is the successor's to replace or remove, not the old server's.
  EXPECT_TRUE(std::filesystem::exists(path));
  std::filesystem::remove(path);
  ::close(received);
  ::close(early_client);
  ::close(late_client);
}

TEST(Handover, ANewProcessThatGoesAwayBeforeReadyChangesNothing) {
  uint16_t port = 0;
  const int listener = listening_socket(port);
  const std::string path = socket_path();
  std::atomic<bool> handed_over{false};
  HandoverServer server(path);
  server.start(
      {{ListenerKind::kClient, "a", {listener}}, {ListenerKind::kMetrics, "m", {listener}}},
      [&](uint32_t) { handed_over = true; });
  {
    HandoverClient quitter(path);  // takes the offer, never confirms
    EXPECT_EQ(quitter.take_listeners().size(), 2u);
  }
  // Still offering: the next one gets everything and may confirm.
  HandoverClient next(path);
  EXPECT_EQ(next.take_listeners().size(), 2u);
  EXPECT_FALSE(handed_over);
  EXPECT_TRUE(next.confirm());
  EXPECT_TRUE(wait_until(handed_over));
  server.stop();
  std::filesystem::remove(path);
  ::close(listener);
}

TEST(Handover, WhatIsOfferedFollowsUpdates) {
  // A reload that changes the listen addresses tells the server before closing what it dropped.
  uint16_t port = 0;
  const int kept = listening_socket(port);
  const int dropped = listening_socket(port);
  const std::string path = socket_path();
  HandoverServer server(path);
  server.start(
      {{ListenerKind::kClient, "kept", {kept}}, {ListenerKind::kClient, "dropped", {dropped}}},
      [](uint32_t) {});
  server.update_listeners({{ListenerKind::kClient, "kept", {kept}}});
  ::close(dropped);
  {
    HandoverClient client(path);
    const auto listeners = client.take_listeners();
    ASSERT_EQ(listeners.size(), 1u);
    EXPECT_EQ(listeners[0].label, "kept");
    for (int fd : listeners[0].fds) ::close(fd);
  }
  server.stop();
  ::close(kept);
}

TEST(Handover, StopRemovesOnlyItsOwnSocketFile) {
  const std::string path = socket_path();
  {
    HandoverServer server(path);
    server.start({}, [](uint32_t) {});
    EXPECT_TRUE(socket_answers(path));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(socket_answers(path));
  EXPECT_THROW(HandoverClient{path}, HandoverError);
  // A stale file (its process died) is replaced.
  {
    std::FILE* stale = std::fopen(path.c_str(), "w");
    std::fclose(stale);
    HandoverServer server(path);
    server.start({}, [](uint32_t) {});
    EXPECT_TRUE(socket_answers(path));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace sluice::proxy::handover
