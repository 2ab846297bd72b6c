#include "proxy/server_budget.hpp"

#include <stdexcept>

#include "proxy/pool.hpp"

namespace sluice::proxy {

ServerBudget::ServerBudget()
    : waiting_since_(new std::atomic<int64_t>[kMaxMembers]),
      idle_(new std::atomic<size_t>[kMaxMembers]) {
  for (size_t i = 0; i < kMaxMembers; ++i) {
    waiting_since_[i].store(kNotWaiting);
    idle_[i].store(0);
  }
}

std::optional<size_t> ServerBudget::most_idle_other(size_t member) const {
  std::optional<size_t> best;
  size_t most = 0;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (i == member) continue;
    const size_t idle = idle_[i].load(std::memory_order_relaxed);
    if (idle > most) {
      most = idle;
      best = i;
    }
  }
  return best;
}

size_t ServerBudget::join(Member member) {
  if (members_.size() >= kMaxMembers) throw std::length_error("too many workers");
  members_.push_back(member);
  return members_.size() - 1;
}

bool ServerBudget::try_take() {
  size_t used = used_.load();
  do {
    if (used >= cap_.load()) return false;
    // With none open, a login is tried anyway: nobody else would give a connection back.
    if (used > 0 && wait_for_full_server()) return false;
  } while (!used_.compare_exchange_weak(used, used + 1));
  return true;
}

bool ServerBudget::wait_for_full_server() {
  int64_t until = full_until_.load(std::memory_order_relaxed);
  if (until == 0) return false;
  const auto now = Clock::now();
  if (now.time_since_epoch().count() < until) return true;
  // A success clears the mark, a refusal sets it again (PoolManager::open_new).
  return !full_until_.compare_exchange_strong(
      until, (now + kServerFullPause).time_since_epoch().count(), std::memory_order_relaxed);
}

size_t ServerBudget::put_back(size_t member) {
  used_.fetch_sub(1);
  // seq_cst with set_waiting(): a worker that is about to wait either sees this room in its
  // last try_take() or is seen waiting here.
  size_t told = 0;
  for (size_t i = 0; i < members_.size(); ++i)
    if (i != member && waiting_since_[i].load() != kNotWaiting) {
      asio::post(members_[i].ex, [pools = members_[i].pools] { pools->room_freed(); });
      ++told;
    }
  return told;
}

void ServerBudget::set_waiting(size_t member, std::optional<Clock::time_point> since) {
  if (members_.empty()) return;  // a private budget: nobody to tell
  waiting_since_[member].store(since ? since->time_since_epoch().count() : kNotWaiting);
}

std::optional<std::pair<size_t, ServerBudget::Clock::time_point>>
ServerBudget::oldest_waiting_other(size_t member) const {
  std::optional<std::pair<size_t, Clock::time_point>> oldest;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (i == member) continue;
    const int64_t since = waiting_since_[i].load();
    if (since == kNotWaiting) continue;
    const Clock::time_point at{Clock::duration(since)};
    if (!oldest || at < oldest->second) oldest = std::make_pair(i, at);
  }
  return oldest;
}

std::optional<ServerBudget::Parameters> ServerBudget::default_parameters(
    const std::string& database, const std::string& user) const {
  std::lock_guard lock(defaults_mutex_);
  auto it = defaults_.find({database, user});
  if (it == defaults_.end()) return std::nullopt;
  return it->second;
}

void ServerBudget::set_default_parameters(const std::string& database, const std::string& user,
                                          const Parameters& parameters) {
  std::lock_guard lock(defaults_mutex_);
  defaults_.try_emplace({database, user}, parameters);
}

bool ServerBudget::want_room(size_t member) {
  // Only a worker that has an idle connection is asked: a post wakes its thread.
  const auto from = most_idle_other(member);
  if (!from) return false;
  asio::post(members_[*from].ex,
             [pools = members_[*from].pools, member] { pools->move_one_idle_to(member); });
  return true;
}

}  // namespace sluice::proxy
