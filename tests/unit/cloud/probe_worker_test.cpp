// Probes run off the caller's thread: a probe that hangs (a listener that accepts and never
// answers) does not hold up the thread that started it, and its result reaches that thread only
// through deliver().
#include "cloud/probe_worker.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "cloud/sockets.hpp"

namespace sluice::cloud {
namespace {

using Clock = std::chrono::steady_clock;

// A TCP listener on 127.0.0.1 that never accepts: the kernel completes connections into its
// backlog, and nothing ever answers them.
struct SilentListener {
  SilentListener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa = ipv4("127.0.0.1", 0);
    socklen_t len = sizeof sa;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 16) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
      throw std::runtime_error("cannot listen");
    port = ntohs(sa.sin_port);
  }
  ~SilentListener() { ::close(fd); }
  int fd = -1;
  int port = 0;
};

template <typename Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return predicate();
}

TEST(ProbeWorker, AHangingProbeDoesNotHoldUpTheCaller) {
  SilentListener silent;
  ProbeWorker worker;
  constexpr int kProbeTimeoutMs = 2000;
  bool answered = false;
  std::optional<std::string> body = "unset";
  const auto started = Clock::now();
  worker.run<std::optional<std::string>>(
      [port = silent.port] { return local_http_get(port, "/targets", kProbeTimeoutMs); },
      [&](std::optional<std::string> result) {
        answered = true;
        body = std::move(result);
      });
  // The caller goes on at once, while the probe waits for an answer that never comes.
  EXPECT_EQ(worker.deliver(), 0u);
  const auto waited = Clock::now() - started;
  EXPECT_LT(waited, std::chrono::milliseconds(kProbeTimeoutMs / 4));
  EXPECT_FALSE(answered);
  EXPECT_EQ(worker.outstanding(), 1u);
  // The probe gives up after its timeout; its result arrives through deliver().
  EXPECT_TRUE(eventually([&] { return worker.deliver() == 1; }, std::chrono::seconds(10)));
  EXPECT_TRUE(answered);
  EXPECT_EQ(body, std::nullopt);
  EXPECT_GE(Clock::now() - started, std::chrono::milliseconds(kProbeTimeoutMs / 2));
  EXPECT_EQ(worker.outstanding(), 0u);
}

TEST(ProbeWorker, ResultsAreAppliedOnTheDeliveringThreadInOrder) {
  ProbeWorker worker(1);
  std::vector<int> seen;
  std::atomic<bool> probed_here = false;
  const auto caller = std::this_thread::get_id();
  for (int i = 0; i < 5; ++i)
    worker.run<int>(
        [i, caller, &probed_here] {
          if (std::this_thread::get_id() == caller) probed_here = true;
          return i;
        },
        [&, caller](int n) {
          EXPECT_EQ(std::this_thread::get_id(), caller);
          seen.push_back(n);
        });
  size_t delivered = 0;
  EXPECT_TRUE(eventually(
      [&] {
        delivered += worker.deliver();
        return delivered == 5;
      },
      std::chrono::seconds(10)));
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_FALSE(probed_here);
}

TEST(ProbeWorker, AProbeThatThrowsHasNoResult) {
  ProbeWorker worker;
  bool done = false;
  worker.run<int>([]() -> int { throw std::runtime_error("no answer"); },
                  [&](int) { done = true; });
  EXPECT_TRUE(eventually([&] { return worker.outstanding() == 0; }, std::chrono::seconds(10)));
  EXPECT_EQ(worker.deliver(), 0u);
  EXPECT_FALSE(done);
}

TEST(ProbeWorker, ResultsNobodyCollectedAreDroppedWithTheWorker) {
  bool done = false;
  {
    ProbeWorker worker;
    worker.run<int>([] { return 1; }, [&](int) { done = true; });
    EXPECT_TRUE(eventually([&] { return worker.outstanding() == 1; }, std::chrono::seconds(10)));
  }
  EXPECT_FALSE(done);
}

TEST(Sockets, AcceptsConnectionsIsBoundedAndTellsListenersFromClosedPorts) {
  SilentListener silent;
  EXPECT_TRUE(accepts_connections("127.0.0.1", silent.port));
  const int closed = free_local_port();
  EXPECT_FALSE(accepts_connections("127.0.0.1", closed));
}

}  // namespace
}  // namespace sluice::cloud
