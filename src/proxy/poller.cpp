#include "proxy/poller.hpp"

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace sluice::proxy {

namespace {
constexpr uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
constexpr uint32_t kWriteEvents = EPOLLOUT | EPOLLHUP | EPOLLERR;

boost::system::system_error last_system_error() {
  return boost::system::system_error(errno, boost::system::system_category());
}
}  // namespace

Poller::Poller(executor ex)
    : executor_(ex), epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)), descriptor_(ex) {
  if (epoll_fd_ < 0) throw last_system_error();
  descriptor_.assign(epoll_fd_);
  arm();
}

Poller::~Poller() {
  boost::system::error_code ignored;
  descriptor_.close(ignored);  // closes epoll_fd_
}

void Poller::add(Watch& watch) {
  // EPOLLOUT stays registered: with edge triggering it fires only after a send found the
  // socket buffer full and room came back, so it costs nothing while writes succeed.
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.ptr = &watch;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, watch.fd, &event) != 0) throw last_system_error();
  watch.closed = false;
}

void Poller::remove(Watch& watch) {
  if (watch.closed) return;
  watch.closed = true;
  epoll_event unused{};
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, watch.fd, &unused);
  // The watch may be destroyed before the batch reaches it.
  for (int i = batch_next_; i < batch_size_; ++i)
    if (events_[i].data.ptr == &watch) events_[i].data.ptr = nullptr;
  post_resume(watch.on_readable);
  post_resume(watch.on_writable);
  post_resume(watch.parked);
}

void Poller::post_resume(std::optional<Resume>& waiter) {
  if (!waiter) return;
  asio::post(executor_, [resume = std::move(*waiter)]() mutable { std::move(resume)(); });
  waiter.reset();
}

void Poller::post_resume(ParkedReader*& parked) {
  if (!parked) return;
  // The reader owns itself while parked, so it is still there when this runs.
  asio::post(executor_, [reader = std::exchange(parked, nullptr)] { reader->resume_reading(); });
}

void Poller::park_reader(Watch& watch, ParkedReader& reader) {
  watch.parked = &reader;
  if (watch.readable || watch.closed) post_resume(watch.parked);
}

// Not coroutines themselves (one frame less per wait): the initiation parks the caller.
awaitable<void> Poller::park(Watch& watch, std::optional<Resume>& slot) {
  return asio::async_initiate<decltype(use_awaitable), void()>(
      [this, &watch, &slot](Resume resume) {
        slot.emplace(std::move(resume));
        if (watch.closed) post_resume(slot);
      },
      use_awaitable);
}

bool Poller::wait_readable_instead(Watch& watch, std::optional<Resume>& waiter) {
  if (!waiter || watch.readable || watch.closed || watch.on_readable) return false;
  watch.on_readable.emplace(std::move(*waiter));
  waiter.reset();
  return true;
}

void Poller::arm() {
  descriptor_.async_wait(asio::posix::descriptor_base::wait_read,
                         [this](boost::system::error_code ec) {
                           if (ec) return;  // shutting down
                           dispatch();
                           poll_again_later();
                         });
}

void Poller::poll_again_later() {
  // While sockets keep becoming ready, look again after the handlers queued meanwhile have run
  // instead of re-arming the wait: re-arming costs an epoll_ctl each time.
  asio::post(executor_, [this] {
    if (dispatch())
      poll_again_later();
    else
      arm();
  });
}

bool Poller::dispatch() {
  bool any = false;
  for (;;) {
    const int n = ::epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), 0);
    if (n <= 0) return any;  // drained (EINTR: the re-armed wait comes back at once)
    any = true;
    batch_size_ = n;
    // Server sockets first (see Watch::first_in_batch), each entry cleared once handled;
    // remove() clears those of watches that go meanwhile, from batch_next_ on.
    batch_next_ = 0;
    for (int i = 0; i < n; ++i) {
      auto* watch = static_cast<Watch*>(events_[i].data.ptr);
      if (!watch || !watch->first_in_batch) continue;
      const epoll_event event = events_[i];
      events_[i].data.ptr = nullptr;
      dispatch_one(event);
    }
    for (batch_next_ = 0; batch_next_ < batch_size_;) {
      const epoll_event event = events_[batch_next_++];
      if (event.data.ptr) dispatch_one(event);
    }
    batch_size_ = batch_next_ = 0;
    if (n < static_cast<int>(events_.size())) return any;
  }
}

void Poller::dispatch_one(const epoll_event& event) {
  auto* watch = static_cast<Watch*>(event.data.ptr);
  // Both waiters are taken out before either runs: a resumed coroutine may close the
  // socket, or finish and free the transport once nobody else waits on it.
  std::optional<Resume> reader, writer;
  ParkedReader* parked = nullptr;
  if (event.events & kReadEvents) {
    watch->readable = true;
    if (event.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) watch->peer_closing = true;
    if (watch->on_readable) {
      reader.emplace(std::move(*watch->on_readable));
      watch->on_readable.reset();
    } else if (watch->parked) {
      parked = std::exchange(watch->parked, nullptr);
    }
  }
  if (event.events & kWriteEvents) {
    watch->writable = true;
    if (watch->on_writable) {
      writer.emplace(std::move(*watch->on_writable));
      watch->on_writable.reset();
    }
  }
  if (reader) std::move (*reader)();
  if (writer) std::move (*writer)();
  if (parked) parked->resume_reading();
}

}  // namespace sluice::proxy
