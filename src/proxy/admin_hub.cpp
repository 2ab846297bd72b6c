#include "proxy/admin_hub.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "pgwire/codec.hpp"
#include "proxy/client_session.hpp"
#include "proxy/pool.hpp"
#include "proxy/secrets.hpp"
#include "proxy/server_budget.hpp"
#include "proxy/server_connection.hpp"
#include "proxy/target_health.hpp"
#include "proxy/wakeup.hpp"
#include "proxy/worker.hpp"

namespace sluice::proxy {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::microseconds;

// How often PAUSE looks whether every lent connection is back.
constexpr auto kPausePoll = std::chrono::milliseconds(10);
// The console reads commands, not data: a larger message is refused.
constexpr size_t kMaxConsoleMessage = 64 * 1024;

// Steady-clock instants (what the proxy keeps) as wall-clock times (what the console shows).
struct Clocks {
  SteadyClock::time_point steady = SteadyClock::now();
  WallClock::time_point wall = WallClock::now();
  WallClock::time_point to_wall(SteadyClock::time_point at) const {
    return wall - std::chrono::duration_cast<WallClock::duration>(steady - at);
  }
};

ServerSnapshot server_row(ServerConnection& connection, size_t worker, const Clocks& clocks) {
  ServerSnapshot s;
  s.user = connection.pool().credential->username;
  s.database = printable_ascii(connection.pool().database);
  s.state = server_state_name(connection.state());
  s.id = connection.id();
  s.backend_pid = connection.backend_pid();
  s.connect_time = connection.since();
  s.request_time = clocks.to_wall(connection.last_used);
  s.tls = connection.transport().tls();
  s.worker = worker;
  return s;
}

// On the worker's own thread: what its pools, sessions and connections are doing now.
WorkerSnapshot snapshot_of(Worker& worker) {
  const Clocks clocks;
  WorkerSnapshot out;
  std::map<const Pool*, size_t> pool_rows;
  worker.pools().for_each_pool([&](const Pool& pool) {
    PoolSnapshot p;
    p.database = printable_ascii(pool.database);
    p.user = pool.credential->username;
    p.console = pool.database == kAdminDatabase;
    const auto count = [&](ServerState state) { return pool.servers[static_cast<size_t>(state)]; };
    p.sv_lent = count(ServerState::kLent);
    p.sv_pinned = count(ServerState::kPinned);
    p.sv_idle = count(ServerState::kIdle);
    p.sv_opening = count(ServerState::kOpening);
    p.sv_cancelling = count(ServerState::kCancelling);
    for (const auto& waiter : pool.waiters)
      if (!waiter->handed && !waiter->slot_granted)
        p.max_wait = std::max(
            p.max_wait, std::chrono::duration_cast<microseconds>(clocks.steady - waiter->enqueued));
    p.transactions = pool.stats.transactions;
    p.queries = pool.stats.queries;
    p.lent_us = pool.stats.lent_us;
    p.wait_us = pool.stats.wait_us;
    pool_rows[&pool] = out.pools.size();
    out.pools.push_back(std::move(p));
    for (const auto& connection : pool.idle)
      out.servers.push_back(server_row(*connection, worker.index(), clocks));
  });
  worker.clients().for_each([&](const ClientSession& session) {
    if (session.phase() == ClientSession::Phase::kStartup) ++out.logins;
    if (session.phase() != ClientSession::Phase::kReady || !session.pool()) return;
    const Pool& pool = *session.pool();
    ClientSnapshot c;
    c.user = pool.credential->username;
    c.database = printable_ascii(pool.database);
    if (const auto since = session.borrowing_since()) {
      c.waiting = true;
      c.waited = std::chrono::duration_cast<microseconds>(clocks.steady - *since);
    }
    const tcp::endpoint& remote = session.transport().remote_endpoint();
    c.addr = remote.address().to_string();
    c.port = remote.port();
    c.connect_time = clocks.to_wall(session.connected_at());
    c.request_time = clocks.to_wall(session.last_activity());
    c.process_id = session.cancel_pid();
    c.tls = session.transport().tls();
    const Settings& wanted = session.settings().wanted;
    if (auto name = wanted.find("application_name"); name != wanted.end())
      c.application_name = printable_ascii(name->second);
    c.parked = session.parked();
    c.worker = worker.index();
    if (ServerConnection* server = session.held_server()) {
      c.server = server->id();
      ServerSnapshot s = server_row(*server, worker.index(), clocks);
      s.client = c.process_id;
      s.request_time = c.request_time;
      s.application_name = c.application_name;
      out.servers.push_back(std::move(s));
    }
    if (auto row = pool_rows.find(&pool); row != pool_rows.end())
      ++(c.waiting ? out.pools[row->second].cl_waiting : out.pools[row->second].cl_active);
    out.clients.push_back(std::move(c));
  });
  return out;
}

// Whether anything in this process acts on SIGHUP (otherwise raising it would end the proxy).
bool sighup_handled() {
  struct sigaction current {};
  if (::sigaction(SIGHUP, nullptr, &current) != 0) return false;
  if (current.sa_flags & SA_SIGINFO) return current.sa_sigaction != nullptr;
  return current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN;
}

const char* verb_name(AdminVerb verb) {
  switch (verb) {
    case AdminVerb::kShow:
      return "SHOW";
    case AdminVerb::kPause:
      return "PAUSE";
    case AdminVerb::kResume:
      return "RESUME";
    case AdminVerb::kReload:
      return "RELOAD";
    case AdminVerb::kShutdown:
      return "SHUTDOWN";
  }
  return "?";
}

}  // namespace

AdminHub::AdminHub(const Config& config, TargetHealth& health, ServerBudget& budget,
                   std::vector<std::unique_ptr<Worker>>& workers)
    : config_(std::make_shared<const Config>(config)),
      health_(health),
      budget_(budget),
      workers_(workers) {}

template <class Result, class Work>
awaitable<std::vector<Result>> AdminHub::on_every_worker(Work work) {
  const executor home = co_await asio::this_coro::executor;
  struct Gathering {
    Gathering(executor ex, size_t n) : done(std::move(ex)), results(n), remaining(n) {}
    Wakeup done;
    std::vector<Result> results;
    size_t remaining;  // touched on the asking session's thread only
  };
  auto gathering = std::make_shared<Gathering>(home, workers_.size());
  for (size_t i = 0; i < workers_.size(); ++i) {
    Worker* worker = workers_[i].get();
    asio::post(worker->io(), [gathering, worker, i, work, home] {
      Result result = work(*worker);
      asio::post(home, [gathering, i, result = std::move(result)]() mutable {
        gathering->results[i] = std::move(result);
        if (--gathering->remaining == 0) gathering->done.notify();
      });
    });
  }
  co_await gathering->done.wait();
  co_return std::move(gathering->results);
}

awaitable<ProxySnapshot> AdminHub::snapshot() {
  ProxySnapshot snapshot;
  snapshot.workers = co_await on_every_worker<WorkerSnapshot>(snapshot_of);
  snapshot.target = config()->target;
  snapshot.health = health_.status();
  snapshot.checked_at = health_.checked_at();
  snapshot.hosts = health_.report();
  snapshot.cap = budget_.cap();
  snapshot.used = budget_.used();
  snapshot.paused = paused();
  snapshot.uptime = std::chrono::duration_cast<std::chrono::seconds>(SteadyClock::now() - started_);
  co_return snapshot;
}

awaitable<std::optional<std::string>> AdminHub::pause() {
  int expected = kRunning;
  if (!state_.compare_exchange_strong(expected, kPausing))
    co_return std::string(expected == kPaused ? "the proxy is paused already"
                                              : "a PAUSE is under way already");
  co_await on_every_worker<bool>([](Worker& worker) {
    worker.pools().pause();
    return true;
  });
  if (state_.load() != kPausing) {
    // A RESUME overtook this PAUSE on some worker: every worker lends again.
    co_await on_every_worker<bool>([](Worker& worker) {
      worker.pools().resume();
      return true;
    });
    co_return std::string("RESUME came before PAUSE was done");
  }
  const executor home = co_await asio::this_coro::executor;
  steady_timer poll(home);
  for (;;) {
    const auto borrowed =
        co_await on_every_worker<size_t>([](Worker& worker) { return worker.pools().borrowed(); });
    size_t lent = 0;
    for (size_t n : borrowed) lent += n;
    if (lent == 0) break;
    if (state_.load() != kPausing) co_return std::string("RESUME came before PAUSE was done");
    poll.expires_after(kPausePoll);
    co_await poll.async_wait(as_tuple_awaitable);
  }
  expected = kPausing;
  if (!state_.compare_exchange_strong(expected, kPaused))
    co_return std::string("RESUME came before PAUSE was done");
  co_return std::nullopt;
}

awaitable<std::optional<std::string>> AdminHub::resume() {
  if (state_.exchange(kRunning) == kRunning) co_return std::string("the proxy is not paused");
  co_await on_every_worker<bool>([](Worker& worker) {
    worker.pools().resume();
    return true;
  });
  co_return std::nullopt;
}

namespace {

// A large result (SHOW CLIENTS with thousands of clients) goes out a batch of rows at a time,
// with the loop's other sessions served in between; `out` ends with the CommandComplete.
awaitable<void> send_rows(Transport& client, const RowSet& rows, std::string& out) {
  constexpr size_t kBatch = 256;
  const executor home = co_await asio::this_coro::executor;
  write_row_description(out, rows.columns);
  for (size_t i = 0; i < rows.rows.size(); i += kBatch) {
    write_data_rows(out, rows, i, i + kBatch);
    if (i + kBatch >= rows.rows.size()) break;
    const bool sent = co_await client.write_all(out);
    out.clear();
    if (!sent) co_return;  // the client is gone: the session's next write says so
    co_await asio::post(home, use_awaitable);
  }
  write_complete(out, "SHOW");
}

// One command's answer (without the ReadyForQuery). `signal_after` is set to a signal to raise
// once the answer is out (SHUTDOWN's SIGTERM).
awaitable<void> run_command(AdminHub& hub, Transport& client, std::string_view sql,
                            std::string& out, int& signal_after) {
  auto parsed = parse_admin_command(sql);
  if (const auto* error = std::get_if<std::string>(&parsed)) {
    pgwire::write_error(out, "ERROR", "42601", *error);
    co_return;
  }
  const AdminCommand command = std::get<AdminCommand>(parsed);
  if (command.verb != AdminVerb::kShow)
    spdlog::info("admin console: {} from {}", verb_name(command.verb), client.peer());
  switch (command.verb) {
    case AdminVerb::kShow:
      break;
    case AdminVerb::kPause: {
      const auto error = co_await hub.pause();
      if (error)
        pgwire::write_error(out, "ERROR", "55000", *error);
      else
        pgwire::write_command_complete(out, "PAUSE");
      co_return;
    }
    case AdminVerb::kResume: {
      const auto error = co_await hub.resume();
      if (error)
        pgwire::write_error(out, "ERROR", "55000", *error);
      else
        pgwire::write_command_complete(out, "RESUME");
      co_return;
    }
    case AdminVerb::kReload:
      if (!sighup_handled()) {
        pgwire::write_error(out, "ERROR", "0A000",
                            "RELOAD is not available: nothing in this proxy handles SIGHUP yet");
        co_return;
      }
      ::kill(::getpid(), SIGHUP);
      pgwire::write_command_complete(out, "RELOAD");
      co_return;
    case AdminVerb::kShutdown:
      // The same drain as SIGTERM, once this answer is out.
      signal_after = SIGTERM;
      pgwire::write_command_complete(out, "SHUTDOWN");
      co_return;
  }
  switch (command.what) {
    case ShowWhat::kHelp:
      write_admin_help(out);
      co_return;
    case ShowWhat::kVersion:
      write_row_set(out, show_version());
      co_return;
    case ShowWhat::kConfig:
      write_row_set(out, show_config(*hub.config()));
      co_return;
    default:
      break;
  }
  const ProxySnapshot snapshot = co_await hub.snapshot();
  switch (command.what) {
    case ShowWhat::kPools:
      write_row_set(out, show_pools(snapshot));
      break;
    case ShowWhat::kClients: {
      const RowSet rows = show_clients(snapshot);  // a local: GCC 12 and temporaries in co_await
      co_await send_rows(client, rows, out);
      break;
    }
    case ShowWhat::kServers: {
      const RowSet rows = show_servers(snapshot);
      co_await send_rows(client, rows, out);
      break;
    }
    case ShowWhat::kStats:
      write_row_set(out, show_stats(snapshot));
      break;
    case ShowWhat::kStatsTotals:
      write_row_set(out, show_stats_totals(snapshot));
      break;
    case ShowWhat::kStatsAverages:
      write_row_set(out, show_stats_averages(snapshot));
      break;
    case ShowWhat::kTargets:
      write_row_set(out, show_targets(snapshot));
      break;
    case ShowWhat::kDatabases:
      write_row_set(out, show_databases(snapshot));
      break;
    case ShowWhat::kLists:
      write_row_set(out, show_lists(snapshot));
      break;
    default:
      break;
  }
}

}  // namespace

awaitable<void> serve_admin_console(AdminHub& hub, Transport& client, ReadBuffer& inbound,
                                    SteadyClock::time_point& last_activity) {
  bool skip_until_sync = false;  // after a refused extended-protocol message, as PostgreSQL does
  for (;;) {
    pgwire::Frame frame;
    const auto status = pgwire::peek_frame(inbound.readable(), kMaxConsoleMessage, frame);
    if (status == pgwire::FrameStatus::kNeedMore) {
      const bool more = co_await client.read_some(inbound, 1024);
      if (!more) co_return;
      last_activity = SteadyClock::now();
      continue;
    }
    if (status != pgwire::FrameStatus::kReady) {
      co_await send_fatal(client, "08P01", "invalid or oversized message for the admin console");
      co_return;
    }
    const char type = frame.type;
    std::optional<std::string> sql;
    if (type == 'Q') {
      const auto text = pgwire::decode_query(frame.body);
      if (!text) {
        co_await send_fatal(client, "08P01", "malformed Query message");
        co_return;
      }
      sql.emplace(*text);
    }
    inbound.consume(frame.wire_size());
    std::string out;
    int signal_after = 0;
    if (type == 'X') {
      co_return;
    } else if (type == 'Q') {
      co_await run_command(hub, client, *sql, out, signal_after);
      pgwire::write_ready_for_query(out, 'I');
    } else if (type == 'S') {
      skip_until_sync = false;
      pgwire::write_ready_for_query(out, 'I');
    } else if (type == 'P' || type == 'B' || type == 'D' || type == 'E' || type == 'C' ||
               type == 'H') {
      if (!skip_until_sync)
        pgwire::write_error(out, "ERROR", "0A000",
                            "the admin console takes simple queries only (as psql sends them)");
      skip_until_sync = true;
    } else {
      co_await send_fatal(
          client, "08P01",
          "invalid frontend message type " + std::to_string(static_cast<unsigned char>(type)));
      co_return;
    }
    if (!out.empty()) {
      const bool sent = co_await client.write_all(out);
      if (!sent) co_return;
    }
    if (signal_after) ::kill(::getpid(), signal_after);
  }
}

}  // namespace sluice::proxy
