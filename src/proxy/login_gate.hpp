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

  size_t inside() const { return inside_; }
  size_t waiting() const { return waiters_.size(); }

 private:
  void leave();

  executor executor_;
  size_t capacity_;
  Metrics& metrics_;
  size_t inside_ = 0;
  std::deque<std::shared_ptr<Wakeup>> waiters_;
};

}  // namespace sluice::proxy
