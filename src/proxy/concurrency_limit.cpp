#include "proxy/concurrency_limit.hpp"

#include <algorithm>

namespace sluice::proxy {

ConcurrencyLimit::ConcurrencyLimit(size_t minimum, size_t ceiling)
    : minimum_(std::max<size_t>(minimum, 1)),
      ceiling_(std::max<size_t>(ceiling, 1)),
      limit_(std::min(minimum_, ceiling_)) {}

size_t ConcurrencyLimit::limit() const {
  // While probing, only the minimum is lent, so the latency measured is the server's own.
  return probe_windows_left_ > 0 ? std::min(minimum_, ceiling_) : limit_;
}

void ConcurrencyLimit::set_ceiling(size_t ceiling) {
  ceiling_ = std::max<size_t>(ceiling, 1);
  limit_ = std::clamp(limit_, std::min(minimum_, ceiling_), ceiling_);
}

void ConcurrencyLimit::raise_above(size_t lent) {
  probe_windows_left_ = 0;  // a probe that starves a client is not worth finishing
  limit_ = std::clamp(std::max(limit_, lent + 1), std::min(minimum_, ceiling_), ceiling_);
}

void ConcurrencyLimit::sample(double seconds) {
  static_assert(std::tuple_size_v<decltype(window_)> == kWindow);
  window_[window_count_] = seconds;
  if (++window_count_ < kWindow) return;
  window_count_ = 0;
  std::nth_element(window_.begin(), window_.begin() + kWindow / 2, window_.end());
  const double latency = window_[kWindow / 2];
  recent_latency_ = latency;
  if (probe_windows_left_ > 0) {
    // The first probe window drains the borrows made above the minimum; the second measures.
    if (--probe_windows_left_ == 0) least_latency_ = latency;
    return;
  }
  if (++windows_ % kProbeEvery == 0) probe_windows_left_ = 2;
  if (latency < least_latency_ || least_latency_ <= 0) least_latency_ = latency;
  const double queue =
      latency > 0 ? static_cast<double>(limit_) * (1 - least_latency_ / latency) : 0;
  if (queue < kAlpha && limit_ < ceiling_)
    ++limit_;
  else if (queue > kBeta && limit_ > minimum_)
    --limit_;
}

}  // namespace sluice::proxy
