// Zero-downtime upgrade: a running sluice-proxy hands its very listening sockets (and their
// accept queues) to a new process over a Unix socket, then drains as on SIGTERM. No
// connection attempt is refused: the queues never close, only their owner changes. The
// messages are in handover_codec.hpp.
//
//   old: HandoverServer offers its sockets at `handover_socket` (mode 0600, peers of the same
//        user or root only) and, once the new process says Ready, stops accepting and drains.
//   new: `sluice-proxy --config F --takeover`: HandoverClient takes the sockets, the proxy
//        accepts from them, then confirms; it then offers them in turn at the same path.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proxy/handover_codec.hpp"

namespace sluice::proxy::handover {

// Whether a process accepts connections at the Unix socket `path` (a live proxy; a file left
// by one that died does not).
bool socket_answers(const std::string& path);

// The taking side. Every step throws HandoverError (or std::system_error) on failure; until
// confirm() the running proxy is unaffected by it.
class HandoverClient {
 public:
  // Connects to the running proxy at `path`, says Hello and receives its offer.
  explicit HandoverClient(const std::string& path);
  ~HandoverClient();
  HandoverClient(const HandoverClient&) = delete;
  HandoverClient& operator=(const HandoverClient&) = delete;

  // The offered listeners; their descriptors become the caller's.
  std::vector<Listener> take_listeners();
  // Tells the running proxy that this one accepts now, and waits (briefly) for it to confirm
  // that it stopped accepting. False if it did not say so (this process serves on all the same:
  // failing now would reset the clients it accepted). Never throws.
  bool confirm();
  uint32_t peer_pid() const { return peer_pid_; }

 private:
  int fd_ = -1;
  uint32_t peer_pid_ = 0;
  std::vector<Listener> listeners_;
};

// The offering side: a thread serving one takeover at a time at `path`.
class HandoverServer {
 public:
  // Binds a private (0600) socket beside `path`, under a temporary name: a directory that
  // will not do fails here, before anything was taken over.
  explicit HandoverServer(std::string path);
  ~HandoverServer();
  HandoverServer(const HandoverServer&) = delete;
  HandoverServer& operator=(const HandoverServer&) = delete;

  // Puts the socket at `path` (replacing whatever file is there: the caller checked that
  // nobody answers, or took over from whoever did) and offers `listeners`. `handed_over` runs on
  // the server's thread once a new process confirmed; the server has stopped by then.
  void start(std::vector<Listener> listeners, std::function<void(uint32_t new_pid)> handed_over);
  // What is offered from now on (a reload that changed the listen addresses calls it before it
  // closes sockets no longer listed). Any thread.
  void update_listeners(std::vector<Listener> listeners);
  // Stops offering (before the listeners close): ends a takeover in progress and joins the
  // thread. The socket file goes unless another process's replaced it (the successor's).
  void stop();

 private:
  void serve();
  // One takeover; true when the peer confirmed.
  bool serve_one(int connection);

  std::string path_;
  std::string temporary_path_;  // until start()
  std::mutex listeners_mutex_;
  std::vector<Listener> listeners_;  // under listeners_mutex_
  std::function<void(uint32_t)> on_handed_over_;
  std::atomic<bool> handed_over_{false};
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop() wakes the thread
  // The socket file as bound: stop() removes only that one, never a successor's.
  uint64_t bound_device_ = 0;
  uint64_t bound_inode_ = 0;
  std::thread thread_;
  std::once_flag stopped_;
};

// systemd's notification protocol ($NOTIFY_SOCKET, Type=notify): `state` such as "READY=1" or
// "MAINPID=123\nREADY=1". Nothing without $NOTIFY_SOCKET.
void notify_service_manager(const std::string& state);

}  // namespace sluice::proxy::handover
