#include "proxy/client_session.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "auth/crypto.hpp"
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

ClientSession::ClientSession(ProxyContext& ctx, int fd, const tcp::endpoint& remote)
    : ctx_(ctx),
      client_(*ctx.poller, ctx.io.get_executor(), fd, remote),
      link_(ctx, client_, settings_, *this),
      router_(*ctx.statements, ctx.config.max_prepared_statements > 0, link_.tracker(), to_server_,
              to_client_, *this) {
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
  ClientLogin login(ctx_, client_, inbound_, cancel_pid_, cancel_key_, login_clock_);
  if (auto result = co_await login.run()) {
    settings_ = std::move(result->settings);
    pool_ = result->pool;
    phase_ = Phase::kReady;
    counted_ = true;
    ctx_.clients->note_logged_in();
    ctx_.metrics.client_connections.add(1);
    ctx_.metrics.client_connections_setup_succeeded.add(1);
    // Not co_awaited inside the condition: GCC 12 destroys such a temporary twice.
    const Relayed relayed = co_await relay();
    if (relayed == Relayed::kParked) co_return;
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
  asio::co_spawn(
      client_.get_executor(),
      [self = shared_from_this()]() -> awaitable<void> { co_await self->link_.run(); },
      [](std::exception_ptr e) { log_failure("server reader", e); });
  const size_t max_message = ctx_.config.max_message_size;
  size_t relayed = 0;  // bytes taken since this reader last let others run
  for (;;) {
    const size_t held = inbound_.readable().size();
    const ReadStatus status = client_.read_now(inbound_);
    if (status == ReadStatus::kClosed) co_return Relayed::kEnded;
    if (status == ReadStatus::kWouldBlock) {
      relayed = 0;
      awaiting_client_ = true;
      co_await client_.readable();  // the client's bytes, or the sweep asking to park
      awaiting_client_ = false;
      if (std::exchange(park_requested_, false) && !client_.may_have_input() && may_park()) {
        park();
        co_return Relayed::kParked;
      }
      continue;
    }
    last_activity_ = Clock::now();
    memory_released_ = false;
    relayed += inbound_.readable().size() - held;
    if (streaming_.unread > 0) pass_stream();
    while (streaming_.unread == 0) {
      pgwire::Frame frame;
      auto status = pgwire::peek_frame(inbound_.readable(), max_message, frame);
      if ((status == pgwire::FrameStatus::kNeedMore || status == pgwire::FrameStatus::kTooLarge) &&
          streams(inbound_.readable())) {
        // Passed on as it comes (max_message_size does not apply), once its head is here.
        status = pgwire::peek_frame_head(inbound_.readable(), kStreamedHeadSize,
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
          const size_t whole = 1 + size_t{declared_length(inbound_.readable())};
          unread = std::min(whole - std::min(whole, inbound_.readable().size()), kMaxMessageDrain);
          const size_t limit = streams(inbound_.readable()) ? kMaxStreamedMessage : max_message;
          message = "message of " + std::to_string(declared_length(inbound_.readable())) +
                    " bytes exceeds max_message_size (" + std::to_string(limit) + ")";
        }
        co_await send_fatal(client_, "08P01", message);
        co_await client_.close_gracefully(unread, kDrainTime);
        co_return Relayed::kEnded;
      }
      // Borrowing is the only wait a message may need; everything else is decided at once.
      if (!link_.attached() && needs_server(frame)) {
        ServerLease idle;
        if (!attach_now(idle)) co_await attach(std::move(idle));
      }
      passed_on_ = false;
      const Step step = handle_frame(frame);
      inbound_.consume(frame.wire_size());
      if (step == Step::kViolation) {
        if (send_to_client() && client_.has_backlog()) co_await client_.flush();
        co_await send_fatal(client_, "08P01", violation_);
        co_await client_.close_gracefully(0, kDrainTime);
        co_return Relayed::kEnded;
      }
      if (step == Step::kEnd) co_return Relayed::kEnded;
      if (frame.unread > 0) {
        // Its rest follows where its head went, or is dropped with it.
        streaming_ = {frame.unread, passed_on_};
        link_.set_client_mid_message(passed_on_);
      }
    }
    // Writes go out at once; only a peer whose socket is full makes this reader wait, which
    // is how a client that does not read its replies, or a server slow to take a COPY
    // stream, slows the sender down.
    const bool own_replies = !to_client_.empty();
    if (!send_to_client()) co_return Relayed::kEnded;
    if (own_replies && client_.has_backlog() && !co_await client_.flush())
      co_return Relayed::kEnded;
    link_.send(to_server_);
    if (link_.attached() && link_.server().transport().has_backlog())
      co_await link_.flush_if_backlogged();
    if (inbound_.empty()) {
      // Memory taken for a large message goes back once it went through.
      inbound_.shrink_if_idle();
      shrink_if_large(to_server_);
      shrink_if_large(to_client_);
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
  return data[0] == 'B' || (data[0] == 'd' && (!link_.attached() || link_.tracker().busy()));
}

void ClientSession::pass_stream() {
  const pgwire::Bytes bytes = inbound_.readable();
  const size_t n = std::min(streaming_.unread, bytes.size());
  if (streaming_.passed_on) to_server_.append(pgwire::as_text(bytes.first(n)));
  inbound_.consume(n);
  streaming_.unread -= n;
  if (streaming_.unread == 0) link_.set_client_mid_message(false);
}

bool ClientSession::send_to_client() {
  if (to_client_.empty()) return true;
  const bool ok = client_.write(to_client_);
  to_client_.clear();
  return ok;
}

void ClientSession::reply_error(const ServerError& error) {
  // Whatever the server's severity, this client's session goes on.
  pgwire::write_error(to_client_, "ERROR", error.sqlstate, error.message);
}

bool ClientSession::needs_server(const pgwire::Frame& frame) const {
  if (failed_transaction_) return false;  // answered by the proxy until the block ends
  const char type = frame.type;
  if (type == 'Q') return !router_.answered_without_server(frame);
  if (type == 'F') return true;
  if (type == 'P' || type == 'B' || type == 'D' || type == 'E') return !skip_until_sync_;
  if (type == 'C') return !skip_until_sync_ && router_.close_needs_server(frame);
  return false;
}

ClientSession::Step ClientSession::violation(std::string what) {
  violation_ = std::move(what);
  return Step::kViolation;
}

void ClientSession::count_query() {
  auto& m = ctx_.metrics;
  m.query_requests.add(1);
  (client_.tls() ? m.query_requests_tls : m.query_requests_no_tls).add(1);
  link_.note_request(last_activity_);  // when these bytes arrived
}

void ClientSession::forward(const pgwire::Frame& frame) {
  to_server_.append(reinterpret_cast<const char*>(frame.body.data()) - 5, frame.wire_size());
  passed_on_ = true;
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
    if (link_.attached() && !skip_until_sync_) forward(frame);
    return Step::kContinue;
  }
  if (type == 'S') return handle_sync(frame);
  if (type == 'd' || type == 'c' || type == 'f') {
    // Outside COPY, PostgreSQL ignores these; so does the proxy when it holds no server.
    if (link_.attached()) forward(frame);
    return Step::kContinue;
  }
  if (type == 'p') return violation("unexpected password message after authentication");
  return violation("invalid frontend message type " +
                   std::to_string(static_cast<unsigned char>(type)));
}

ClientSession::Step ClientSession::handle_in_failed_transaction(const pgwire::Frame& frame) {
  switch (failed_transaction_->answer(frame, router_.statements(), to_client_)) {
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
  if (sql && router_.route_query(*sql, link_.attached() ? &link_.server().statements : nullptr))
    return Step::kContinue;
  if (!link_.attached()) {
    // No connection could be had: attach() queued the error; the request ends there.
    pgwire::write_ready_for_query(to_client_, 'I');
    return Step::kContinue;
  }
  if (sql && !pinned()) {
    const StatementEffects effects = statement_effects(*sql);
    if (effects.pin) pin(*effects.pin);
    if (effects.changes_settings) settings_changed(*sql);
  }
  // DISCARD and DEALLOCATE pin, so only a pinned session needs this second look: DEALLOCATE
  // ALL or DISCARD ALL drops the client's named statements, and the server's.
  if (pinned() && sql && drops_all_statements(*sql)) router_.drop_all(link_.server().statements);
  link_.tracker().expect(ResponseTracker::Kind::kSimpleQuery);
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
  if (type == 'C' && router_.enabled()) {
    // A client's own named statement: closed by the proxy, wherever the client stands.
    const auto closed = router_.close_client_statement(frame);
    if (!closed) return violation("malformed Close message");
    if (*closed) {
      link_.tracker().note_unsynced();
      return Step::kContinue;
    }
  }
  if (!link_.attached()) {
    // No connection could be had (attach() queued the error).
    skip_until_sync_ = true;  // PostgreSQL discards everything up to Sync after an error
    return Step::kContinue;
  }
  link_.tracker().note_unsynced();
  if (!router_.route_extended(frame, parse, link_.server().statements))
    return violation("malformed " + std::string(pgwire::frontend_message_name(type)) + " message");
  passed_on_ = router_.passed_on();
  return Step::kContinue;
}

ClientSession::Step ClientSession::handle_sync(const pgwire::Frame& frame) {
  skip_until_sync_ = false;
  if (!link_.attached()) {
    // Nothing pending anywhere: answer for the server and keep the pool free.
    pgwire::write_ready_for_query(to_client_, 'I');
    link_.tracker().note_synced();
    return Step::kContinue;
  }
  link_.tracker().expect(ResponseTracker::Kind::kSync);
  forward(frame);
  return Step::kContinue;
}

// ------------------------------------------------------------------ borrowing

bool ClientSession::attach_now(ServerLease& idle) {
  if (!to_client_.empty()) return false;  // the proxy's own replies go first: attach() sends them
  idle = ctx_.pools->take_idle(*pool_);
  if (!idle || !same_settings(idle->applied, settings_.wanted)) return false;
  ctx_.metrics.database_connections_borrow_latency.observe(0);  // no wait at all
  link_.attach(std::move(idle));
  return true;
}

awaitable<void> ClientSession::attach(ServerLease lease) {
  // Our own replies (an earlier Sync, an error) go ahead of the server's.
  if (!send_to_client()) {
    if (lease) lease.release(true);
    co_return;
  }
  if (lease) {
    ctx_.metrics.database_connections_borrow_latency.observe(0);
  } else {
    // From when the request arrived (microseconds earlier): one clock read less per borrow.
    const auto start = last_activity_;
    auto borrowed = co_await ctx_.pools->acquire(
        *pool_, start + std::chrono::seconds(ctx_.config.connection_borrow_timeout));
    ctx_.metrics.database_connections_borrow_latency.observe(micros_since(start));
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
  link_.attach(std::move(lease));
}

// ------------------------------------------------------------------ what the rooms report

void ClientSession::settings_changed(std::string_view sql) {
  // A client that invents settings without end is pinned instead.
  if (settings_.note_change(sql) && !pinned()) pin(PinReason::kSetStatement);
}

void ClientSession::server_released() {
  if (ctx_.draining && !link_.client_gone())
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
  streaming_.passed_on = false;
  if (loss.in_transaction) {
    failed_transaction_ =
        std::make_unique<FailedTransaction>(loss.reported, loss.mid_batch, loss.unsent_error);
  } else if (loss.mid_batch) {
    skip_until_sync_ = true;  // as after any error in the extended protocol
  }
}

void ClientSession::release_idle_memory() {
  if (!memory_released_) {  // once per quiet spell, not at every sweep
    memory_released_ = true;
    inbound_.release_if_empty();
    client_.release_idle_memory();
    if (to_client_.empty()) std::string().swap(to_client_);
    if (to_server_.empty()) std::string().swap(to_server_);
  }
  // The reader wakes (without an edge) to park: only the reader may end its own coroutine.
  if (awaiting_client_ && !park_requested_ && may_park()) {
    park_requested_ = true;
    client_.wake_reader();
  }
}

bool ClientSession::may_park() const {
  return phase_ == Phase::kReady && link_.idle() && inbound_.empty() && streaming_.unread == 0 &&
         to_client_.empty() && to_server_.empty() && !client_.has_backlog();
}

void ClientSession::park() {
  failed_tx = {} skip = {} ", client_.peer(), failed_transaction_ != nullptr, skip_until_sync_);
                        link_.end_idle_loop();
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
  co_await link_.client_left();
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
