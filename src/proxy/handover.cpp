#include "proxy/handover.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <system_error>

namespace sluice::proxy::handover {
namespace {

using Clock = std::chrono::steady_clock;
// The new process has loaded its configuration, secrets and TLS material before it connects:
// what is left (binding its other addresses, starting its workers) takes moments.
constexpr auto kHelloDeadline = std::chrono::seconds(10);
constexpr auto kReadyDeadline = std::chrono::seconds(60);
constexpr auto kClientTimeout = std::chrono::seconds(30);
constexpr auto kDoneTimeout = std::chrono::seconds(10);

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

void close_all(const std::vector<int>& fds) {
  for (int fd : fds) ::close(fd);
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof address.sun_path)
    throw HandoverError("handover_socket " + path + ": must be a path of 1 to " +
                        std::to_string(sizeof address.sun_path - 1) + " bytes");
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

// Only the proxy's own user (or root) may take its sockets, or hand sockets to it.
bool trusted_peer(int connection, uint32_t* pid) {
  ucred peer{};
  socklen_t length = sizeof peer;
  if (::getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) return false;
  if (pid) *pid = static_cast<uint32_t>(peer.pid);
  return peer.uid == ::geteuid() || peer.uid == 0;
}

void set_timeout(int fd, int option, std::chrono::seconds timeout) {
  timeval tv{};
  tv.tv_sec = timeout.count();
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

void send_message(int fd, const Message& message, const int* fds = nullptr, size_t count = 0) {
  std::string bytes = encode(message);
  iovec iov{bytes.data(), bytes.size()};
  msghdr header{};
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  std::vector<char> control;
  if (count > 0) {
    control.resize(CMSG_SPACE(count * sizeof(int)));
    header.msg_control = control.data();
    header.msg_controllen = control.size();
    cmsghdr* rights = CMSG_FIRSTHDR(&header);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(count * sizeof(int));
    std::memcpy(CMSG_DATA(rights), fds, count * sizeof(int));
  }
  for (;;) {
    if (::sendmsg(fd, &header, MSG_NOSIGNAL) >= 0) return;
    if (errno != EINTR) throw_errno("handover: send");
  }
}

// Waits for `fd` to become readable until `deadline`; false when the time is up or
// `wake_fd` (if any) was signalled.
bool wait_readable(int fd, int wake_fd, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    const int ready = ::poll(fds, wake_fd >= 0 ? 2 : 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw_errno("handover: poll");
    if (wake_fd >= 0 && (fds[1].revents & POLLIN)) return false;
    if (fds[0].revents) return true;
  }
}

// One message and the descriptors that came with it (close-on-exec); nullopt when the peer
// closed the connection. The descriptors are the caller's even when this throws a
// HandoverError for the message itself.
std::optional<Message> receive_message(int fd, std::vector<int>& fds) {
  char bytes[kMaxMessageSize + 1];
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxDescriptorsPerMessage * sizeof(int))];
  iovec iov{bytes, sizeof bytes};
  msghdr header{};
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  header.msg_control = control;
  header.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(fd, &header, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      throw HandoverError("handover: the other sluice-proxy did not answer in time");
    throw_errno("handover: receive");
  }
  fds.clear();
  for (cmsghdr* c = CMSG_FIRSTHDR(&header); c; c = CMSG_NXTHDR(&header, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof received);
      fds.push_back(received);
    }
  }
  if (header.msg_flags & MSG_CTRUNC)
    throw HandoverError("handover: sockets lost in transit (too many, or out of descriptors)");
  if (header.msg_flags & MSG_TRUNC) throw HandoverError("handover: message too long");
  if (n == 0) return std::nullopt;
  return decode(std::string_view(bytes, static_cast<size_t>(n)));
}

}  // namespace

bool socket_answers(const std::string& path) {
  const sockaddr_un address = unix_address(path);
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("handover: socket");
  const bool answers =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return answers;
}

// ---- the taking side

HandoverClient::HandoverClient(const std::string& path) {
  const sockaddr_un address = unix_address(path);
  fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw_errno("handover: socket");
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    ::close(fd_);
    fd_ = -1;
    throw HandoverError("--takeover: no running sluice-proxy answers at " + path + " (" +
                        std::generic_category().message(error) + ")");
  }
  if (!trusted_peer(fd_, &peer_pid_)) {
    ::close(fd_);
    fd_ = -1;
    throw HandoverError("--takeover: the process at " + path +
                        " runs as another user; refusing its sockets");
  }
  set_timeout(fd_, SO_RCVTIMEO, kClientTimeout);
  set_timeout(fd_, SO_SNDTIMEO, kClientTimeout);
  OfferCollector offer;
  try {
    send_message(fd_, Message::hello(static_cast<uint32_t>(::getpid())));
    while (!offer.complete()) {
      std::vector<int> fds;
      std::optional<Message> message;
      try {
        message = receive_message(fd_, fds);
      } catch (...) {
        close_all(fds);
        throw;
      }
      if (!message) {
        close_all(fds);
        throw HandoverError("handover: the running sluice-proxy closed the connection mid-offer");
      }
      offer.add(*message, fds);
      if (message->type == MessageType::kEnd) peer_pid_ = message->pid;
    }
  } catch (...) {
    close_all(offer.all_fds());
    ::close(fd_);
    fd_ = -1;
    throw;
  }
  listeners_ = offer.take();
}

HandoverClient::~HandoverClient() {
  if (fd_ >= 0) ::close(fd_);
  for (const auto& listener : listeners_) close_all(listener.fds);
}

std::vector<Listener> HandoverClient::take_listeners() {
  return std::move(listeners_);
}

bool HandoverClient::confirm() {
  std::vector<int> fds;
  std::optional<Message> reply;
  try {
    send_message(fd_, Message::ready(static_cast<uint32_t>(::getpid())));
    set_timeout(fd_, SO_RCVTIMEO, kDoneTimeout);
    reply = receive_message(fd_, fds);
  } catch (const std::exception& e) {
    spdlog::warn("handover: {}", e.what());
  }
  close_all(fds);
  ::close(fd_);
  fd_ = -1;
  return reply && reply->type == MessageType::kDone;
}

// ---- the offering side

HandoverServer::HandoverServer(std::string path)
    : path_(std::move(path)), temporary_path_(path_ + ".new." + std::to_string(::getpid())) {
  // Bound under a temporary name, made private, then (start()) renamed over `path` in one
  // step: the path never names a socket others may use, nor (during an upgrade) nothing.
  const sockaddr_un address = unix_address(temporary_path_);
  listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) throw_errno("handover: socket");
  ::unlink(temporary_path_.c_str());
  auto fail = [&](const std::string& what) {
    const int error = errno;
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::unlink(temporary_path_.c_str());
    throw std::runtime_error("handover_socket " + path_ + ": " + what + ": " +
                             std::generic_category().message(error));
  };
  if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
    fail("cannot bind " + temporary_path_);
  if (::chmod(temporary_path_.c_str(), 0600) != 0) fail("cannot make it private");
  if (::listen(listen_fd_, 4) != 0) fail("cannot listen");
  struct stat bound {};
  if (::stat(temporary_path_.c_str(), &bound) != 0) fail("cannot stat");
  bound_device_ = bound.st_dev;
  bound_inode_ = bound.st_ino;
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) fail("eventfd");
}

HandoverServer::~HandoverServer() {
  stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void HandoverServer::start(std::vector<Listener> listeners,
                           std::function<void(uint32_t)> handed_over) {
  update_listeners(std::move(listeners));
  on_handed_over_ = std::move(handed_over);
  if (::rename(temporary_path_.c_str(), path_.c_str()) != 0)
    throw_errno("handover_socket " + path_ + ": cannot rename " + temporary_path_ + " into place");
  temporary_path_.clear();
  thread_ = std::thread([this] { serve(); });
  spdlog::info("handover: a successor may take the listening sockets at {}", path_);
}

void HandoverServer::update_listeners(std::vector<Listener> listeners) {
  std::lock_guard lock(listeners_mutex_);
  listeners_ = std::move(listeners);
}

void HandoverServer::stop() {
  std::call_once(stopped_, [this] {
    const uint64_t one = 1;
    if (wake_fd_ >= 0 && ::write(wake_fd_, &one, sizeof one) < 0)
      spdlog::warn("handover: cannot wake the handover thread");
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
    if (!temporary_path_.empty()) {
      ::unlink(temporary_path_.c_str());
      return;
    }
    // After a handover the path is the successor's (it renames its own socket there).
    if (handed_over_) return;
    // Otherwise the file goes unless another process's replaced it.
    struct stat current {};
    if (::stat(path_.c_str(), &current) == 0 && current.st_dev == bound_device_ &&
        current.st_ino == bound_inode_)
      ::unlink(path_.c_str());
  });
}

void HandoverServer::serve() {
  for (;;) {
    if (!wait_readable(listen_fd_, wake_fd_, Clock::time_point::max())) return;
    const int connection = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) continue;  // gone before taken, or a transient failure
    uint32_t pid = 0;
    if (!trusted_peer(connection, &pid)) {
      spdlog::warn("handover: refused a process of another user (pid {})", pid);
      ::close(connection);
      continue;
    }
    bool confirmed = false;
    try {
      confirmed = serve_one(connection);
    } catch (const std::exception& e) {
      spdlog::warn("handover to pid {} failed before it confirmed ({}): still serving", pid,
                   e.what());
    }
    ::close(connection);
    if (confirmed) return;
  }
}

bool HandoverServer::serve_one(int connection) {
  set_timeout(connection, SO_SNDTIMEO, std::chrono::seconds(10));
  std::vector<int> fds;
  auto next = [&](Clock::duration limit, const char* waiting_for) -> Message {
    if (!wait_readable(connection, wake_fd_, Clock::now() + limit))
      throw HandoverError(std::string("no ") + waiting_for + " in time, or stopping");
    std::optional<Message> message;
    try {
      message = receive_message(connection, fds);
    } catch (...) {
      close_all(fds);
      throw;
    }
    close_all(fds);  // nothing is sent this way
    if (!message) throw HandoverError(std::string("it went away before ") + waiting_for);
    return *message;
  };
  Message hello;
  try {
    if (!wait_readable(connection, wake_fd_, Clock::now() + kHelloDeadline))
      throw HandoverError("no Hello in time, or stopping");
    std::optional<Message> first;
    try {
      first = receive_message(connection, fds);
    } catch (...) {
      close_all(fds);
      throw;
    }
    close_all(fds);
    // Gone without a word: a check that this proxy runs (a second one starting), not a takeover.
    if (!first) return false;
    hello = *first;
  } catch (const HandoverError& e) {
    // Another version, say: tell it why before hanging up.
    try {
      send_message(connection, Message::refused(e.what()));
    } catch (const std::exception&) {
    }
    throw;
  }
  if (hello.type != MessageType::kHello) throw HandoverError("it did not start with Hello");
  spdlog::info("handover: pid {} asks for the listening sockets", hello.pid);
  uint32_t messages = 0;
  {
    // Held while sending: a reload closes the sockets it dropped only after update_listeners().
    std::lock_guard lock(listeners_mutex_);
    for (const Listener& listener : listeners_)
      for (const ListenerChunk& chunk : chunk_listener(listener)) {
        send_message(connection, chunk.message, listener.fds.data() + chunk.first,
                     chunk.message.count);
        ++messages;
      }
  }
  send_message(connection, Message::end(static_cast<uint32_t>(::getpid()), messages));
  const Message ready = next(kReadyDeadline, "Ready");
  if (ready.type != MessageType::kReady) throw HandoverError("it answered the offer out of turn");
  // Nobody else may take the sockets now; the path is the new process's to bind.
  ::close(listen_fd_);
  listen_fd_ = -1;
  handed_over_ = true;
  on_handed_over_(hello.pid);
  try {
    send_message(connection, Message::done(static_cast<uint32_t>(::getpid())));
  } catch (const std::exception& e) {
    spdlog::warn("handover: could not confirm to pid {}: {}", hello.pid, e.what());
  }
  return true;
}

void notify_service_manager(const std::string& state) {
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  if (!socket_path || !*socket_path) return;
  std::string path(socket_path);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) return;
  std::memcpy(address.sun_path, path.data(), path.size());
  if (path[0] == '@') address.sun_path[0] = '\0';  // an abstract socket
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  const socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  if (::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&address), length) < 0)
    spdlog::warn("cannot notify the service manager: {}", std::strerror(errno));
  ::close(fd);
}

}  // namespace sluice::proxy::handover
