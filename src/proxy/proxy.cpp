#include "proxy/proxy.hpp"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include "proxy/client_session.hpp"
#include "proxy/tls.hpp"

namespace sluice::proxy {
namespace {
constexpr auto kDrainLimit = std::chrono::seconds(30);
constexpr auto kHousekeepingPeriod = std::chrono::milliseconds(250);
constexpr auto kHoldBackCheck = std::chrono::milliseconds(20);
// The health probe's login deadline: long enough for a login, short enough not to linger.
constexpr auto kProbeDeadline = std::chrono::seconds(5);
// On every PostgreSQL server, and open to every role by default.
constexpr const char* kProbeDatabase = "postgres";

std::unique_ptr<ssl::context> make_client_tls(const Config& config) {
  std::string fingerprint;
  auto ctx = make_server_tls_context(config.tls_cert_file, config.tls_key_file, fingerprint);
  if (config.tls_cert_file.empty())
    spdlog::info("TLS: ephemeral self-signed certificate, SHA-256 fingerprint {}", fingerprint);
  else
    spdlog::info("TLS: certificate {} (SHA-256 {})", config.tls_cert_file, fingerprint);
  return ctx;
}
}  // namespace

static size_t descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
  return static_cast<size_t>(limit.rlim_cur);
}

void raise_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

Proxy::Proxy(asio::io_context& io, Config config)
    : io_(io),
      config_(std::move(config)),
      secrets_(SecretStore::load(config_.auth)),
      client_tls_(make_client_tls(config_)),
      target_tls_(config_.target_tls == TargetTls::kDisable
                      ? nullptr
                      : make_client_tls_context(config_.target_tls, config_.target_ca_file)),
      ctx_{io_, config_, secrets_, *client_tls_, target_tls_.get(), metrics_},
      poller_(io_.get_executor()),
      pools_(ctx_),
      clients_(ctx_),
      login_gate_(io_.get_executor(), config_.max_concurrent_logins, metrics_),
      descriptor_limit_(descriptor_limit()),
      signals_(io_, SIGTERM, SIGINT),
      probe_timer_(io_) {
  if (!config_.admission_file.empty()) {
    admission_ = std::make_unique<AdmissionFile>(config_.admission_file);
    admission_->load();
  }
  ctx_.health = &health_;
  ctx_.poller = &poller_;
  ctx_.statements = &statements_;
  ctx_.pools = &pools_;
  ctx_.clients = &clients_;
  ctx_.logins = &login_gate_;
}

int Proxy::run() {
  std::vector<HostPort> addresses{config_.listen};
  addresses.insert(addresses.end(), config_.extra_listen.begin(), config_.extra_listen.end());
  for (const HostPort& address : addresses) {
    auto& acceptor = *acceptors_.emplace_back(std::make_unique<tcp_acceptor>(io_));
    listener_labels_.push_back(address.label());
    if (address.fd >= 0) {
      // Opened by sluice serve in a VPC's namespace; what family it is, it says itself.
      sockaddr_storage local{};
      socklen_t length = sizeof local;
      if (::getsockname(address.fd, reinterpret_cast<sockaddr*>(&local), &length) != 0)
        throw std::runtime_error("listen " + address.label() + ": not an open socket");
      acceptor.assign(local.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), address.fd);
      acceptor.listen(4096);
      continue;
    }
    tcp::endpoint endpoint(asio::ip::make_address(address.host), address.port);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp_acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(4096);
  }
  if (config_.metrics_listen) {
    std::map<std::string, HttpRoute, std::less<>> routes;
    routes["/metrics"] = {"text/plain; version=0.0.4; charset=utf-8",
                          [this] { return metrics_.render_prometheus(config_.name); }};
    routes["/targets"] = {"application/json",
                          [this] { return health_.render_json(config_.target); }};
    metrics_server_ = std::make_unique<MetricsServer>(io_, *config_.metrics_listen, routes);
    metrics_server_->start();
    spdlog::info("metrics on http://{}:{}/metrics, target health on /targets",
                 config_.metrics_listen->host, metrics_server_->port());
  }
  for (const auto& acceptor : acceptors_)
    spdlog::info("{} listening on {}:{} (TLS {}), target {}:{}", config_.name,
                 acceptor->local_endpoint().address().to_string(),
                 acceptor->local_endpoint().port(), config_.require_tls ? "required" : "optional",
                 config_.target.host, config_.target.port);
  signals_.async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: no new clients; open transactions may finish (up to {} s)", signal,
                 kDrainLimit.count());
    begin_shutdown();
  });
  for (size_t i = 0; i < acceptors_.size(); ++i)
    asio::co_spawn(io_, accept_loop(*acceptors_[i], listener_labels_[i]), asio::detached);
  asio::co_spawn(io_, housekeeping(), asio::detached);
  if (ctx_.config.adaptive_concurrency) asio::co_spawn(io_, hold_back_watch(), asio::detached);
  if (config_.health_check_interval > 0) asio::co_spawn(io_, probe_target(), asio::detached);
  io_.run();
  spdlog::info("{} stopped", config_.name);
  return 0;
}

void Proxy::begin_shutdown() {
  ctx_.draining = true;
  shutdown_deadline_ = std::chrono::steady_clock::now() + kDrainLimit;
  boost::system::error_code ec;
  for (const auto& acceptor : acceptors_) acceptor->close(ec);
  probe_timer_.cancel();
  clients_.close_idle_for_shutdown();
  pools_.close_all_idle();
}

awaitable<void> Proxy::accept_loop(tcp_acceptor& acceptor, std::string label) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(as_tuple_awaitable);
    if (ec) {
      if (!acceptor.is_open()) co_return;
      // Out of descriptors and the like: back off briefly rather than spin, and say so at most
      // every ten seconds.
      ++accept_failures_;
      if (const auto now = std::chrono::steady_clock::now(); now >= next_accept_warning_) {
        spdlog::warn("accept failed: {} ({} times since the last warning)", ec.message(),
                     accept_failures_);
        accept_failures_ = 0;
        next_accept_warning_ = now + std::chrono::seconds(10);
      }
      steady_timer pause(io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(as_tuple_awaitable);
      continue;
    }
    if (admission_) {
      // The security groups' decision, as the network would make it: a refused source gets no
      // byte from the proxy.
      boost::system::error_code peer_error;
      const auto peer = socket.remote_endpoint(peer_error).address();
      std::optional<uint32_t> v4;
      if (peer.is_v4()) v4 = peer.to_v4().to_uint();
      if (peer_error || !admission_->current().admits(label, v4)) {
        spdlog::info("refused a connection from {} on {}: its security groups do not admit it",
                     peer.to_string(), label);
        socket.close(peer_error);
        continue;
      }
    }
    if (clients_.size() + pools_.cap() + kReservedDescriptors >= descriptor_limit_) {
      // The open-file limit is near: the descriptors left are kept for the server connections
      // of clients already here, their cancel requests and the metrics endpoint.
      asio::co_spawn(io_,
                     refuse(std::move(socket), "53300",
                            "the proxy has no file descriptors left for new clients (open-file "
                            "limit " +
                                std::to_string(descriptor_limit_) + "); try again",
                            false),
                     asio::detached);
      continue;
    }
    if (clients_.pending_logins() >= config_.max_pending_logins) {
      // A login storm, or connections left half-open on purpose: those already logging in and
      // those logged in go on; this one is told to come back.
      asio::co_spawn(io_,
                     refuse(std::move(socket), "53300",
                            "too many clients are logging in to the proxy at once (" +
                                std::to_string(config_.max_pending_logins) +
                                ", max_pending_logins); try again",
                            true),
                     asio::detached);
      continue;
    }
    std::shared_ptr<ClientSession> session;
    try {
      session = std::make_shared<ClientSession>(ctx_, std::move(socket));
    } catch (const std::exception& ex) {  // out of memory or descriptors for the poller
      spdlog::error("could not take a client connection: {}", ex.what());
      continue;
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
}

awaitable<void> Proxy::refuse(tcp_socket socket, std::string sqlstate, std::string message,
                              bool linger) {
  std::string fatal;
  pgwire::write_error(fatal, "FATAL", sqlstate, message);
  if (!linger) {
    // Short of descriptors: this one goes at once (the message fits the empty socket buffer).
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(fatal), ignored);
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    co_return;
  }
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

awaitable<void> Proxy::hold_back_watch() {
  // Finer than housekeeping: a client held back by the adaptive limit waits at most
  // kHoldBackCheck beyond PoolManager's longest hold-back.
  steady_timer timer(io_);
  for (;;) {
    timer.expires_after(kHoldBackCheck);
    co_await timer.async_wait(as_tuple_awaitable);
    pools_.release_held_back(std::chrono::steady_clock::now());
  }
}

awaitable<void> Proxy::housekeeping() {
  steady_timer timer(io_);
  for (;;) {
    timer.expires_after(kHousekeepingPeriod);
    co_await timer.async_wait(as_tuple_awaitable);
    const auto now = std::chrono::steady_clock::now();
    ctx_.coarse_now = now;
    if (admission_) admission_->refresh();
    pools_.expire_waiters(now);
    if (ctx_.draining) {
      clients_.close_idle_for_shutdown();
      if (now >= shutdown_deadline_) clients_.close_all_for_shutdown();
      // A probe's login ends within kProbeDeadline; it must not outlive the pools it uses.
      if ((clients_.size() == 0 && !probing_) ||
          now >= shutdown_deadline_ + std::chrono::seconds(2)) {
        pools_.close_all_idle();
        if (metrics_server_) metrics_server_->stop();
        io_.stop();
        co_return;
      }
      continue;
    }
    clients_.sweep(now);
    pools_.reap_idle(now);
    if (now >= next_trim_) {
      // What idle clients and finished transfers gave back returns to the system (glibc keeps
      // freed pages otherwise); a few milliseconds every ten seconds.
      malloc_trim(0);
      next_trim_ = now + kTrimPeriod;
    }
  }
}

// Logs in as each configured user now and then, so the target's health is known without client
// traffic. The connection goes back to the pool warm. While the target is AVAILABLE, a warm
// connection that passes the pool's liveness check says enough; otherwise only a fresh login can
// tell that it is back (the failure on record may be a client's, for a database that does not
// exist). The probe never waits in line for clients' room: at the cap it skips a round, and a
// borrow timeout records nothing, since only logins judge health.
awaitable<void> Proxy::probe_target() {
  const auto interval = std::chrono::seconds(config_.health_check_interval);
  while (!ctx_.draining) {
    for (const Credential* credential : secrets_.credentials()) {
      if (ctx_.draining) break;
      Pool& pool = pools_.pool_for(kProbeDatabase, *credential);
      const bool fresh = health_.status().state != TargetState::kAvailable;
      if ((fresh || pool.idle.empty()) && pools_.total() >= pools_.cap()) continue;
      probing_ = true;
      auto borrowed =
          co_await pools_.acquire(pool, std::chrono::steady_clock::now() + kProbeDeadline,
                                  {.retry_logins = false, .fresh_login = fresh});
      probing_ = false;
      if (borrowed.lease) {
        borrowed.lease.release();
        continue;
      }
      // A target that cannot be reached fails every user alike: no need to wait on each.
      if (health_.status().reason == TargetHealthReason::kUnreachable ||
          health_.status().reason == TargetHealthReason::kConnectionFailed)
        break;
    }
    probe_timer_.expires_after(interval);
    co_await probe_timer_.async_wait(as_tuple_awaitable);
  }
}

}  // namespace sluice::proxy
