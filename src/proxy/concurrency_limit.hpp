// How many server connections to keep lent at once, below the pool's cap (opt-in:
// [connection_pool] adaptive_concurrency). A CPU-bound server does more with a few busy
// backends than with many: on 2 cores, pgbench -S through 3-5 lent connections ran 10-15 %
// faster than through 20 (docs/adaptive-concurrency.md). The limit follows TCP Vegas: the
// queue the server holds is estimated from borrow latency (the median of a window, so that a rare
// long transaction does not read as load) against the least latency measured
// at low concurrency (limit × (1 − least/latency)); below kAlpha the limit grows by one per
// window, above kBeta it shrinks by one. A server that waits on I/O shows no queue and gets the
// whole cap; a saturated one settles a few above its CPU count. Every kProbeEvery windows the
// limit drops to the minimum for two windows to measure the least latency again. Pure: fed
// with samples, no clock, so it is unit-tested with made-up servers.
#pragma once

#include <array>
#include <cstddef>

namespace sluice::proxy {

class ConcurrencyLimit {
 public:
  // `ceiling` is the pool's cap; the limit starts at `minimum` and earns its way up.
  ConcurrencyLimit(size_t minimum, size_t ceiling);

  // One borrow's duration, in seconds.
  void sample(double seconds);
  // A client waited too long (the lent connections may wait for something other than CPU,
  // such as a lock a waiting client would release): room for one more, at once.
  void raise_above(size_t lent);
  void set_ceiling(size_t ceiling);

  size_t limit() const;
  double least_latency() const { return least_latency_; }
  double recent_latency() const { return recent_latency_; }  // the last window's

  static constexpr size_t kWindow = 32;        // samples per adjustment
  static constexpr double kAlpha = 1;          // estimated server queue to grow below
  static constexpr double kBeta = 3;           // ... and to shrink above
  static constexpr size_t kProbeEvery = 1000;  // windows between re-measurements

 private:
  size_t minimum_;
  size_t ceiling_;
  size_t limit_;
  double least_latency_ = 0;         // seconds, at the minimum concurrency
  double recent_latency_ = 0;        // the last window's median
  std::array<double, 32> window_{};  // kWindow samples; their median is the window's latency
  size_t window_count_ = 0;
  size_t windows_ = 0;
  int probe_windows_left_ = 2;  // the first windows measure the least latency
};

}  // namespace sluice::proxy
