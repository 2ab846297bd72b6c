#include "proxy/concurrency_limit.hpp"

#include <algorithm>
#include <cmath>

namespace sluice::proxy {

ConcurrencyLimit::ConcurrencyLimit(size_t minimum, size_t ceiling)
    : minimum_(std::max<size_t>(minimum, 1)),
      ceiling_(std::max<size_t>(ceiling, 1)),
      limit_(std::min(minimum_, ceiling_)) {}

size_t ConcurrencyLimit::home_level() const {
  return holding_cap_ ? ceiling_ : limit_;
}
size_t ConcurrencyLimit::away_level() const {
  return holding_cap_ ? limit_ : ceiling_;
}

size_t ConcurrencyLimit::limit() const {
  // While probing, only the minimum is lent, so the latency measured is the server's own.
  if (probe_windows_left_ > 0) return std::min(minimum_, ceiling_);
  if (trial_ == Trial::kSwitchAway || trial_ == Trial::kAway) return away_level();
  return home_level();
}

void ConcurrencyLimit::set_ceiling(size_t ceiling) {
  ceiling_ = std::max<size_t>(ceiling, 1);
  limit_ = std::clamp(limit_, std::min(minimum_, ceiling_), ceiling_);
}

void ConcurrencyLimit::raise_above(size_t lent) {
  // A probe that starves a client is not worth finishing. A trial goes on: it compares what
  // Vegas' level (valves included) gets with what the cap gets.
  probe_windows_left_ = 0;
  // While the cap holds, Vegas' level is lent only in a trial's away windows: raised only then,
  // or the next trial would compare the cap with itself.
  if (holding_cap_ && trial_ != Trial::kSwitchAway && trial_ != Trial::kAway) return;
  limit_ = std::clamp(std::max(limit_, lent + 1), std::min(minimum_, ceiling_), ceiling_);
}

void ConcurrencyLimit::start_trial() {
  trial_ = Trial::kHomeBefore;
  trial_windows_left_ = kTrialWindows / 2;
  home_windows_ = home_seconds_ = away_windows_ = away_seconds_ = 0;
}

void ConcurrencyLimit::advance_trial(double window_seconds) {
  switch (trial_) {
    case Trial::kHomeBefore:
    case Trial::kHomeAfter:
      ++home_windows_;
      home_seconds_ += window_seconds;
      break;
    case Trial::kAway:
      ++away_windows_;
      away_seconds_ += window_seconds;
      break;
    default:
      break;  // a switching window holds borrows of both levels: not measured
  }
  if (--trial_windows_left_ > 0) return;
  switch (trial_) {
    case Trial::kHomeBefore:
      trial_ = Trial::kSwitchAway;
      trial_windows_left_ = 1;
      return;
    case Trial::kSwitchAway:
      trial_ = Trial::kAway;
      trial_windows_left_ = kTrialWindows;
      return;
    case Trial::kAway:
      trial_ = Trial::kSwitchBack;
      trial_windows_left_ = 1;
      return;
    case Trial::kSwitchBack:
      trial_ = Trial::kHomeAfter;
      trial_windows_left_ = kTrialWindows / 2;
      return;
    default:
      break;
  }
  trial_ = Trial::kNone;
  if (home_seconds_ <= 0 || away_seconds_ <= 0) return;
  const double home = home_windows_ / home_seconds_;  // windows per second: throughput
  const double away = away_windows_ / away_seconds_;
  const double at_cap = holding_cap_ ? home : away;
  const double at_vegas = holding_cap_ ? away : home;
  // One trial on a busy machine is off by tens of percent either way; the average of the last
  // few decides.
  cap_gain_ += kTrialWeight * (std::log(at_cap / at_vegas) - cap_gain_);
  ++trials_;
  // Ties go to Vegas' level: the same throughput through fewer backends costs the server less.
  // The cap is taken only after a few trials agree (one lucky trial moves the average by a
  // quarter of its error), and given back as soon as the average says so.
  holding_cap_ = cap_gain_ > std::log1p(kMargin) && (holding_cap_ || trials_ >= kTrialsToHold);
}

void ConcurrencyLimit::sample(double seconds, double ended_at) {
  static_assert(std::tuple_size_v<decltype(window_)> == kWindow);
  if (window_started_at_ < 0) window_started_at_ = ended_at;
  window_[window_count_] = seconds;
  if (++window_count_ < kWindow) return;
  window_count_ = 0;
  const double window_seconds = ended_at - window_started_at_;
  window_started_at_ = ended_at;
  std::nth_element(window_.begin(), window_.begin() + kWindow / 2, window_.end());
  const double latency = window_[kWindow / 2];
  recent_latency_ = latency;
  if (probe_windows_left_ > 0) {
    // The first probe window drains the borrows made above the minimum; the second measures.
    if (--probe_windows_left_ == 0) least_latency_ = latency;
    return;
  }
  if (trial_ != Trial::kNone) {
    advance_trial(window_seconds);
    return;  // Vegas waits: these windows are not at its level
  }
  ++windows_;
  if (windows_ % kProbeEvery == 0)
    probe_windows_left_ = 2;
  else if (windows_ % kTrialEvery == kTrialEvery / 2) {
    if (limit_ + 1 < ceiling_)
      start_trial();  // only where the two levels differ enough to matter
    else
      holding_cap_ = false;  // Vegas' level is the cap (a smaller cap): Vegas rules again
  }
  if (latency < least_latency_ || least_latency_ <= 0) least_latency_ = latency;
  if (holding_cap_) return;  // Vegas' level is kept as the next trial's other level
  const double queue =
      latency > 0 ? static_cast<double>(limit_) * (1 - least_latency_ / latency) : 0;
  if (queue < kAlpha && limit_ < ceiling_)
    ++limit_;
  else if (queue > kBeta && limit_ > minimum_)
    --limit_;
}

}  // namespace sluice::proxy
