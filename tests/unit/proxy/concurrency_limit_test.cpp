#include "proxy/concurrency_limit.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>

namespace sluice::proxy {
namespace {

// Runs `windows` windows against a made-up server whose borrow latency depends on how many
// connections are lent (always the limit: clients are waiting); returns the limits seen after
// the first `settle` windows, outside the throughput trials (which lend the cap for a few
// windows every ConcurrencyLimit::kTrialEvery; TrialsAreShortAndRare covers them).
std::pair<size_t, size_t> settle(ConcurrencyLimit& limit,
                                 const std::function<double(size_t)>& latency, size_t windows = 400,
                                 size_t settle = 100) {
  size_t low = SIZE_MAX;
  size_t high = 0;
  for (size_t w = 0; w < windows; ++w) {
    for (size_t i = 0; i < ConcurrencyLimit::kWindow; ++i) limit.sample(latency(limit.limit()));
    if (w >= settle && !limit.in_trial()) {
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

// A made-up machine for the throughput tests: each sample's latency is the server's at the
// number lent (the limit: 32 clients wait), times a noise factor for the sample and one for its
// window (a busy machine's drift); time passes by Little's law (a borrow of latency L among n
// lent ends L / n after the one before).
class Machine {
 public:
  explicit Machine(double noise) : noise_(noise) {}

  struct Outcome {
    size_t low = SIZE_MAX;  // limits seen outside trials and probes
    size_t high = 0;
    double throughput = 0;      // borrows per second over the run
    double windows_at_cap = 0;  // fraction of windows lent at the ceiling
  };

  Outcome run(ConcurrencyLimit& limit, const std::function<double(size_t)>& latency, size_t windows,
              size_t ceiling) {
    Outcome out;
    double seconds = 0;
    size_t at_cap = 0;
    for (size_t w = 0; w < windows; ++w) {
      const size_t lent = limit.limit();
      at_cap += lent == ceiling;
      const double drift = noise();
      for (size_t i = 0; i < ConcurrencyLimit::kWindow; ++i) {
        const double l = latency(lent) * drift * noise();
        clock_ += l / static_cast<double>(lent);
        seconds += l / static_cast<double>(lent);
        limit.sample(l, clock_);
      }
      if (!limit.in_trial() && !limit.probing()) {
        out.low = std::min(out.low, limit.limit());
        out.high = std::max(out.high, limit.limit());
      }
    }
    out.throughput = static_cast<double>(windows * ConcurrencyLimit::kWindow) / seconds;
    out.windows_at_cap = static_cast<double>(at_cap) / static_cast<double>(windows);
    return out;
  }

 private:
  double noise() {  // uniform in [1 - noise, 1 + noise], deterministic
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return 1 + noise_ * (2 * static_cast<double>(state_ >> 11) / 9007199254740992.0 - 1);
  }
  double noise_;
  uint64_t state_ = 42;
  double clock_ = 0;
};

constexpr double kWork = 0.0001;  // CPU seconds per transaction
constexpr size_t kCores = 2;
constexpr size_t kCap = 20;

// A CPU-bound server on its own machine: beyond its cores every borrow waits its turn, and each
// runnable backend adds 1 % of switching and cache misses (20 lent: 15 % slower than 4).
double quiet_server(size_t lent) {
  const double n = static_cast<double>(lent);
  return kWork * std::max(1.0, n / kCores) * (1 + 0.01 * n);
}

// The same server while `hogs` programs that are not the database keep the CPU busy: the
// scheduler shares the cores among all runnable processes, so each backend gets
// cores / (lent + hogs) of a core and more backends get more of the machine.
std::function<double(size_t)> shared_server(size_t hogs) {
  return [hogs](size_t lent) {
    const double n = static_cast<double>(lent);
    return kWork * std::max(1.0, (n + static_cast<double>(hogs)) / kCores) * (1 + 0.01 * n);
  };
}

// What the fixed cap gets (adaptive_concurrency off).
double fixed_cap_throughput(const std::function<double(size_t)>& latency) {
  return static_cast<double>(kCap) / latency(kCap);
}

TEST(ConcurrencyLimit, AQuietCpuBoundServerKeepsAFewLentAndBeatsTheCap) {
  for (const double noise : {0.0, 0.3}) {
    ConcurrencyLimit limit(2, kCap);
    Machine machine(noise);
    machine.run(limit, quiet_server, 3 * ConcurrencyLimit::kTrialEvery, kCap);  // settles
    const auto out = machine.run(limit, quiet_server, 2000, kCap);
    EXPECT_FALSE(limit.holding_cap()) << noise;
    EXPECT_LE(out.high, kCores + 4) << noise;
    // Trials at the cap cost a little; a few lent still beat the cap by about a tenth.
    EXPECT_LT(out.windows_at_cap, 0.10) << noise;
    EXPECT_GT(out.throughput, fixed_cap_throughput(quiet_server) * 1.08) << noise;
  }
}

TEST(ConcurrencyLimit, OtherWorkOnTheCpuDoesNotMakeItBackOff) {
  // Two busy programs on the two cores: Vegas alone settles near 6 (2 + 2 hogs read as a
  // queue) and gets about a fifth less than the cap.
  for (const double noise : {0.0, 0.3}) {
    const auto busy = shared_server(2);
    ConcurrencyLimit limit(2, kCap);
    Machine machine(noise);
    // Settles: the cap holds once kTrialsToHold trials agree.
    machine.run(limit, busy, (ConcurrencyLimit::kTrialsToHold + 1) * ConcurrencyLimit::kTrialEvery,
                kCap);
    const auto out = machine.run(limit, busy, 2000, kCap);
    EXPECT_TRUE(limit.holding_cap()) << noise;
    EXPECT_GT(out.windows_at_cap, 0.90) << noise;
    EXPECT_GT(out.throughput, fixed_cap_throughput(busy) * 0.97) << noise;
  }
}

TEST(ConcurrencyLimit, OtherWorkComesAndGoes) {
  ConcurrencyLimit limit(2, kCap);
  Machine machine(0.3);
  machine.run(limit, quiet_server, 500, kCap);
  EXPECT_FALSE(limit.holding_cap());
  EXPECT_LE(limit.limit(), kCores + 4);
  // The other work starts: within a few trials the cap holds, and it gets what the cap gets.
  const auto busy = shared_server(2);
  machine.run(limit, busy, 5 * ConcurrencyLimit::kTrialEvery, kCap);
  EXPECT_TRUE(limit.holding_cap());
  const auto during = machine.run(limit, busy, 2000, kCap);
  EXPECT_GT(during.throughput, fixed_cap_throughput(busy) * 0.97);
  // It stops: the next trials find a few lent faster again, and Vegas rules.
  machine.run(limit, quiet_server, 5 * ConcurrencyLimit::kTrialEvery, kCap);
  EXPECT_FALSE(limit.holding_cap());
  const auto after = machine.run(limit, quiet_server, 2000, kCap);
  EXPECT_LE(after.high, kCores + 4);
  EXPECT_GT(after.throughput, fixed_cap_throughput(quiet_server) * 1.08);
}

TEST(ConcurrencyLimit, LatencyDoubledAtEveryLimitDoesNotCollapseIt) {
  // Outside load that doubles every borrow's latency whatever is lent: the least latency was
  // measured quiet, so Vegas sees a queue at every level until its next probe.
  ConcurrencyLimit limit(2, kCap);
  Machine machine(0.3);
  machine.run(limit, quiet_server, 500, kCap);
  const auto doubled = [](size_t lent) { return 2 * quiet_server(lent); };
  const auto out = machine.run(limit, doubled, 2000, kCap);
  EXPECT_GE(out.low, kCores + 1);
  EXPECT_GT(out.throughput, fixed_cap_throughput(doubled) * 1.0);
}

TEST(ConcurrencyLimit, TrialsAreShortAndRare) {
  ConcurrencyLimit limit(2, 100);
  size_t trial_windows = 0;
  size_t away = 0;
  const size_t windows = 10 * ConcurrencyLimit::kTrialEvery;
  for (size_t w = 0; w < windows; ++w) {
    for (size_t i = 0; i < ConcurrencyLimit::kWindow; ++i)
      limit.sample(quiet_server(limit.limit()));
    trial_windows += limit.in_trial();
    away += limit.limit() == 100;
  }
  // Per trial: kTrialWindows at home, kTrialWindows + 2 away and switching.
  EXPECT_LE(trial_windows, 10 * (2 * ConcurrencyLimit::kTrialWindows + 2));
  EXPECT_LE(away, 10 * (ConcurrencyLimit::kTrialWindows + 1));
  EXPECT_GT(away, 0u);
  EXPECT_FALSE(limit.holding_cap());
}

TEST(ConcurrencyLimit, ARealServerQueueStillShrinksItUnderOtherWork) {
  // A server that is its own bottleneck (a lock every transaction takes: one at a time, and
  // each waiter adds 2 % of contention) on a busy machine: more lent only lengthens the queue,
  // so trials find the cap slower and Vegas keeps a few.
  ConcurrencyLimit limit(2, kCap);
  Machine machine(0.3);
  const auto serialised = [](size_t lent) {
    const double n = static_cast<double>(lent);
    return 2 * kWork * n * (1 + 0.02 * n);
  };
  machine.run(limit, serialised, 3 * ConcurrencyLimit::kTrialEvery, kCap);  // settles
  const auto out = machine.run(limit, serialised, 2000, kCap);
  EXPECT_FALSE(limit.holding_cap());
  EXPECT_LE(out.high, 6u);
  EXPECT_GT(out.throughput, fixed_cap_throughput(serialised) * 1.2);
}

TEST(ConcurrencyLimit, AValveWhileTheCapHoldsDoesNotPinTheCap) {
  // Clients held back at the shared cap (by other workers' connections) raise the limit; while
  // the cap holds that must not lift Vegas' level to the cap, or no trial would ever end the
  // hold once the other work stops.
  ConcurrencyLimit limit(2, kCap);
  Machine machine(0.3);
  machine.run(limit, shared_server(2), 5 * ConcurrencyLimit::kTrialEvery, kCap);
  ASSERT_TRUE(limit.holding_cap());
  while (limit.in_trial()) limit.sample(quiet_server(limit.limit()));
  limit.raise_above(kCap);
  EXPECT_EQ(limit.limit(), kCap);
  machine.run(limit, quiet_server, 5 * ConcurrencyLimit::kTrialEvery, kCap);
  EXPECT_FALSE(limit.holding_cap());
  EXPECT_LE(machine.run(limit, quiet_server, 2000, kCap).high, kCores + 4);
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
