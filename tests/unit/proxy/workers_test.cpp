// Two workers' pools under one ServerBudget: the cap is exact across them, and a connection one
// worker can spare moves to the other (socket and session intact, no new login) instead of being
// closed and opened again. The two event loops run on the test's thread, one poll at a time.
#include <gtest/gtest.h>

#include <vector>

#include "loopback_connector.hpp"
#include "proxy/poller.hpp"
#include "proxy/pool.hpp"
#include "proxy/secrets.hpp"
#include "proxy/server_budget.hpp"

namespace sluice::proxy {
namespace {

using Clock = std::chrono::steady_clock;

using testing::LoopbackConnector;

struct Worker {
  Worker(const Config& config, std::shared_ptr<const SecretStore> secrets, ssl::context& tls,
         ServerBudget& budget, std::vector<tcp_socket>& servers)
      : ctx{io, config, std::move(secrets), &tls, nullptr, metrics},
        connector(io, poller, servers) {
    ctx.poller = &poller;
    ctx.budget = &budget;
    pools = std::make_unique<PoolManager>(ctx, &connector);
    ctx.pools = pools.get();
  }
  asio::io_context io;
  Poller poller{io.get_executor()};
  Metrics metrics;
  ProxyContext ctx;
  LoopbackConnector connector;
  std::unique_ptr<PoolManager> pools;
};

struct Workers : ::testing::Test {
  Config config = [] {
    Config c;
    c.adaptive_concurrency = false;
    return c;
  }();
  std::shared_ptr<const SecretStore> secrets = std::make_shared<SecretStore>();
  ssl::context tls{ssl::context::tls_server};
  ServerBudget budget;
  std::vector<tcp_socket> servers;  // the fake server's end of every connection opened
  Worker a{config, secrets, tls, budget, servers};
  Worker b{config, secrets, tls, budget, servers};
  std::shared_ptr<const Credential> credential = [] {
    auto c = std::make_shared<Credential>();
    c->username = "app";
    return c;
  }();
  // The fake servers' sockets belong to the workers' io_contexts: they go first.
  ~Workers() override { servers.clear(); }

  struct Borrow {
    std::optional<Borrowed> result;
    bool done() const { return result.has_value(); }
    ServerLease& lease() { return result->lease; }
  };
  std::shared_ptr<Borrow> start_borrow(Worker& w) {
    auto borrow = std::make_shared<Borrow>();
    asio::co_spawn(
        w.io,
        [&w, borrow, this]() -> awaitable<void> {
          borrow->result = co_await w.pools->acquire(w.pools->pool_for("db", credential),
                                                     Clock::now() + std::chrono::seconds(30));
        },
        asio::detached);
    run();
    return borrow;
  }
  // Both event loops, until neither has anything left to do now.
  void run() {
    for (int i = 0; i < 20; ++i) {
      a.io.restart();
      b.io.restart();
      if (a.io.poll() + b.io.poll() == 0) return;
    }
  }
  template <class Predicate>
  bool run_until(Predicate done) {
    const auto until = Clock::now() + std::chrono::seconds(5);
    while (!done()) {
      if (Clock::now() >= until) return false;
      run();
    }
    return true;
  }
};

TEST_F(Workers, TheCapIsSharedExactly) {
  budget.set_cap(2);
  auto first = start_borrow(a);
  auto second = start_borrow(b);
  auto third = start_borrow(b);
  ASSERT_TRUE(first->done() && second->done());
  EXPECT_FALSE(third->done()) << "two workers, one cap of two";
  EXPECT_EQ(budget.used(), 2u);
  EXPECT_EQ(a.pools->total() + b.pools->total(), 2u);
  first->lease().release(true);
  ASSERT_TRUE(run_until([&] { return third->done(); }));
  EXPECT_TRUE(third->lease());
  EXPECT_EQ(budget.used(), 2u);
  EXPECT_EQ(a.connector.opened + b.connector.opened, 2) << "the connection moved, no new login";
  second->lease().release(true);
  third->lease().release(true);
}

TEST_F(Workers, AReleasedConnectionMovesToTheOtherWorkersWaiter) {
  auto first = start_borrow(a);
  ASSERT_TRUE(first->done());
  auto waiting = start_borrow(b);
  EXPECT_FALSE(waiting->done()) << "at the cap of one";
  first->lease().release(true);
  ASSERT_TRUE(run_until([&] { return waiting->done(); }));
  ASSERT_TRUE(waiting->lease());
  EXPECT_EQ(a.pools->total(), 0u);
  EXPECT_EQ(b.pools->total(), 1u);
  EXPECT_EQ(budget.used(), 1u);
  EXPECT_EQ(a.metrics.database_connections.load() + b.metrics.database_connections.load(), 0)
      << "the fake connector never counted a login; a move must not count one either";
  // The same server connection, now on b's loop: what b writes reaches that server.
  ASSERT_TRUE(waiting->lease()->transport().write("ping"));
  servers.front().non_blocking(false);
  char got[4];
  asio::read(servers.front(), asio::buffer(got));
  EXPECT_EQ(std::string(got, 4), "ping");
  EXPECT_EQ(servers.size(), 1u);
  waiting->lease().release(true);
}

TEST_F(Workers, AnIdleConnectionMovesWhenTheOtherWorkerWaitsAtTheCap) {
  auto first = start_borrow(a);
  ASSERT_TRUE(first->done());
  first->lease().release(true);
  EXPECT_EQ(a.pools->total(), 1u) << "idle on worker a";
  auto waiting = start_borrow(b);
  ASSERT_TRUE(run_until([&] { return waiting->done(); }));
  ASSERT_TRUE(waiting->lease());
  EXPECT_EQ(a.connector.opened + b.connector.opened, 1);
  EXPECT_EQ(a.pools->total(), 0u);
  waiting->lease().release(true);
}

TEST_F(Workers, UnderTheCapAnotherWorkersIdleConnectionIsMovedRatherThanANewOneOpened) {
  budget.set_cap(5);
  auto first = start_borrow(a);
  ASSERT_TRUE(first->done());
  // What it has prepared goes with it: statement names are the registry's, shared by workers.
  StatementRegistry registry;
  const std::string definition("s\0select 1\0\0\0", 14);
  auto statement =
      registry.intern({reinterpret_cast<const uint8_t*>(definition.data()), definition.size()});
  first->lease()->statements.add(statement);
  first->lease().release(true);
  auto second = start_borrow(b);
  ASSERT_TRUE(run_until([&] { return second->done(); }));
  ASSERT_TRUE(second->lease());
  EXPECT_EQ(a.connector.opened + b.connector.opened, 1) << "no second login";
  EXPECT_EQ(budget.used(), 1u) << "a's room went back; b's holds the connection";
  EXPECT_EQ(a.pools->total(), 0u);
  EXPECT_EQ(b.pools->total(), 1u);
  EXPECT_TRUE(second->lease()->statements.has(*statement));
  second->lease().release(true);
}

TEST_F(Workers, TheServersDefaultsLearnedByOneWorkerServeTheOthersLogins) {
  // A worker's first client is told the server's defaults without borrowing a connection (which
  // another worker's pinned client may hold at a cap of one).
  Pool& on_a = a.pools->pool_for("db", credential);
  Pool& on_b = b.pools->pool_for("db", credential);
  EXPECT_EQ(b.pools->default_parameters(on_b), nullptr);
  a.pools->learn_default_parameters(on_a, {{"TimeZone", "UTC"}});
  const auto* known = b.pools->default_parameters(on_b);
  ASSERT_NE(known, nullptr);
  EXPECT_EQ(known->at("TimeZone"), "UTC");
  EXPECT_EQ(b.pools->default_parameters(b.pools->pool_for("other", credential)), nullptr);
}

TEST_F(Workers, ARoomGivenBackReachesTheOtherWorkersWaiter) {
  auto first = start_borrow(a);
  auto waiting = start_borrow(b);
  ASSERT_FALSE(waiting->done());
  // The connection is lost instead of coming back: its room goes to b, which opens its own.
  first->lease().discard();
  ASSERT_TRUE(run_until([&] { return waiting->done(); }));
  ASSERT_TRUE(waiting->lease());
  EXPECT_EQ(b.connector.opened, 1);
  EXPECT_EQ(budget.used(), 1u);
  waiting->lease().release(true);
}

}  // namespace
}  // namespace sluice::proxy
