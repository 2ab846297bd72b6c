#include "proxy/login_gate.hpp"

namespace sluice::proxy {

awaitable<LoginGate::Pass> LoginGate::enter() {
  if (inside_ < capacity_ && waiters_.empty()) {
    ++inside_;
    metrics_.client_logins_in_progress.add(1);
    co_return Pass(this);
  }
  auto turn = std::make_shared<Wakeup>(executor_);
  waiters_.push_back(turn);
  metrics_.client_logins_waiting.add(1);
  // leave() hands its place over: when this resumes, the place is ours already.
  co_await turn->wait();
  co_return Pass(this);
}

void LoginGate::set_capacity(size_t capacity) {
  capacity_ = capacity;
  while (inside_ < capacity_ && !waiters_.empty()) {
    ++inside_;
    metrics_.client_logins_in_progress.add(1);
    auto next = std::move(waiters_.front());
    waiters_.pop_front();
    metrics_.client_logins_waiting.sub(1);
    next->notify();
  }
}

void LoginGate::leave() {
  if (inside_ > capacity_) {  // the capacity came down: this place is not handed on
    --inside_;
    metrics_.client_logins_in_progress.sub(1);
    return;
  }
  if (!waiters_.empty()) {
    auto next = std::move(waiters_.front());
    waiters_.pop_front();
    metrics_.client_logins_waiting.sub(1);
    next->notify();
    return;
  }
  --inside_;
  metrics_.client_logins_in_progress.sub(1);
}

awaitable<void> LoginGate::next_step() {
  return asio::async_initiate<decltype(use_awaitable), void()>(
      [this](Wakeup::Resume resume) {
        steps_.push_back(std::move(resume));
        if (!steps_scheduled_) {
          steps_scheduled_ = true;
          asio::post(executor_, [this] { run_steps(); });
        }
      },
      use_awaitable);
}

void LoginGate::run_steps() {
  for (size_t i = 0; i < kStepsPerTurn && !steps_.empty(); ++i) {
    Wakeup::Resume resume = std::move(steps_.front());
    steps_.pop_front();
    std::move(resume)();  // runs that login until it next waits
  }
  if (steps_.empty()) {
    steps_scheduled_ = false;
    return;
  }
  // Behind whatever else is queued, readiness of other sockets included.
  asio::post(executor_, [this] { run_steps(); });
}

}  // namespace sluice::proxy
