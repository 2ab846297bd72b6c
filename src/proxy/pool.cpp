#include "proxy/pool.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "proxy/secrets.hpp"

namespace sluice::proxy {
namespace {
constexpr auto kRetryPause = std::chrono::milliseconds(250);
// The adaptive limit never holds a client back longer than this (plus one hold-back check):
// the lent connections may be waiting for what that client would do.
constexpr auto kLongestHoldBack = std::chrono::milliseconds(50);
constexpr size_t kLeastConcurrency = 2;
// How long another worker's client may wait beyond ours before a released connection goes to it
// rather than to our own waiting client.
constexpr auto kCrossWorkerPatience = std::chrono::milliseconds(5);
}  // namespace

PoolManager::PoolManager(ProxyContext& ctx, ServerConnector* connector)
    : ctx_(ctx),
      own_connector_(connector ? nullptr : make_network_connector()),
      connector_(connector ? connector : own_connector_.get()),
      own_budget_(ctx.budget ? nullptr : std::make_unique<ServerBudget>()),
      budget_(ctx.budget ? *ctx.budget : *own_budget_) {
  if (ctx.budget) member_ = budget_.join({ctx.io.get_executor(), this});
  if (ctx_.config.adaptive_concurrency) limiter_.emplace(kLeastConcurrency, cap());
  follow_cap();
}

void PoolManager::follow_cap() {
  const size_t cap = budget_.cap();
  if (cap == followed_cap_) return;
  followed_cap_ = cap;
  ctx_.metrics.max_database_connections_allowed.store(static_cast<int64_t>(cap));
  if (limiter_) limiter_->set_ceiling(cap);
  publish_limit();
}

bool PoolManager::take_room() {
  if (!budget_.try_take()) return false;
  ++total_;
  return true;
}

void PoolManager::give_room() {
  // The room goes to this worker's oldest waiter if it may have it; otherwise back to all (and
  // to waiters once a full server's pause is over: room_freed() at housekeeping).
  if (!at_limit() && budget_.used() <= budget_.cap() && !budget_.server_full())
    if (auto oldest = oldest_unserved().first) {
      grant(*oldest);  // the room changes hands: total_ and the budget stay
      return;
    }
  --total_;
  ctx_.metrics.worker_cross_posts.add(budget_.put_back(member_));
}

void PoolManager::publish_limit() {
  ctx_.metrics.database_connections_concurrency_limit.store(
      static_cast<int64_t>(concurrency_limit()));
}

PoolManager::~PoolManager() = default;

// ------------------------------------------------------------------ leases

ServerLease::ServerLease(PoolManager& pools, std::shared_ptr<ServerConnection> connection)
    : pools_(&pools), connection_(std::move(connection)) {
  pools_->ctx_.metrics.database_connections_currently_borrowed.add(1);
}

void ServerLease::pin() {
  if (connection_) pools_->pin(*connection_);
}

void ServerLease::release(bool reusable) {
  if (!connection_) return;
  pools_->ctx_.metrics.database_connections_currently_borrowed.sub(1);
  pools_->give_back(std::move(connection_), reusable);
  connection_.reset();
  pools_->note_waiting();  // below the limit again, a waiter here may take another's connection
}

void PoolManager::pin(ServerConnection& connection) {
  if (connection.state() != ServerState::kLent) return;
  connection.set_state(ServerState::kPinned);
  --lent_;
  if (limiter_) admit_waiters();
}

void PoolManager::lend(ServerConnection& connection, Clock::time_point now) {
  connection.set_state(ServerState::kLent);
  ++lent_;
  connection.lent_at = now;  // the adaptive limit's sample, and SHOW STATS
  if (limiter_ && queued_waiters_ > 0) note_waiting();  // at the limit now: no more wanted
}

void PoolManager::cancel(const ServerLease& lease) {
  const auto& connection = lease.connection();
  if (!connection) return;
  ++connection->cancels_in_flight;
  connector_->cancel(connection, [this, connection] { cancel_done(connection); });
}

void PoolManager::cancel_done(const std::shared_ptr<ServerConnection>& connection) {
  if (--connection->cancels_in_flight > 0) return;
  // Returned while the cancel was in flight: the server has taken it, so it may be lent again.
  if (connection->state() == ServerState::kCancelling) give_back(connection, true);
}

Pool& PoolManager::pool_for(const std::string& database,
                            std::shared_ptr<const Credential> credential) {
  auto key = std::make_pair(database, credential->username);
  auto it = pools_.find(key);
  if (it == pools_.end())
    it = pools_.emplace(key, std::make_unique<Pool>(database, std::move(credential))).first;
  return *it->second;
}

void PoolManager::update_cap(int server_max_connections) {
  server_max_connections_ = server_max_connections;
  const auto& cfg = ctx_.config;
  size_t cap = static_cast<size_t>(server_max_connections) * cfg.max_connections_percent / 100;
  budget_.set_cap(std::max<size_t>(cap, 1));
  idle_allowance_ =
      static_cast<size_t>(server_max_connections) * cfg.max_idle_connections_percent / 100;
  follow_cap();
  grant_slots();
}

ServerLease PoolManager::take_idle(Pool& pool, Clock::time_point now) {
  auto connection = take_idle_connection(pool, now);
  if (!connection) return {};
  return lease(std::move(connection));
}

bool PoolManager::retired(const ServerConnection& connection) const {
  const auto& cfg = ctx_.config;
  if (cfg.server_lifetime > 0 &&
      ctx_.coarse_now - connection.opened_at >= std::chrono::seconds(cfg.server_lifetime))
    return true;
  if (cfg.target_hosts.empty() || !ctx_.health) return false;
  // A fenced host (split brain) never gets read-write traffic, primary known or not.
  if (ctx_.health->fenced(connection.host_index())) return true;
  // While no primary is known the liveness check decides: a failed login is no reason to drop
  // connections that still work.
  const int primary = ctx_.health->primary();
  return primary >= 0 && connection.host_index() != static_cast<size_t>(primary);
}

std::shared_ptr<ServerConnection> PoolManager::take_idle_connection(Pool& pool,
                                                                    Clock::time_point now) {
  if (at_limit()) return nullptr;
  while (!pool.idle.empty()) {
    auto connection = std::move(pool.idle.back());
    pool.idle.pop_back();
    note_idle(-1);
    if (retired(*connection)) {
      forget(connection);
      continue;
    }
    if (!connection->server_went_away(ctx_.coarse_now < look_at_idle_until_)) {
      lend(*connection, now);
      return connection;
    }
    spdlog::info("idle server connection {} was closed by the server", connection->id());
    forget(connection);
  }
  return nullptr;
}

void PoolManager::raise_limit_if_stuck() {
  if (limiter_ && !holding() && at_limit() && lent_ + pending_grants_ < cap() &&
      lent_connections_stuck(Clock::now())) {
    // Nothing came back for a while: the lent connections wait on their clients (or on
    // something slow), not on the server's CPU. Holding this client back would gain nothing.
    limiter_->raise_above(lent_ + pending_grants_);
    publish_limit();
  }
}

void PoolManager::enqueue(Pool& pool, const std::shared_ptr<Waiter>& waiter,
                          Clock::time_point now) {
  waiter->order = next_waiter_order_++;
  waiter->enqueued = now;
  ctx_.metrics.database_connections_borrow_waits.add(1);
  pool.waiters.push_back(waiter);
  ++queued_waiters_;
  if (!at_limit()) {
    // At the shared cap. Room freed meanwhile by another worker is taken now; if this
    // worker holds no idle connection to give up, the others are asked to move one here.
    grant_slots();
    if (!waiter->slot_granted && !holds_idle() && budget_.want_room(member_))
      ctx_.metrics.worker_cross_posts.add(1);
  }
}

bool PoolManager::join_line(Pool& pool, const std::shared_ptr<Waiter>& waiter,
                            Clock::time_point deadline) {
  // What acquire() does before it waits, for the case where it would wait (take_idle() found no
  // idle connection of this pool): anything else is left to acquire().
  raise_limit_if_stuck();
  if (!at_limit() && (!pool.idle.empty() || budget_.used() < budget_.cap() || holds_idle()))
    return false;  // a connection may be had (or opened, or room made for one) now
  const auto now = Clock::now();
  if (now >= deadline) return false;  // acquire() reports the timeout
  waiter->deadline = deadline;
  waiter->handed.reset();
  waiter->slot_granted = false;
  waiter->wakeup.forget_notification();  // a late one from its last wait
  enqueue(pool, waiter, now);
  return true;
}

ServerLease PoolManager::leave_line(Pool& pool, const std::shared_ptr<Waiter>& waiter) {
  // Mostly at the front (served oldest first): popped there (a deque's erase costs more), else
  // erased where found.
  if (!pool.waiters.empty() && pool.waiters.front() == waiter) {
    pool.waiters.pop_front();
    --queued_waiters_;
  } else if (auto it = std::find(pool.waiters.begin(), pool.waiters.end(), waiter);
             it != pool.waiters.end()) {
    pool.waiters.erase(it);
    --queued_waiters_;
  }
  note_waiting();
  if (!waiter->handed) return {};
  return lease(std::move(waiter->handed));
}

awaitable<Borrowed> PoolManager::acquire(Pool& pool, Clock::time_point deadline,
                                         AcquireOptions options, std::shared_ptr<Waiter> woken) {
  auto executor = co_await asio::this_coro::executor;
  std::optional<ServerError> last_error;
  for (;;) {
    if (!woken) {
      raise_limit_if_stuck();
      if (!options.fresh_login)
        if (auto connection = take_idle_connection(pool))
          co_return Borrowed{lease(std::move(connection)), std::nullopt};
      bool may_open = !at_limit() && take_room();
      if (!may_open && !at_limit() && close_idle_elsewhere(pool)) may_open = take_room();
      if (!may_open) {
        const auto now = Clock::now();
        if (now >= deadline) break;
        woken = std::make_shared<Waiter>(executor, deadline);
        enqueue(pool, woken, now);
        co_await woken->wakeup.wait();
      }
    }
    if (woken) {
      const auto waiter = std::move(woken);  // `woken` is empty again
      // Not declared in the if's condition: GCC 12 mishandles such locals in coroutines.
      ServerLease handed = leave_line(pool, waiter);
      if (handed) co_return Borrowed{std::move(handed), std::nullopt};
      if (!waiter->slot_granted) {
        if (Clock::now() >= deadline) break;
        continue;
      }
      // (A reload may have turned the limit on after this grant.)
      if (limiter_ && pending_grants_ > 0) --pending_grants_;
      if (holding()) {  // granted just before a PAUSE: back in line
        give_room();
        continue;
      }
      // The room reserved for this waiter is now its connection's (open_new).
      if (Clock::now() >= deadline) {
        give_room();
        break;
      }
    }
    if (!options.fresh_login)
      if (auto moved = co_await fetch_idle_elsewhere(pool)) {
        if (holding()) {  // a PAUSE came meanwhile
          rest(std::move(moved));
          continue;
        }
        lend(*moved);
        co_return Borrowed{lease(std::move(moved)), std::nullopt};
      }
    Opened result = co_await open_new(pool, deadline);
    if (result.connection) {
      if (holding()) {  // a PAUSE came meanwhile
        rest(std::move(result.connection));
        continue;
      }
      lend(*result.connection);
      co_return Borrowed{lease(std::move(result.connection)), std::nullopt};
    }
    last_error = result.error;
    if (options.retry_logins && result.error->sqlstate == "53300" && budget_.server_full())
      continue;  // in line for a connection this proxy holds (ServerBudget::note_server_full)
    if (!options.retry_logins || !result.error->transient || Clock::now() + kRetryPause >= deadline)
      co_return Borrowed{{}, std::move(result.error)};
    // The server may be restarting: nothing was sent for the client yet, so try again.
    steady_timer pause(executor, kRetryPause);
    co_await pause.async_wait(as_tuple_awaitable);
  }
  ctx_.metrics.database_connections_borrow_timeouts.add(1);
  co_return Borrowed{
      {},
      ServerError{"ERROR", "08000", "Timed-out waiting to acquire database connection.", false}};
}

awaitable<PoolManager::Opened> PoolManager::open_new(Pool& pool, Clock::time_point deadline) {
  // The room under the cap was taken by the caller (take_room or a granted slot).
  ++pool.open;
  auto connection = std::make_shared<ServerConnection>(ctx_, pool, budget_.next_connection_id());
  connection->generation = budget_.generation();
  auto error = co_await connector_->open(*connection, deadline);
  if (error) {
    connection->close();
    spdlog::warn("server connection to {} for user \"{}\" failed: {}", connection->host().label(),
                 pool.credential->username, error->message);
    // Others of this proxy's open (this one's room is still counted): they will come back.
    if (error->sqlstate == "53300" && budget_.used() > 1) budget_.note_server_full();
    --pool.open;
    give_room();
    co_return Opened{nullptr, std::move(error)};
  }
  budget_.note_server_not_full();
  if (connection->server_max_connections) update_cap(*connection->server_max_connections);
  if (!pool.default_parameters) learn_default_parameters(pool, connection->parameters);
  co_return Opened{std::move(connection), std::nullopt};
}

awaitable<void> PoolManager::check_host(Pool& pool, size_t host, Clock::time_point deadline) {
  if (!take_room()) co_return;  // at the cap: clients first
  ++pool.open;
  auto connection = std::make_shared<ServerConnection>(ctx_, pool, budget_.next_connection_id());
  co_await connection->check_host(host, deadline);
  connection->close();
  --pool.open;
  give_room();
}

void PoolManager::give_back(std::shared_ptr<ServerConnection> connection, bool reusable,
                            bool may_move) {
  Pool& pool = connection->pool();
  const ServerState was = connection->state();
  Clock::time_point now{};
  if (was == ServerState::kLent || was == ServerState::kPinned) {
    now = Clock::now();
    ++pool.stats.transactions;
    pool.stats.lent_us += static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(now - connection->lent_at).count());
  }
  if (was == ServerState::kLent) {
    --lent_;
    if (limiter_ && reusable) {
      const size_t before = limiter_->limit();
      last_release_ = now;
      limiter_->sample(std::chrono::duration<double>(last_release_ - connection->lent_at).count(),
                       std::chrono::duration<double>(last_release_.time_since_epoch()).count());
      if (limiter_->limit() != before) publish_limit();
      if (limiter_->limit() > before) admit_waiters();
    }
  }
  if (!reusable || connection->broken || ctx_.draining || budget_.used() > budget_.cap() ||
      connection->generation != budget_.generation() || retired(*connection)) {
    forget(connection);
    return;
  }
  if (connection->cancels_in_flight > 0) {
    // Lent again only once the server has taken the cancel (cancel_done).
    connection->set_state(ServerState::kCancelling);
    return;
  }
  connection->last_used = ctx_.coarse_now;
  connection->inbound().shrink_if_idle();
  if (holding()) {  // PAUSE: it rests until RESUME
    rest(std::move(connection));
    return;
  }
  // Another worker's clients wait at the cap: the connection moves there if none of ours may
  // have it (a connection this worker may not lend now, at its adaptive limit, serves another's
  // client), or if that worker's oldest client has waited longer than ours and longer than
  // kCrossWorkerPatience. The patience keeps a busy pair of workers from trading connections at
  // every release (a move costs two cross-thread posts and two epoll_ctl calls) while neither
  // can starve the other.
  if (may_move && budget_.used() >= budget_.cap())
    if (auto other = budget_.oldest_waiting_other(member_)) {
      const auto mine = at_limit() ? nullptr : oldest_unserved().first;
      if (!mine ||
          (other->second < mine->enqueued && Clock::now() - other->second > kCrossWorkerPatience)) {
        move_to(std::move(connection), other->first);
        return;
      }
    }
  if (at_limit()) {  // the adaptive limit came down: this one rests
    connection->set_state(ServerState::kIdle);
    pool.idle.push_back(std::move(connection));
    note_idle(+1);
    return;
  }
  // Waiters are served oldest first across pools, so a busy pool cannot starve another.
  const auto elsewhere = oldest_unserved(&pool).first;
  if (auto waiter = first_unserved(pool);
      waiter && (!elsewhere || waiter->order < elsewhere->order)) {
    lend(*connection,
         was == ServerState::kLent || was == ServerState::kPinned ? now : Clock::now());
    waiter->handed = std::move(connection);
    // Straight to the waiter: the connection carries its next query at once instead of
    // idling while the executor's queue drains.
    waiter->wakeup.notify_now();
    return;
  }
  if (elsewhere && budget_.used() >= budget_.cap()) {
    // Another pool's older client waits at the cap: make room for it rather than park this one.
    forget(connection);
    return;
  }
  connection->set_state(ServerState::kIdle);
  pool.idle.push_back(std::move(connection));
  note_idle(+1);
  // Below the cap, another pool's client waited only for the limit: it may open one now.
  if (elsewhere) admit_waiters();
}

void PoolManager::forget(const std::shared_ptr<ServerConnection>& connection) {
  connection->close();
  --connection->pool().open;
  give_room();
}

// The oldest waiter of `pool` not yet given a connection or a slot (woken waiters stay in the
// queue until they run).
Waiter* PoolManager::first_unserved(Pool& pool) {
  for (auto& w : pool.waiters)
    if (!w->slot_granted && !w->handed) return w.get();
  return nullptr;
}

std::pair<Waiter*, Pool*> PoolManager::oldest_unserved(const Pool* except) {
  std::pair<Waiter*, Pool*> oldest{nullptr, nullptr};
  if (queued_waiters_ == 0) return oldest;  // asked at every release: no walk over the pools
  for (auto& [key, pool] : pools_)
    if (pool.get() != except)
      if (Waiter* w = first_unserved(*pool); w && (!oldest.first || w->order < oldest.first->order))
        oldest = {w, pool.get()};
  return oldest;
}

void PoolManager::grant(Waiter& waiter) {
  waiter.slot_granted = true;  // the room is reserved until the waiter runs
  if (limiter_) ++pending_grants_;
  waiter.wakeup.notify();
}

void PoolManager::note_waiting() {
  // A client held back by this worker's adaptive limit is not worth another worker's
  // connection: moved here, it would rest idle or be moved back at the next release. Told as
  // waiting, two workers at their limits traded connections 2-5 times per transaction.
  const auto oldest = at_limit() ? nullptr : oldest_unserved().first;
  const auto since = oldest ? std::optional(oldest->enqueued) : std::nullopt;
  if (since == published_waiting_) return;  // no store to the shared line when nothing changed
  published_waiting_ = since;
  budget_.set_waiting(member_, since);
}

// Hands free room under the cap to the oldest waiters, across pools.
void PoolManager::grant_slots() {
  while (!at_limit()) {
    const auto oldest = oldest_unserved().first;
    // Said before trying for room: see ServerBudget::set_waiting. (note_waiting(), without
    // looking for the oldest twice: this runs whenever a client joins the line.)
    budget_.set_waiting(member_, oldest ? std::optional(oldest->enqueued) : std::nullopt);
    if (!oldest || !take_room()) return;
    grant(*oldest);
  }
}

bool PoolManager::holds_idle() const {
  for (const auto& [key, pool] : pools_)
    if (!pool->idle.empty()) return true;
  return false;
}

void PoolManager::room_freed() {
  follow_cap();
  grant_slots();
}

const std::map<std::string, std::string>* PoolManager::default_parameters(Pool& pool) {
  if (!pool.default_parameters)
    pool.default_parameters = budget_.default_parameters(pool.database, pool.credential->username);
  return pool.default_parameters ? &*pool.default_parameters : nullptr;
}

void PoolManager::learn_default_parameters(Pool& pool,
                                           const std::map<std::string, std::string>& parameters) {
  pool.default_parameters = parameters;
  budget_.set_default_parameters(pool.database, pool.credential->username, parameters);
}

void PoolManager::note_idle(int change) {
  idle_count_ += change;
  budget_.set_idle(member_, idle_count_);
}

void PoolManager::admit_waiters() {
  while (!at_limit()) {
    const auto [oldest, pool] = oldest_unserved();
    if (!oldest) return;
    if (auto connection = take_idle_connection(*pool)) {
      oldest->handed = std::move(connection);
      oldest->wakeup.notify();
      continue;
    }
    const size_t granted = pending_grants_;
    grant_slots();
    if (pending_grants_ == granted) return;  // at the cap: releases will serve them
  }
}

bool PoolManager::close_idle_elsewhere(const Pool& except) {
  for (auto& [key, pool] : pools_) {
    if (pool.get() == &except || pool->idle.empty()) continue;
    auto victim = pool->idle.front();  // the coldest
    pool->idle.erase(pool->idle.begin());
    note_idle(-1);
    forget(victim);
    return true;
  }
  return false;
}

void PoolManager::reconfigure() {
  // The user's new secret for new server connections; a user no longer configured keeps the
  // old one for the sessions still using it (no new client can log in as that user).
  for (auto& [key, pool] : pools_)
    if (auto credential = ctx_.secrets->find_shared(key.second)) pool->credential = credential;
  if (ctx_.config.adaptive_concurrency && !limiter_) {
    limiter_.emplace(kLeastConcurrency, cap());
  } else if (!ctx_.config.adaptive_concurrency && limiter_) {
    limiter_.reset();
    pending_grants_ = 0;
  }
  publish_limit();
  // The cap from the last max_connections the server reported, by the new percentages.
  if (server_max_connections_) update_cap(*server_max_connections_);
  // Connections opened under an older generation (another target, another init_query) go now
  // if idle, and when they come back otherwise.
  const uint64_t generation = budget_.generation();
  for (auto& [key, pool] : pools_) {
    if (generation != pool_generation_) {
      pool->default_parameters.reset();
      pool->validated_settings.clear();
    }
    std::erase_if(pool->idle, [&](const std::shared_ptr<ServerConnection>& connection) {
      if (connection->generation == generation) return false;
      note_idle(-1);
      forget(connection);
      return true;
    });
  }
  pool_generation_ = generation;
  grant_slots();
}

void PoolManager::reap_idle(Clock::time_point now) {
  const auto max_idle_age = std::chrono::seconds(ctx_.config.idle_connection_seconds);
  size_t idle_count = 0;
  for (auto& [key, pool] : pools_) idle_count += pool->idle.size();
  for (auto& [key, pool] : pools_) {
    // Notice servers that went away (restart, admin shutdown) before a client borrows them.
    std::erase_if(pool->idle, [&](const std::shared_ptr<ServerConnection>& connection) {
      const bool too_old = retired(*connection);
      if (!too_old && !connection->server_went_away()) return false;
      if (too_old)
        spdlog::debug("idle server connection {} retired (server_lifetime or not the primary)",
                      connection->id());
      else
        spdlog::info("idle server connection {} was closed by the server", connection->id());
      note_idle(-1);
      forget(connection);
      --idle_count;
      return true;
    });
    while (idle_count > idle_allowance_ && !pool->idle.empty() &&
           now - pool->idle.front()->last_used >= max_idle_age) {
      auto victim = pool->idle.front();
      pool->idle.erase(pool->idle.begin());
      note_idle(-1);
      forget(victim);
      --idle_count;
    }
  }
}

void PoolManager::expire_waiters(Clock::time_point now) {
  // Another worker's cap change and freed room are posted here too; this catches any missed,
  // and asks again for an idle connection of another worker's while clients wait at the cap.
  room_freed();
  if (!at_limit() && oldest_unserved().first && !holds_idle() && budget_.used() >= budget_.cap() &&
      budget_.want_room(member_))
    ctx_.metrics.worker_cross_posts.add(1);
  for (auto& [key, pool] : pools_)
    for (auto& waiter : pool->waiters)
      if (!waiter->handed && !waiter->slot_granted && waiter->deadline <= now)
        waiter->wakeup.notify();
}

bool PoolManager::lent_connections_stuck(Clock::time_point now) const {
  const auto recent = std::chrono::duration<double>(limiter_->recent_latency());
  return now - last_release_ >
         std::max<Clock::duration>(std::chrono::milliseconds(1),
                                   std::chrono::duration_cast<Clock::duration>(4 * recent));
}

void PoolManager::release_held_back(Clock::time_point now) {
  if (!limiter_ || holding() || lent_ + pending_grants_ >= cap()) return;
  // A client held back this long by the adaptive limit is let through: what the lent
  // connections wait for may be that client (a lock, a row), not the server's CPU.
  for (auto& [key, pool] : pools_)
    if (auto w = first_unserved(*pool); w && now - w->enqueued >= kLongestHoldBack) {
      limiter_->raise_above(lent_ + pending_grants_);
      publish_limit();
      admit_waiters();
      return;
    }
}

void PoolManager::rest(std::shared_ptr<ServerConnection> connection) {
  connection->set_state(ServerState::kIdle);
  connection->last_used = ctx_.coarse_now;
  Pool& pool = connection->pool();
  pool.idle.push_back(std::move(connection));
  note_idle(+1);
}

void PoolManager::resume() {
  paused_ = false;
  // The waiters, oldest first: an idle connection of their pool, or room under the cap, or
  // (at the cap) room made by closing an idle connection of another pool.
  while (!at_limit()) {
    const auto [oldest, pool] = oldest_unserved();
    if (!oldest) break;
    if (auto connection = take_idle_connection(*pool)) {
      oldest->handed = std::move(connection);
      oldest->wakeup.notify();
      continue;
    }
    if (take_room()) {
      grant(*oldest);
      continue;
    }
    if (!close_idle_elsewhere(*pool)) break;  // its room goes to the oldest waiter
  }
}

size_t PoolManager::borrowed() const {
  const auto& by_state = ctx_.metrics.database_connections_in_state;
  const auto pinned = by_state[static_cast<size_t>(ServerState::kPinned)].load();
  const auto leases = ctx_.metrics.database_connections_currently_borrowed.load();
  return std::max<size_t>(lent_ + static_cast<size_t>(std::max<int64_t>(pinned, 0)),
                          static_cast<size_t>(std::max<int64_t>(leases, 0)));
}

void PoolManager::close_all_idle() {
  for (auto& [key, pool] : pools_)
    while (!pool->idle.empty()) {
      auto victim = pool->idle.back();
      pool->idle.pop_back();
      note_idle(-1);
      forget(victim);
    }
}

}  // namespace sluice::proxy
