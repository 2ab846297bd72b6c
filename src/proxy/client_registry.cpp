#include "proxy/client_registry.hpp"

#include <vector>

#include "proxy/client_session.hpp"

namespace sluice::proxy {
namespace {
// A client quiet this long gives its buffers back (ClientSession::release_idle_memory).
constexpr auto kIdleMemoryAfter = std::chrono::seconds(1);
}  // namespace
ClientRegistry::ClientRegistry(ProxyContext& ctx, ClientCounts* shared, size_t worker,
                               size_t workers)
    : ctx_(ctx),
      counts_(shared ? *shared : own_counts_),
      worker_(static_cast<uint32_t>(worker)),
      workers_(static_cast<uint32_t>(workers)),
      next_process_id_(worker_) {}

ClientRegistry::~ClientRegistry() {
  std::vector<ClientSession*> parked;
  for (auto& [pid, s] : sessions_)
    if (s->parked()) parked.push_back(s);
  for (auto* s : parked) s->drop_if_parked();  // each removes itself from sessions_
}

uint32_t ClientRegistry::add(ClientSession* session) {
  // Process ids stay positive int32 values, as clients expect of PostgreSQL backends, and name
  // their worker (id % workers).
  do {
    next_process_id_ += workers_;
    if (next_process_id_ >= 0x7ffffff0u) next_process_id_ = worker_ + workers_;
  } while (sessions_.contains(next_process_id_));
  sessions_.emplace(next_process_id_, session);
  counts_.sessions.fetch_add(1, std::memory_order_relaxed);
  if (counts_.per_worker)
    counts_.per_worker[worker_].clients.store(sessions_.size(), std::memory_order_relaxed);
  return next_process_id_;
}

void ClientRegistry::remove(uint32_t process_id, bool was_logged_in) {
  if (sessions_.erase(process_id) == 0) return;
  counts_.sessions.fetch_sub(1, std::memory_order_relaxed);
  if (counts_.per_worker)
    counts_.per_worker[worker_].clients.store(sessions_.size(), std::memory_order_relaxed);
  if (was_logged_in) counts_.logged_in.fetch_sub(1, std::memory_order_relaxed);
}

void ClientRegistry::cancel(uint32_t process_id, uint32_t secret_key) {
  if (process_id % workers_ != worker_) {
    if (forward_cancel) forward_cancel(process_id % workers_, process_id, secret_key);
    return;
  }
  auto it = sessions_.find(process_id);
  if (it == sessions_.end()) return;
  if (it->second->cancel_key() != secret_key) return;  // one word: no timing to leak
  it->second->cancel_running_query();
}

void ClientRegistry::sweep(std::chrono::steady_clock::time_point now) {
  const auto idle_limit = std::chrono::seconds(ctx_.config.idle_client_timeout);
  const auto login_limit = std::chrono::seconds(ctx_.config.login_timeout);
  std::vector<ClientSession*> expired;
  for (auto& [pid, s] : sessions_) {
    if (s->login_overdue(now, login_limit))
      expired.push_back(s);
    else if (s->phase() == ClientSession::Phase::kReady && !s->busy() &&
             now - s->last_activity() > idle_limit)
      expired.push_back(s);
    else if (s->phase() == ClientSession::Phase::kReady && !s->busy() &&
             now - s->last_activity() > kIdleMemoryAfter)
      s->release_idle_memory();
  }
  for (auto* s : expired) {
    if (s->phase() == ClientSession::Phase::kStartup)
      s->terminate("08006", "timeout expired during login");
    else
      s->terminate("57P05", "terminating connection due to idle-client timeout");
  }
}

void ClientRegistry::close_idle_for_shutdown(std::chrono::steady_clock::duration min_idle) {
  std::vector<ClientSession*> idle;
  const auto idle_since = std::chrono::steady_clock::now() - min_idle;
  for (auto& [pid, s] : sessions_) {
    // After a handover logins in progress finish (the drain deadline still bounds them).
    const bool spared =
        min_idle > std::chrono::steady_clock::duration{} &&
        (s->phase() == ClientSession::Phase::kStartup || s->last_activity() > idle_since);
    if (!s->busy() && !s->in_transaction() && !spared) idle.push_back(s);
  }
  for (auto* s : idle) s->terminate("57P01", "terminating connection due to administrator command");
}

void ClientRegistry::close_all_for_shutdown() {
  std::vector<ClientSession*> all;
  for (auto& [pid, s] : sessions_) all.push_back(s);
  for (auto* s : all) s->terminate("57P01", "terminating connection due to administrator command");
}

}  // namespace sluice::proxy
