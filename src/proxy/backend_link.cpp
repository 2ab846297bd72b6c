#include "proxy/backend_link.hpp"

#include <spdlog/spdlog.h>

#include <utility>

#include "proxy/pool.hpp"
#include "proxy/server_connection.hpp"

namespace sluice::proxy {

awaitable<void> yield_to_others() {
  co_await asio::post(co_await asio::this_coro::executor, use_awaitable);
}

BackendLink::BackendLink(ProxyContext& ctx, Transport& client, ClientSettings& settings,
                         Owner& owner)
    : ctx_(ctx),
      client_(client),
      settings_(settings),
      owner_(owner),
      attached_(client.get_executor()) {}

BackendLink::~BackendLink() {
  set_transaction('I');
  unpin();
}

void BackendLink::set_transaction(char status) {
  const bool now = status != 'I';
  if (now == in_transaction_counted_) return;
  ctx_.metrics.database_connections_currently_in_transaction.add(now ? 1 : -1);
  in_transaction_counted_ = now;
}

void BackendLink::note_latency(const Batch& batch) {
  if (batch.consumed == 0 || !request_started_) return;
  const uint64_t waited = micros_since(*request_started_);
  ctx_.metrics.query_response_latency.observe(waited);
  request_started_.reset();
}

awaitable<void> BackendLink::run() {
  // The connection being read. Whenever the lease no longer holds it (released, lost, or
  // another lent), the loop starts over with the lease's, or waits for the next borrow.
  std::shared_ptr<ServerConnection> server;
  bool buffered = false;  // replies already in `inbound`, read while settings were read back
  size_t relayed = 0;     // bytes moved since this loop last let others run
  for (;;) {
    if (lease_.connection() != server) {
      set_transaction('I');
      server = lease_.connection();
      buffered = false;
    }
    if (!server) {
      relayed = 0;
      if (closing_) co_return;
      co_await attached_.wait();
      if (std::exchange(ending_idle_loop_, false)) co_return;
      continue;
    }
    ReadBuffer& inbound = server->inbound();
    Transport& transport = server->transport();
    const ReadStatus status = buffered ? ReadStatus::kData : transport.read_now(inbound);
    buffered = false;
    if (status == ReadStatus::kWouldBlock) {
      relayed = 0;
      co_await transport.readable();
      continue;
    }
    if (status == ReadStatus::kClosed) {
      lost(server, Loss::kClosed);
      bool flushed = true;
      if (!client_gone_ && client_.has_backlog()) flushed = co_await client_.flush();
      if (!flushed) client_went();
      continue;
    }
    // The common path suspends only when the client's socket is full: a coroutine call per
    // batch would cost more than the rest of the batch's handling.
    const Batch batch = read_batch(inbound.readable(), *server);
    note_latency(batch);
    if (!batch.out.empty() && !client_gone_) {
      bool sent = client_.write(batch.out);
      // A client slower than its server: stop reading the server until it catches up.
      if (sent && client_.has_backlog()) sent = co_await client_.flush();
      if (!sent) client_went();
    }
    inbound.consume(batch.consumed);
    if (batch.violation || batch.fatal) {
      lost(server, batch.violation ? Loss::kViolation : Loss::kFatal, batch.fatal_answered);
      // What the lost server owed went to the client: it may wait in a full socket.
      bool flushed = true;
      if (!client_gone_ && client_.has_backlog()) flushed = co_await client_.flush();
      if (!flushed) client_went();
      continue;
    }
    if ((relayed += batch.consumed) > kFairShareBytes) {
      relayed = 0;
      co_await yield_to_others();
    }
    if (lease_.connection() != server || !tracker_.may_release() || pinned_ || !inbound.empty() ||
        server_unread_ > 0)
      continue;
    if (client_mid_message_) {
      // The server is done (COPY data kept coming after the COPY failed) while the rest of the
      // client's message is still on its way here: no other client may get that rest, so this
      // connection is closed rather than returned.
      server->broken = true;
      lease_.discard();
      owner_.server_released();
      continue;
    }
    inbound.shrink_if_idle();
    shrink_if_large(reshaped_);
    if (discarding_ || settings_.changed) {
      co_await release_after_cleanup(server, buffered);
    } else {
      release();
    }
  }
}

void BackendLink::client_went() {
  client_gone_ = true;  // the client reader sees the closed socket and cleans up
  client_.close();
}

void BackendLink::end_idle_loop() {
  if (!idle()) return;
  ending_idle_loop_ = true;
  attached_.notify_now();  // the loop returns inside this call
}

void BackendLink::release() {
  lease_.release(true);
  owner_.server_released();
}

namespace {
// From `at`, steps over whole server messages that the link passes on untouched inside a simple
// query's reply (anything but ReadyForQuery, ParameterStatus and an error) by their length words
// alone; returns where the first other one starts. A message not whole yet, or one whose length
// word peek_frame() would refuse, is left to the general path.
size_t skip_plain_replies(pgwire::Bytes data, size_t at) {
  const uint8_t* bytes = data.data();
  const size_t size = data.size();
  while (size - at >= 5) {
    const uint8_t type = bytes[at];
    if (type == 'Z' || type == 'S' || type == 'E') break;
    const uint32_t length = pgwire::read_be32(bytes + at + 1);
    // (Below kMaxServerMessage, which is under 2^31: never negative on the wire.)
    if (length < 4 || length >= kMaxServerMessage || size - at - 1 < length) break;
    at += 1 + size_t{length};
  }
  return at;
}
}  // namespace

BackendLink::Batch BackendLink::read_batch(pgwire::Bytes data, ServerConnection& server) {
  ClientStatements& statements = owner_.client_statements();
  Batch batch;
  // The rest of a streamed message goes first, as it came.
  size_t forward = std::min(server_unread_, data.size());
  server_unread_ -= forward;
  // Replies are forwarded as they came, in one write, unless the tracker drops, replaces or
  // inserts a message; then the batch is rebuilt in reshaped_.
  bool reshaping = false;
  while (server_unread_ == 0) {
    // The body of a simple query's reply (descriptions, rows, completions), as below but without
    // a frame each: about 30 instructions less per message.
    if (!reshaping && tracker_.inside_simple_query()) forward = skip_plain_replies(data, forward);
    pgwire::Frame frame;
    const pgwire::Bytes rest = data.subspan(forward);
    auto status = pgwire::peek_frame(rest, kMaxServerMessage, frame);
    if (status == pgwire::FrameStatus::kNeedMore) {
      if (!streams(rest) || pgwire::peek_frame_head(rest, kStreamedHeadSize, kMaxServerMessage,
                                                    frame) != pgwire::FrameStatus::kReady)
        break;
    } else if (status != pgwire::FrameStatus::kReady) {
      batch.violation = true;
      break;
    }
    const bool looked_at = frame.type == 'Z' || frame.type == 'S' || frame.type == 'E';
    if (!looked_at && !reshaping && tracker_.inside_simple_query()) {
      // The body of a simple query's reply (descriptions, rows, completions): passed on as it
      // came, with nothing to settle (what on_server_message() would say, for less).
      forward += frame.wire_size();
      server_unread_ = frame.unread;
      continue;
    }
    // Rows and most replies tell the link nothing: only these are looked at.
    if (looked_at && !inspect(frame, server, batch)) break;
    // A FATAL the client survives reaches it as an ERROR: its session goes on.
    std::optional<std::string> demoted;
    if (std::exchange(batch.demote, false))
      demoted = pgwire::error_with_severity(frame.body, "ERROR");
    if (demoted && !batch.fatal_answered) {
      // Between requests: kept for the client's next command.
      unsent_error_ = std::move(*demoted);
      if (!reshaping) {
        reshaping = true;
        reshaped_.assign(pgwire::as_text(data.first(forward)));
      }
      forward += frame.wire_size();
      continue;
    }
    answers_before_.clear();
    answers_after_.clear();
    const auto verdict =
        tracker_.on_server_message(frame.type, frame.body, answers_before_, answers_after_,
                                   replacement_, statements, server.statements);
    if (!reshaping && (verdict != ResponseTracker::Verdict::kForward || demoted ||
                       !answers_before_.empty() || !answers_after_.empty())) {
      reshaping = true;
      reshaped_.assign(pgwire::as_text(data.first(forward)));
    }
    if (reshaping) {
      reshaped_ += answers_before_;
      if (verdict == ResponseTracker::Verdict::kForward && demoted) {
        pgwire::MessageWriter w(reshaped_);
        w.begin('E');
        w.bytes(*demoted);
        w.end();
      } else if (verdict == ResponseTracker::Verdict::kForward) {
        reshaped_ += pgwire::as_text(data.subspan(forward, frame.wire_size()));
      } else if (verdict == ResponseTracker::Verdict::kReplace) {
        pgwire::MessageWriter w(reshaped_);
        w.begin('E');
        w.bytes(replacement_);
        w.end();
      }
      reshaped_ += answers_after_;
    }
    forward += frame.wire_size();
    server_unread_ = frame.unread;
  }
  batch.consumed = forward;
  batch.out = reshaping ? std::string_view(reshaped_) : pgwire::as_text(data.first(forward));
  return batch;
}

bool BackendLink::streams(pgwire::Bytes data) const {
  // Only rows and COPY data, which the link never reads, and only inside a request: nothing of
  // the proxy's own may be written to the client in the middle of one.
  return !data.empty() && (data[0] == 'D' || data[0] == 'd') && tracker_.busy();
}

bool BackendLink::inspect(const pgwire::Frame& frame, ServerConnection& server, Batch& batch) {
  if (frame.type == 'Z') {
    auto tx = pgwire::decode_ready_for_query(frame.body);
    if (!tx || !tracker_.note_ready(*tx)) {
      batch.violation = true;  // an unrequested ReadyForQuery: the server's state is unknown
      return false;
    }
    set_transaction(*tx);
  } else if (frame.type == 'S') {
    if (auto ps = pgwire::decode_parameter_status(frame.body)) {
      auto& known = server.parameters[ps->name];
      // Reported changes are expected after the client's own SET (read back at release).
      if (known != ps->value && !pinned_ && !settings_.changed && !discarding_)
        pin(PinReason::kUnexpectedParameterChange);
      known = ps->value;
    }
  } else if (frame.type == 'E') {
    auto fields = pgwire::decode_error_fields(frame.body);
    if (fields && (fields->severity() == "FATAL" || fields->severity() == "PANIC")) {
      batch.fatal = true;
      // A FATAL after everything but an idle Sync's ReadyForQuery is told at the client's next
      // command instead (see ResponseTracker::only_idle_sync_owed()).
      batch.fatal_answered = tracker_.busy() && !tracker_.only_idle_sync_owed();
      batch.demote = session_survives_loss();
    }
    // The cleanup of a pinned session failed: its state is unknown, so it is closed.
    if (discarding_) server.broken = true;
  }
  return true;
}

awaitable<void> BackendLink::release_after_cleanup(const std::shared_ptr<ServerConnection>& server,
                                                   bool& buffered) {
  if (discarding_) {
    // DISCARD ALL left the server session as new: nothing applied, nothing prepared.
    server->applied.clear();
    server->statements.clear();
    settings_.changed = false;
  }
  if (settings_.changed) {
    // SET, RESET or set_config() ran: learn what they left (a rolled-back SET is gone, SET LOCAL
    // too) so that any connection this client borrows next gets exactly that.
    settings_.changed = false;
    reading_settings_ = true;
    auto found = co_await server->read_session_settings(settings_.custom_names);
    reading_settings_ = false;
    if (lease_.connection() != server) co_return;
    if (!found) {
      lost(server, Loss::kCleanupFailed);
      co_return;
    }
    settings_.adopt_read_back(std::move(*found));
    // The client may have sent more while the settings were read: then go on relaying.
    if (tracker_.busy() || !tracker_.empty() || !server->inbound().empty()) {
      buffered = !server->inbound().empty();
      co_return;
    }
  }
  release();
}

bool BackendLink::session_survives_loss() const {
  return !pinned_ && !discarding_ && !reading_settings_ && server_unread_ == 0 && !closing_ &&
         !ctx_.draining;
}

void BackendLink::lost(const std::shared_ptr<ServerConnection>& server, Loss cause,
                       bool fatal_answered) {
  if (lease_.connection() != server) return;
  const bool survives =
      !client_gone_ && (cause == Loss::kClosed || cause == Loss::kFatal) && session_survives_loss();
  Owner::Loss loss;
  if (survives) {
    // Like any failed request: the client is answered, then goes on. Inside a transaction
    // block it must end the block first (the server's end rolled it back).
    loss.in_transaction = tracker_.transaction_status() != 'I';
    std::string owed;
    loss.reported = answer_for_lost_server(*server, cause == Loss::kFatal && fatal_answered, owed);
    loss.mid_batch = tracker_.busy();  // messages of a batch whose Sync is still to come
    loss.unsent_error = std::move(unsent_error_);
    if (!owed.empty() && !client_.write(owed)) client_went();
  }
  tracker_.clear();
  server_unread_ = 0;
  unsent_error_.clear();
  server->broken = true;
  lease_.discard();
  if (cause == Loss::kClosed || cause == Loss::kFatal) ctx_.pools->server_lost();
  if (client_gone_) return;
  const char* outcome = survives             ? "; the client's session goes on"
                        : pinned_            ? "; the session was pinned to it, so it ends"
                        : server_unread_ > 0 ? "; a reply was half sent, so the session ends"
                        : cause == Loss::kViolation
                            ? "; a reply could not be read, so the session ends"
                            : "; the session ends";
  spdlog::warn("server connection {} lost while lent to client {}{}", server->id(), client_.peer(),
               outcome);
  if (survives) {
    ctx_.metrics.client_sessions_kept_after_server_loss.add(1);
    owner_.server_lost_session_kept(loss);
  } else {
    owner_.server_lost(cause == Loss::kFatal);
  }
}

bool BackendLink::answer_for_lost_server(ServerConnection& server, bool error_sent,
                                         std::string& out) {
  static const std::string lost_error = error_body(
      "08006",
      "the connection to the database server was lost while the command ran; it may or may "
      "not have completed");
  const char status[1] = {tracker_.transaction_status() == 'I' ? 'I' : 'E'};
  // Nothing of the first request can have failed but its ReadyForQuery: it gets that alone, and
  // the loss is told at the next command (in a block) or not at all (outside one).
  const bool reported = error_sent || (tracker_.busy() && !tracker_.only_idle_sync_owed());
  bool error_due = !error_sent && reported;
  while (tracker_.busy()) {
    if (error_due) answer_as_server('E', lost_error, server, out);
    error_due = true;
    if (tracker_.outstanding_requests() == 0) break;  // the batch's Sync is answered when it comes
    answer_as_server('Z', std::string_view(status, 1), server, out);
  }
  return reported;
}

void BackendLink::answer_as_server(char type, std::string_view body, ServerConnection& server,
                                   std::string& out) {
  const pgwire::Bytes bytes(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  if (type == 'Z') tracker_.note_ready(body[0]);
  answers_before_.clear();
  answers_after_.clear();
  const auto verdict =
      tracker_.on_server_message(type, bytes, answers_before_, answers_after_, replacement_,
                                 owner_.client_statements(), server.statements);
  out += answers_before_;
  if (verdict != ResponseTracker::Verdict::kDrop) {
    pgwire::MessageWriter w(out);
    w.begin(type);
    w.bytes(verdict == ResponseTracker::Verdict::kReplace ? std::string_view(replacement_) : body);
    w.end();
  }
  out += answers_after_;
}

void BackendLink::attach(ServerLease lease) {
  lease_ = std::move(lease);
  if (pinned_) lease_.pin();
  tracker_.clear();
  server_unread_ = 0;
  // The reply loop, waiting for a connection, waits for this one's first reply: it runs only
  // when that comes (or soon, posted, if the socket may hold something already). Never inside
  // this call: a server that went away as its connection was lent must answer the request
  // about to be sent with its error, not vanish before the request is recorded.
  attached_.notify_via([this](std::optional<Wakeup::Resume>& reader) {
    return lease_->transport().wait_readable_instead(reader);
  });
}

void BackendLink::send(std::string& bytes) {
  if (lease_ && !bytes.empty()) lease_->transport().write(bytes);
  bytes.clear();
}

awaitable<bool> BackendLink::flush_if_backlogged() {
  if (!lease_ || !lease_->transport().has_backlog()) co_return true;
  auto server = lease_.connection();  // the lease may change while this waits
  co_return co_await server->transport().flush();
}

void BackendLink::pin(PinReason reason) {
  pinned_ = reason;
  if (lease_) lease_.pin();
  ctx_.metrics.database_connections_currently_session_pinned[static_cast<size_t>(reason)].add(1);
  spdlog::info(
      "The client session was pinned to the database connection [dbConnection={}] for the "
      "remainder of the session. The proxy can't reuse this connection until the session ends. "
      "Reason: {}.",
      lease_ ? lease_->backend_pid() : 0, pin_reason_text(reason));
}

void BackendLink::unpin() {
  if (!pinned_) return;
  ctx_.metrics.database_connections_currently_session_pinned[static_cast<size_t>(*pinned_)].sub(1);
  pinned_.reset();
}

void BackendLink::cancel_running_query() {
  if (lease_ && tracker_.busy()) ctx_.pools->cancel(lease_);
}

awaitable<void> BackendLink::client_left() {
  closing_ = true;
  client_gone_ = true;
  attached_.notify();  // lets run() end once no connection is lent
  if (!lease_) co_return;
  auto server = lease_.connection();
  if (client_mid_message_) {
    // Half a message went to the server: nothing more can be said on that connection.
    if (tracker_.busy()) ctx_.pools->cancel(lease_);
    server->broken = true;
    lease_.discard();
    co_return;
  }
  const bool in_transaction = tracker_.transaction_status() != 'I';
  if (!pinned_ && !tracker_.busy() && in_transaction) {
    // Abandoned inside a transaction: roll it back; run() returns the connection at the
    // ReadyForQuery that follows.
    std::string rollback;
    pgwire::write_query(rollback, "ROLLBACK");
    tracker_.expect(ResponseTracker::Kind::kSimpleQuery);
    co_await server->transport().write_all(rollback);
    co_return;
  }
  if (pinned_ && *pinned_ != PinReason::kLoad && !tracker_.busy()) {
    // A pinned session's state is wiped on the server and the connection goes back to the pool
    // at the ReadyForQuery that follows, instead of being closed. DISCARD ALL closes cursors,
    // drops temporary objects, resets settings and the role, deallocates statements, unlistens
    // and releases session advisory locks. A loaded library cannot be unloaded: LOAD closes.
    std::string cleanup;
    if (in_transaction) {
      pgwire::write_query(cleanup, "ROLLBACK");
      tracker_.expect(ResponseTracker::Kind::kSimpleQuery);
    }
    pgwire::write_query(cleanup, "DISCARD ALL");
    tracker_.expect(ResponseTracker::Kind::kSimpleQuery);
    unpin();
    discarding_ = true;
    co_await server->transport().write_all(cleanup);
    co_return;
  }
  // A request nobody will read, or state that cannot be wiped: the connection cannot be reused.
  if (tracker_.busy()) ctx_.pools->cancel(lease_);
  server->broken = true;
  lease_.discard();
}

}  // namespace sluice::proxy
