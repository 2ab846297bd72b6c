#include "proxy/concurrency_limit.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

namespace sluice::proxy {
namespace {

// Runs `windows` windows against a made-up server whose borrow latency depends on how many
// connections are lent (always the limit: clients are waiting); returns the limits seen after
// the first `settle` windows.
std::pair<size_t, size_t> settle(ConcurrencyLimit& limit,
                                 const std::function<double(size_t)>& latency, size_t windows = 400,
                                 size_t settle = 100) {
  size_t low = SIZE_MAX;
  size_t high = 0;
  for (size_t w = 0; w < windows; ++w) {
    for (size_t i = 0; i < ConcurrencyLimit::kWindow; ++i) limit.sample(latency(limit.limit()));
    if (w >= settle) {
      low = std::min(low, limit.limit());
      high = std::max(high, limit.limit());
    }
  }
  return {low, high};
}

TEST(ConcurrencyLimit, SettlesJustAboveTheCoresOfACpuBoundServer) {
  for (const size_t cores : {2, 16}) {
    ConcurrencyLimit limit(2, 100);
    const auto [low, high] = settle(limit, [&](size_t lent) {
      return 0.0001 * std::max(1.0, static_cast<double>(lent) / static_cast<double>(cores));
    });
    // Vegas keeps the estimated server queue between kAlpha and kBeta.
    EXPECT_GE(low, cores + 1) << cores;
    EXPECT_LE(high, cores + 4) << cores;
  }
}

TEST(ConcurrencyLimit, AServerThatWaitsOnIoGetsTheWholeCap) {
  ConcurrencyLimit limit(2, 20);
  const auto [low, high] = settle(
      limit, [](size_t) { return 0.05; }, 100, 40);
  EXPECT_EQ(low, 20u);
  EXPECT_EQ(high, 20u);
}

TEST(ConcurrencyLimit, ARareLongTransactionIsNotLoad) {
  ConcurrencyLimit limit(2, 20);
  size_t n = 0;
  const auto [low, high] = settle(
      limit, [&](size_t) { return ++n % 20 == 0 ? 1.0 : 0.001; }, 100, 40);
  EXPECT_EQ(low, 20u);
  EXPECT_EQ(high, 20u);
}

TEST(ConcurrencyLimit, StartsAtTheMinimumAndProbesAgain) {
  ConcurrencyLimit limit(2, 20);
  EXPECT_EQ(limit.limit(), 2u);
  settle(
      limit, [](size_t) { return 0.001; }, 50, 0);
  EXPECT_EQ(limit.limit(), 20u);
  EXPECT_DOUBLE_EQ(limit.least_latency(), 0.001);
  // After kProbeEvery windows the limit drops to the minimum for two windows, then returns.
  size_t probing = 0;
  for (size_t w = 0; w < ConcurrencyLimit::kProbeEvery; ++w) {
    for (size_t i = 0; i < ConcurrencyLimit::kWindow; ++i) limit.sample(0.001);
    probing += limit.limit() == 2;
  }
  EXPECT_EQ(probing, 2u);
  EXPECT_EQ(limit.limit(), 20u);
}

TEST(ConcurrencyLimit, RaisedForAHeldBackClientAndClampedToTheCeiling) {
  ConcurrencyLimit limit(2, 10);
  limit.raise_above(6);
  EXPECT_EQ(limit.limit(), 7u);
  limit.raise_above(50);
  EXPECT_EQ(limit.limit(), 10u);
  limit.set_ceiling(4);
  EXPECT_EQ(limit.limit(), 4u);
  ConcurrencyLimit tiny(2, 1);
  EXPECT_EQ(tiny.limit(), 1u);
}

}  // namespace
}  // namespace sluice::proxy
