#include "proxy/proxy.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include "proxy/client_session.hpp"
#include "proxy/tls.hpp"

namespace sluice::proxy {
namespace {
constexpr auto kDrainLimit = std::chrono::seconds(30);
constexpr auto kHousekeepingPeriod = std::chrono::milliseconds(250);

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
      acceptor_(io_),
      signals_(io_, SIGTERM, SIGINT) {
  ctx_.poller = &poller_;
  ctx_.statements = &statements_;
  ctx_.pools = &pools_;
  ctx_.clients = &clients_;
}

int Proxy::run() {
  tcp::endpoint endpoint(asio::ip::make_address(config_.listen.host), config_.listen.port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp_acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(4096);
  if (config_.metrics_listen) {
    metrics_server_ = std::make_unique<MetricsServer>(
        io_, *config_.metrics_listen, [this] { return metrics_.render_prometheus(config_.name); });
    metrics_server_->start();
    spdlog::info("metrics on http://{}:{}/metrics", config_.metrics_listen->host,
                 metrics_server_->port());
  }
  spdlog::info("{} listening on {}:{} (TLS {}), target {}:{}", config_.name, config_.listen.host,
               acceptor_.local_endpoint().port(), config_.require_tls ? "required" : "optional",
               config_.target.host, config_.target.port);
  signals_.async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: no new clients; open transactions may finish (up to {} s)", signal,
                 kDrainLimit.count());
    begin_shutdown();
  });
  asio::co_spawn(io_, accept_loop(), asio::detached);
  asio::co_spawn(io_, housekeeping(), asio::detached);
  io_.run();
  spdlog::info("{} stopped", config_.name);
  return 0;
}

void Proxy::begin_shutdown() {
  ctx_.draining = true;
  shutdown_deadline_ = std::chrono::steady_clock::now() + kDrainLimit;
  boost::system::error_code ec;
  acceptor_.close(ec);
  clients_.close_idle_for_shutdown();
  pools_.close_all_idle();
}

awaitable<void> Proxy::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(as_tuple_awaitable);
    if (ec) {
      if (!acceptor_.is_open()) co_return;
      // Out of descriptors and the like: back off briefly rather than spin.
      spdlog::warn("accept failed: {}", ec.message());
      steady_timer pause(io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(as_tuple_awaitable);
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

awaitable<void> Proxy::housekeeping() {
  steady_timer timer(io_);
  for (;;) {
    timer.expires_after(kHousekeepingPeriod);
    co_await timer.async_wait(as_tuple_awaitable);
    const auto now = std::chrono::steady_clock::now();
    ctx_.coarse_now = now;
    pools_.expire_waiters(now);
    if (ctx_.draining) {
      clients_.close_idle_for_shutdown();
      if (now >= shutdown_deadline_) clients_.close_all_for_shutdown();
      if (clients_.size() == 0 || now >= shutdown_deadline_ + std::chrono::seconds(2)) {
        pools_.close_all_idle();
        if (metrics_server_) metrics_server_->stop();
        io_.stop();
        co_return;
      }
      continue;
    }
    clients_.sweep(now);
    pools_.reap_idle(now);
  }
}

}  // namespace sluice::proxy
