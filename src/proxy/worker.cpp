#include "proxy/worker.hpp"

#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

#include "proxy/client_placement.hpp"
#include "proxy/client_session.hpp"
#include "proxy/slab_pool.hpp"

namespace sluice::proxy {
namespace {
constexpr auto kHousekeepingPeriod = std::chrono::milliseconds(250);
constexpr auto kHoldBackCheck = std::chrono::milliseconds(20);

ProxyContext context_for(asio::io_context& io, const Config& config, WorkerShared& shared,
                         size_t index, Metrics& metrics) {
  ProxyContext ctx{
      io, config, shared.secrets, shared.client_tls.at(index).get(), shared.target_tls, metrics};
  ctx.health = &shared.health;
  ctx.budget = &shared.budget;
  return ctx;
}
}  // namespace

Worker::Worker(size_t index, WorkerShared& shared)
    : index_(index),
      shared_(shared),
      config_(shared.config),
      ctx_(context_for(io_, config_, shared, index, metrics_)),
      poller_(io_.get_executor()),
      pools_(ctx_),
      clients_(ctx_, &shared.clients, index, shared.workers),
      login_gate_(io_.get_executor(), config_.max_concurrent_logins, metrics_) {
  if (!config_.admission_file.empty()) {
    admission_ = std::make_unique<AdmissionFile>(config_.admission_file);
    admission_->load();
  }
  ctx_.poller = &poller_;
  ctx_.statements = &shared.statements;
  ctx_.pools = &pools_;
  ctx_.clients = &clients_;
  ctx_.logins = &login_gate_;
}

Worker::~Worker() = default;

void Worker::add_listener(int fd, std::string label) {
  sockaddr_storage local{};
  socklen_t length = sizeof local;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length);
  auto acceptor = std::make_unique<tcp_acceptor>(io_);
  boost::system::error_code ec;
  acceptor->assign(local.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) {
    spdlog::error("listen {}: {}", label, ec.message());
    ::close(fd);
    return;
  }
  acceptors_.push_back(std::move(acceptor));
  listener_labels_.push_back(std::move(label));
  if (running_)
    asio::co_spawn(io_, accept_loop(*acceptors_.back(), listener_labels_.back()), asio::detached);
}

std::vector<std::pair<std::string, int>> Worker::listening_sockets() const {
  std::vector<std::pair<std::string, int>> sockets;
  for (size_t i = 0; i < acceptors_.size(); ++i)
    sockets.emplace_back(listener_labels_[i], acceptors_[i]->native_handle());
  return sockets;
}

void Worker::run() {
  running_ = true;
  for (size_t i = 0; i < acceptors_.size(); ++i)
    asio::co_spawn(io_, accept_loop(*acceptors_[i], listener_labels_[i]), asio::detached);
  asio::co_spawn(io_, housekeeping(), asio::detached);
  start_hold_back_watch();
  io_.run();
}

void Worker::start_hold_back_watch() {
  if (!ctx_.config.adaptive_concurrency || hold_back_watch_running_) return;
  hold_back_watch_running_ = true;
  asio::co_spawn(io_, hold_back_watch(), asio::detached);
}

void Worker::apply(WorkerReload reload) {
  const bool admission_moved = reload.config.admission_file != config_.admission_file;
  config_ = std::move(reload.config);
  ctx_.secrets = std::move(reload.secrets);
  ctx_.client_tls = reload.client_tls;
  ctx_.target_tls = reload.target_tls;
  login_gate_.set_capacity(config_.max_concurrent_logins);
  if (admission_moved) {
    admission_.reset();
    if (!config_.admission_file.empty()) {
      admission_ = std::make_unique<AdmissionFile>(config_.admission_file);
      admission_->load();
    }
  }
  for (const std::string& label : reload.closed_listeners)
    for (size_t i = 0; i < acceptors_.size();) {
      if (listener_labels_[i] != label) {
        ++i;
        continue;
      }
      boost::system::error_code ignored;
      acceptors_[i]->close(ignored);  // its accept loop ends; clients taken from it stay
      closed_acceptors_.push_back(std::move(acceptors_[i]));
      acceptors_.erase(acceptors_.begin() + static_cast<std::ptrdiff_t>(i));
      listener_labels_.erase(listener_labels_.begin() + static_cast<std::ptrdiff_t>(i));
    }
  for (auto& [fd, label] : reload.new_listeners) {
    if (ctx_.draining) {
      ::close(fd);
      continue;
    }
    add_listener(fd, std::move(label));
  }
  pools_.reconfigure();
  start_hold_back_watch();
}

void Worker::begin_shutdown(std::chrono::steady_clock::time_point deadline, bool handed_over) {
  ctx_.draining = true;
  ctx_.handed_over = handed_over;
  shutdown_deadline_ = deadline;
  boost::system::error_code ec;
  for (const auto& acceptor : acceptors_) acceptor->close(ec);
  clients_.close_idle_for_shutdown(idle_grace());
  pools_.close_all_idle();
}

std::chrono::steady_clock::duration Worker::idle_grace() const {
  // After a handover nobody asked this client to leave: it is spared until it has been idle a
  // moment, so that one that just logged in gets its first query answered.
  return ctx_.handed_over ? std::chrono::seconds(1) : std::chrono::steady_clock::duration{};
}

namespace {

// A client connection taken from `listener` with accept4: non-blocking and close-on-exec in
// the same call, its peer's address with it. -1 with errno as accept4 sets it.
int accept_client(int listener, tcp::endpoint& remote) {
  sockaddr_storage peer{};
  socklen_t length = sizeof peer;
  const int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &length,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0) {
    remote = tcp::endpoint();
    remote.resize(std::min<size_t>(length, remote.capacity()));
    std::memcpy(remote.data(), &peer, remote.size());
  }
  return fd;
}

}  // namespace

awaitable<void> Worker::accept_loop(tcp_acceptor& acceptor, std::string label) {
  // Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt here instead of one
  // per client.
  const int one = 1;
  ::setsockopt(acceptor.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // accept4 below must find the backlog empty rather than wait for it.
  boost::system::error_code ec;
  acceptor.non_blocking(true, ec);
  if (ec) {
    spdlog::error("cannot make the listening socket for {} non-blocking: {}", label, ec.message());
    co_return;
  }
  size_t accepted_this_turn = 0;
  for (;;) {
    if (!acceptor.is_open()) co_return;  // begin_shutdown() closed it; its number may be reused
    tcp::endpoint remote;
    const int fd = accept_client(acceptor.native_handle(), remote);
    if (fd < 0) {
      const int error = errno;
      if (error == EINTR || error == ECONNABORTED) continue;  // ECONNABORTED: gone before taken
      if (error == EAGAIN || error == EWOULDBLOCK) {
        // Drained: the listener's next edge brings the next client (waiting only after
        // EAGAIN, an edge is never missed).
        accepted_this_turn = 0;
        auto [wait_error] =
            co_await acceptor.async_wait(tcp_acceptor::wait_read, as_tuple_awaitable);
        if (wait_error && !acceptor.is_open()) co_return;
        continue;
      }
      // Out of descriptors and the like: back off briefly rather than spin, and say so at most
      // every ten seconds.
      ++accept_failures_;
      if (const auto now = std::chrono::steady_clock::now(); now >= next_accept_warning_) {
        spdlog::warn("accept failed: {} ({} times since the last warning)",
                     std::generic_category().message(error), accept_failures_);
        accept_failures_ = 0;
        next_accept_warning_ = now + std::chrono::seconds(10);
      }
      steady_timer pause(io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(as_tuple_awaitable);
      continue;
    }
    if (screen_client(fd, remote, label)) {
      if (const size_t to = placement(); to != index_ && hand_client) {
        // Counted until the other worker takes it, which may be after this one accepted many.
        shared_.clients.unsettled.fetch_add(1, std::memory_order_relaxed);
        hand_client(to, fd, remote);
      } else {
        take_client(fd, remote);
      }
    }
    if (++accepted_this_turn == kAcceptsPerTurn) {
      // A storm's backlog is taken a few at a time, with the other clients' work in between.
      accepted_this_turn = 0;
      co_await asio::post(io_.get_executor(), use_awaitable);
    }
  }
}

size_t Worker::placement() const {
  const auto& per_worker = shared_.clients.per_worker;
  if (config_.spread_clients || shared_.workers < 2 || !per_worker) return index_;
  WorkerLoad loads[kMaxPlacedWorkers];
  const size_t n = std::min(shared_.workers, kMaxPlacedWorkers);
  for (size_t i = 0; i < n; ++i)
    loads[i] = {per_worker[i].clients.load(std::memory_order_relaxed),
                per_worker[i].busy_permille.load(std::memory_order_relaxed) / 1000.0};
  return place_client(std::span(loads, n), std::min(index_, n - 1));
}

void Worker::take_handed(int fd, const tcp::endpoint& remote) {
  // A post per new client, not per message: nothing is shared while its session runs.
  asio::post(io_, [this, fd, remote] {
    shared_.clients.unsettled.fetch_sub(1, std::memory_order_relaxed);
    if (ctx_.draining) {  // the listeners closed meanwhile: as if it came after them
      ::close(fd);
      return;
    }
    take_client(fd, remote);
  });
}

void Worker::publish_busy(std::chrono::steady_clock::time_point now) {
  timespec cpu{};
  if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) != 0) return;
  const int64_t cpu_ns = int64_t{cpu.tv_sec} * 1'000'000'000 + cpu.tv_nsec;
  if (busy_measured_at_ != std::chrono::steady_clock::time_point{} && shared_.clients.per_worker) {
    const auto wall_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - busy_measured_at_).count();
    if (wall_ns > 0)
      shared_.clients.per_worker[index_].busy_permille.store(
          static_cast<uint32_t>(
              std::clamp<int64_t>((cpu_ns - busy_cpu_ns_) * 1000 / wall_ns, 0, 1000)),
          std::memory_order_relaxed);
  }
  busy_measured_at_ = now;
  busy_cpu_ns_ = cpu_ns;
}

bool Worker::screen_client(int fd, const tcp::endpoint& remote, const std::string& label) {
  if (admission_) {
    // The security groups' decision, as the network would make it: a refused source gets no
    // byte from the proxy.
    const auto peer = remote.address();
    std::optional<uint32_t> v4;
    if (peer.is_v4()) v4 = peer.to_v4().to_uint();
    if (!admission_->current().admits(label, v4)) {
      spdlog::info("refused a connection from {} on {}: its security groups do not admit it",
                   peer.to_string(), label);
      ::close(fd);
      return false;
    }
  }
  if (descriptors_short()) {
    refuse_at_once(fd, "53300",
                   "the proxy has no file descriptors left for new clients (open-file limit " +
                       std::to_string(shared_.descriptor_limit) + "); try again");
    return false;
  }
  return true;
}

void Worker::take_client(int fd, const tcp::endpoint& remote) {
  auto as_socket = [&] {
    // The rare refusals go through Asio's socket (a drain with a deadline).
    tcp_socket socket(io_);
    boost::system::error_code ec;
    socket.assign(remote.protocol(), fd, ec);
    if (ec) ::close(fd);
    return socket;
  };
  if (clients_.pending_logins() >= config_.max_pending_logins) {
    // A login storm, or connections left half-open on purpose: those already logging in and
    // those logged in go on; this one is told to come back. Counted until closed: a storm of
    // refusals lingering a second each holds descriptors too.
    shared_.clients.unsettled.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(
        io_,
        refuse(as_socket(), "53300",
               "too many clients are logging in to the proxy at once (" +
                   std::to_string(config_.max_pending_logins) + ", max_pending_logins); try again"),
        asio::detached);
    return;
  }
  std::shared_ptr<ClientSession> session;
  try {
    // Packed with the other sessions, away from what its login allocates (see slab_pool.hpp).
    session = std::allocate_shared<ClientSession>(SlabAllocator<ClientSession>{}, ctx_, fd, remote);
  } catch (const std::exception& ex) {  // out of memory or descriptors for the poller
    spdlog::error("could not take a client connection: {}", ex.what());
    return;
  }
  asio::co_spawn(io_, session->run(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("client session failed: {}", ex.what());
    }
  });
}

bool Worker::descriptors_short() const {
  const size_t clients =
      clients_.size() + shared_.clients.unsettled.load(std::memory_order_relaxed);
  return clients + pools_.cap() + kReservedDescriptors + kReservedPerWorker * shared_.workers >=
         shared_.descriptor_limit;
}

void Worker::refuse_at_once(int fd, const std::string& sqlstate, const std::string& message) {
  std::string fatal;
  pgwire::write_error(fatal, "FATAL", sqlstate, message);
  // The socket is non-blocking (accept4) and empty: the message fits, or the client is gone.
  [[maybe_unused]] const ssize_t sent = ::send(fd, fatal.data(), fatal.size(), MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

awaitable<void> Worker::refuse(tcp_socket socket, std::string sqlstate, std::string message) {
  struct Settled {  // however this ends
    std::atomic<size_t>& unsettled;
    ~Settled() { unsettled.fetch_sub(1, std::memory_order_relaxed); }
  } settled{shared_.clients.unsettled};
  std::string fatal;
  pgwire::write_error(fatal, "FATAL", sqlstate, message);
  steady_timer limit(io_, std::chrono::seconds(1));
  limit.async_wait([&socket](boost::system::error_code ec) {
    if (ec) return;  // cancelled: the frame holding the socket may be gone
    boost::system::error_code ignored;
    socket.close(ignored);
  });
  co_await asio::async_write(socket, asio::buffer(fatal), as_tuple_awaitable);
  boost::system::error_code ec;
  socket.shutdown(tcp::socket::shutdown_send, ec);
  char dropped[4096];
  for (;;) {
    auto [read_error, n] =
        co_await socket.async_read_some(asio::buffer(dropped), as_tuple_awaitable);
    if (read_error) break;
  }
  limit.cancel();
  socket.close(ec);
}

awaitable<void> Worker::hold_back_watch() {
  // Finer than housekeeping: a client held back by the adaptive limit waits at most
  // kHoldBackCheck beyond PoolManager's longest hold-back.
  steady_timer timer(io_);
  for (;;) {
    timer.expires_after(kHoldBackCheck);
    co_await timer.async_wait(as_tuple_awaitable);
    if (!ctx_.config.adaptive_concurrency) break;  // a reload turned the limit off
    pools_.release_held_back(std::chrono::steady_clock::now());
  }
  hold_back_watch_running_ = false;
}

awaitable<void> Worker::housekeeping() {
  steady_timer timer(io_);
  for (;;) {
    timer.expires_after(kHousekeepingPeriod);
    co_await timer.async_wait(as_tuple_awaitable);
    const auto now = std::chrono::steady_clock::now();
    ctx_.coarse_now = now;
    publish_busy(now);
    if (admission_) admission_->refresh();
    pools_.expire_waiters(now);
    if (ctx_.draining) {
      clients_.close_idle_for_shutdown(idle_grace());
      if (now >= shutdown_deadline_) clients_.close_all_for_shutdown();
      // A probe's login ends within its deadline; it must not outlive the pools it uses.
      if ((clients_.local_size() == 0 && !busy_elsewhere_) ||
          now >= shutdown_deadline_ + std::chrono::seconds(2)) {
        pools_.close_all_idle();
        io_.stop();
        co_return;
      }
      continue;
    }
    clients_.sweep(now);
    pools_.reap_idle(now);
    if (ctx_.health && !ctx_.config.target_hosts.empty()) cut_fenced_servers();
    if (index_ == 0 && now >= next_trim_) {
      // What idle clients and finished transfers gave back returns to the system (glibc keeps
      // freed pages otherwise, in every thread's arena); a few milliseconds every ten seconds.
      malloc_trim(0);
      next_trim_ = now + kTrimPeriod;
    }
  }
}

// Split brain: a host was fenced (another accepts writes on a newer timeline, or is in use on
// the same one). Its pooled connections are closed by the pool (retired); a lent one is cut here,
// within a housekeeping period, rather than left to finish its transaction: a commit acknowledged
// by the fenced host would be lost when it is rewound or rebuilt, so to its client this is a
// server loss like a restart (the session is kept, an error for the statement in flight, a
// transaction under way fails) and its next transaction goes to the primary.
// Looked at again at every period while a host stays fenced: a login to it that was accepted
// just before the fence (another worker's probe decided meanwhile) may be lent after a look.
void Worker::cut_fenced_servers() {
  const uint64_t epoch = ctx_.health->fence_epoch();
  if (epoch == seen_fence_epoch_ && !ctx_.health->any_fenced()) return;
  seen_fence_epoch_ = epoch;
  uint64_t cut = 0;
  clients_.for_each([&](const ClientSession& session) {
    ServerConnection* server = session.held_server();
    if (!server || server->broken || !ctx_.health->fenced(server->host_index())) return;
    spdlog::error("server connection {} to {} cut: the host is fenced (split brain)", server->id(),
                  server->host().label());
    server->cut();
    ++cut;
  });
  if (cut > 0) ctx_.health->note_connections_cut(cut);
}

}  // namespace sluice::proxy
