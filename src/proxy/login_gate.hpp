// At most max_concurrent_logins clients of one worker do login work at once (TLS handshake,
// SCRAM); the others wait, first come first served, holding nothing but their socket and a
// small frame (as Odyssey's client_max_routing). A storm of new clients thus queues instead of
// taking the worker's CPU from the clients already logged in.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>

#include "proxy/metrics.hpp"
#include "proxy/wakeup.hpp"

namespace sluice::proxy {

class LoginGate {
 public:
  LoginGate(executor ex, size_t capacity, Metrics& metrics)
      : executor_(std::move(ex)), capacity_(capacity), metrics_(metrics) {}

  // A place at the gate: held for the login, given back when destroyed.
  class Pass {
   public:
    Pass() = default;
    explicit Pass(LoginGate* gate) : gate_(gate) {}
    Pass(Pass&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
    Pass& operator=(Pass&& other) noexcept {
      if (this != &other) {
        reset();
        gate_ = std::exchange(other.gate_, nullptr);
      }
      return *this;
    }
    ~Pass() { reset(); }
    void reset() {
      if (gate_) std::exchange(gate_, nullptr)->leave();
    }

   private:
    LoginGate* gate_ = nullptr;
  };

  // Returns once this client may do its login work.
  awaitable<Pass> enter();

  // Returns when this login may take the CPU for one expensive step (a TLS handshake's key
  // exchange and signature: a tenth of a millisecond or more). At most kStepsPerTurn such
  // steps run in a row; then the loop serves its other sockets before the next ones. Without
  // it, one batch of ready sockets could hold a hundred handshakes, and the logged-in clients
  // in the same batch would wait for all of them.
  awaitable<void> next_step();
  static constexpr size_t kStepsPerTurn = 4;

  // A reload changed max_concurrent_logins: more room lets waiters in now; less takes effect
  // as logins leave.
  void set_capacity(size_t capacity);

  size_t inside() const { return inside_; }
  size_t waiting() const { return waiters_.size(); }

 private:
  void leave();
  void run_steps();

  executor executor_;
  size_t capacity_;
  Metrics& metrics_;
  size_t inside_ = 0;
  std::deque<std::shared_ptr<Wakeup>> waiters_;
  std::deque<Wakeup::Resume> steps_;  // logins waiting to do their next expensive step
  bool steps_scheduled_ = false;
};

}  // namespace sluice::proxy
