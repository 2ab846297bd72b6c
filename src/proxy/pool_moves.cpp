// PoolManager, continued: server connections moving between workers. The cap is shared, so a
// worker at it with clients waiting takes an idle connection another worker can spare (its socket
// and session, prepared statements included, re-registered on this loop: no new login) instead of
// one being closed there and opened here.
#include <spdlog/spdlog.h>

#include "proxy/pool.hpp"
#include "proxy/secrets.hpp"

namespace sluice::proxy {

void PoolManager::move_one_idle_to(size_t member) {
  if (ctx_.draining || oldest_unserved().first) return;  // this worker's own clients first
  for (auto& [key, pool] : pools_) {
    if (pool->idle.empty()) continue;
    auto connection = std::move(pool->idle.back());  // the warmest
    pool->idle.pop_back();
    note_idle(-1);
    move_to(std::move(connection), member);
    return;
  }
}

void PoolManager::move_to(std::shared_ptr<ServerConnection> connection, size_t member) {
  // Out of the idle list (or just returned) and not lent: nobody else touches it meanwhile.
  connection->set_state(ServerState::kIdle);
  if (connection->server_went_away() || ctx_.draining) {
    forget(connection);
    return;
  }
  Pool& pool = connection->pool();
  const std::string database = pool.database;
  std::shared_ptr<const Credential> credential = pool.credential;
  auto moved = std::make_shared<ServerConnection::Moved>(connection->move_out());
  --pool.open;
  --total_;  // the room under the cap moves with it: the budget stays as it is
  connection.reset();
  const auto& target = budget_.member(member);
  ctx_.metrics.database_connections_moved.add(1);
  ctx_.metrics.worker_cross_posts.add(1);
  asio::post(target.ex, [pools = target.pools, database, credential, moved] {
    pools->adopt(database, credential, std::move(*moved));
  });
}

awaitable<std::shared_ptr<ServerConnection>> PoolManager::fetch_idle_elsewhere(Pool& pool) {
  // A warm connection another worker does not need costs a message each way; a new one, a login.
  const auto from = budget_.most_idle_other(member_);
  if (!from) co_return nullptr;
  auto handoff = std::make_shared<IdleHandoff>(ctx_.io.get_executor());
  const auto& giver = budget_.member(*from);
  ctx_.metrics.worker_cross_posts.add(1);
  asio::post(giver.ex,
             [pools = giver.pools, database = pool.database, user = pool.credential->username,
              handoff] { pools->give_idle(database, user, handoff); });
  co_await handoff->done.wait();
  // In the room this worker took for it (kept for a new login if the move failed).
  co_return handoff->moved ? take_over(pool, std::move(*handoff->moved)) : nullptr;
}

std::shared_ptr<ServerConnection> PoolManager::take_over(Pool& pool,
                                                         ServerConnection::Moved moved) {
  try {
    auto connection = std::make_shared<ServerConnection>(ctx_, pool, budget_.next_connection_id(),
                                                         std::move(moved));
    ++pool.open;
    return connection;
  } catch (const std::exception& e) {  // the poller refused the socket
    spdlog::warn("a server connection moved from another worker was lost: {}", e.what());
    return nullptr;
  }
}

void PoolManager::give_idle(const std::string& database, const std::string& user,
                            const std::shared_ptr<IdleHandoff>& handoff) {
  auto reply = [&] {
    ctx_.metrics.worker_cross_posts.add(1);
    asio::post(handoff->done.get_executor(), [handoff] { handoff->done.notify(); });
  };
  auto it = pools_.find(std::make_pair(database, user));
  if (ctx_.draining || it == pools_.end() || it->second->idle.empty() ||
      first_unserved(*it->second)) {
    reply();
    return;
  }
  Pool& pool = *it->second;
  auto connection = std::move(pool.idle.back());  // the warmest
  pool.idle.pop_back();
  note_idle(-1);
  if (connection->server_went_away()) {
    forget(connection);
    reply();
    return;
  }
  handoff->moved = connection->move_out();
  ctx_.metrics.database_connections_moved.add(1);
  --pool.open;
  // The asking worker holds room for this connection already: this worker's goes back.
  --total_;
  ctx_.metrics.worker_cross_posts.add(budget_.put_back(member_));
  reply();
}

void PoolManager::adopt(const std::string& database, std::shared_ptr<const Credential> credential,
                        ServerConnection::Moved moved) {
  ++total_;  // the room under the cap came with it
  auto connection = take_over(pool_for(database, std::move(credential)), std::move(moved));
  if (!connection) {
    give_room();
    return;
  }
  connection->last_used = ctx_.coarse_now;
  // To the oldest waiter, as any connection coming back; not on to a third worker (or back).
  give_back(std::move(connection), true, false);
  note_waiting();
}

}  // namespace sluice::proxy
