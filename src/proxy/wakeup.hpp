// Suspends one coroutine until another part of the same executor says "go on".
//
// The pool's waiting clients and each session's server reader park here on every
// transaction, so it must be cheap: a stored completion handler, posted on notify. A timer
// would take the timer queue's lock, and its service lookup another, on every wait.
#pragma once

#include <memory>

#include "proxy/asio.hpp"

namespace sluice::proxy {

class Wakeup {
 public:
  explicit Wakeup(asio::any_io_executor executor) : executor_(std::move(executor)) {}
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  // Returns at the next notify(), or at once if one came since the last wait.
  awaitable<void> wait() {
    if (!notified_)
      co_await asio::async_initiate<decltype(use_awaitable), void()>(
          [this](auto handler) {
            handler_ = std::make_unique<Stored<decltype(handler)>>(std::move(handler));
          },
          use_awaitable);
    notified_ = false;
  }

  // Resumes the waiter later on the executor (never inline: the caller is mid-update).
  void notify() {
    if (handler_)
      asio::post(executor_, [handler = std::move(handler_)] { handler->resume(); });
    else
      notified_ = true;
  }

 private:
  // Boost 1.81's any_completion_handler recurses forever when posted; this is all we need.
  struct Handler {
    virtual ~Handler() = default;
    virtual void resume() = 0;
  };
  template <class H>
  struct Stored final : Handler {
    explicit Stored(H h) : handler(std::move(h)) {}
    void resume() override { std::move(handler)(); }
    H handler;
  };

  asio::any_io_executor executor_;
  std::unique_ptr<Handler> handler_;
  bool notified_ = false;
};

}  // namespace sluice::proxy
