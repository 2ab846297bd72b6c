// Suspends one coroutine until another part of the same executor says "go on".
//
// The pool's waiting clients and each session's server reader park here on every
// transaction, so it must be cheap: a stored completion handler, posted on notify. A timer
// would take the timer queue's lock, and its service lookup another, on every wait.
#pragma once

#include <optional>
#include <type_traits>

#include "proxy/asio.hpp"

namespace sluice::proxy {

class Wakeup {
 public:
  // What resumes a coroutine suspended in wait(), stored in place (no allocation per wait).
  // Boost 1.81's type-erased any_completion_handler recurses forever when posted.
  using Resume = asio::async_result<std::decay_t<decltype(use_awaitable)>, void()>::handler_type;

  explicit Wakeup(executor executor) : executor_(std::move(executor)) {}
  const executor& get_executor() const { return executor_; }
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  // Returns at the next notify(), or at once if one came since the last wait.
  // Not a coroutine itself (one frame less per wait): the initiation parks the caller.
  awaitable<void> wait() {
    return asio::async_initiate<decltype(use_awaitable), void()>(
        [this](Resume handler) {
          handler_.emplace(std::move(handler));
          if (notified_) {
            notified_ = false;
            notify();
          }
        },
        use_awaitable);
  }

  // A Wakeup reused for another wait: a notify() that came after the last wait's resumption
  // (nobody waiting) is dropped rather than ending the next wait at once.
  void forget_notification() { notified_ = false; }

  // A coroutine is suspended in wait().
  bool waiting() const { return handler_.has_value(); }

  // Resumes the waiter now, inside this call, until it next suspends. Only for callers whose
  // own state is settled (the last thing they do before returning): it saves a trip through
  // the executor's queue, which matters where a server connection changes hands.
  void notify_now() {
    if (handler_) {
      Resume resume = std::move(*handler_);
      handler_.reset();
      std::move(resume)();
    } else {
      notified_ = true;
    }
  }

  // Resumes the waiter on whatever `resume_elsewhere(handler)` chooses: it takes the stored
  // resumption (from its std::optional) and returns true, or returns false and leaves it, and
  // then the waiter is resumed later as by notify(): never inside the caller, whose own work
  // (a request about to be recorded and sent) must come first.
  template <class Redirect>
  void notify_via(Redirect resume_elsewhere) {
    if (handler_ && resume_elsewhere(handler_)) return;
    notify();
  }

  // Resumes the waiter later on the executor (never inline: the caller is mid-update).
  void notify() {
    if (handler_) {
      asio::post(executor_, [handler = std::move(*handler_)]() mutable { std::move(handler)(); });
      handler_.reset();
    } else {
      notified_ = true;
    }
  }

 private:
  executor executor_;
  std::optional<Resume> handler_;
  bool notified_ = false;
};

}  // namespace sluice::proxy
