// How many server connections to keep lent at once, below the pool's cap (opt-in:
// [connection_pool] adaptive_concurrency). A CPU-bound server does more with a few busy
// backends than with many: on 2 cores, pgbench -S through 3-5 lent connections ran 10-15 %
// faster than through 20 (docs/adaptive-concurrency.md). The limit follows TCP Vegas: the
// queue the server holds is estimated from borrow latency (the median of a window, so that a rare
// long transaction does not read as load) against the least latency measured
// at low concurrency (limit × (1 − least/latency)); below kAlpha the limit grows by one per
// window, above kBeta it shrinks by one. A server that waits on I/O shows no queue and gets the
// whole cap; a saturated one settles a few above its CPU count. Every kProbeEvery windows the
// limit drops to the minimum for two windows to measure the least latency again.
//
// Vegas cannot tell a server queue from other work on the server's CPU: programs that are not
// the database make every borrow slower at any limit, Vegas reads that as a queue and backs off,
// and fewer runnable backends then get a smaller share of the CPU against that work. So every
// kTrialEvery windows a throughput trial lends the other level (the cap while Vegas rules, Vegas'
// level while the cap holds) for kTrialWindows windows between two half-trials at the level in
// force, and compares the throughput each gave (borrows ended per second). The cap holds
// while it does kMargin better than Vegas' level, averaged over the last few trials; otherwise
// Vegas rules. Pure: fed with samples, no clock, so it is unit-tested with made-up servers.
#pragma once

#include <array>
#include <cstddef>

namespace sluice::proxy {

class ConcurrencyLimit {
 public:
  // `ceiling` is the pool's cap; the limit starts at `minimum` and earns its way up.
  ConcurrencyLimit(size_t minimum, size_t ceiling);

  // One borrow's duration, in seconds, and when it ended (seconds on any steady clock).
  void sample(double seconds, double ended_at);
  // Without the time: as if limit() borrows were always in flight (clients wait), so time
  // passes by Little's law, seconds / limit() per borrow.
  void sample(double seconds) { sample(seconds, made_up_clock_ += seconds / limit()); }
  // A client waited too long (the lent connections may wait for something other than CPU,
  // such as a lock a waiting client would release): room for one more, at once.
  void raise_above(size_t lent);
  void set_ceiling(size_t ceiling);

  size_t limit() const;
  double least_latency() const { return least_latency_; }
  double recent_latency() const { return recent_latency_; }  // the last window's
  // The trials found the cap faster than Vegas' level: the cap is lent until they say
  // otherwise (the CPU is shared with other work, not queued on by the server's own).
  bool holding_cap() const { return holding_cap_; }
  bool in_trial() const { return trial_ != Trial::kNone; }
  bool probing() const { return probe_windows_left_ > 0; }

  static constexpr size_t kWindow = 32;         // samples per adjustment
  static constexpr double kAlpha = 1;           // estimated server queue to grow below
  static constexpr double kBeta = 3;            // ... and to shrink above
  static constexpr size_t kProbeEvery = 1000;   // windows between re-measurements
  static constexpr size_t kTrialEvery = 200;    // windows between throughput trials
  static constexpr size_t kTrialWindows = 16;   // windows measured at each of the two levels
  static constexpr double kMargin = 0.05;       // the cap's throughput gain that makes it hold
  static constexpr double kTrialWeight = 0.25;  // of the latest trial in the running average
  static constexpr size_t kTrialsToHold = 4;    // trials before the cap may first hold

 private:
  // A trial: half the home windows, a window to let the borrows switch level, the away
  // windows, a window to switch back, the other half of the home windows. The home halves on
  // either side cancel a drift of the machine's load during the trial.
  enum class Trial { kNone, kHomeBefore, kSwitchAway, kAway, kSwitchBack, kHomeAfter };
  size_t home_level() const;
  size_t away_level() const;
  void start_trial();
  void advance_trial(double window_seconds);

  size_t minimum_;
  size_t ceiling_;
  size_t limit_;                     // Vegas' limit (kept, not followed, while the cap holds)
  double least_latency_ = 0;         // seconds, at the minimum concurrency
  double recent_latency_ = 0;        // the last window's median
  std::array<double, 32> window_{};  // kWindow samples; their median is the window's latency
  double window_started_at_ = -1;    // when the window's first borrow's predecessor ended
  double made_up_clock_ = 0;         // for sample() without a time
  size_t window_count_ = 0;
  size_t windows_ = 0;
  int probe_windows_left_ = 2;  // the first windows measure the least latency

  bool holding_cap_ = false;
  Trial trial_ = Trial::kNone;
  size_t trial_windows_left_ = 0;
  // Windows measured and the seconds they took, at home and away.
  double home_windows_ = 0, home_seconds_ = 0, away_windows_ = 0, away_seconds_ = 0;
  // The running average over trials of log(throughput at the cap / at Vegas' level).
  double cap_gain_ = 0;
  size_t trials_ = 0;
};

}  // namespace sluice::proxy
