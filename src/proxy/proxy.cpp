#include "proxy/proxy.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/tls.hpp"

namespace sluice::proxy {
namespace {
constexpr auto kDrainLimit = std::chrono::seconds(30);
// The health probe's login deadline: long enough for a login, short enough not to linger.
constexpr auto kProbeDeadline = std::chrono::seconds(5);
// On every PostgreSQL server, and open to every role by default.
constexpr const char* kProbeDatabase = "postgres";

// One per worker: see make_server_tls_contexts.
std::vector<std::unique_ptr<ssl::context>> make_client_tls(const Config& config) {
  std::string fingerprint;
  auto contexts = make_server_tls_contexts(config.tls_cert_file, config.tls_key_file, fingerprint,
                                           config.tls_sluice_records, config.workers);
  if (config.tls_cert_file.empty())
    spdlog::info("TLS: ephemeral self-signed certificate, SHA-256 fingerprint {}", fingerprint);
  else
    spdlog::info("TLS: certificate {} (SHA-256 {})", config.tls_cert_file, fingerprint);
  return contexts;
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

Proxy::Proxy(Config config)
    : config_(std::move(config)),
      secrets_(SecretStore::load(config_.auth)),
      client_tls_(make_client_tls(config_)),
      target_tls_(config_.target_tls == TargetTls::kDisable
                      ? nullptr
                      : make_client_tls_context(config_.target_tls, config_.target_ca_file)),
      shared_{config_, secrets_, statements_,    client_tls_,     target_tls_.get(),
              health_, budget_,  client_counts_, config_.workers, descriptor_limit()} {
  for (const auto& warning : secrets_.warnings()) spdlog::warn("{}", warning);
  for (size_t i = 0; i < config_.workers; ++i)
    workers_.push_back(std::make_unique<Worker>(i, shared_));
  // A CancelRequest may reach any worker: it is run by the one whose session it names.
  for (auto& worker : workers_)
    worker->clients().forward_cancel = [this](size_t owner, uint32_t pid, uint32_t key) {
      Worker& target = *workers_[owner];
      asio::post(target.io(), [&target, pid, key] { target.clients().cancel(pid, key); });
    };
}

Proxy::~Proxy() {
  for (auto& thread : threads_)
    if (thread.joinable()) thread.join();
}

void Proxy::listen() {
  std::vector<HostPort> addresses{config_.listen};
  addresses.insert(addresses.end(), config_.extra_listen.begin(), config_.extra_listen.end());
  for (const HostPort& address : addresses) {
    if (address.fd >= 0) {
      // Opened by sluice serve in a VPC's namespace; what family it is, it says itself. Every
      // worker waits on the same socket (a duplicate each): whichever is free takes a client.
      sockaddr_storage local{};
      socklen_t length = sizeof local;
      if (::getsockname(address.fd, reinterpret_cast<sockaddr*>(&local), &length) != 0)
        throw std::runtime_error("listen " + address.label() + ": not an open socket");
      for (auto& worker : workers_) {
        const int fd = worker->index() == 0 ? address.fd : ::dup(address.fd);
        if (fd < 0) throw std::runtime_error("listen " + address.label() + ": dup failed");
        auto acceptor = std::make_unique<tcp_acceptor>(worker->io());
        acceptor->assign(local.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd);
        acceptor->listen(4096);
        worker->add_listener(std::move(acceptor), address.label());
      }
      continue;
    }
    // One listening socket per worker on the same address (SO_REUSEPORT): the kernel spreads
    // new connections over them. A port of 0 is chosen by the first and reused by the others.
    tcp::endpoint endpoint(asio::ip::make_address(address.host), address.port);
    for (auto& worker : workers_) {
      auto acceptor = std::make_unique<tcp_acceptor>(worker->io());
      acceptor->open(endpoint.protocol());
      acceptor->set_option(tcp_acceptor::reuse_address(true));
      const int one = 1;
      if (::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        throw std::runtime_error("listen " + address.label() + ": SO_REUSEPORT refused");
      acceptor->bind(endpoint);
      acceptor->listen(4096);
      endpoint = acceptor->local_endpoint();
      worker->add_listener(std::move(acceptor), address.label());
    }
    spdlog::info("{} listening on {}:{} (TLS {}, {} worker{}), target {}:{}", config_.name,
                 endpoint.address().to_string(), endpoint.port(),
                 config_.require_tls ? "required" : "optional", workers_.size(),
                 workers_.size() == 1 ? "" : "s", config_.target.host, config_.target.port);
  }
}

int Proxy::run() {
  listen();
  Worker& first = *workers_[0];
  if (config_.metrics_listen) {
    std::map<std::string, HttpRoute, std::less<>> routes;
    routes["/metrics"] = {"text/plain; version=0.0.4; charset=utf-8", [this] {
                            std::vector<const Metrics*> parts;
                            for (const auto& worker : workers_) parts.push_back(&worker->metrics());
                            return render_prometheus(
                                config_.name, parts,
                                health_.status().state == TargetState::kAvailable);
                          }};
    routes["/targets"] = {"application/json",
                          [this] { return health_.render_json(config_.target); }};
    metrics_server_ = std::make_unique<MetricsServer>(first.io(), *config_.metrics_listen, routes);
    metrics_server_->start();
    spdlog::info("metrics on http://{}:{}/metrics, target health on /targets",
                 config_.metrics_listen->host, metrics_server_->port());
  }
  signals_ = std::make_unique<asio::signal_set>(first.io(), SIGTERM, SIGINT);
  signals_->async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: no new clients; open transactions may finish (up to {} s)", signal,
                 kDrainLimit.count());
    begin_shutdown();
  });
  probe_timer_ = std::make_unique<steady_timer>(first.io());
  if (config_.health_check_interval > 0) asio::co_spawn(first.io(), probe_target(), asio::detached);
  for (size_t i = 1; i < workers_.size(); ++i)
    threads_.emplace_back([worker = workers_[i].get()] { worker->run(); });
  first.run();
  if (metrics_server_) metrics_server_->stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  spdlog::info("{} stopped", config_.name);
  return 0;
}

void Proxy::begin_shutdown() {
  const auto deadline = std::chrono::steady_clock::now() + kDrainLimit;
  probe_timer_->cancel();
  for (auto& worker : workers_)
    asio::post(worker->io(), [w = worker.get(), deadline] { w->begin_shutdown(deadline); });
}

// Logs in as each configured user now and then, so the target's health is known without client
// traffic. The connection goes back to the pool warm. While the target is AVAILABLE, a warm
// connection that passes the pool's liveness check says enough; otherwise only a fresh login can
// tell that it is back (the failure on record may be a client's, for a database that does not
// exist). The probe never waits in line for clients' room: at the cap it skips a round, and a
// borrow timeout records nothing, since only logins judge health.
awaitable<void> Proxy::probe_target() {
  const auto interval = std::chrono::seconds(config_.health_check_interval);
  Worker& worker = *workers_[0];
  PoolManager& pools = worker.pools();
  const bool& draining = worker.context().draining;
  while (!draining) {
    for (const Credential* credential : secrets_.credentials()) {
      if (draining) break;
      Pool& pool = pools.pool_for(kProbeDatabase, *credential);
      const bool fresh = health_.status().state != TargetState::kAvailable;
      if ((fresh || pool.idle.empty()) && budget_.used() >= budget_.cap()) continue;
      worker.set_busy_elsewhere(true);
      auto borrowed =
          co_await pools.acquire(pool, std::chrono::steady_clock::now() + kProbeDeadline,
                                 {.retry_logins = false, .fresh_login = fresh});
      worker.set_busy_elsewhere(false);
      if (borrowed.lease) {
        borrowed.lease.release();
        continue;
      }
      // A target that cannot be reached fails every user alike: no need to wait on each.
      const auto reason = health_.status().reason;
      if (reason == TargetHealthReason::kUnreachable ||
          reason == TargetHealthReason::kConnectionFailed)
        break;
    }
    probe_timer_->expires_after(interval);
    co_await probe_timer_->async_wait(as_tuple_awaitable);
  }
}

}  // namespace sluice::proxy
