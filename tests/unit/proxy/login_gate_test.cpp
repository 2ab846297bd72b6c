// LoginGate: places for logins, and turns for their expensive steps.
#include "proxy/login_gate.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace sluice::proxy {
namespace {

TEST(LoginGate, ExpensiveStepsTakeTurnsWithOtherWork) {
  asio::io_context io;
  Metrics metrics;
  LoginGate gate(io.get_executor(), 100, metrics);
  constexpr int kLogins = 10;
  std::string trace;  // 'L' a login's step, 'B' a logged-in client's turn
  for (int i = 0; i < kLogins; ++i)
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          co_await gate.next_step();
          trace += 'L';
        },
        asio::detached);
  // A logged-in client that has something to do on every turn of the loop.
  bool logins_done = false;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        while (!logins_done) {
          trace += 'B';
          co_await asio::post(io.get_executor(), use_awaitable);
          logins_done = std::count(trace.begin(), trace.end(), 'L') == kLogins;
        }
      },
      asio::detached);
  io.run();
  ASSERT_EQ(std::count(trace.begin(), trace.end(), 'L'), kLogins) << trace;
  // Never more than kStepsPerTurn steps in a row: the other client is served in between.
  const std::string too_many(LoginGate::kStepsPerTurn + 1, 'L');
  EXPECT_EQ(trace.find(too_many), std::string::npos) << trace;
  EXPECT_GE(std::count(trace.begin(), trace.end(), 'B'), kLogins / LoginGate::kStepsPerTurn)
      << trace;
}

TEST(LoginGate, StepsRunFirstComeFirstServed) {
  asio::io_context io;
  Metrics metrics;
  LoginGate gate(io.get_executor(), 100, metrics);
  std::vector<int> order;
  for (int i = 0; i < 9; ++i)
    asio::co_spawn(
        io,
        [&, i]() -> awaitable<void> {
          co_await gate.next_step();
          order.push_back(i);
          co_await gate.next_step();  // a second step goes behind everyone's first
          order.push_back(100 + i);
        },
        asio::detached);
  io.run();
  ASSERT_EQ(order.size(), 18u);
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(order[i], i);
    EXPECT_EQ(order[9 + i], 100 + i);
  }
}

TEST(LoginGate, PlacesAreHandedOverInOrder) {
  asio::io_context io;
  Metrics metrics;
  LoginGate gate(io.get_executor(), 1, metrics);
  std::vector<int> order;
  for (int i = 0; i < 3; ++i)
    asio::co_spawn(
        io,
        [&, i]() -> awaitable<void> {
          LoginGate::Pass pass = co_await gate.enter();
          order.push_back(i);
          EXPECT_EQ(gate.inside(), 1u);
          co_await asio::post(io.get_executor(), use_awaitable);
        },
        asio::detached);
  io.run();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(gate.inside(), 0u);
  EXPECT_EQ(gate.waiting(), 0u);
}

}  // namespace
}  // namespace sluice::proxy
