#include "proxy/client_session.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <cstring>
#include <functional>

#include "auth/crypto.hpp"
#include "auth/md5.hpp"
#include "auth/scram.hpp"
#include "proxy/client_registry.hpp"
#include "proxy/pool.hpp"
#include "proxy/secrets.hpp"
#include "proxy/server_connection.hpp"
#include "proxy/sql_prepared.hpp"

namespace sluice::proxy {
namespace {

constexpr size_t kMaxAuthMessage = 10000;
constexpr size_t kMaxServerMessage = 1024u * 1024u * 1024u;
constexpr size_t kMaxCachedSettings = 1000;

uint64_t micros_since(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

uint32_t declared_length(pgwire::Bytes buf) {
  return (uint32_t(buf[1]) << 24) | (uint32_t(buf[2]) << 16) | (uint32_t(buf[3]) << 8) |
         uint32_t(buf[4]);
}

std::string_view as_text(pgwire::Bytes bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace

ClientSession::ClientSession(ProxyContext& ctx, tcp_socket socket)
    : ctx_(ctx), client_(*ctx.poller, std::move(socket)), server_attached_(client_.get_executor()) {
  accepted_at_ = last_activity_ = Clock::now();
  cancel_pid_ = ctx_.clients->add(this);
  std::string key = auth::random_bytes(4);
  std::memcpy(&cancel_key_, key.data(), 4);
  ctx_.metrics.client_connections_received.add(1);
}

ClientSession::~ClientSession() {
  ctx_.clients->remove(cancel_pid_);
  if (pinned_)
    ctx_.metrics.database_connections_currently_session_pinned[static_cast<size_t>(*pinned_)].sub(
        1);
  if (counted_) ctx_.metrics.client_connections.sub(1);
  ctx_.metrics.client_connections_closed.add(1);
}

awaitable<void> ClientSession::run() {
  auto self = shared_from_this();
  pgwire::StartupMessage startup;
  if (co_await negotiate_startup(startup)) {
    auto& metrics = ctx_.metrics;
    (client_.tls() ? metrics.client_connections_tls : metrics.client_connections_no_tls).add(1);
    user_ = *startup.find("user");
    database_ = *startup.find("database");
    std::optional<std::string> settings_error;
    if (ctx_.config.require_tls && !client_.tls()) {
      co_await send_fatal("28000", "This proxy requires TLS connections.");
    } else if (ctx_.clients->logged_in() >= ctx_.config.max_client_connections) {
      co_await send_fatal("53300",
                          "The maximum number of client connections to the proxy exceeded " +
                              std::to_string(ctx_.config.max_client_connections) + ".");
    } else if (ctx_.draining) {
      co_await send_fatal("57P03", "the proxy is shutting down");
    } else if ((settings_error = settings_from_startup(startup.params, settings_))) {
      co_await send_fatal("22023", *settings_error);
    } else {
      startup_settings_ = settings_;
      const Credential* known = ctx_.secrets.find(user_);
      const Credential& credential = known ? *known : ctx_.secrets.decoy(user_);
      if (co_await authenticate(credential) && known && co_await finish_login()) {
        phase_ = Phase::kReady;
        counted_ = true;
        metrics.client_connections.add(1);
        metrics.client_connections_setup_succeeded.add(1);
        co_await relay();
      }
    }
  }
  co_await leave();
}

// ------------------------------------------------------------------ startup

awaitable<bool> ClientSession::send_fatal(std::string_view sqlstate, std::string_view message) {
  std::string out;
  pgwire::write_error(out, "FATAL", sqlstate, message);
  co_await client_.write_all(out);
  co_return false;
}

awaitable<bool> ClientSession::negotiate_startup(pgwire::StartupMessage& startup) {
  // SSLRequest and GSSENCRequest may precede the StartupMessage, once each.
  for (int round = 0; round < 3; ++round) {
    pgwire::Bytes packet;
    for (;;) {
      auto status = pgwire::peek_startup_packet(inbound_.readable(), packet);
      if (status == pgwire::FrameStatus::kReady) break;
      if (status != pgwire::FrameStatus::kNeedMore)
        co_return co_await send_fatal("08P01", "invalid length of startup packet");
      if (!co_await client_.read_some(inbound_, 1024)) co_return false;
    }
    auto decoded = pgwire::decode_startup(packet);
    inbound_.consume(packet.size());
    if (auto* message = std::get_if<pgwire::StartupMessage>(&decoded)) {
      startup = std::move(*message);
      co_return true;
    }
    if (auto* violation = std::get_if<pgwire::ProtocolViolation>(&decoded))
      co_return co_await send_fatal(violation->sqlstate, violation->message);
    if (auto* cancel = std::get_if<pgwire::CancelRequest>(&decoded)) {
      ctx_.clients->cancel(cancel->process_id, cancel->secret_key);
      co_return false;
    }
    if (std::holds_alternative<pgwire::GssEncRequest>(decoded)) {
      if (!co_await client_.write_all("N")) co_return false;
      continue;
    }
    // SSLRequest. Bytes sent before the handshake would be plaintext smuggled into the TLS
    // session (CVE-2021-23214): refuse them.
    if (client_.tls() || !inbound_.empty())
      co_return co_await send_fatal("08P01", "unexpected data around SSLRequest");
    if (!co_await client_.write_all("S")) co_return false;
    try {
      co_await client_.start_tls_as_server(ctx_.client_tls);
    } catch (const boost::system::system_error& e) {
      spdlog::debug("TLS handshake with {} failed: {}", client_.peer(), e.code().message());
      co_return false;
    }
  }
  co_return co_await send_fatal("08P01", "too many startup negotiation packets");
}

awaitable<bool> ClientSession::read_auth_message(std::string& payload) {
  for (;;) {
    pgwire::Frame frame;
    auto status = pgwire::peek_frame(inbound_.readable(), kMaxAuthMessage, frame);
    if (status == pgwire::FrameStatus::kReady) {
      if (frame.type != 'p') co_return false;
      payload.assign(as_text(frame.body));
      inbound_.consume(frame.wire_size());
      co_return true;
    }
    if (status != pgwire::FrameStatus::kNeedMore) co_return false;
    if (!co_await client_.read_some(inbound_, 1024)) co_return false;
  }
}

awaitable<bool> ClientSession::authenticate(const Credential& credential) {
  const bool ok = credential.client_auth == AuthType::kMd5
                      ? co_await authenticate_md5(credential)
                      : co_await authenticate_scram(credential);
  if (ok && ctx_.secrets.find(user_)) co_return true;
  ctx_.metrics.client_connections_setup_failed_auth.add(1);
  spdlog::info("login failed for user \"{}\" from {}", user_, client_.peer());
  // One message for a wrong password and an unknown user: nothing tells which users exist.
  co_return co_await send_fatal("28P01",
                                "password authentication failed for user \"" + user_ + "\"");
}

awaitable<bool> ClientSession::authenticate_scram(const Credential& credential) {
  std::string out;
  const std::string_view mechanisms[] = {"SCRAM-SHA-256"};
  pgwire::write_auth_sasl(out, mechanisms);
  if (!co_await client_.write_all(out)) co_return false;
  std::string payload;
  if (!co_await read_auth_message(payload)) co_return false;
  auto initial = pgwire::decode_sasl_initial_response(
      {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()});
  if (!initial || initial->mechanism != "SCRAM-SHA-256") co_return false;
  auth::ScramServer scram(credential.scram, auth::base64_encode(auth::random_bytes(18)));
  auto server_first = scram.handle_client_first(initial->data);
  if (!server_first) co_return false;
  out.clear();
  pgwire::write_auth_sasl_continue(out, *server_first);
  if (!co_await client_.write_all(out)) co_return false;
  if (!co_await read_auth_message(payload)) co_return false;
  auto server_final = scram.handle_client_final(payload);
  if (!server_final) co_return false;
  pgwire::write_auth_sasl_final(to_client_, *server_final);
  co_return true;
}

awaitable<bool> ClientSession::authenticate_md5(const Credential& credential) {
  std::array<uint8_t, 4> salt;
  const std::string random = auth::random_bytes(4);
  std::memcpy(salt.data(), random.data(), 4);
  std::string out;
  pgwire::write_auth_md5(out, salt);
  if (!co_await client_.write_all(out)) co_return false;
  std::string payload;
  if (!co_await read_auth_message(payload)) co_return false;
  auto password =
      pgwire::decode_password({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()});
  co_return password&& auth::md5_verify(credential.md5_hash, salt, *password);
}

awaitable<bool> ClientSession::finish_login() {
  pgwire::write_auth_ok(to_client_);
  pool_ = &ctx_.pools->pool_for(database_, *ctx_.secrets.find(user_));
  const std::map<std::string, std::string>* parameters = nullptr;
  std::string key;
  if (settings_.empty()) {
    if (pool_->default_parameters) parameters = &*pool_->default_parameters;
  } else {
    key = settings_key(settings_);
    if (auto it = pool_->validated_settings.find(key); it != pool_->validated_settings.end())
      parameters = &it->second;
  }
  std::map<std::string, std::string> learned;
  if (!parameters) {
    // First client of this pool, or first with these settings: let the server check them
    // and tell us the values it reports (canonical forms such as "ISO, MDY").
    auto borrowed = co_await ctx_.pools->acquire(
        *pool_, Clock::now() + std::chrono::seconds(ctx_.config.connection_borrow_timeout));
    if (!borrowed.connection) {
      co_await flush_to_client();
      co_return co_await send_fatal(borrowed.error->sqlstate, borrowed.error->message);
    }
    auto error = co_await borrowed.connection->apply_settings(settings_);
    learned = borrowed.connection->parameters;
    ctx_.pools->release(borrowed.connection, !borrowed.connection->broken);
    if (error) {
      co_await flush_to_client();
      co_return co_await send_fatal(error->sqlstate, error->message);
    }
    if (settings_.empty()) {
      pool_->default_parameters = learned;
    } else {
      if (pool_->validated_settings.size() >= kMaxCachedSettings) pool_->validated_settings.clear();
      pool_->validated_settings[key] = learned;
    }
    parameters = &learned;
  }
  for (const auto& [name, value] : *parameters)
    pgwire::write_parameter_status(to_client_, name, value);
  pgwire::write_backend_key_data(to_client_, cancel_pid_, cancel_key_);
  pgwire::write_ready_for_query(to_client_, 'I');
  co_return co_await flush_to_client();
}

// ------------------------------------------------------------------ relay

awaitable<bool> ClientSession::flush_to_client() {
  if (!send_to_client()) co_return false;
  if (!client_.has_backlog()) co_return true;
  co_return co_await client_.flush();
}

bool ClientSession::send_to_client() {
  if (to_client_.empty()) return true;
  const bool ok = client_.write(to_client_);
  to_client_.clear();
  return ok;
}

void ClientSession::send_to_server() {
  // A failed write surfaces as a failed read in the server reader, which reports it.
  if (server_ && !to_server_.empty()) server_->transport().write(to_server_);
  to_server_.clear();
}

void ClientSession::reply_error(const ServerError& error) {
  // Whatever the server's severity, this client's session goes on.
  pgwire::write_error(to_client_, "ERROR", error.sqlstate, error.message);
}

awaitable<void> ClientSession::relay() {
  const size_t max_message = ctx_.config.max_message_size;
  asio::co_spawn(client_.get_executor(), server_pump(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("server reader failed: {}", ex.what());
    }
  });
  for (;;) {
    const ReadStatus status = client_.read_now(inbound_);
    if (status == ReadStatus::kClosed) co_return;
    if (status == ReadStatus::kWouldBlock) {
      co_await client_.readable();
      continue;
    }
    last_activity_ = Clock::now();
    for (;;) {
      pgwire::Frame frame;
      auto status = pgwire::peek_frame(inbound_.readable(), max_message, frame);
      if (status == pgwire::FrameStatus::kNeedMore) break;
      if (status == pgwire::FrameStatus::kTooLarge) {
        co_await send_fatal(
            "08P01", "message of " + std::to_string(declared_length(inbound_.readable())) +
                         " bytes exceeds max_message_size (" + std::to_string(max_message) + ")");
        co_return;
      }
      if (status == pgwire::FrameStatus::kMalformed) {
        co_await send_fatal("08P01", "invalid message length");
        co_return;
      }
      // Borrowing is the only wait a message may need; everything else is decided at once.
      if (!server_ && needs_server(frame)) {
        std::shared_ptr<ServerConnection> idle;
        if (!attach_now(idle)) co_await attach(std::move(idle));
      }
      const Step step = handle_frame(frame);
      inbound_.consume(frame.wire_size());
      if (step == Step::kViolation) {
        co_await flush_to_client();
        co_await send_fatal("08P01", violation_);
        co_return;
      }
      if (step == Step::kEnd) co_return;
    }
    // Writes go out at once; only a peer whose socket is full makes this reader wait, which
    // is how a client that does not read its replies, or a server slow to take a COPY
    // stream, slows the sender down.
    const bool own_replies = !to_client_.empty();
    if (!send_to_client()) co_return;
    if (own_replies && client_.has_backlog() && !co_await client_.flush()) co_return;
    send_to_server();
    if (server_ && server_->transport().has_backlog()) {
      auto server = server_;
      co_await server->transport().flush();
    }
  }
}

bool ClientSession::needs_server(const pgwire::Frame& frame) const {
  const char type = frame.type;
  if (type == 'Q') return !answered_without_server(frame);
  if (type == 'F') return true;
  if (type == 'P' || type == 'B' || type == 'D' || type == 'E') return !skip_until_sync_;
  if (type == 'C') {
    if (skip_until_sync_) return false;
    if (!statements_enabled()) return true;
    // The client's own named statement is closed by the proxy; a malformed Close is refused.
    auto target = pgwire::decode_describe_or_close(frame.body);
    return target && !(target->kind == 'S' && !target->name.empty());
  }
  return false;
}

ClientSession::Step ClientSession::handle_frame(const pgwire::Frame& frame) {
  auto forward = [&] {
    to_server_.append(reinterpret_cast<const char*>(frame.body.data()) - 5, frame.wire_size());
  };
  auto violation = [&](std::string what) {
    violation_ = std::move(what);
    return Step::kViolation;
  };
  auto count_query = [&] {
    auto& m = ctx_.metrics;
    m.query_requests.add(1);
    (client_.tls() ? m.query_requests_tls : m.query_requests_no_tls).add(1);
    if (!request_started_) request_started_ = last_activity_;  // when these bytes arrived
  };

  const char type = frame.type;
  if (type == 'X') return Step::kEnd;
  if (type == 'Q' || type == 'F') {
    std::optional<std::string_view> sql;
    if (type == 'Q' && !(sql = pgwire::decode_query(frame.body)))
      return violation("malformed Query message");
    count_query();
    if (sql && statements_enabled() && may_be_sql_prepared_command(*sql))
      if (auto command = parse_sql_prepared_command(*sql);
          command && relay_sql_prepared(*command, *sql))
        return Step::kContinue;
    if (!server_) {
      // No connection could be had: attach() queued the error; the request ends there.
      pgwire::write_ready_for_query(to_client_, 'I');
      return Step::kContinue;
    }
    if (sql && !pinned_) {
      const StatementEffects effects = statement_effects(*sql);
      if (effects.pin) pin(*effects.pin);
      if (effects.changes_settings) note_settings_change(*sql);
    }
    // DISCARD and DEALLOCATE pin, so only a pinned session needs this second look.
    if (pinned_ && sql && drops_all_statements(*sql)) {
      // DEALLOCATE ALL or DISCARD ALL: the client's named statements go, and the server's.
      statements_.clear();
      server_->statements.clear();
    }
    ++outstanding_;
    expected_.expect({ResponseTracker::Kind::kSimpleQuery, nullptr, {}});
    forward();
    return Step::kContinue;
  }
  if (type == 'P' || type == 'B' || type == 'D' || type == 'E' || type == 'C') {
    std::optional<pgwire::ParseMessage> parse;
    if (type == 'P' && !(parse = pgwire::decode_parse(frame.body)))
      return violation("malformed Parse message");
    if (skip_until_sync_) return Step::kContinue;
    if (type == 'E') count_query();  // one query per execution, prepared or not
    if (type == 'C' && statements_enabled()) {
      // A client's own named statement: closed by the proxy, wherever the client stands.
      auto target = pgwire::decode_describe_or_close(frame.body);
      if (!target) return violation("malformed Close message");
      if (target->kind == 'S' && !target->name.empty()) {
        close_statement(target->name);
        unsynced_ = true;
        return Step::kContinue;
      }
    }
    if (!server_) {
      // No connection could be had (attach() queued the error).
      skip_until_sync_ = true;  // PostgreSQL discards everything up to Sync after an error
      return Step::kContinue;
    }
    // "EXECUTE <one of the client's statements>" through the extended protocol (psycopg 3 with
    // parameters, say): the same translation as in a simple query.
    std::string rewritten;
    StatementRef runs;
    bool translated = false;
    if (parse && statements_enabled() && may_be_sql_prepared_command(parse->query)) {
      if (auto command = parse_sql_prepared_command(parse->query)) {
        using CommandKind = SqlPreparedCommand::Kind;
        auto it = statements_.find(command->name);
        const bool execute = command->kind == CommandKind::kExecute;
        // DEALLOCATE: psycopg 3 sends it when its own statement cache overflows. The records
        // change when the server reports it done, in case Bind and Execute never follow.
        const bool deallocate =
            command->kind == CommandKind::kDeallocate && parse->statement.empty();
        if ((execute || deallocate) && it != statements_.end()) {
          // The server's name in the client's (the statement prepared first if need be); the
          // parameter types after the SQL's NUL stay as they were.
          runs = it->second;
          if (!ensure_on_server(runs, command->name)) {
            unsynced_ = true;
            return Step::kContinue;
          }
          rewritten.append(parse->query.substr(0, command->name_begin));
          rewritten += runs->server_name;
          rewritten.append(parse->query.substr(command->name_end));
          const auto* types = parse->definition.data() + parse->query.size();
          rewritten.append(reinterpret_cast<const char*>(types),
                           parse->definition.size() - parse->query.size());
          parse->query = std::string_view(rewritten.data(), rewritten.find('\0'));
          parse->definition = {reinterpret_cast<const uint8_t*>(rewritten.data()),
                               rewritten.size()};
          if (deallocate) unnamed_deallocates_ = {runs, command->name};
          if (execute && runs->changes_settings && parse->statement.empty())
            note_settings_change(runs->text());
          translated = true;
        } else if (command->kind == CommandKind::kDeallocateAll) {
          // psycopg 3 sends this after a rollback. It runs on the server as written; the
          // tracker forgets the client's and the connection's statements when it succeeds.
          translated = true;
        }
      }
    }
    if (parse && !pinned_ && translated) {
      // Only what the arguments do; EXECUTE itself is translated.
      const StatementEffects effects = statement_effects(parse->query);
      if (effects.pin && *effects.pin != PinReason::kPreparedStatement) pin(*effects.pin);
    } else if (parse && !pinned_) {
      if (!parse->statement.empty() && !statements_enabled()) {
        pin(PinReason::kNamedProtocolStatement);
      } else {
        const StatementEffects effects = statement_effects(parse->query);
        if (effects.pin) pin(*effects.pin);
        // An unnamed statement runs in this round; a named one whenever it is bound.
        if (effects.changes_settings && parse->statement.empty())
          note_settings_change(parse->query);
      }
    }
    unsynced_ = true;
    if (!relay_extended(frame, parse, runs))
      return violation("malformed " + std::string(pgwire::frontend_message_name(type)) +
                       " message");
    return Step::kContinue;
  }
  if (type == 'H') {
    if (server_ && !skip_until_sync_) forward();
    return Step::kContinue;
  }
  if (type == 'S') {
    skip_until_sync_ = false;
    if (!server_) {
      // Nothing pending anywhere: answer for the server and keep the pool free.
      pgwire::write_ready_for_query(to_client_, 'I');
      return Step::kContinue;
    }
    ++outstanding_;
    unsynced_ = false;
    expected_.expect({ResponseTracker::Kind::kSync, nullptr, {}});
    forward();
    return Step::kContinue;
  }
  if (type == 'd' || type == 'c' || type == 'f') {
    // Outside COPY, PostgreSQL ignores these; so does the proxy when it holds no server.
    if (server_) forward();
    return Step::kContinue;
  }
  if (type == 'p') return violation("unexpected password message after authentication");
  return violation("invalid frontend message type " +
                   std::to_string(static_cast<unsigned char>(type)));
}

bool ClientSession::attach_now(std::shared_ptr<ServerConnection>& idle) {
  if (!to_client_.empty()) return false;  // the proxy's own replies go first: attach() sends them
  idle = ctx_.pools->take_idle(*pool_);
  if (!idle || idle->applied != settings_) return false;
  ctx_.metrics.database_connections_borrow_latency.observe(0);  // no wait at all
  adopt(std::move(idle));
  return true;
}

awaitable<void> ClientSession::attach(std::shared_ptr<ServerConnection> connection) {
  // Our own replies (an earlier Sync, an error) go ahead of the server's.
  if (!send_to_client()) {
    if (connection) ctx_.pools->release(std::move(connection), true);
    co_return;
  }
  if (connection) {
    ctx_.metrics.database_connections_borrow_latency.observe(0);
  } else {
    // From when the request arrived (microseconds earlier): one clock read less per borrow.
    const auto start = last_activity_;
    auto borrowed = co_await ctx_.pools->acquire(
        *pool_, start + std::chrono::seconds(ctx_.config.connection_borrow_timeout));
    ctx_.metrics.database_connections_borrow_latency.observe(micros_since(start));
    if (!borrowed.connection) {
      reply_error(*borrowed.error);
      co_return;
    }
    connection = std::move(borrowed.connection);
  }
  if (connection->applied != settings_) {
    if (auto error = co_await connection->apply_settings(settings_)) {
      ctx_.pools->release(connection, !connection->broken);
      reply_error(*error);
      co_return;
    }
  }
  adopt(std::move(connection));
}

void ClientSession::adopt(std::shared_ptr<ServerConnection> connection) {
  server_ = std::move(connection);
  if (pinned_) ctx_.pools->pinned(*server_);
  expected_.clear();
  outstanding_ = 0;
  unsynced_ = false;
  transaction_ = 'I';
  ctx_.metrics.database_connections_currently_borrowed.add(1);
  // The server reader, waiting for a connection, waits for this one's first reply: it runs
  // only when that comes (or at once if the socket may hold something already).
  server_attached_.notify_via([this](std::optional<Wakeup::Resume>& reader) {
    return server_->transport().wait_readable_instead(reader);
  });
}

bool ClientSession::relay_extended(const pgwire::Frame& frame,
                                   const std::optional<pgwire::ParseMessage>& parse,
                                   const StatementRef& runs) {
  using Kind = ResponseTracker::Kind;
  auto forward = [&](Kind kind) {
    to_server_.append(reinterpret_cast<const char*>(frame.body.data()) - 5, frame.wire_size());
    expected_.expect({kind, nullptr, {}});
    return true;
  };
  const bool named = statements_enabled();
  switch (frame.type) {
    case 'P': {
      if (parse->statement.empty() && unnamed_deallocates_.statement != runs)
        unnamed_deallocates_ = {};  // a new unnamed statement replaces the DEALLOCATE
      if (runs && parse->statement.empty()) {
        pgwire::write_parse(to_server_, "", parse->definition);  // the rewritten text
        expected_.expect({Kind::kParse});
        return true;
      }
      if (!named || parse->statement.empty()) return forward(Kind::kParse);
      if (statements_.contains(parse->statement)) {
        fail_as("42P05",
                "prepared statement \"" + std::string(parse->statement) + "\" already exists");
        return true;
      }
      auto statement = ctx_.statements->intern(
          parse->definition,
          runs ? runs->changes_settings : statement_effects(parse->query).changes_settings, runs);
      statements_.emplace(std::string(parse->statement), statement);
      if (server_->statements.has(*statement)) {
        // Already prepared on this connection (by this client or another): answer for it.
        expected_.answer({Kind::kParseComplete, statement, std::string(parse->statement)},
                         to_client_, statements_);
      } else {
        prepare_on_server(statement, {Kind::kParse, statement, std::string(parse->statement)});
      }
      return true;
    }
    case 'B': {
      auto bind = pgwire::decode_bind(frame.body);
      if (!bind) return false;
      if (bind->portal.empty())
        portal_deallocates_ = bind->statement.empty() ? unnamed_deallocates_ : Deallocation{};
      if (!named || bind->statement.empty()) return forward(Kind::kBind);
      const PreparedStatement* statement = use_statement(bind->statement);
      if (!statement) return true;
      if (statement->changes_settings) {
        const std::string& definition = statement->definition;
        note_settings_change(std::string_view(definition.data(), definition.find('\0')));
      }
      pgwire::write_bind(to_server_, bind->portal, statement->server_name, bind->rest);
      expected_.expect({Kind::kBind, nullptr, {}});
      return true;
    }
    case 'D': {
      auto target = pgwire::decode_describe_or_close(frame.body);
      if (!target) return false;
      if (!named || target->kind == 'P' || target->name.empty()) return forward(Kind::kDescribe);
      const PreparedStatement* statement = use_statement(target->name);
      if (!statement) return true;
      pgwire::write_describe(to_server_, 'S', statement->server_name);
      expected_.expect({Kind::kDescribe, nullptr, {}});
      return true;
    }
    case 'C':
      if (!pgwire::decode_describe_or_close(frame.body)) return false;
      return forward(Kind::kClose);
    default: {  // 'E'
      auto portal = pgwire::decode_execute_portal(frame.body);
      if (portal && portal->empty() && portal_deallocates_.statement) {
        // Its CommandComplete tells the tracker the client's statement is gone.
        to_server_.append(reinterpret_cast<const char*>(frame.body.data()) - 5, frame.wire_size());
        expected_.expect({Kind::kExecute, portal_deallocates_.statement, portal_deallocates_.name});
        portal_deallocates_ = {};
        return true;
      }
      return forward(Kind::kExecute);
    }
  }
}

bool ClientSession::answered_without_server(const pgwire::Frame& frame) const {
  const std::string_view body(reinterpret_cast<const char*>(frame.body.data()), frame.body.size());
  if (!statements_enabled() || !may_be_sql_prepared_command(body)) return false;
  auto sql = pgwire::decode_query(frame.body);
  if (!sql) return false;
  auto command = parse_sql_prepared_command(*sql);
  if (!command) return false;
  using CommandKind = SqlPreparedCommand::Kind;
  return command->kind == CommandKind::kDeallocateAll ||
         (command->kind == CommandKind::kDeallocate && statements_.contains(command->name));
}

bool ClientSession::relay_sql_prepared(const SqlPreparedCommand& command, std::string_view sql) {
  using Kind = ResponseTracker::Kind;
  using CommandKind = SqlPreparedCommand::Kind;
  auto it = statements_.find(command.name);
  const bool known = it != statements_.end();
  // A pinned session may hold statements under the client's own names (a PREPARE sent through
  // the extended protocol pins and goes through as written): those are the server's business.
  if (pinned_ && (command.kind == CommandKind::kDeallocateAll ||
                  (command.kind != CommandKind::kPrepare && !known)))
    return false;
  if (command.kind == CommandKind::kDeallocateAll) {
    expected_.answer({Kind::kLocalDeallocateAll}, to_client_, statements_);
    return true;
  }
  if (command.kind == CommandKind::kDeallocate && known) {
    expected_.answer({Kind::kLocalDeallocate, it->second, command.name}, to_client_, statements_);
    return true;
  }
  if (!server_) return false;  // attach() failed and queued its error
  const std::string quoted = "\"" + command.name + "\"";
  if (command.kind == CommandKind::kPrepare && known) {
    fail_as_query("42P05", "prepared statement " + quoted + " already exists");
    return true;
  }
  if (command.kind != CommandKind::kPrepare && !known) {
    fail_as_query("26000", "prepared statement " + quoted + " does not exist");
    return true;
  }

  std::string prefix;  // the proxy's own statements in front of the client's
  auto make_room = [&](const StatementRef& statement) {
    if (StatementRef evicted = server_->statements.add(statement)) {
      prefix += "DEALLOCATE " + evicted->server_name + ";\n";
      expected_.expect({Kind::kSwallowSqlDeallocate, std::move(evicted)});
    }
  };
  StatementRef statement;
  if (command.kind == CommandKind::kPrepare) {
    const StatementEffects effects = statement_effects(command.body);
    if (effects.pin && !pinned_) pin(*effects.pin);
    if (command.declares_types) {
      // Only the server knows what the type names mean: this statement is the client's own.
      const std::string_view tail =
          sql.substr(command.name_end, command.statement_end - command.name_end);
      statement = ctx_.statements->make_sql(std::string(tail), effects.changes_settings);
    } else {
      // The same as a protocol Parse of the body with no declared types: shared with it.
      std::string definition(command.body);
      definition.append("\0\0\0", 3);
      statement = ctx_.statements->intern(
          {reinterpret_cast<const uint8_t*>(definition.data()), definition.size()},
          effects.changes_settings);
    }
    statements_.emplace(command.name, statement);
    if (server_->statements.has(*statement)) {
      expected_.answer({Kind::kLocalPrepare, statement, command.name}, to_client_, statements_);
      return true;
    }
    make_room(statement);
    expected_.expect({Kind::kSqlPrepare, statement, command.name});
  } else {  // EXECUTE, alone or inside EXPLAIN or CREATE TABLE AS
    statement = it->second;
    // What the rest of the query does (arguments may call functions; CREATE may make a
    // temporary table). EXECUTE itself is what is translated here.
    for (std::string_view part :
         {sql.substr(0, command.keyword_begin), sql.substr(command.name_end)}) {
      const StatementEffects effects = statement_effects(part);
      if (effects.pin && !pinned_) pin(*effects.pin);
      if (effects.changes_settings) note_settings_change(part);
    }
    if (statement->changes_settings) note_settings_change(statement->text());
    if (!server_->statements.has(*statement)) {
      const std::string tail = statement->sql_prepare_tail();
      if (tail.empty()) {
        fail_as_query("0A000", "prepared statement " + quoted +
                                   " declares parameter types by OID in a protocol Parse; sluice "
                                   "runs it on this server connection only through Bind");
        return true;
      }
      make_room(statement);
      // A newline first: the tail may end in a line comment.
      prefix += "PREPARE " + statement->server_name + " " + tail + "\n;\n";
      expected_.expect({Kind::kSwallowSqlPrepare, statement});
    }
  }
  std::string text = prefix;
  text.append(sql.substr(0, command.name_begin));
  text += statement->server_name;
  text.append(sql.substr(command.name_end));
  ResponseTracker::Rewrite rewrite;
  rewrite.prefix = character_count(prefix);
  rewrite.name_at = character_count(sql.substr(0, command.name_begin));
  rewrite.server_name = character_count(statement->server_name);
  rewrite.client_name =
      character_count(sql.substr(command.name_begin, command.name_end - command.name_begin));
  ++outstanding_;
  // The names, for error messages that quote the statement: the server's, NUL, the client's.
  expected_.expect(
      {Kind::kSimpleQuery, nullptr, statement->server_name + '\0' + command.name, rewrite});
  pgwire::write_query(to_server_, text);
  return true;
}

void ClientSession::fail_as_query(std::string_view sqlstate, const std::string& message) {
  // A query the server fails (as it would the client's, in a failed transaction too) with an
  // error the tracker replaces by PostgreSQL's own for the client's query.
  ++outstanding_;
  expected_.expect({ResponseTracker::Kind::kFailAsQuery, nullptr, error_body(sqlstate, message)});
  expected_.expect({ResponseTracker::Kind::kSimpleQuery});
  pgwire::write_query(to_server_, "EXECUTE " + std::string(kMissingStatement));
}

const PreparedStatement* ClientSession::use_statement(std::string_view name) {
  auto it = statements_.find(name);
  if (it == statements_.end()) {
    fail_as("26000", "prepared statement \"" + std::string(name) + "\" does not exist");
    return nullptr;
  }
  const StatementRef& statement = it->second;
  if (!ensure_on_server(statement, name)) return nullptr;
  return statement.get();
}

bool ClientSession::ensure_on_server(const StatementRef& statement, std::string_view name) {
  if (statement->runs && !ensure_on_server(statement->runs, name)) return false;
  if (server_->statements.has(*statement)) return true;
  if (!statement->definition.empty()) {
    prepare_on_server(statement, {ResponseTracker::Kind::kSwallowParse, statement, {}});
    return true;
  }
  // A SQL PREPARE with a type list: only SQL can prepare it, so the proxy runs that SQL as an
  // extended-protocol statement of its own. The helper's name is closed first (closing a name
  // that does not exist is no error), as a failed attempt may have left it behind; the client's
  // unnamed statement and portal are left alone.
  using Kind = ResponseTracker::Kind;
  constexpr std::string_view kHelper = "sluice_sql_prepare";
  if (StatementRef evicted = server_->statements.add(statement)) {
    pgwire::write_close(to_server_, 'S', evicted->server_name);
    expected_.expect({Kind::kSwallowClose, std::move(evicted)});
  }
  pgwire::write_close(to_server_, 'P', kHelper);
  pgwire::write_close(to_server_, 'S', kHelper);
  std::string definition = "PREPARE " + statement->server_name + " " + statement->sql_tail;
  definition.append("\0\0\0", 3);
  pgwire::write_parse(to_server_, kHelper,
                      {reinterpret_cast<const uint8_t*>(definition.data()), definition.size()});
  static constexpr uint8_t kNoParameters[6] = {0, 0, 0, 0, 0, 0};
  pgwire::write_bind(to_server_, kHelper, kHelper, kNoParameters);
  pgwire::MessageWriter w(to_server_);
  w.begin('E');
  w.cstring(kHelper);
  w.int32(0);
  w.end();
  for (int i = 0; i < 4; ++i) expected_.expect({Kind::kSwallowReply});
  expected_.expect({Kind::kSwallowSqlPrepareExecute, statement});
  return true;
}

void ClientSession::prepare_on_server(const StatementRef& statement,
                                      ResponseTracker::Entry expectation) {
  if (StatementRef evicted = server_->statements.add(statement)) {
    pgwire::write_close(to_server_, 'S', evicted->server_name);
    expected_.expect({ResponseTracker::Kind::kSwallowClose, std::move(evicted), {}});
  }
  pgwire::write_parse(to_server_, statement->server_name,
                      {reinterpret_cast<const uint8_t*>(statement->definition.data()),
                       statement->definition.size()});
  expected_.expect(std::move(expectation));
}

void ClientSession::fail_as(std::string_view sqlstate, const std::string& message) {
  // A Bind of a statement no server has: the server fails, and skips to Sync, exactly as
  // PostgreSQL would for the client's request; its error is replaced by the one it would give.
  static constexpr uint8_t kNoParameters[6] = {0, 0, 0, 0, 0, 0};
  pgwire::write_bind(to_server_, "", kMissingStatement, kNoParameters);
  expected_.expect({ResponseTracker::Kind::kFailAs, nullptr, error_body(sqlstate, message)});
}

void ClientSession::close_statement(std::string_view name) {
  StatementRef closed;
  if (auto it = statements_.find(name); it != statements_.end()) {
    closed = std::move(it->second);
    statements_.erase(it);
  }
  // Closing a name that does not exist is not an error in PostgreSQL either. The server keeps
  // the statement for other clients until its LRU lets it go.
  expected_.answer({ResponseTracker::Kind::kCloseComplete, std::move(closed), std::string(name)},
                   to_client_, statements_);
}

void ClientSession::note_settings_change(std::string_view sql) {
  settings_changed_ = true;
  collect_custom_setting_names(sql, custom_setting_names_);
  // Each name is asked for at every read-back: a client that invents settings without end is
  // pinned instead.
  if (custom_setting_names_.size() > 64 && !pinned_) pin(PinReason::kSetStatement);
}

void ClientSession::unpin() {
  if (!pinned_) return;
  ctx_.metrics.database_connections_currently_session_pinned[static_cast<size_t>(*pinned_)].sub(1);
  pinned_.reset();
}

void ClientSession::pin(PinReason reason) {
  pinned_ = reason;
  if (server_) ctx_.pools->pinned(*server_);
  ctx_.metrics.database_connections_currently_session_pinned[static_cast<size_t>(reason)].add(1);
  spdlog::info(
      "The client session was pinned to the database connection [dbConnection={}] for the "
      "remainder of the session. The proxy can't reuse this connection until the session ends. "
      "Reason: {}.",
      server_ ? server_->backend_pid() : 0, pin_reason_text(reason));
}

awaitable<void> ClientSession::server_pump() {
  auto self = shared_from_this();
  auto& metrics = ctx_.metrics;
  bool in_transaction_counted = false;
  auto set_transaction = [&](char status) {
    transaction_ = status;
    bool now = status != 'I';
    if (now != in_transaction_counted) {
      metrics.database_connections_currently_in_transaction.add(now ? 1 : -1);
      in_transaction_counted = now;
    }
  };
  struct Uncount {
    decltype(set_transaction)& reset;
    ~Uncount() { reset('I'); }
  } uncount{set_transaction};

  // The connection being read. Whenever server_ no longer matches it (released, lost, or
  // another lent), the loop starts over with server_, or waits for the next borrow.
  std::shared_ptr<ServerConnection> server;
  bool buffered = false;  // replies already in `inbound`, read while the settings were read back
  for (;;) {
    if (server_ != server) {
      set_transaction('I');
      server = server_;
      buffered = false;
    }
    if (!server) {
      if (phase_ == Phase::kClosed) co_return;
      co_await server_attached_.wait();
      continue;
    }
    ReadBuffer& inbound = server->inbound();
    Transport& transport = server->transport();
    const ReadStatus status = buffered ? ReadStatus::kData : transport.read_now(inbound);
    buffered = false;
    if (status == ReadStatus::kWouldBlock) {
      co_await transport.readable();
      continue;
    }
    if (status == ReadStatus::kClosed) {
      server_lost(server, false);
      continue;
    }
    const pgwire::Bytes data = inbound.readable();
    size_t forward = 0;
    bool fatal = false;
    bool violation = false;
    // Replies are forwarded as they came, in one write, unless the tracker drops, replaces or
    // inserts a message; then the batch is rebuilt in reshaped_.
    bool reshaping = false;
    for (;;) {
      pgwire::Frame frame;
      auto status = pgwire::peek_frame(data.subspan(forward), kMaxServerMessage, frame);
      if (status == pgwire::FrameStatus::kNeedMore) break;
      if (status != pgwire::FrameStatus::kReady) {
        violation = true;
        break;
      }
      if (frame.type == 'Z') {
        auto tx = pgwire::decode_ready_for_query(frame.body);
        if (!tx || outstanding_ <= 0) {
          violation = true;  // an unrequested ReadyForQuery: the server's state is unknown
          break;
        }
        --outstanding_;
        set_transaction(*tx);
        expected_.note_ready(*tx);
      } else if (frame.type == 'S') {
        if (auto ps = pgwire::decode_parameter_status(frame.body)) {
          auto& known = server->parameters[ps->name];
          // Reported changes are expected after the client's own SET (read back at release).
          if (known != ps->value && !pinned_ && !settings_changed_ && !discarding_)
            pin(PinReason::kUnexpectedParameterChange);
          known = ps->value;
        }
      } else if (frame.type == 'E') {
        auto fields = pgwire::decode_error_fields(frame.body);
        if (fields && (fields->severity() == "FATAL" || fields->severity() == "PANIC"))
          fatal = true;
        // The cleanup of a pinned session failed: its state is unknown, so it is closed.
        if (discarding_) server->broken = true;
      }
      answers_before_.clear();
      answers_after_.clear();
      const auto verdict =
          expected_.on_server_message(frame.type, frame.body, answers_before_, answers_after_,
                                      replacement_, statements_, server->statements);
      if (!reshaping && (verdict != ResponseTracker::Verdict::kForward ||
                         !answers_before_.empty() || !answers_after_.empty())) {
        reshaping = true;
        reshaped_.assign(as_text(data.first(forward)));
      }
      if (reshaping) {
        reshaped_ += answers_before_;
        if (verdict == ResponseTracker::Verdict::kForward) {
          reshaped_ += as_text(data.subspan(forward, frame.wire_size()));
        } else if (verdict == ResponseTracker::Verdict::kReplace) {
          pgwire::MessageWriter w(reshaped_);
          w.begin('E');
          w.bytes(replacement_);
          w.end();
        }
        reshaped_ += answers_after_;
      }
      forward += frame.wire_size();
    }
    if (forward > 0 && request_started_) {
      const uint64_t waited = micros_since(*request_started_);
      metrics.query_response_latency.observe(waited);
      metrics.query_database_response_latency.observe(waited);
      request_started_.reset();
    }
    const std::string_view out =
        reshaping ? std::string_view(reshaped_) : as_text(data.first(forward));
    if (!out.empty() && !client_gone_) {
      bool sent = client_.write(out);
      // A client slower than its server: stop reading the server until it catches up.
      if (sent && client_.has_backlog()) sent = co_await client_.flush();
      if (!sent) {
        client_gone_ = true;  // the client reader sees the closed socket and cleans up
        client_.close();
      }
    }
    inbound.consume(forward);
    if (violation || fatal) {
      server_lost(server, fatal);
      continue;
    }
    if (server_ != server) continue;
    if (outstanding_ == 0 && !unsynced_ && transaction_ == 'I' && !pinned_ && inbound.empty() &&
        expected_.empty()) {
      if (discarding_) {
        // DISCARD ALL left the server session as new: nothing applied, nothing prepared.
        server->applied.clear();
        server->statements.clear();
        settings_changed_ = false;
      }
      if (settings_changed_) {
        // SET, RESET or set_config() ran: learn what they left (a rolled-back SET is gone,
        // SET LOCAL too) so that any connection this client borrows next gets exactly that.
        settings_changed_ = false;
        auto found = co_await server->read_session_settings(custom_setting_names_);
        if (server_ != server) continue;
        if (!found) {
          server_lost(server, false);
          continue;
        }
        // As in PostgreSQL, a setting no SET holds any more has the client's startup value.
        for (const auto& [name, value] : startup_settings_) found->emplace(name, value);
        settings_ = std::move(*found);
        // The client may have sent more while the settings were read: then go on relaying.
        if (outstanding_ != 0 || unsynced_ || !inbound.empty() || !expected_.empty()) {
          buffered = !inbound.empty();
          continue;
        }
      }
      release_server();
    }
  }
}

void ClientSession::release_server() {
  auto server = std::move(server_);
  server_.reset();
  ctx_.metrics.database_connections_currently_borrowed.sub(1);
  ctx_.pools->release(std::move(server), true);
  if (ctx_.draining && !client_gone_)
    terminate("57P01", "terminating connection due to administrator command");
}

void ClientSession::server_lost(const std::shared_ptr<ServerConnection>& server,
                                bool fatal_forwarded) {
  if (server_ != server) return;
  server_.reset();
  expected_.clear();
  ctx_.metrics.database_connections_currently_borrowed.sub(1);
  server->broken = true;
  ctx_.pools->release(server, false);
  if (client_gone_) return;
  // The session the client had on the server is gone (its transaction, its settings):
  // it must know, so it is disconnected as PostgreSQL would.
  spdlog::warn("server connection {} lost while lent to client {}", server->id(), client_.peer());
  if (fatal_forwarded)
    client_.close();
  else
    terminate("08006", "the connection to the database server was lost");
}

awaitable<void> ClientSession::leave() {
  const bool was_closed = phase_ == Phase::kClosed;
  phase_ = Phase::kClosed;
  client_gone_ = true;
  server_attached_.notify();  // lets server_pump() end once no server is lent
  if (!was_closed) client_.close();
  if (!server_) co_return;
  auto server = server_;
  if (!pinned_ && !busy() && transaction_ != 'I') {
    // Abandoned inside a transaction: roll it back; the server reader returns the
    // connection at the ReadyForQuery that follows.
    std::string rollback;
    pgwire::write_query(rollback, "ROLLBACK");
    ++outstanding_;
    expected_.expect({ResponseTracker::Kind::kSimpleQuery, nullptr, {}});
    co_await server->transport().write_all(rollback);
    co_return;
  }
  if (pinned_ && *pinned_ != PinReason::kLoad && !busy()) {
    // A pinned session's state is wiped on the server and the connection goes back to the pool
    // at the ReadyForQuery that follows, instead of being closed. DISCARD ALL closes cursors,
    // drops temporary objects, resets settings and the role, deallocates statements, unlistens
    // and releases session advisory locks. A loaded library cannot be unloaded: LOAD closes.
    std::string cleanup;
    if (transaction_ != 'I') {
      pgwire::write_query(cleanup, "ROLLBACK");
      ++outstanding_;
      expected_.expect({ResponseTracker::Kind::kSimpleQuery, nullptr, {}});
    }
    pgwire::write_query(cleanup, "DISCARD ALL");
    ++outstanding_;
    expected_.expect({ResponseTracker::Kind::kSimpleQuery, nullptr, {}});
    unpin();
    discarding_ = true;
    co_await server->transport().write_all(cleanup);
    co_return;
  }
  // A request nobody will read, or state that cannot be wiped: the connection cannot be reused.
  if (busy()) server->send_cancel();
  server_.reset();
  ctx_.metrics.database_connections_currently_borrowed.sub(1);
  server->broken = true;
  ctx_.pools->release(server, false);
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

void ClientSession::cancel_running_query() {
  if (server_ && busy()) server_->send_cancel();
}

}  // namespace sluice::proxy
