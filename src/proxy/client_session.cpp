#include "proxy/client_session.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "auth/crypto.hpp"
#include "proxy/admin_hub.hpp"
#include "proxy/client_login.hpp"
#include "proxy/client_registry.hpp"
#include "proxy/pool.hpp"
#include "proxy/server_connection.hpp"

namespace sluice::proxy {
namespace {

// After a FATAL for a bad message, how much of the message's rest is read and dropped at most,
// and for how long, before the connection closes (Transport::close_gracefully).
constexpr size_t kMaxMessageDrain = 1024u * 1024u * 1024u;
constexpr auto kDrainTime = std::chrono::seconds(10);

// A message streamed through (a COPY row, a Bind's parameters) may be as large as PostgreSQL
// itself takes (PQ_LARGE_MESSAGE_LIMIT).
constexpr size_t kMaxStreamedMessage = 1024u * 1024u * 1024u;

// The length word of the message at the start of `buf` (type byte, then the length).
uint32_t declared_length(pgwire::Bytes buf) {
  return pgwire::read_be32(buf.data() + 1);
}

}  // namespace

ClientSession::Active::Active(ClientSession& session)
    : link(session.ctx_, session.client_, session.settings_, session),
      router(*session.ctx_.statements, session.ctx_.config.max_prepared_statements > 0,
             link.tracker(), to_server, to_client, session, session.statements_) {}

ClientSession::ClientSession(ProxyContext& ctx, int fd, const tcp::endpoint& remote)
    : ctx_(ctx),
      client_(*ctx.poller, ctx.io.get_executor(), fd, remote),
      active_(std::make_unique<Active>(*this)) {
  last_activity_ = login_clock_.started = Clock::now();
  cancel_pid_ = ctx_.clients->add(this);
  std::string key = auth::pooled_random_bytes(4);
  std::memcpy(&cancel_key_, key.data(), 4);
  ctx_.metrics.client_connections_received.add(1);
}

ClientSession::~ClientSession() {
  ctx_.clients->remove(cancel_pid_, counted_);
  if (counted_) ctx_.metrics.client_connections.sub(1);
  ctx_.metrics.client_connections_closed.add(1);
}

awaitable<void> ClientSession::run() {
  auto self = shared_from_this();
  ClientLogin login(ctx_, client_, active_->inbound, cancel_pid_, cancel_key_, login_clock_);
  if (auto result = co_await login.run()) {
    settings_ = std::move(result->settings);
    pool_ = result->pool;
    phase_ = Phase::kReady;
    counted_ = true;
    ctx_.clients->note_logged_in();
    ctx_.metrics.client_connections.add(1);
    ctx_.metrics.client_connections_setup_succeeded.add(1);
    if (result->admin) {
      co_await serve_admin_console(*ctx_.admin, client_, active_->inbound, last_activity_);
    } else {
      // Not co_awaited inside the condition: GCC 12 destroys such a temporary twice.
      const Relayed relayed = co_await relay();
      if (relayed == Relayed::kParked) co_return;
    }
  }
  co_await leave();
}

awaitable<void> ClientSession::serve() {
  const Relayed relayed = co_await relay();
  if (relayed == Relayed::kParked) co_return;
  co_await leave();
}

// ------------------------------------------------------------------ the client reader

namespace {
void log_failure(const char* what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("{} failed: {}", what, ex.what());
  }
}
}  // namespace

awaitable<ClientSession::Relayed> ClientSession::relay() {
  Active& a = *active_;  // until the session parks, which ends this loop
  asio::co_spawn(
      client_.get_executor(),
      [self = shared_from_this()]() -> awaitable<void> { co_await self->active_->link.run(); },
      [](std::exception_ptr e) { log_failure("server reader", e); });
  const size_t max_message = ctx_.config.max_message_size;
  size_t relayed = 0;  // bytes taken since this reader last let others run
  for (;;) {
    const size_t held = a.inbound.readable().size();
    const ReadStatus status = client_.read_now(a.inbound);
    if (status == ReadStatus::kClosed) co_return Relayed::kEnded;
    if (status == ReadStatus::kWouldBlock) {
      relayed = 0;
      a.awaiting_client = true;
      co_await client_.readable();  // the client's bytes, or the sweep asking to park
      a.awaiting_client = false;
      if (std::exchange(a.park_requested, false) && !client_.may_have_input() && may_park()) {
        park();
        co_return Relayed::kParked;
      }
      continue;
    }
    last_activity_ = Clock::now();
    memory_released_ = false;
    relayed += a.inbound.readable().size() - held;
    if (a.streaming.unread > 0) pass_stream();
    while (a.streaming.unread == 0) {
      pgwire::Frame frame;
      auto status = pgwire::peek_frame(a.inbound.readable(), max_message, frame);
      if ((status == pgwire::FrameStatus::kNeedMore || status == pgwire::FrameStatus::kTooLarge) &&
          streams(a.inbound.readable())) {
        // Passed on as it comes (max_message_size does not apply), once its head is here.
        status = pgwire::peek_frame_head(a.inbound.readable(), kStreamedHeadSize,
                                         kMaxStreamedMessage, frame);
      }
      if (status == pgwire::FrameStatus::kNeedMore) break;
      if (status != pgwire::FrameStatus::kReady) {
        // Built before the co_await: GCC 12 destroys a conditional's temporaries twice there.
        std::string message = "invalid message length";
        size_t unread = 0;
        if (status == pgwire::FrameStatus::kTooLarge) {
          // The client is likely still sending it: the rest is read and dropped, so that it
          // sees this FATAL rather than a reset.
          const size_t whole = 1 + size_t{declared_length(a.inbound.readable())};
          unread = std::min(whole - std::min(whole, a.inbound.readable().size()), kMaxMessageDrain);
          const size_t limit = streams(a.inbound.readable()) ? kMaxStreamedMessage : max_message;
          message = "message of " + std::to_string(declared_length(a.inbound.readable())) +
                    " bytes exceeds max_message_size (" + std::to_string(limit) + ")";
        }
        co_await send_fatal(client_, "08P01", message);
        co_await client_.close_gracefully(unread, kDrainTime);
        co_return Relayed::kEnded;
      }
      // Borrowing is the only wait a message may need; everything else is decided at once.
      if (!a.link.attached() && needs_server(frame)) {
        ServerLease lease;
        if (!attach_now(lease)) {
          // At the cap: the common wait is this reader's own, with no coroutine of its own.
          bool woken = false;
          if (!lease && join_line()) {
            co_await a.waiter->wakeup.wait();
            woken = true;
          }
          if (!woken || !attach_from_line(lease)) co_await attach(std::move(lease), woken);
        }
      }
      a.passed_on = false;
      const Step step = handle_frame(frame);
      a.inbound.consume(frame.wire_size());
      if (step == Step::kViolation) {
        if (send_to_client() && client_.has_backlog()) co_await client_.flush();
        co_await send_fatal(client_, "08P01", a.violation);
        co_await client_.close_gracefully(0, kDrainTime);
        co_return Relayed::kEnded;
      }
      if (step == Step::kEnd) co_return Relayed::kEnded;
      if (frame.unread > 0) {
        // Its rest follows where its head went, or is dropped with it.
        a.streaming = {frame.unread, a.passed_on};
        a.link.set_client_mid_message(a.passed_on);
      }
    }
    // Writes go out at once; only a peer whose socket is full makes this reader wait, which
    // is how a client that does not read its replies, or a server slow to take a COPY
    // stream, slows the sender down.
    const bool own_replies = !a.to_client.empty();
    if (!send_to_client()) co_return Relayed::kEnded;
    if (own_replies && client_.has_backlog() && !co_await client_.flush())
      co_return Relayed::kEnded;
    a.link.send(a.to_server);
    if (a.link.attached() && a.link.server().transport().has_backlog())
      co_await a.link.flush_if_backlogged();
    if (a.inbound.empty()) {
      // Memory taken for a large message goes back once it went through.
      a.inbound.shrink_if_idle();
      shrink_if_large(a.to_server);
      shrink_if_large(a.to_client);
    }
    if (relayed > kFairShareBytes) {
      relayed = 0;
      co_await yield_to_others();
    }
  }
}

bool ClientSession::streams(pgwire::Bytes data) const {
  if (data.empty()) return false;
  // A Bind's parameters, or COPY data (while a COPY runs, or dropped when no server is held).
  // Everything else is read by the proxy, so it must arrive whole.
  return data[0] == 'B' ||
         (data[0] == 'd' && (!active_->link.attached() || active_->link.tracker().busy()));
}

void ClientSession::pass_stream() {
  const pgwire::Bytes bytes = active_->inbound.readable();
  const size_t n = std::min(active_->streaming.unread, bytes.size());
  if (active_->streaming.passed_on) active_->to_server.append(pgwire::as_text(bytes.first(n)));
  active_->inbound.consume(n);
  active_->streaming.unread -= n;
  if (active_->streaming.unread == 0) active_->link.set_client_mid_message(false);
}

bool ClientSession::send_to_client() {
  if (active_->to_client.empty()) return true;
  const bool ok = client_.write(active_->to_client);
  active_->to_client.clear();
  return ok;
}

void ClientSession::reply_error(const ServerError& error) {
  // Whatever the server's severity, this client's session goes on.
  pgwire::write_error(active_->to_client, "ERROR", error.sqlstate, error.message);
}

bool ClientSession::needs_server(const pgwire::Frame& frame) const {
  if (failed_transaction_) return false;  // answered by the proxy until the block ends
  const char type = frame.type;
  if (type == 'Q') return !active_->router.answered_without_server(frame);
  if (type == 'F') return true;
  if (type == 'P' || type == 'B' || type == 'D' || type == 'E') return !skip_until_sync_;
  if (type == 'C') return !skip_until_sync_ && active_->router.close_needs_server(frame);
  return false;
}

ClientSession::Step ClientSession::violation(std::string what) {
  active_->violation = std::move(what);
  return Step::kViolation;
}

void ClientSession::count_query() {
  auto& m = ctx_.metrics;
  m.query_requests.add(1);
  ++pool_->stats.queries;
  (client_.tls() ? m.query_requests_tls : m.query_requests_no_tls).add(1);
  active_->link.note_request(last_activity_);  // when these bytes arrived
}

void ClientSession::forward(const pgwire::Frame& frame) {
  active_->to_server.append(reinterpret_cast<const char*>(frame.body.data()) - 5,
                            frame.wire_size());
  active_->passed_on = true;
}

ClientSession::Step ClientSession::handle_frame(const pgwire::Frame& frame) {
  const char type = frame.type;
  if (type == 'X') return Step::kEnd;
  if (failed_transaction_ && std::string_view("QFPBDECHSdcf").find(type) != std::string_view::npos)
    return handle_in_failed_transaction(frame);
  if (type == 'Q' || type == 'F') return handle_query(frame);
  if (type == 'P' || type == 'B' || type == 'D' || type == 'E' || type == 'C')
    return handle_extended(frame);
  if (type == 'H') {
    if (active_->link.attached() && !skip_until_sync_) forward(frame);
    return Step::kContinue;
  }
  if (type == 'S') return handle_sync(frame);
  if (type == 'd' || type == 'c' || type == 'f') {
    // Outside COPY, PostgreSQL ignores these; so does the proxy when it holds no server.
    if (active_->link.attached()) forward(frame);
    return Step::kContinue;
  }
  if (type == 'p') return violation("unexpected password message after authentication");
  return violation("invalid frontend message type " +
                   std::to_string(static_cast<unsigned char>(type)));
}

ClientSession::Step ClientSession::handle_in_failed_transaction(const pgwire::Frame& frame) {
  switch (failed_transaction_->answer(frame, statements_, active_->to_client)) {
    case FailedTransaction::Outcome::kMalformed:
      return violation("malformed " + std::string(pgwire::frontend_message_name(frame.type)) +
                       " message");
    case FailedTransaction::Outcome::kEnded:
      failed_transaction_.reset();
      break;
    case FailedTransaction::Outcome::kAnswered:
      break;
  }
  return Step::kContinue;
}

ClientSession::Step ClientSession::handle_query(const pgwire::Frame& frame) {
  std::optional<std::string_view> sql;
  if (frame.type == 'Q' && !(sql = pgwire::decode_query(frame.body)))
    return violation("malformed Query message");
  count_query();
  if (sql && active_->router.route_query(
                 *sql, active_->link.attached() ? &active_->link.server().statements : nullptr))
    return Step::kContinue;
  if (!active_->link.attached()) {
    // No connection could be had: attach() queued the error; the request ends there.
    pgwire::write_ready_for_query(active_->to_client, 'I');
    return Step::kContinue;
  }
  if (sql && !pinned()) {
    const StatementEffects effects = statement_effects(*sql);
    if (effects.pin) pin(*effects.pin);
    if (effects.changes_settings) settings_changed(*sql);
  }
  // DISCARD and DEALLOCATE pin, so only a pinned session needs this second look: DEALLOCATE
  // ALL or DISCARD ALL drops the client's named statements, and the server's.
  if (pinned() && sql && drops_all_statements(*sql))
    active_->router.drop_all(active_->link.server().statements);
  active_->link.tracker().expect(ResponseTracker::Kind::kSimpleQuery);
  forward(frame);
  return Step::kContinue;
}

ClientSession::Step ClientSession::handle_extended(const pgwire::Frame& frame) {
  const char type = frame.type;
  std::optional<pgwire::ParseMessage> parse;
  if (type == 'P' && !(parse = pgwire::decode_parse(frame.body)))
    return violation("malformed Parse message");
  if (skip_until_sync_) return Step::kContinue;
  if (type == 'E') count_query();  // one query per execution, prepared or not
  if (type == 'C' && active_->router.enabled()) {
    // A client's own named statement: closed by the proxy, wherever the client stands.
    const auto closed = active_->router.close_client_statement(frame);
    if (!closed) return violation("malformed Close message");
    if (*closed) {
      active_->link.tracker().note_unsynced();
      return Step::kContinue;
    }
  }
  if (!active_->link.attached()) {
    // No connection could be had (attach() queued the error).
    skip_until_sync_ = true;  // PostgreSQL discards everything up to Sync after an error
    return Step::kContinue;
  }
  active_->link.tracker().note_unsynced();
  if (!active_->router.route_extended(frame, parse, active_->link.server().statements))
    return violation("malformed " + std::string(pgwire::frontend_message_name(type)) + " message");
  active_->passed_on = active_->router.passed_on();
  return Step::kContinue;
}

ClientSession::Step ClientSession::handle_sync(const pgwire::Frame& frame) {
  skip_until_sync_ = false;
  if (!active_->link.attached()) {
    // Nothing pending anywhere: answer for the server and keep the pool free.
    pgwire::write_ready_for_query(active_->to_client, 'I');
    active_->link.tracker().note_synced();
    return Step::kContinue;
  }
  active_->link.tracker().expect(ResponseTracker::Kind::kSync);
  forward(frame);
  return Step::kContinue;
}

// ------------------------------------------------------------------ borrowing

bool ClientSession::attach_now(ServerLease& idle) {
  if (!active_->to_client.empty())
    return false;  // the proxy's own replies go first: attach() sends them
  idle = ctx_.pools->take_idle(*pool_, last_activity_);  // lent since the request came
  if (!idle || !same_settings(idle->applied, settings_.wanted)) return false;
  ctx_.metrics.database_connections_borrow_latency.observe(0);  // no wait at all
  active_->link.attach(std::move(idle));
  return true;
}

bool ClientSession::join_line() {
  Active& a = *active_;
  if (!a.to_client.empty()) return false;  // attach() sends the proxy's own replies first
  if (!a.waiter) a.waiter = std::make_shared<Waiter>(client_.get_executor(), Clock::time_point{});
  // From when the request arrived (microseconds earlier): one clock read less per borrow.
  const auto start = last_activity_;
  if (!ctx_.pools->join_line(*pool_, a.waiter,
                             start + std::chrono::seconds(ctx_.config.connection_borrow_timeout)))
    return false;
  a.borrowing_since = start;
  return true;
}

void ClientSession::note_borrowed_after(Clock::time_point start) {
  active_->borrowing_since = {};
  const uint64_t waited = micros_since(start);
  ctx_.metrics.database_connections_borrow_latency.observe(waited);
  pool_->stats.wait_us += waited;
}

bool ClientSession::attach_from_line(ServerLease& lease) {
  lease = ctx_.pools->leave_line(*pool_, active_->waiter);
  if (!lease) return false;  // no connection came: attach() goes on (room granted, or timed out)
  note_borrowed_after(active_->borrowing_since);
  if (!same_settings(lease->applied, settings_.wanted)) return false;
  active_->link.attach(std::move(lease));
  return true;
}

awaitable<void> ClientSession::attach(ServerLease lease, bool woken) {
  // Our own replies (an earlier Sync, an error) go ahead of the server's. (None after a wait
  // in line: it was joined with none, and only this reader queues them.)
  if (!woken && !send_to_client()) {
    if (lease) lease.release(true);
    co_return;
  }
  if (lease) {
    if (!woken) ctx_.metrics.database_connections_borrow_latency.observe(0);  // no wait at all
  } else {
    const auto start = woken ? active_->borrowing_since : last_activity_;
    active_->borrowing_since = start;
    // Made before the co_await: GCC 12 destroys a conditional's temporaries there twice (the
    // waiter, still in the pool's line, was freed).
    std::shared_ptr<Waiter> resumed;
    if (woken) resumed = active_->waiter;
    const auto deadline = start + std::chrono::seconds(ctx_.config.connection_borrow_timeout);
    auto borrowed = co_await ctx_.pools->acquire(*pool_, deadline, {}, std::move(resumed));
    note_borrowed_after(start);
    if (!borrowed.lease) {
      reply_error(*borrowed.error);
      co_return;
    }
    lease = std::move(borrowed.lease);
  }
  if (!same_settings(lease->applied, settings_.wanted)) {
    if (auto error = co_await lease->apply_settings(settings_.wanted)) {
      lease.release(!lease->broken);
      reply_error(*error);
      co_return;
    }
  }
  active_->link.attach(std::move(lease));
}

// ------------------------------------------------------------------ what the rooms report

void ClientSession::settings_changed(std::string_view sql) {
  // A client that invents settings without end is pinned instead.
  if (settings_.note_change(sql) && !pinned()) pin(PinReason::kSetStatement);
}

void ClientSession::server_released() {
  if (ctx_.draining && !active_->link.client_gone())
    terminate("57P01", "terminating connection due to administrator command");
}

void ClientSession::server_lost(bool fatal_forwarded) {
  // The session the client had on the server is gone (its transaction, its settings): it must
  // know, so it is disconnected as PostgreSQL would.
  if (fatal_forwarded)
    client_.close();
  else
    terminate("08006", "the connection to the database server was lost");
}

void ClientSession::server_lost_session_kept(const Loss& loss) {
  // The rest of a message the server was taking goes nowhere.
  if (active_) active_->streaming.passed_on = false;
  if (loss.in_transaction) {
    failed_transaction_ =
        std::make_unique<FailedTransaction>(loss.reported, loss.mid_batch, loss.unsent_error);
  } else if (loss.mid_batch) {
    skip_until_sync_ = true;  // as after any error in the extended protocol
  }
}

void ClientSession::release_idle_memory() {
  if (!active_) return;  // parked at rest: nothing left to give back
  Active& a = *active_;
  if (!memory_released_) {  // once per quiet spell, not at every sweep
    memory_released_ = true;
    a.inbound.release_if_empty();
    client_.release_idle_memory();
    if (a.to_client.empty()) std::string().swap(a.to_client);
    if (a.to_server.empty()) std::string().swap(a.to_server);
  }
  // The reader wakes (without an edge) to park: only the reader may end its own coroutine.
  if (a.awaiting_client && !a.park_requested && may_park()) {
    a.park_requested = true;
    client_.wake_reader();
  }
}

bool ClientSession::may_park() const {
  const Active& a = *active_;
  return phase_ == Phase::kReady && a.link.idle() && a.inbound.empty() && a.streaming.unread == 0 &&
         a.to_client.empty() && a.to_server.empty() && !client_.has_backlog();
}

void ClientSession::park() {
  active_->link.end_idle_loop();
  // The reply loop has returned: nothing refers to the Active part any more but the reader,
  // which returns next.
  if (active_->at_rest()) active_.reset();
  parked_self_ = shared_from_this();
  ctx_.metrics.client_connections_parked.add(1);
  client_.park_reader(*this);
}

void ClientSession::drop_if_parked() {
  if (!parked_self_) return;
  ctx_.metrics.client_connections_parked.sub(1);
  const auto last = std::move(parked_self_);  // may be the last owner: nothing follows
}

void ClientSession::resume_reading() {
  ctx_.metrics.client_connections_parked.sub(1);
  if (!active_) active_ = std::make_unique<Active>(*this);
  // The client's next message (or its end): the session's coroutines start again, and this
  // first run of the reader reads the socket at once (the poller calls here from its batch).
  asio::co_spawn(
      client_.get_executor(),
      [self = std::move(parked_self_)]() -> awaitable<void> { co_await self->serve(); },
      [](std::exception_ptr e) { log_failure("client session", e); });
}

// ------------------------------------------------------------------ the end

awaitable<void> ClientSession::leave() {
  const bool was_closed = phase_ == Phase::kClosed;
  phase_ = Phase::kClosed;
  if (!was_closed) client_.close();
  co_await active_->link.client_left();
}

void ClientSession::terminate(std::string sqlstate, std::string message) {
  if (phase_ == Phase::kClosed) return;
  auto self = shared_from_this();
  asio::co_spawn(
      client_.get_executor(),
      [self, sqlstate = std::move(sqlstate), message = std::move(message)]() -> awaitable<void> {
        if (self->phase_ == Phase::kClosed) co_return;
        std::string out;
        pgwire::write_error(out, "FATAL", sqlstate, message);
        co_await self->client_.write_all(out);
        self->client_.close();
      },
      asio::detached);
}

}  // namespace sluice::proxy
