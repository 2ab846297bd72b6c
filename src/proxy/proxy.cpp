#include "proxy/proxy.hpp"

#include <algorithm>

#include <fcntl.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "common/netns.hpp"
#include "proxy/logging.hpp"
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

Proxy::Proxy(Config config, std::string config_path)
    : config_(std::move(config)),
      config_path_(std::move(config_path)),
      secrets_(std::make_shared<const SecretStore>(SecretStore::load(config_.auth))),
      client_tls_(make_client_tls(config_)),
      target_tls_(config_.target_tls == TargetTls::kDisable
                      ? nullptr
                      : make_client_tls_context(config_.target_tls, config_.target_ca_file)),
      health_(config_.servers(), !config_.target_hosts.empty()),
      shared_{config_, secrets_, statements_,    client_tls_,     target_tls_.get(),
              health_, budget_,  client_counts_, config_.workers, descriptor_limit()} {
  for (const auto& warning : secrets_->warnings()) spdlog::warn("{}", warning);
  client_counts_.per_worker = std::make_unique<ClientCounts::PerWorker[]>(config_.workers);
  for (size_t i = 0; i < config_.workers; ++i)
    workers_.push_back(std::make_unique<Worker>(i, shared_));
  admin_ = std::make_unique<AdminHub>(config_, health_, budget_, workers_);
  for (auto& worker : workers_) worker->context().admin = admin_.get();
  // A CancelRequest may reach any worker: it is run by the one whose session it names.
  for (auto& worker : workers_)
    worker->clients().forward_cancel = [this](size_t owner, uint32_t pid, uint32_t key) {
      Worker& target = *workers_[owner];
      asio::post(target.io(), [&target, pid, key] { target.clients().cancel(pid, key); });
    };
  // A client one worker accepted for another (client_placement.hpp).
  for (auto& worker : workers_)
    worker->hand_client = [this](size_t to, int fd, const tcp::endpoint& remote) {
      workers_[to]->take_handed(fd, remote);
    };
}

Proxy::~Proxy() {
  for (auto& thread : threads_)
    if (thread.joinable()) thread.join();
}

namespace {

// The addresses `config` listens on, by label.
std::map<std::string, HostPort> listen_addresses(const Config& config) {
  std::map<std::string, HostPort> addresses{{config.listen.label(), config.listen}};
  for (const HostPort& address : config.extra_listen) addresses[address.label()] = address;
  return addresses;
}

// `count` listening sockets on `address` (SO_REUSEPORT, as listen() binds them), or, for an
// inherited fd:N, N and count - 1 duplicates. Throws std::runtime_error; nothing stays open then.
std::vector<int> open_listeners(const HostPort& address, size_t count) {
  std::vector<int> fds;
  auto fail = [&](const std::string& why) {
    for (int fd : fds) ::close(fd);
    throw std::runtime_error("listen " + address.label() + ": " + why);
  };
  if (address.fd >= 0) {
    sockaddr_storage local{};
    socklen_t length = sizeof local;
    if (::getsockname(address.fd, reinterpret_cast<sockaddr*>(&local), &length) != 0)
      fail("not an open socket");
    fds.push_back(address.fd);
    while (fds.size() < count) {
      const int fd = ::fcntl(address.fd, F_DUPFD_CLOEXEC, 3);
      if (fd < 0) fail("dup failed");
      fds.push_back(fd);
    }
    for (int fd : fds)
      if (::listen(fd, 4096) != 0) fail(std::strerror(errno));
    return fds;
  }
  if (!address.netns.empty()) {
    // Inside a VPC's namespace (sluice serve): the same, made there.
    int port = address.port;
    while (fds.size() < count) {
      try {
        fds.push_back(listen_in_namespace(address.netns, address.host, port, true));
      } catch (const std::exception& e) {
        fail(e.what());
      }
      sockaddr_in local{};
      socklen_t length = sizeof local;
      ::getsockname(fds.back(), reinterpret_cast<sockaddr*>(&local), &length);
      port = ntohs(local.sin_port);
    }
    return fds;
  }
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address.host, ec);
  if (ec) fail("not an IP address");
  tcp::endpoint endpoint(ip, address.port);
  while (fds.size() < count) {
    const int fd = ::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(std::strerror(errno));
    fds.push_back(fd);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      fail("SO_REUSEPORT refused");
    if (::bind(fd, endpoint.data(), static_cast<socklen_t>(endpoint.size())) != 0)
      fail(std::string("cannot bind: ") + std::strerror(errno));
    if (::listen(fd, 4096) != 0) fail(std::strerror(errno));
    // A port of 0 is chosen by the first socket and reused by the others.
    sockaddr_storage local{};
    socklen_t length = sizeof local;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length);
    std::memcpy(endpoint.data(), &local, std::min<size_t>(length, endpoint.capacity()));
  }
  return fds;
}

}  // namespace

void Proxy::listen() {
  for (const auto& [label, address] : listen_addresses(config_)) {
    // One listening socket per worker on the same address (SO_REUSEPORT): the kernel spreads
    // new connections over them. An inherited one (fd:N, opened by sluice serve) is shared:
    // every worker waits on it (a duplicate each), and whichever is free takes a client.
    if (adopt_received(address)) continue;  // taken over from the proxy this one replaces
    const std::vector<int> fds = open_listeners(address, workers_.size());
    for (size_t i = 0; i < fds.size(); ++i) workers_[i]->add_listener(fds[i], label);
    sockaddr_storage local{};
    socklen_t length = sizeof local;
    ::getsockname(fds.front(), reinterpret_cast<sockaddr*>(&local), &length);
    tcp::endpoint endpoint;
    std::memcpy(endpoint.data(), &local, std::min<size_t>(length, endpoint.capacity()));
    std::string targets;
    for (const HostPort& server : config_.servers())
      targets += (targets.empty() ? "" : ", ") + server.label();
    spdlog::info("{} listening on {}:{}{} (TLS {}, {} worker{}), target {}{}", config_.name,
                 endpoint.address().to_string(), endpoint.port(),
                 address.netns.empty() ? "" : " in network namespace " + address.netns,
                 config_.require_tls ? "required" : "optional", workers_.size(),
                 workers_.size() == 1 ? "" : "s", targets,
                 config_.target_hosts.empty() ? "" : " (read-write to the primary)");
  }
}

void Proxy::start_metrics_server() {
  if (!config_.metrics_listen) return;
  Worker& first = *workers_[0];
  {
    std::map<std::string, HttpRoute, std::less<>> routes;
    routes["/metrics"] = {"text/plain; version=0.0.4; charset=utf-8", [this] {
                            std::vector<const Metrics*> parts;
                            for (const auto& worker : workers_) parts.push_back(&worker->metrics());
                            return render_prometheus(
                                       config_.name, parts,
                                       health_.status().state == TargetState::kAvailable) +
                                   health_.render_prometheus();
                          }};
    routes["/targets"] = {"application/json", [this] { return health_.render_json(); }};
    metrics_server_ = std::make_unique<MetricsServer>(first.io(), *config_.metrics_listen, routes,
                                                      adopt_received_metrics());
    metrics_server_->start();
    spdlog::info("metrics on http://{}:{}/metrics, target health on /targets",
                 config_.metrics_listen->host, metrics_server_->port());
  }
}

void Proxy::wait_for_signals() {
  signals_->async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    if (signal == SIGHUP) {
      reload();
      wait_for_signals();
      return;
    }
    spdlog::info("signal {}: no new clients; open transactions may finish (up to {} s)", signal,
                 kDrainLimit.count());
    begin_shutdown();
  });
}

int Proxy::run(bool takeover) {
  prepare_handover(takeover);
  listen();
  Worker& first = *workers_[0];
  start_metrics_server();
  signals_ = std::make_unique<asio::signal_set>(first.io(), SIGTERM, SIGINT, SIGHUP);
  wait_for_signals();
  probe_timer_ = std::make_unique<steady_timer>(first.io());
  if (config_.health_check_interval > 0) {
    probe_running_ = true;
    asio::co_spawn(first.io(), probe_target(), asio::detached);
  }
  for (size_t i = 1; i < workers_.size(); ++i)
    threads_.emplace_back([worker = workers_[i].get()] { worker->run(); });
  complete_handover();
  first.run();
  if (metrics_server_) metrics_server_->stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  spdlog::info("{} stopped", config_.name);
  return 0;
}

void Proxy::reload() {
  if (config_path_.empty()) return;
  spdlog::info("SIGHUP: reloading {}", config_path_);
  Config next;
  std::shared_ptr<const SecretStore> secrets;
  try {
    next = load_config(config_path_);
    secrets = std::make_shared<const SecretStore>(SecretStore::load(next.auth, secrets_.get()));
  } catch (const std::exception& e) {
    spdlog::error("reload failed, the running configuration stays: {}", e.what());
    return;
  }
  for (const auto& warning : secrets->warnings()) spdlog::warn("reload: {}", warning);
  // What a running proxy cannot change: its threads, its name in metrics, its logs' shape and
  // where TLS records are kept.
  const auto keep = [](auto& field, const auto& running, const char* key) {
    if (field == running) return;
    spdlog::warn("reload: {} changes only at a restart; it stays as it is until then", key);
    field = running;
  };
  keep(next.workers, config_.workers, "workers");
  keep(next.name, config_.name, "name");
  keep(next.log_format, config_.log_format, "log_format");
  keep(next.tls_sluice_records, config_.tls_sluice_records, "tls.record_layer");
  keep(next.handover_socket, config_.handover_socket, "handover_socket");
  const std::vector<std::string> changed = changed_keys(config_, next);
  size_t secrets_changed = 0;  // new, changed or gone
  for (const Credential* credential : secrets->credentials())
    if (secrets_->find_shared(credential->username) != secrets->find_shared(credential->username))
      ++secrets_changed;
  for (const Credential* credential : secrets_->credentials())
    if (!secrets->find(credential->username)) ++secrets_changed;

  // Everything that can fail comes first: certificates, then listening sockets.
  std::vector<std::unique_ptr<ssl::context>> client_tls;
  std::unique_ptr<ssl::context> target_tls;
  const auto old_addresses = listen_addresses(config_);
  const auto new_addresses = listen_addresses(next);
  std::vector<std::vector<std::pair<int, std::string>>> opened(workers_.size());
  try {
    // A certificate file is read again even under the same name (it may have been renewed);
    // the ephemeral certificate stays as it is.
    if (!next.tls_cert_file.empty() || !config_.tls_cert_file.empty())
      client_tls = make_client_tls(next);
    if (next.target_tls != TargetTls::kDisable &&
        (!target_tls_ || next.target_tls != config_.target_tls || !next.target_ca_file.empty() ||
         next.target_ca_file != config_.target_ca_file))
      target_tls = make_client_tls_context(next.target_tls, next.target_ca_file);
    for (const auto& [label, address] : new_addresses) {
      if (old_addresses.contains(label)) continue;
      const auto fds = open_listeners(address, workers_.size());
      for (size_t i = 0; i < fds.size(); ++i) opened[i].emplace_back(fds[i], label);
      spdlog::info("reload: listening on {}", label);
    }
  } catch (const std::exception& e) {
    for (auto& listeners : opened)
      for (auto& [fd, label] : listeners) ::close(fd);
    spdlog::error("reload failed, the running configuration stays: {}", e.what());
    return;
  }
  std::vector<std::string> closed;
  for (const auto& [label, address] : old_addresses)
    if (!new_addresses.contains(label)) {
      closed.push_back(label);
      spdlog::info("reload: no longer listening on {}", label);
    }

  // Server connections opened for another target or with another setup are not lent again.
  const bool new_servers =
      next.target != config_.target || next.target_hosts != config_.target_hosts ||
      next.target_tls != config_.target_tls || next.target_ca_file != config_.target_ca_file ||
      next.init_query != config_.init_query;
  if (new_servers) {
    budget_.next_generation();
    if (next.servers() != config_.servers() ||
        next.target_hosts.empty() != config_.target_hosts.empty())
      health_.reset(next.servers(), !next.target_hosts.empty());
  }
  if (!client_tls.empty()) {
    for (auto& context : client_tls_) retired_tls_.push_back(std::move(context));
    client_tls_ = std::move(client_tls);
  }
  if (next.target_tls == TargetTls::kDisable) {
    if (target_tls_) retired_tls_.push_back(std::move(target_tls_));
  } else if (target_tls) {
    if (target_tls_) retired_tls_.push_back(std::move(target_tls_));
    target_tls_ = std::move(target_tls);
  }
  const bool metrics_moved = next.metrics_listen != config_.metrics_listen;
  config_ = next;
  admin_->set_config(std::make_shared<const Config>(config_));
  secrets_ = secrets;
  spdlog::set_level(!config_.log_level.empty() ? *parse_log_level(config_.log_level)
                    : config_.debug_logging    ? spdlog::level::debug
                                               : spdlog::level::info);
  if (metrics_moved) {
    if (metrics_server_) {
      metrics_server_->stop();
      // Its accept loop still refers to it until the cancellation reaches it.
      retired_metrics_servers_.push_back(std::move(metrics_server_));
    }
    try {
      start_metrics_server();
    } catch (const std::exception& e) {
      spdlog::error("reload: metrics endpoint: {}", e.what());
    }
  }
  // A successor taking over now gets what is listening after this reload.
  update_offer(closed, opened);
  for (auto& worker : workers_) {
    WorkerReload update{config_,           secrets_, client_tls_[worker->index()].get(),
                        target_tls_.get(), closed,   std::move(opened[worker->index()])};
    asio::post(worker->io(), [w = worker.get(), update = std::move(update)]() mutable {
      w->apply(std::move(update));
    });
  }
  if (secrets_changed > 0 || new_servers) {
    // New secrets or another server: the probe logs in afresh now (warm connections would
    // pass whatever the secret says), so target health tells at once whether they work.
    verify_logins_ = true;
    if (probe_running_) probe_timer_->cancel();
  }
  if (config_.health_check_interval > 0 && !probe_running_ && !workers_[0]->context().draining) {
    probe_running_ = true;
    asio::co_spawn(workers_[0]->io(), probe_target(), asio::detached);
  }
  std::string keys;
  for (const auto& key : changed) keys += (keys.empty() ? "" : ", ") + key;
  spdlog::info("reloaded {}: {}{}{} secret{} changed{}", config_path_,
               keys.empty() ? "no setting changed" : "changed " + keys, "; ", secrets_changed,
               secrets_changed == 1 ? "" : "s",
               new_servers ? "; server connections are replaced as they come back" : "");
}

void Proxy::begin_shutdown(bool handed_over) {
  if (shutting_down_) return;
  shutting_down_ = true;
  stop_offering();
  const auto deadline = std::chrono::steady_clock::now() + kDrainLimit;
  probe_timer_->cancel();
  for (auto& worker : workers_)
    asio::post(worker->io(), [w = worker.get(), deadline, handed_over] {
      w->begin_shutdown(deadline, handed_over);
    });
}

// Logs in as each configured user now and then, so the target's health is known without client
// traffic. The connection goes back to the pool warm. While the target is AVAILABLE, a warm
// connection that passes the pool's liveness check says enough; otherwise only a fresh login can
// tell that it is back (the failure on record may be a client's, for a database that does not
// exist). The probe never waits in line for clients' room: at the cap it skips a round, and a
// borrow timeout records nothing, since only logins judge health.
awaitable<void> Proxy::probe_target() {
  Worker& worker = *workers_[0];
  PoolManager& pools = worker.pools();
  const bool& draining = worker.context().draining;
  // A reload may turn the probe off (interval 0) or change its interval.
  while (!draining && config_.health_check_interval > 0) {
    const auto interval = std::chrono::seconds(config_.health_check_interval);
    const std::shared_ptr<const SecretStore> secrets = secrets_;  // a reload may replace it
    const bool verify = std::exchange(verify_logins_, false);
    const auto& admins = config_.admin_users;
    const auto is_admin = [&](const Credential* credential) {
      return std::find(admins.begin(), admins.end(), credential->username) != admins.end();
    };
    // Users listed in admin_users need not be database roles (the console is the proxy's own):
    // their failed logins would report the target as AUTH_FAILURE. They are probed only when
    // nobody else is configured.
    const auto credentials = secrets->credentials();
    const bool skip_admins = std::any_of(credentials.begin(), credentials.end(),
                                         [&](const Credential* c) { return !is_admin(c); });
    for (const Credential* credential : credentials) {
      if (draining) break;
      if (skip_admins && is_admin(credential)) continue;
      Pool& pool = pools.pool_for(kProbeDatabase, secrets->find_shared(credential->username));
      const bool fresh = health_.status().state != TargetState::kAvailable || verify;
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
    // Split brain shows only at a login to each host: every host but the primary is looked at
    // (as one user, not an admin's if another is there: those need not be database roles), so
    // a former primary that came back is fenced and reported.
    if (!draining && !config_.target_hosts.empty() && !credentials.empty()) {
      const Credential* as = credentials.front();
      for (const Credential* credential : credentials)
        if (!is_admin(credential)) {
          as = credential;
          break;
        }
      Pool& pool = pools.pool_for(kProbeDatabase, secrets->find_shared(as->username));
      for (size_t host = 0; host < health_.host_count() && !draining; ++host) {
        if (static_cast<int>(host) == health_.primary()) continue;
        worker.set_busy_elsewhere(true);
        co_await pools.check_host(pool, host, std::chrono::steady_clock::now() + kProbeDeadline);
        worker.set_busy_elsewhere(false);
      }
    }
    if (verify_logins_) continue;  // a reload during this round: verify its secrets now
    probe_timer_->expires_after(interval);
    co_await probe_timer_->async_wait(as_tuple_awaitable);
  }
  probe_running_ = false;
}

}  // namespace sluice::proxy
