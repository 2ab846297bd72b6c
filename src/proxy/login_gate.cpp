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

void LoginGate::leave() {
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

}  // namespace sluice::proxy
