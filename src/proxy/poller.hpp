// Readiness of the proxy's client and server sockets, from one edge-triggered epoll set of
// our own that itself waits inside Asio as a single descriptor.
//
// Why not Asio's reactor for these sockets: Boost 1.81 retries a read speculatively after
// every successful one, so a request/response relay pays one recv() that fails with EAGAIN per
// message, and its readiness-only waits re-arm with an epoll_ctl() each time. Here a short
// read marks the socket drained and the next read waits for the next edge, as PgBouncer's
// loop does; a batch of ready sockets costs one epoll_wait() and one re-arm, and each waiting
// coroutine is resumed directly from the batch instead of through a queued completion.
// Timers, the acceptor, connects and everything else stay on Asio.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <optional>
#include <type_traits>

#include "proxy/asio.hpp"

namespace sluice::proxy {

class Poller {
 public:
  // What resumes a coroutine suspended in a wait, stored in place.
  using Resume = asio::async_result<std::decay_t<decltype(use_awaitable)>, void()>::handler_type;

  // A reader that waits without a coroutine: an idle client's session, whose frames are gone
  // until its next byte (see park_reader()).
  class ParkedReader {
   public:
    virtual void resume_reading() = 0;

   protected:
    ~ParkedReader() = default;
  };

  // One socket's readiness. Owned by the socket's Transport, registered while the socket is
  // open.
  struct Watch {
    int fd = -1;
    bool readable = true;  // not known to be drained: a read may find bytes
    bool writable = true;  // not known to be full
    bool closed = false;
    // The peer shut down its side (or the socket failed): the bytes left to read end in EOF,
    // which no later edge announces, so a short read no longer means "wait for an edge".
    bool peer_closing = false;
    std::optional<Resume> on_readable;
    std::optional<Resume> on_writable;
    ParkedReader* parked = nullptr;  // instead of on_readable
    // A server connection's: in a batch of ready sockets its replies are relayed (and its
    // connection returned to the pool) before the clients' requests are read, so that a request
    // arriving with a reply finds the connection idle rather than waiting in line for it.
    bool first_in_batch = false;
  };

  explicit Poller(executor ex);
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Starts watching `watch.fd` (non-blocking). Throws on failure.
  void add(Watch& watch);
  // Stops watching before the fd is closed. Waiters are resumed later (posted) and find
  // `closed` set. Safe to call while a batch is being dispatched.
  void remove(Watch& watch);

  // Return at the next edge (or at once if the watch was closed).
  awaitable<void> readable(Watch& watch) { return park(watch, watch.on_readable); }
  awaitable<void> writable(Watch& watch) { return park(watch, watch.on_writable); }
  // Makes a coroutine already suspended elsewhere wait for `watch`'s next read edge instead:
  // its resumption moves from `waiter` to the watch. False (and `waiter` untouched) when the
  // socket may have bytes already or is closed, so the caller resumes it now instead.
  bool wait_readable_instead(Watch& watch, std::optional<Resume>& waiter);
  // Resumes the coroutine waiting in readable() soon (posted), as an edge would: it then finds
  // `watch.readable` unchanged if nothing came.
  void wake_reader(Watch& watch) { post_resume(watch.on_readable); }
  // Calls `reader` once, at the next read edge, or soon (posted) if the watch is closed or may
  // have bytes already. Nothing else may wait to read meanwhile. A parked reader costs a
  // pointer, where a suspended coroutine costs its frames.
  void park_reader(Watch& watch, ParkedReader& reader);

 private:
  // Stores the caller's resumption in `slot` (one of watch's), or resumes it soon if closed.
  awaitable<void> park(Watch& watch, std::optional<Resume>& slot);
  void arm();
  void poll_again_later();
  // Resumes the waiters of every ready socket; false when none was ready.
  bool dispatch();
  // Resumes what waits on `event`'s socket.
  void dispatch_one(const epoll_event& event);
  void post_resume(std::optional<Resume>& waiter);
  void post_resume(ParkedReader*& parked);

  executor executor_;
  int epoll_fd_ = -1;
  asio::posix::basic_stream_descriptor<executor> descriptor_;  // epoll_fd_, as Asio sees it
  std::array<epoll_event, 256> events_{};
  int batch_size_ = 0;  // events_ being dispatched; entries of removed watches are nulled
  int batch_next_ = 0;
};

}  // namespace sluice::proxy
