// The pool's stateful core through a connector that needs no server: leases and their one way
// back, connection states, the borrow timeout, cancel racing release, loss while lent.
#include "proxy/pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <thread>
#include <vector>

#include "proxy/secrets.hpp"
#include "proxy/target_health.hpp"

namespace sluice::proxy {
namespace {

using Clock = std::chrono::steady_clock;

struct FakeConnector : ServerConnector {
  int opened = 0;
  int attempts = 0;
  // A server with room for this many connections: logins beyond it are refused with 53300, as
  // PostgreSQL refuses them at max_connections. When set, each login also tells the proxy its
  // max_connections (server_room_for + 10), which raises the cap.
  std::optional<int> server_room_for;
  std::vector<std::function<void()>> cancels;  // pending: the server has not taken them yet
  awaitable<std::optional<ServerError>> open(ServerConnection& connection,
                                             Clock::time_point) override {
    ++attempts;
    if (server_room_for) {
      if (opened >= *server_room_for)
        co_return ServerError{"FATAL", "53300", "sorry, too many clients already", true};
      connection.server_max_connections = *server_room_for + 10;
    }
    ++opened;
    co_return std::nullopt;
  }
  void cancel(const std::shared_ptr<ServerConnection>&, std::function<void()> done) override {
    cancels.push_back(std::move(done));
  }
};

struct PoolTest : ::testing::Test {
  asio::io_context io;
  Config config = [] {
    Config c;
    c.adaptive_concurrency = false;  // the cap alone: one connection until a server says more
    return c;
  }();
  std::shared_ptr<const SecretStore> secrets = std::make_shared<SecretStore>();
  ssl::context tls{ssl::context::tls_server};
  Metrics metrics;
  ProxyContext ctx{io, config, secrets, &tls, nullptr, metrics};
  FakeConnector connector;
  PoolManager pools{ctx, &connector};
  std::shared_ptr<const Credential> credential = [] {
    auto c = std::make_shared<Credential>();
    c->username = "app";
    return c;
  }();
  Pool& pool = pools.pool_for("db", credential);

  // A borrow running as a client's would; `done` once it returned.
  struct Borrow {
    std::optional<Borrowed> result;
    bool done() const { return result.has_value(); }
    ServerLease& lease() { return result->lease; }
  };
  std::shared_ptr<Borrow> start_borrow(Clock::duration timeout = std::chrono::seconds(30)) {
    auto borrow = std::make_shared<Borrow>();
    asio::co_spawn(
        io,
        [this, borrow, timeout]() -> awaitable<void> {
          borrow->result = co_await pools.acquire(pool, Clock::now() + timeout);
        },
        asio::detached);
    run();
    return borrow;
  }
  void run() {
    io.restart();
    io.poll();
  }
  int64_t in_state(ServerState state) {
    return metrics.database_connections_in_state[static_cast<size_t>(state)].load();
  }
};

TEST_F(PoolTest, ALeaseComesBackIdleAndIsLentAgain) {
  auto first = start_borrow();
  ASSERT_TRUE(first->done());
  ASSERT_TRUE(first->lease());
  const uint64_t id = first->lease()->id();
  EXPECT_EQ(first->lease()->state(), ServerState::kLent);
  EXPECT_EQ(metrics.database_connections_currently_borrowed.load(), 1);
  EXPECT_EQ(pools.lent(), 1u);

  auto connection = first->lease().connection();
  first->lease().release(true);
  EXPECT_FALSE(first->lease());
  EXPECT_EQ(connection->state(), ServerState::kIdle);
  EXPECT_EQ(metrics.database_connections_currently_borrowed.load(), 0);
  EXPECT_EQ(pools.lent(), 0u);
  EXPECT_EQ(in_state(ServerState::kIdle), 1);

  ServerLease again = pools.take_idle(pool);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id(), id);
  EXPECT_EQ(again->state(), ServerState::kLent);
  EXPECT_EQ(connector.opened, 1);
  again.release(true);
}

TEST_F(PoolTest, AReleasedConnectionGoesStraightToTheOldestWaiter) {
  auto first = start_borrow();
  auto second = start_borrow();
  EXPECT_FALSE(second->done()) << "at the cap of one connection";
  const uint64_t id = first->lease()->id();
  first->lease().release(true);
  run();
  ASSERT_TRUE(second->done());
  ASSERT_TRUE(second->lease());
  EXPECT_EQ(second->lease()->id(), id);
  EXPECT_EQ(connector.opened, 1);
  second->lease().release(true);
}

TEST_F(PoolTest, ServerLossWhileLentFreesRoomForTheNextClient) {
  auto first = start_borrow();
  auto second = start_borrow();
  ASSERT_FALSE(second->done());
  auto lost = first->lease().connection();
  lost->broken = true;
  first->lease().discard();
  EXPECT_EQ(lost->state(), ServerState::kClosed);
  run();
  ASSERT_TRUE(second->done());
  ASSERT_TRUE(second->lease());
  EXPECT_NE(second->lease()->id(), lost->id());
  EXPECT_EQ(connector.opened, 2);
  EXPECT_EQ(pools.total(), 1u);
  second->lease().release(true);
}

TEST_F(PoolTest, ABrokenConnectionIsClosedEvenWhenCalledReusable) {
  auto first = start_borrow();
  auto connection = first->lease().connection();
  connection->broken = true;
  first->lease().release(true);
  EXPECT_EQ(connection->state(), ServerState::kClosed);
  EXPECT_EQ(pools.total(), 0u);
}

TEST_F(PoolTest, ALeaseDroppedWithoutReleaseIsDiscarded) {
  std::shared_ptr<ServerConnection> connection;
  {
    auto first = start_borrow();
    connection = first->lease().connection();
  }
  EXPECT_EQ(connection->state(), ServerState::kClosed);
  EXPECT_EQ(pools.total(), 0u);
  EXPECT_EQ(metrics.database_connections_currently_borrowed.load(), 0);
}

TEST_F(PoolTest, BorrowTimesOutAtTheDeadline) {
  auto first = start_borrow();
  auto second = start_borrow(std::chrono::milliseconds(1));
  ASSERT_FALSE(second->done());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past its deadline
  pools.expire_waiters(Clock::now());
  run();
  ASSERT_TRUE(second->done());
  EXPECT_FALSE(second->lease());
  ASSERT_TRUE(second->result->error);
  EXPECT_EQ(second->result->error->sqlstate, "08000");
  EXPECT_EQ(second->result->error->message, "Timed-out waiting to acquire database connection.");
  EXPECT_EQ(metrics.database_connections_borrow_timeouts.load(), 1u);
  first->lease().release(true);
}

// A client's wait at the cap without acquire(): its own waiter, reused from one wait to the next.
struct LineTest : PoolTest {
  std::shared_ptr<Waiter> waiter = std::make_shared<Waiter>(io.get_executor(), Clock::time_point{});
  bool woken = false;
  // Waits on the waiter as the client reader does; `woken` once it resumed.
  void wait_in_line() {
    woken = false;
    asio::co_spawn(
        io,
        [this]() -> awaitable<void> {
          co_await waiter->wakeup.wait();
          woken = true;
        },
        asio::detached);
    run();
  }
};

TEST_F(LineTest, BelowTheCapNobodyJoinsTheLine) {
  EXPECT_FALSE(pools.join_line(pool, waiter, Clock::now() + std::chrono::seconds(30)))
      << "room to open a connection: acquire() opens it";
  auto first = start_borrow();
  first->lease().release(true);
  EXPECT_FALSE(pools.join_line(pool, waiter, Clock::now() + std::chrono::seconds(30)))
      << "an idle connection";
  EXPECT_TRUE(pool.waiters.empty());
}

TEST_F(LineTest, AReleasedConnectionIsHandedToTheWaiterInLineAgainAndAgain) {
  auto first = start_borrow();
  ServerLease held = std::move(first->lease());
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(pools.join_line(pool, waiter, Clock::now() + std::chrono::seconds(30)));
    wait_in_line();
    ASSERT_FALSE(woken) << "at the cap of one connection";
    EXPECT_EQ(pool.waiters.size(), 1u);
    const uint64_t id = held->id();
    held.release(true);  // handed over and resumed inside this call
    EXPECT_TRUE(woken);
    held = pools.leave_line(pool, waiter);
    ASSERT_TRUE(held);
    EXPECT_EQ(held->id(), id);
    EXPECT_EQ(held->state(), ServerState::kLent);
    EXPECT_TRUE(pool.waiters.empty());
    EXPECT_EQ(metrics.database_connections_currently_borrowed.load(), 1);
  }
  EXPECT_EQ(connector.opened, 1);
  held.release(true);
}

TEST_F(LineTest, AWaiterGrantedRoomOpensThroughAcquire) {
  auto first = start_borrow();
  ASSERT_TRUE(pools.join_line(pool, waiter, Clock::now() + std::chrono::seconds(30)));
  wait_in_line();
  first->lease().discard();  // its room goes to the waiter
  run();
  ASSERT_TRUE(woken);
  EXPECT_FALSE(pools.leave_line(pool, waiter)) << "room, not a connection";
  std::optional<Borrowed> result;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        result = co_await pools.acquire(pool, Clock::now() + std::chrono::seconds(30), {}, waiter);
      },
      asio::detached);
  run();
  ASSERT_TRUE(result && result->lease);
  EXPECT_EQ(connector.opened, 2);
  EXPECT_EQ(pools.total(), 1u) << "the granted room became the new connection";
  result->lease.release(true);
}

TEST_F(LineTest, AWaiterPastItsDeadlineTimesOutThroughAcquire) {
  auto first = start_borrow();
  ASSERT_TRUE(pools.join_line(pool, waiter, Clock::now() + std::chrono::milliseconds(1)));
  wait_in_line();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past its deadline
  pools.expire_waiters(Clock::now());
  run();
  ASSERT_TRUE(woken);
  EXPECT_FALSE(pools.leave_line(pool, waiter));
  std::optional<Borrowed> result;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        result = co_await pools.acquire(pool, Clock::now() - std::chrono::seconds(1), {}, waiter);
      },
      asio::detached);
  run();
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->lease);
  ASSERT_TRUE(result->error);
  EXPECT_EQ(result->error->sqlstate, "08000");
  EXPECT_TRUE(pool.waiters.empty());
  first->lease().release(true);
}

TEST_F(LineTest, ALateNotificationDoesNotEndTheNextWait) {
  auto first = start_borrow();
  ServerLease held = std::move(first->lease());
  ASSERT_TRUE(pools.join_line(pool, waiter, Clock::now() + std::chrono::milliseconds(1)));
  wait_in_line();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  pools.expire_waiters(Clock::now());  // posted: the waiter resumes later
  held.release(true);                  // handed to it meanwhile: a second, late notification
  run();
  ASSERT_TRUE(woken);
  held = pools.leave_line(pool, waiter);
  ASSERT_TRUE(held) << "the connection handed over is taken, deadline or not";
  ASSERT_TRUE(pools.join_line(pool, waiter, Clock::now() + std::chrono::seconds(30)));
  wait_in_line();
  EXPECT_FALSE(woken) << "nothing was handed in this wait";
  held.release(true);
  EXPECT_TRUE(woken);
  held = pools.leave_line(pool, waiter);
  EXPECT_TRUE(held);
  held.release(true);
}

TEST_F(PoolTest, CancelRacingReleaseParksTheConnectionUntilTheServerTookIt) {
  auto first = start_borrow();
  auto second = start_borrow();
  auto connection = first->lease().connection();
  pools.cancel(first->lease());
  ASSERT_EQ(connector.cancels.size(), 1u);
  first->lease().release(true);  // the client left before the server took the cancel
  EXPECT_EQ(connection->state(), ServerState::kCancelling);
  run();
  EXPECT_FALSE(second->done()) << "a late cancel must not hit the next client's query";
  connector.cancels[0]();
  run();
  ASSERT_TRUE(second->done());
  ASSERT_TRUE(second->lease());
  EXPECT_EQ(second->lease()->id(), connection->id());
  EXPECT_EQ(connection->state(), ServerState::kLent);
  second->lease().release(true);
}

TEST_F(PoolTest, ACancelTakenBeforeReleaseLeavesNothingParked) {
  auto first = start_borrow();
  auto connection = first->lease().connection();
  pools.cancel(first->lease());
  connector.cancels[0]();
  EXPECT_EQ(connection->state(), ServerState::kLent);
  first->lease().release(true);
  EXPECT_EQ(connection->state(), ServerState::kIdle);
}

TEST_F(PoolTest, APinnedLeaseLeavesTheLentCount) {
  auto first = start_borrow();
  EXPECT_EQ(pools.lent(), 1u);
  first->lease().pin();
  EXPECT_EQ(first->lease()->state(), ServerState::kPinned);
  EXPECT_EQ(pools.lent(), 0u) << "a pinned session mostly idles on its connection";
  EXPECT_EQ(metrics.database_connections_currently_borrowed.load(), 1);
  auto connection = first->lease().connection();
  first->lease().release(true);
  EXPECT_EQ(connection->state(), ServerState::kIdle);
  EXPECT_EQ(pools.lent(), 0u);
}

TEST_F(PoolTest, ConnectionsAreCountedByState) {
  auto first = start_borrow();
  EXPECT_EQ(in_state(ServerState::kLent), 1);
  first->lease().pin();
  EXPECT_EQ(in_state(ServerState::kLent), 0);
  EXPECT_EQ(in_state(ServerState::kPinned), 1);
  first->lease().release(true);
  EXPECT_EQ(in_state(ServerState::kPinned), 0);
  EXPECT_EQ(in_state(ServerState::kIdle), 1);
  pools.close_all_idle();
  EXPECT_EQ(in_state(ServerState::kIdle), 0);
}

TEST_F(PoolTest, EachPoolCountsItsConnectionsByStateAndItsBorrows) {
  auto first = start_borrow();
  EXPECT_EQ(pool.servers[static_cast<size_t>(ServerState::kLent)], 1u);
  first->lease().pin();
  EXPECT_EQ(pool.servers[static_cast<size_t>(ServerState::kLent)], 0u);
  EXPECT_EQ(pool.servers[static_cast<size_t>(ServerState::kPinned)], 1u);
  first->lease().release(true);
  EXPECT_EQ(pool.servers[static_cast<size_t>(ServerState::kPinned)], 0u);
  EXPECT_EQ(pool.servers[static_cast<size_t>(ServerState::kIdle)], 1u);
  EXPECT_EQ(pool.stats.transactions, 1u);
  pools.close_all_idle();
  EXPECT_EQ(pool.servers[static_cast<size_t>(ServerState::kIdle)], 0u);
  EXPECT_EQ(pool.servers[static_cast<size_t>(ServerState::kClosed)], 0u) << "closed: not counted";
}

TEST_F(PoolTest, PausedPoolsLendNothingUntilResumed) {
  auto first = start_borrow();
  EXPECT_EQ(pools.borrowed(), 1u);
  pools.pause();
  auto second = start_borrow();
  EXPECT_FALSE(second->done());
  auto connection = first->lease().connection();
  first->lease().release(true);
  run();
  EXPECT_EQ(connection->state(), ServerState::kIdle) << "back from its client, it rests";
  EXPECT_FALSE(second->done()) << "not handed to the waiter while paused";
  EXPECT_EQ(pools.borrowed(), 0u) << "what PAUSE waits for";
  EXPECT_FALSE(pools.take_idle(pool)) << "not lent while paused";
  pools.resume();
  run();
  ASSERT_TRUE(second->done());
  ASSERT_TRUE(second->lease());
  EXPECT_EQ(second->lease()->id(), connection->id());
  EXPECT_EQ(connector.opened, 1);
  second->lease().release(true);
}

TEST_F(PoolTest, APausedBorrowStillTimesOut) {
  pools.pause();
  auto waiting = start_borrow(std::chrono::milliseconds(1));
  ASSERT_FALSE(waiting->done());
  EXPECT_EQ(connector.opened, 0) << "no new connection while paused";
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  pools.expire_waiters(Clock::now());
  run();
  ASSERT_TRUE(waiting->done());
  ASSERT_TRUE(waiting->result->error);
  EXPECT_EQ(waiting->result->error->sqlstate, "08000");
}

TEST_F(PoolTest, DrainingOverridesPause) {
  pools.pause();
  auto waiting = start_borrow();
  ASSERT_FALSE(waiting->done());
  ctx.draining = true;  // SHUTDOWN while paused: open transactions may finish, as on SIGTERM
  pools.expire_waiters(Clock::now());
  run();
  ASSERT_TRUE(waiting->done());
  EXPECT_TRUE(waiting->lease());
  waiting->lease().release(true);
}

TEST_F(PoolTest, ServerLifetimeRecyclesIdleConnectionsNeverLentOnes) {
  config.server_lifetime = 1;
  auto first = start_borrow();
  ASSERT_TRUE(first->lease());
  auto connection = first->lease().connection();
  // Older than its lifetime while lent: it stays with its client.
  ctx.coarse_now = connection->opened_at + std::chrono::seconds(2);
  pools.reap_idle(ctx.coarse_now);
  EXPECT_EQ(connection->state(), ServerState::kLent);
  // Back from the client: closed instead of pooled.
  first->lease().release(true);
  EXPECT_EQ(connection->state(), ServerState::kClosed);
  EXPECT_EQ(in_state(ServerState::kIdle), 0);

  // Idle in the pool past its lifetime: the reaper closes it; the next borrow logs in afresh.
  auto second = start_borrow();
  ASSERT_TRUE(second->lease());
  auto young = second->lease().connection();
  EXPECT_NE(young->id(), connection->id());
  ctx.coarse_now = young->opened_at;
  second->lease().release(true);
  EXPECT_EQ(young->state(), ServerState::kIdle);
  pools.reap_idle(ctx.coarse_now);
  EXPECT_EQ(young->state(), ServerState::kIdle);  // not yet
  ctx.coarse_now = young->opened_at + std::chrono::seconds(1);
  pools.reap_idle(ctx.coarse_now);
  EXPECT_EQ(young->state(), ServerState::kClosed);
  EXPECT_EQ(connector.opened, 2);
}

TEST_F(PoolTest, ZeroServerLifetimeIsUnlimited) {
  config.server_lifetime = 0;
  auto first = start_borrow();
  auto connection = first->lease().connection();
  first->lease().release(true);
  ctx.coarse_now = connection->opened_at + std::chrono::hours(24 * 365);
  ServerLease again = pools.take_idle(pool);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id(), connection->id());
  again.release(true);
}

TEST_F(PoolTest, ConnectionsToAHostThatIsNoLongerThePrimaryAreDropped) {
  config.target_hosts = {{"db-a", 5432}, {"db-b", 5432}};
  TargetHealth health(config.servers(), true);
  ctx.health = &health;
  LoginOutcome ok;
  ok.ok = true;
  health.record(0, classify_login("app", ok), HostRole::kPrimary);
  auto first = start_borrow();  // the fake connector's connections are to host 0
  auto connection = first->lease().connection();
  ASSERT_EQ(connection->host_index(), 0u);
  first->lease().release(true);
  EXPECT_EQ(connection->state(), ServerState::kIdle);

  // Host 0 went away: no primary known yet, and the pooled connection is kept (its own
  // liveness check decides).
  LoginOutcome refused;
  refused.step = LoginStep::kConnect;
  health.record(0, classify_login("app", refused));
  ASSERT_EQ(health.primary(), -1);
  pools.reap_idle(ctx.coarse_now);
  EXPECT_EQ(connection->state(), ServerState::kIdle);

  // Host 1 was promoted: the connection to the old primary is closed, never lent.
  health.record(1, classify_login("app", ok), HostRole::kPrimary);
  ASSERT_EQ(health.primary(), 1);
  EXPECT_FALSE(pools.take_idle(pool));
  EXPECT_EQ(connection->state(), ServerState::kClosed);
  ctx.health = nullptr;
}

TEST_F(PoolTest, AFencedHostsConnectionsAreNeverLentEvenWithoutAPrimary) {
  config.target_hosts = {{"db-a", 5432}, {"db-b", 5432}};
  TargetHealth health(config.servers(), true);
  ctx.health = &health;
  LoginOutcome ok;
  ok.ok = true;
  health.record(0, classify_login("app", ok), HostRole::kPrimary, 1);
  auto first = start_borrow();  // to host 0
  auto connection = first->lease().connection();
  first->lease().release(true);
  ASSERT_EQ(connection->state(), ServerState::kIdle);

  // Host 1 accepts writes on a newer timeline, then goes away: host 0 stays fenced.
  health.record(1, classify_login("app", ok), HostRole::kPrimary, 2);
  LoginOutcome refused;
  refused.step = LoginStep::kConnect;
  health.record(1, classify_login("app", refused));
  ASSERT_EQ(health.primary(), -1);
  ASSERT_TRUE(health.fenced(0));
  EXPECT_FALSE(pools.take_idle(pool));
  EXPECT_EQ(connection->state(), ServerState::kClosed);
  ctx.health = nullptr;
}

TEST_F(PoolTest, AFullServerIsNotAskedAgainWhileConnectionsAreHeldAndTheyServeTheWaiters) {
  // The server has room for two of this proxy's connections (other programs hold the rest of
  // its max_connections), while the proxy's cap says twelve.
  connector.server_room_for = 2;
  auto a = start_borrow();
  auto b = start_borrow();
  ASSERT_TRUE(a->done() && a->lease());
  ASSERT_TRUE(b->done() && b->lease());
  EXPECT_EQ(pools.cap(), 12u);
  auto c = start_borrow();
  EXPECT_EQ(connector.attempts, 3) << "the third login is refused";
  EXPECT_FALSE(c->done()) << "no error: it waits for a connection the proxy holds";
  std::vector<std::shared_ptr<Borrow>> more;
  for (int i = 0; i < 5; ++i) more.push_back(start_borrow());
  run();
  EXPECT_EQ(connector.attempts, 3) << "nobody asks the full server again within the pause";
  for (const auto& waiting : more) EXPECT_FALSE(waiting->done());

  const uint64_t a_id = a->lease()->id();
  a->lease().release(true);
  run();
  ASSERT_TRUE(c->done());
  ASSERT_TRUE(c->lease()) << "the waiter got the returned connection, not an error";
  EXPECT_EQ(c->lease()->id(), a_id);
  b->lease().release(true);
  run();
  ASSERT_TRUE(more[0]->done() && more[0]->lease());
  EXPECT_EQ(connector.attempts, 3);

  // After the pause one login is tried again (at housekeeping); refused, the pause restarts.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  pools.expire_waiters(Clock::now());
  run();
  EXPECT_EQ(connector.attempts, 4);
  for (size_t i = 1; i < more.size(); ++i) EXPECT_FALSE(more[i]->done());
  pools.expire_waiters(Clock::now());
  run();
  EXPECT_EQ(connector.attempts, 4);

  // The server has room again: the next try after the pause opens a third connection.
  connector.server_room_for = 3;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  pools.expire_waiters(Clock::now());
  run();
  EXPECT_EQ(connector.opened, 3);
  // A login succeeded, so how much room the server has is unknown again: each of the three
  // still in line tries once, is refused, and the pause starts again.
  EXPECT_EQ(connector.attempts, 8);
  size_t served = 0;
  for (size_t i = 1; i < more.size(); ++i) served += more[i]->done() ? 1 : 0;
  EXPECT_EQ(served, 1u) << "one waiter has the new connection";
  // Every connection given back serves the next waiter; all are served.
  std::vector<std::shared_ptr<Borrow>> holding{c, more[0]};
  for (size_t i = 1; i < more.size(); ++i)
    if (more[i]->done()) holding.push_back(more[i]);
  while (!holding.empty()) {
    auto next = holding.back();
    holding.pop_back();
    ASSERT_TRUE(next->lease());
    next->lease().release(true);
    run();
    for (const auto& waiting : more)
      if (waiting->done() && waiting->lease() &&
          std::find(holding.begin(), holding.end(), waiting) == holding.end() && waiting != next)
        holding.push_back(waiting);
  }
  for (const auto& waiting : more) EXPECT_TRUE(waiting->done());
  EXPECT_EQ(connector.attempts, 8) << "the rest were served by connections given back";
  EXPECT_EQ(pools.total(), 3u);
}

TEST_F(PoolTest, AFullServerWithNoConnectionOfTheProxysIsRetried) {
  connector.server_room_for = 0;
  auto a = start_borrow(std::chrono::milliseconds(600));
  EXPECT_EQ(connector.attempts, 1);
  EXPECT_FALSE(a->done()) << "retried after a pause: nobody would give a connection back";
  connector.server_room_for = 1;
  for (int i = 0; i < 50 && !a->done(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    run();
  }
  ASSERT_TRUE(a->done());
  ASSERT_TRUE(a->lease());
  EXPECT_EQ(connector.attempts, 2);
  a->lease().release(true);
}

}  // namespace
}  // namespace sluice::proxy
