// Proxy's part in a zero-downtime upgrade (handover.hpp): taking the running proxy's listening
// sockets instead of binding, and offering its own to a successor.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <set>

#include "proxy/proxy.hpp"

namespace sluice::proxy {
namespace {

void close_listener(const handover::Listener& listener) {
  for (int fd : listener.fds) ::close(fd);
}

// A worker's duplicates of one socket (an inherited fd:N, a received socket shared by
// workers) are offered once: a socket's inode names it.
std::vector<handover::Listener> distinct_sockets(
    const std::vector<std::pair<std::string, int>>& sockets) {
  std::vector<handover::Listener> listeners;
  std::set<std::pair<std::string, ino_t>> seen;
  for (const auto& [label, fd] : sockets) {
    struct stat status {};
    if (::fstat(fd, &status) != 0 || !seen.emplace(label, status.st_ino).second) continue;
    auto same = std::find_if(listeners.begin(), listeners.end(),
                             [&](const handover::Listener& l) { return l.label == label; });
    if (same == listeners.end()) {
      listeners.push_back({handover::ListenerKind::kClient, label, {}});
      same = listeners.end() - 1;
    }
    same->fds.push_back(fd);
  }
  return listeners;
}

// Starts `command` detached from this process (a grandchild, so nobody needs to reap it): it
// outlives this one. Only descriptors 0-2 go along. The pid of the process in between, or -1.
pid_t spawn_detached(const std::vector<std::string>& command) {
  std::vector<char*> argv;
  for (const auto& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const pid_t middle = ::fork();
  if (middle == 0) {
    // Between fork and exec in a threaded process: system calls only.
    if (::fork() == 0) {
      ::close_range(3, ~0U, 0);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::_exit(0);
  }
  if (middle > 0) ::waitpid(middle, nullptr, 0);
  return middle;
}

}  // namespace

void Proxy::prepare_handover(bool takeover) {
  const std::string& path = config_.handover_socket;
  if (takeover) {
    if (path.empty())
      throw ConfigError("handover_socket",
                        "--takeover needs it: the socket where the running proxy offers its "
                        "listening sockets");
    takeover_ = std::make_unique<handover::HandoverClient>(path);
    received_ = takeover_->take_listeners();
    size_t sockets = 0;
    for (const auto& listener : received_) sockets += listener.fds.size();
    spdlog::info("handover: received {} listening socket{} of {} listener{} from pid {}", sockets,
                 sockets == 1 ? "" : "s", received_.size(), received_.size() == 1 ? "" : "s",
                 takeover_->peer_pid());
  } else if (!path.empty() && handover::socket_answers(path)) {
    throw std::runtime_error("handover_socket " + path +
                             ": a sluice-proxy is running there; start this one with --takeover "
                             "to take its place");
  }
  if (!path.empty()) handover_server_ = std::make_unique<handover::HandoverServer>(path);
}

bool Proxy::adopt_received(const HostPort& address) {
  const std::string label = address.label();
  auto found = std::find_if(received_.begin(), received_.end(), [&](const handover::Listener& l) {
    return l.kind == handover::ListenerKind::kClient && l.label == label;
  });
  if (found == received_.end()) return false;
  handover::Listener listener = std::move(*found);
  received_.erase(found);
  // The new process may run another number of workers: each accepts from its share of the
  // received sockets, or shares one (its own duplicate).
  const auto assignment = handover::assign_sockets(listener.fds.size(), workers_.size());
  std::vector<bool> taken(listener.fds.size(), false);
  for (size_t w = 0; w < workers_.size(); ++w) {
    for (size_t s : assignment[w]) {
      const int fd = taken[s] ? ::fcntl(listener.fds[s], F_DUPFD_CLOEXEC, 3) : listener.fds[s];
      taken[s] = true;
      sockaddr_storage local{};
      socklen_t length = sizeof local;
      if (fd < 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0)
        throw std::runtime_error("handover: the socket received for " + label + " is unusable");
      workers_[w]->add_listener(fd, label);
    }
  }
  spdlog::info("{} listening on {} (taken over: {} socket{}, {} worker{}), target {}:{}",
               config_.name, label, listener.fds.size(), listener.fds.size() == 1 ? "" : "s",
               workers_.size(), workers_.size() == 1 ? "" : "s", config_.target.host,
               config_.target.port);
  return true;
}

int Proxy::adopt_received_metrics() {
  if (!config_.metrics_listen) return -1;
  const std::string label = config_.metrics_listen->label();
  auto found = std::find_if(received_.begin(), received_.end(), [&](const handover::Listener& l) {
    return l.kind == handover::ListenerKind::kMetrics && l.label == label;
  });
  if (found == received_.end()) return -1;
  const int fd = found->fds.front();
  for (size_t i = 1; i < found->fds.size(); ++i) ::close(found->fds[i]);
  received_.erase(found);
  return fd;
}

void Proxy::complete_handover() {
  // Addresses the old proxy listened on and this one does not: their queues close with the
  // old process.
  for (const auto& listener : received_) {
    spdlog::warn("handover: {} is not in this configuration: not listening there any more",
                 listener.label);
    close_listener(listener);
  }
  received_.clear();
  if (takeover_) {
    const uint32_t old_pid = takeover_->peer_pid();
    if (takeover_->confirm())
      spdlog::info("handover: pid {} stopped accepting; it drains and exits", old_pid);
    else
      spdlog::warn("handover: pid {} did not confirm that it stopped accepting; serving anyway",
                   old_pid);
    takeover_.reset();
    // Under systemd (Type=notify, NotifyAccess=all) this process becomes the service's main one.
    handover::notify_service_manager("MAINPID=" + std::to_string(::getpid()) + "\nREADY=1");
  } else {
    handover::notify_service_manager("READY=1");
  }
  upgrade_signal_ = std::make_unique<asio::signal_set>(workers_[0]->io(), SIGUSR2);
  wait_for_upgrade_signal();
  if (!handover_server_) return;
  std::vector<std::pair<std::string, int>> sockets;
  for (const auto& worker : workers_)
    for (auto& socket : worker->listening_sockets()) sockets.push_back(std::move(socket));
  auto offer = distinct_sockets(sockets);
  if (metrics_server_)
    offer.push_back({handover::ListenerKind::kMetrics,
                     config_.metrics_listen->label(),
                     {metrics_server_->native_handle()}});
  offered_ = offer;
  try {
    handover_server_->start(std::move(offer), [this](uint32_t new_pid) {
      asio::post(workers_[0]->io(), [this, new_pid] {
        spdlog::info("handover: pid {} accepts now: no new clients here; draining as on SIGTERM",
                     new_pid);
        if (metrics_server_) metrics_server_->stop();
        begin_shutdown(/*handed_over=*/true);
      });
    });
  } catch (const std::exception& e) {
    // Serving matters more than the next upgrade.
    spdlog::error("{}: no handover to a successor possible", e.what());
    handover_server_.reset();
  }
}

void Proxy::wait_for_upgrade_signal() {
  upgrade_signal_->async_wait([this](boost::system::error_code ec, int) {
    if (ec || shutting_down_) return;
    if (!handover_server_ || successor_command_.empty()) {
      spdlog::warn("SIGUSR2: no upgrade without handover_socket in the configuration");
    } else if (spawn_detached(successor_command_) < 0) {
      spdlog::error("SIGUSR2: cannot start {}: {}", successor_command_.front(),
                    std::strerror(errno));
    } else {
      spdlog::info("SIGUSR2: started {} --takeover; serving until it has taken over",
                   successor_command_.front());
    }
    wait_for_upgrade_signal();
  });
}

void Proxy::update_offer(const std::vector<std::string>& closed,
                         const std::vector<std::vector<std::pair<int, std::string>>>& opened) {
  if (!handover_server_) return;
  std::erase_if(offered_, [&](const handover::Listener& listener) {
    return listener.kind == handover::ListenerKind::kMetrics ||
           std::find(closed.begin(), closed.end(), listener.label) != closed.end();
  });
  std::vector<std::pair<std::string, int>> sockets;
  for (const auto& per_worker : opened)
    for (const auto& [fd, label] : per_worker) sockets.emplace_back(label, fd);
  for (auto& listener : distinct_sockets(sockets)) offered_.push_back(std::move(listener));
  if (metrics_server_)
    offered_.push_back({handover::ListenerKind::kMetrics,
                        config_.metrics_listen->label(),
                        {metrics_server_->native_handle()}});
  handover_server_->update_listeners(offered_);
}

void Proxy::stop_offering() {
  if (handover_server_) handover_server_->stop();
}

}  // namespace sluice::proxy
