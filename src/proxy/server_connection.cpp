#include "proxy/server_connection.hpp"

#include <sys/socket.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "auth/crypto.hpp"
#include "auth/md5.hpp"
#include "auth/scram.hpp"
#include "proxy/keepalive.hpp"
#include "proxy/pool.hpp"  // Pool: whose user and database this connection logs in as
#include "proxy/secrets.hpp"
#include "proxy/target_health.hpp"

namespace sluice::proxy {
namespace {

// With several hosts, how long one may take to answer a login before the next is tried.
constexpr auto kHostLoginLimit = std::chrono::seconds(5);

bool transient_sqlstate(std::string_view code) {
  // cannot_connect_now (starting up / shutting down), too_many_connections, admin shutdown.
  return code == "57P03" || code == "53300" || code == "57P01" || code == "08006";
}

// The reply to one authentication request from the server, appended to `out`.
std::optional<ServerError> answer_authentication(const pgwire::AuthenticationRequest& request,
                                                 const StagedPassword& cred,
                                                 std::optional<auth::ScramClient>& scram,
                                                 std::string& out) {
  auto protocol_error = [](const std::string& what) {
    return std::optional<ServerError>(
        ServerError{"FATAL", "08P01", "protocol error from the database server: " + what, false});
  };
  const std::string_view data(reinterpret_cast<const char*>(request.data.data()),
                              request.data.size());
  switch (request.code) {
    case 0:
      return std::nullopt;
    case 3:
      pgwire::write_password(out, cred.password);
      return std::nullopt;
    case 5: {
      if (data.size() != 4) return protocol_error("malformed MD5 salt");
      std::array<uint8_t, 4> salt;
      std::copy_n(request.data.begin(), 4, salt.begin());
      pgwire::write_password(out, auth::md5_client_response(cred.md5_hash, salt));
      return std::nullopt;
    }
    case 10: {
      auto mechanisms = pgwire::decode_sasl_mechanisms(request.data);
      if (!mechanisms ||
          std::find(mechanisms->begin(), mechanisms->end(), "SCRAM-SHA-256") == mechanisms->end())
        return protocol_error("the server offers no SCRAM-SHA-256");
      scram.emplace(cred.password, auth::base64_encode(auth::random_bytes(18)),
                    cred.server_salted.get());
      pgwire::write_sasl_initial_response(out, "SCRAM-SHA-256", scram->client_first());
      return std::nullopt;
    }
    case 11: {
      if (!scram) return protocol_error("SASL continue without SASL");
      auto final_message = scram->handle_server_first(data);
      if (!final_message) return protocol_error("malformed SCRAM server-first-message");
      pgwire::write_sasl_response(out, *final_message);
      return std::nullopt;
    }
    case 12:
      if (!scram || !scram->verify_server_final(data))
        return protocol_error("the server's SCRAM signature is wrong");
      return std::nullopt;
    default:
      return protocol_error("unsupported authentication method " + std::to_string(request.code));
  }
}

}  // namespace

ServerError server_error_from(const pgwire::ErrorFields& fields) {
  ServerError e;
  e.severity = std::string(fields.severity().empty() ? "ERROR" : fields.severity());
  e.sqlstate = std::string(fields.sqlstate().empty() ? "08006" : fields.sqlstate());
  e.message = std::string(fields.message());
  e.transient = transient_sqlstate(e.sqlstate);
  return e;
}

ServerConnection::ServerConnection(ProxyContext& ctx, Pool& pool, uint64_t id)
    : statements(ctx.config.max_prepared_statements),
      ctx_(ctx),
      pool_(pool),
      pool_states_(pool.servers),
      id_(id) {
  ctx_.metrics.database_connections_in_state[static_cast<size_t>(state_)].add(1);
  ++pool_states_[static_cast<size_t>(state_)];
}

ServerConnection::ServerConnection(ProxyContext& ctx, Pool& pool, uint64_t id, Moved moved)
    : ServerConnection(ctx, pool, id) {
  transport_ =
      std::make_unique<Transport>(*ctx_.poller, ctx_.io.get_executor(), std::move(moved.transport));
  transport_->serve_first_in_batch();
  backend_key_ = moved.backend_key;
  parameters = std::move(moved.parameters);
  applied = std::move(moved.applied);
  statements = std::move(moved.statements);
  server_max_connections = moved.server_max_connections;
  generation = moved.generation;
  opened = moved.opened;
  host_index_ = moved.host_index;
  host_ = std::move(moved.host);
  opened_at = moved.opened_at;
  if (opened) {
    ctx_.metrics.database_connections.add(1);
    if (transport_->tls()) ctx_.metrics.database_connections_with_tls.add(1);
  }
}

ServerConnection::Moved ServerConnection::move_out() {
  Moved moved;
  moved.opened = opened;
  if (opened) {
    // Counted by the worker it moves to from now on.
    ctx_.metrics.database_connections.sub(1);
    if (transport_->tls()) ctx_.metrics.database_connections_with_tls.sub(1);
    opened = false;
  }
  moved.transport = transport_->detach();
  moved.backend_key = backend_key_;
  moved.parameters = std::move(parameters);
  moved.applied = std::move(applied);
  moved.statements = std::move(statements);
  moved.server_max_connections = server_max_connections;
  moved.generation = generation;
  moved.host_index = host_index_;
  moved.host = host_;
  moved.opened_at = opened_at;
  set_state(ServerState::kClosed);
  return moved;
}

ServerConnection::~ServerConnection() {
  ctx_.metrics.database_connections_in_state[static_cast<size_t>(state_)].sub(1);
  // Not its pool's count: the pool closes every connection it lets go (forget), and one that
  // ends unclosed (a frame or handler dropped at shutdown) may outlive its pool.
  if (opened) {
    ctx_.metrics.database_connections.sub(1);
    if (transport_ && transport_->tls()) ctx_.metrics.database_connections_with_tls.sub(1);
  }
}

awaitable<bool> ServerConnection::read_frame(pgwire::Frame& frame) {
  for (;;) {
    const auto status = pgwire::peek_frame(inbound_.readable(), kMaxServerMessage, frame);
    if (status == pgwire::FrameStatus::kReady) co_return true;
    // A server that breaks framing is not trusted further.
    if (status != pgwire::FrameStatus::kNeedMore) co_return false;
    if (!co_await transport_->read_some(inbound_)) co_return false;
  }
}

awaitable<std::optional<ServerError>> ServerConnection::open(Clock::time_point deadline) {
  const bool roles_matter = !ctx_.config.target_hosts.empty();
  HostRole role = HostRole::kUnknown;
  if (!roles_matter) {
    auto error = co_await attempt(0, deadline, roles_matter, role);
    if (!error) count_opened();
    co_return error;
  }

  std::vector<size_t> order = ctx_.health->login_order();
  const std::vector<HostPort> servers = ctx_.config.servers();  // a reload may change them
  std::string why;
  bool asked_again = false;
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t index = order[k];
    if (index >= servers.size()) continue;  // a host a reload has just removed
    // A host that does not answer must not keep the others from being tried.
    const auto limit =
        k + 1 < order.size() ? std::min(deadline, Clock::now() + kHostLoginLimit) : deadline;
    role = HostRole::kUnknown;
    auto error = co_await attempt(index, limit, roles_matter, role);
    const std::string name = servers[index].label();
    if (!error) {
      // Read after recording this login: it may have changed the decision.
      const int primary = ctx_.health->primary();
      const bool unchecked = ctx_.health->any_unchecked();
      if (primary == static_cast<int>(index) && !unchecked) {
        count_opened();
        co_return std::nullopt;
      }
      why += (why.empty() ? "" : "; ") + name +
             (ctx_.health->fenced(index) ? std::string(": fenced (another host accepts writes)")
                                         : std::string(": a primary, other hosts not checked yet"));
    } else {
      why += (why.empty() ? "" : "; ") + name + ": " +
             (role == HostRole::kStandby ? std::string("a standby") : error->message);
      // The server refused this user or database: every host of the cluster would.
      if (role != HostRole::kStandby && !error->transient && error->sqlstate != "08006" &&
          error->sqlstate != "08P01")
        co_return error;
    }
    if (Clock::now() >= deadline) break;
    // Every host has answered now; the primary they chose was passed over (another host was
    // not checked yet): once more to it.
    if (k + 1 == order.size() && !asked_again) {
      asked_again = true;
      const int primary = ctx_.health->primary();
      if (primary >= 0 && primary != static_cast<int>(index) && !ctx_.health->any_unchecked())
        order.push_back(static_cast<size_t>(primary));
    }
  }
  co_return ServerError{"FATAL", "08006", "no primary among the database servers (" + why + ")",
                        true};
}

awaitable<void> ServerConnection::check_host(size_t index, Clock::time_point deadline) {
  HostRole role = HostRole::kUnknown;
  co_await attempt(index, deadline, true, role);
}

void ServerConnection::cut() {
  broken = true;
  if (transport_) transport_->shut_down();
}

void ServerConnection::count_opened() {
  auto& metrics = ctx_.metrics;
  opened = true;
  last_used = Clock::now();
  opened_at = last_used;
  metrics.database_connections_setup_succeeded.add(1);
  metrics.database_connections.add(1);
  if (transport_->tls()) metrics.database_connections_with_tls.add(1);
}

awaitable<std::optional<ServerError>> ServerConnection::attempt(size_t index,
                                                                Clock::time_point deadline,
                                                                bool roles_matter, HostRole& role) {
  // What an earlier attempt (another host) left behind.
  if (transport_) transport_->close();
  transport_.reset();
  inbound_.consume(inbound_.readable().size());
  parameters.clear();
  backend_key_ = {};
  server_max_connections.reset();
  timeline_.reset();
  const std::vector<HostPort> servers = ctx_.config.servers();
  host_index_ = std::min(index, servers.size() - 1);
  host_ = servers[host_index_];

  LoginOutcome outcome;
  auto error = co_await establish(deadline, outcome, roles_matter, role);
  outcome.ok = !error || role == HostRole::kStandby;
  if (error && !outcome.ok) {
    outcome.sqlstate = error->sqlstate;
    outcome.message = error->message;
  }
  ctx_.health->record(index, classify_login(pool_.credential->username, outcome), role, timeline_);
  co_return error;
}

awaitable<std::optional<ServerError>> ServerConnection::establish(Clock::time_point deadline,
                                                                  LoginOutcome& outcome,
                                                                  bool roles_matter,
                                                                  HostRole& role) {
  auto& metrics = ctx_.metrics;
  metrics.database_connection_requests.add(1);
  auto executor = co_await asio::this_coro::executor;
  // Shared with the watchdog, which may outlive this frame by a queued completion.
  auto socket = std::make_shared<tcp_socket>(executor);

  // One watchdog bounds the whole setup: it closes the socket, which fails any pending step
  // (a connect to a host that never answers included).
  auto watchdog = std::make_shared<steady_timer>(executor, deadline);
  std::weak_ptr<ServerConnection> weak = weak_from_this();
  const uint64_t this_attempt = ++attempts_;
  watchdog->async_wait(
      [weak, weak_socket = std::weak_ptr(socket), this_attempt](boost::system::error_code ec) {
        if (ec) return;
        if (auto s = weak_socket.lock()) {
          boost::system::error_code ignored;
          s->close(ignored);
        }
        if (auto self = weak.lock(); self && self->transport_ && self->attempts_ == this_attempt)
          self->transport_->close();
      });
  struct CancelOnExit {
    std::shared_ptr<steady_timer> t;
    ~CancelOnExit() { t->cancel(); }
  } cancel_on_exit{watchdog};

  auto fail = [&](std::string message, bool transient) {
    metrics.database_connections_setup_failed.add(1);
    ServerError e;
    e.message = std::move(message);
    e.transient = transient;
    return std::optional<ServerError>(std::move(e));
  };

  const HostPort target = host_;  // a copy: the connection may be moved meanwhile
  boost::system::error_code ec;
  outcome.step = LoginStep::kResolve;
  tcp_resolver resolver(executor);
  auto [rec, endpoints] =
      co_await resolver.async_resolve(target.host, std::to_string(target.port), as_tuple_awaitable);
  if (rec) co_return fail("could not resolve \"" + target.host + "\": " + rec.message(), true);

  // During a rotation the database may take another staged password than the current one:
  // each refused password (28P01) costs a new connection, as PostgreSQL closes after it.
  // Held here: a reload may give the pool a new credential while this login runs.
  const std::shared_ptr<const Credential> held = pool_.credential;
  const Credential& credential = *held;
  const auto tries = credential.server_attempts();
  // Read together: a reload may change both while this login runs.
  const TargetTls mode = ctx_.target_tls ? ctx_.config.target_tls : TargetTls::kDisable;
  ssl::context* const target_tls = ctx_.target_tls;
  for (size_t login_try = 0; login_try < tries.size(); ++login_try) {
    const auto [stage, password] = tries[login_try];
    outcome.step = LoginStep::kConnect;
    transport_.reset();  // the refused try's connection, closed
    parameters.clear();
    std::tie(ec, std::ignore) =
        co_await asio::async_connect(*socket, endpoints, as_tuple_awaitable);
    if (ec || Clock::now() >= deadline) {
      outcome.no_answer = Clock::now() >= deadline || ec == asio::error::timed_out ||
                          ec == asio::error::host_unreachable ||
                          ec == asio::error::network_unreachable;
      const std::string why = ec && ec != asio::error::operation_aborted
                                  ? ec.message()
                                  : std::string("no answer before the deadline");
      co_return fail("could not connect to the database server at " + target.host + ":" +
                         std::to_string(target.port) + ": " + why,
                     true);
    }
    if (auto refused = apply_keepalive(socket->native_handle(), ctx_.config.target_keepalive);
        !refused.empty())
      spdlog::warn("server connection {}: keepalive not set: {}", id_, refused);
    // The socket is moved into the transport; a next try connects it afresh.
    transport_ = std::make_unique<Transport>(*ctx_.poller, std::move(*socket));
    transport_->serve_first_in_batch();

    if (mode != TargetTls::kDisable) {
      outcome.step = LoginStep::kTls;
      metrics.database_connection_requests_with_tls.add(1);
      std::string request;
      pgwire::write_ssl_request(request);
      if (!co_await transport_->write_all(request))
        co_return fail("the database server closed the connection", true);
      while (inbound_.empty())
        if (!co_await transport_->read_some(inbound_, 64))
          co_return fail("the database server closed the connection", true);
      const char answer = static_cast<char>(inbound_.readable()[0]);
      inbound_.consume(1);
      // Bytes beyond the answer would be injected plaintext (CVE-2021-23222): refuse.
      if (!inbound_.empty()) co_return fail("the database server sent data before TLS", false);
      if (answer == 'S') {
        try {
          co_await transport_->start_tls_as_client(*target_tls, target.host,
                                                   mode == TargetTls::kVerifyFull);
        } catch (const boost::system::system_error& e) {
          co_return fail("TLS handshake with the database server failed: " + e.code().message(),
                         false);
        }
      } else if (mode != TargetTls::kPrefer) {
        co_return fail("the database server does not support TLS, and target.tls requires it",
                       false);
      }
    }

    outcome.step = LoginStep::kLogin;
    auto error = co_await login(credential, *password);
    const bool refused = error && error->sqlstate == "28P01";
    if (refused && login_try + 1 < tries.size()) {
      spdlog::info("the database server refused user \"{}\"'s password staged {}; trying {}",
                   credential.username, stage_name(stage), stage_name(tries[login_try + 1].first));
      inbound_.consume(inbound_.readable().size());  // whatever came after the FATAL
      continue;
    }
    if (error) {
      metrics.database_connections_setup_failed.add(1);
      co_return error;
    }
    const Stage remembered = credential.server_stage->exchange(stage);
    if (remembered != stage)
      spdlog::info("server logins for user \"{}\" use the password staged {} from now on",
                   credential.username, stage_name(stage));
    break;
  }
  // PostgreSQL 14+ said at login whether it is a standby; older servers are asked.
  std::optional<std::string> in_hot_standby;
  if (auto it = parameters.find("in_hot_standby"); it != parameters.end())
    in_hot_standby = it->second;
  std::optional<std::string> in_recovery;
  auto setup_error = co_await run_setup(roles_matter, in_recovery);
  role = role_from(in_hot_standby, in_recovery);
  if (roles_matter && role == HostRole::kStandby) {
    // Logged in, but a standby takes no writes: never lent (init_query may have failed there).
    co_return fail("the database server " + target.label() + " is a standby", true);
  }
  if (setup_error) {
    metrics.database_connections_setup_failed.add(1);
    co_return setup_error;
  }
  if (roles_matter && role != HostRole::kPrimary)
    co_return fail("the database server " + target.label() + " did not say whether it is a standby",
                   true);
  co_return std::nullopt;  // open() counts it, if it keeps it
}

awaitable<std::optional<ServerError>> ServerConnection::login(const Credential& cred,
                                                              const StagedPassword& password) {
  auto lost = [] {
    return std::optional<ServerError>(ServerError{
        "FATAL", "08006", "the database server closed the connection during login", true});
  };
  auto protocol_error = [](const std::string& what) {
    return std::optional<ServerError>(
        ServerError{"FATAL", "08P01", "protocol error from the database server: " + what, false});
  };
  std::string out;
  const std::pair<std::string, std::string> params[] = {{"user", cred.username},
                                                        {"database", pool_.database}};
  pgwire::write_startup(out, params);
  if (!co_await transport_->write_all(out)) co_return lost();

  std::optional<auth::ScramClient> scram;
  // No `switch` with co_return inside in coroutines: GCC 12 miscompiles it.
  for (;;) {
    pgwire::Frame frame;
    if (!co_await read_frame(frame)) co_return lost();
    out.clear();
    const char type = frame.type;
    if (type == 'R') {
      auto request = pgwire::decode_authentication(frame.body);
      if (!request) co_return protocol_error("malformed authentication request");
      if (auto error = answer_authentication(*request, password, scram, out)) co_return error;
    } else if (type == 'S') {
      if (auto ps = pgwire::decode_parameter_status(frame.body)) parameters[ps->name] = ps->value;
    } else if (type == 'K') {
      if (auto key = pgwire::decode_backend_key_data(frame.body)) backend_key_ = *key;
    } else if (type == 'E') {
      auto fields = pgwire::decode_error_fields(frame.body);
      consume_frame(frame);
      if (!fields) co_return protocol_error("malformed ErrorResponse");
      co_return server_error_from(*fields);
    } else if (type == 'Z') {
      consume_frame(frame);
      co_return std::nullopt;
    } else if (type != 'N' && type != 'v') {  // notices; NegotiateProtocolVersion
      co_return protocol_error("unexpected message during login");
    }
    consume_frame(frame);
    if (!out.empty() && !co_await transport_->write_all(out)) co_return lost();
  }
}

awaitable<std::optional<ServerError>> ServerConnection::run_setup(
    bool ask_role, std::optional<std::string>& in_recovery) {
  // The role check, init_query and the max_connections probe go in one write; a
  // ReadyForQuery ends each. The check comes first: on a standby a writing init_query fails.
  // A primary's timeline is the first 8 hex digits of its current WAL file's name (any user may
  // ask; a standby may not, hence the CASE), so split brain is judged at no round trip more.
  enum class Step { kRecovery, kInitQuery, kMaxConnections };
  std::vector<Step> steps;
  std::string out;
  if (ask_role) {
    pgwire::write_query(out,
                        "SELECT pg_catalog.pg_is_in_recovery(), CASE WHEN "
                        "pg_catalog.pg_is_in_recovery() THEN NULL ELSE "
                        "pg_catalog.substr(pg_catalog.pg_walfile_name("
                        "pg_catalog.pg_current_wal_lsn()), 1, 8) END");
    steps.push_back(Step::kRecovery);
  }
  if (!ctx_.config.init_query.empty()) {
    pgwire::write_query(out, ctx_.config.init_query);
    steps.push_back(Step::kInitQuery);
  }
  pgwire::write_query(out, "SHOW max_connections");
  steps.push_back(Step::kMaxConnections);
  if (!co_await transport_->write_all(out))
    co_return ServerError{"FATAL", "08006", "the database server closed the connection", true};
  std::optional<ServerError> error;
  size_t step = 0;
  while (step < steps.size()) {
    pgwire::Frame frame;
    if (!co_await read_frame(frame))
      co_return ServerError{"FATAL", "08006", "the database server closed the connection", true};
    const Step now = steps[step];
    if (frame.type == 'E') {
      // A role check that failed (a promotion between its two calls) leaves the role to
      // in_hot_standby and the timeline unknown: no reason to refuse the login.
      if (now == Step::kRecovery) {
        consume_frame(frame);
        continue;
      }
      if (auto fields = pgwire::decode_error_fields(frame.body); fields && !error) {
        error = server_error_from(*fields);
        if (now == Step::kInitQuery) error->message = "init_query failed: " + error->message;
      }
    } else if (frame.type == 'D' && now != Step::kInitQuery) {
      if (auto row = pgwire::decode_data_row(frame.body); row && !row->empty() && (*row)[0]) {
        const std::string value(*(*row)[0]);
        if (now == Step::kRecovery) {
          in_recovery = value;
          if (row->size() > 1 && (*row)[1]) timeline_ = timeline_from(*(*row)[1]);
        } else {
          try {
            server_max_connections = std::stoi(value);
          } catch (const std::exception&) {
          }
        }
      }
    } else if (frame.type == 'S') {
      if (auto ps = pgwire::decode_parameter_status(frame.body)) parameters[ps->name] = ps->value;
    } else if (frame.type == 'Z') {
      ++step;
    }
    consume_frame(frame);
  }
  co_return error;
}

awaitable<ServerConnection::QueryOutcome> ServerConnection::simple_query(std::string_view sql) {
  QueryOutcome outcome;
  std::string out;
  pgwire::write_query(out, sql);
  if (!co_await transport_->write_all(out)) co_return outcome;
  for (;;) {
    pgwire::Frame frame;
    if (!co_await read_frame(frame)) co_return outcome;
    if (frame.type == 'E') {
      if (auto fields = pgwire::decode_error_fields(frame.body); fields && !outcome.error)
        outcome.error = server_error_from(*fields);
    } else if (frame.type == 'S') {
      if (auto ps = pgwire::decode_parameter_status(frame.body)) parameters[ps->name] = ps->value;
    } else if (frame.type == 'D') {
      auto row = pgwire::decode_data_row(frame.body);
      if (!row) outcome.malformed = true;
      if (row) {
        auto& values = outcome.rows.emplace_back();
        for (const auto& value : *row)
          values.push_back(value ? std::optional<std::string>(*value) : std::nullopt);
      }
    } else if (frame.type == 'Z') {
      auto status = pgwire::decode_ready_for_query(frame.body);
      consume_frame(frame);
      outcome.status = status.value_or(0);
      co_return outcome;
    }
    consume_frame(frame);
  }
}

awaitable<std::optional<ServerError>> ServerConnection::apply_settings(const Settings& wanted) {
  const std::string sql = settings_sync_sql(applied, wanted);
  if (sql.empty()) co_return std::nullopt;
  QueryOutcome outcome = co_await simple_query(sql);
  if (outcome.status != 'I') {
    broken = true;
    co_return ServerError{"FATAL", "08006", "the database server closed the connection", false};
  }
  if (!outcome.error) applied = wanted;
  co_return outcome.error;
}

awaitable<std::optional<Settings>> ServerConnection::read_session_settings(
    const std::vector<std::string>& custom_names) {
  std::string sql =
      "SELECT name, pg_catalog.current_setting(name) FROM pg_catalog.pg_settings "
      "WHERE source = 'session'";
  std::string names;
  for (const auto& name : custom_names) {
    if (!is_valid_guc_name(name)) continue;  // [A-Za-z0-9_.]: nothing to escape
    names += names.empty() ? "'" : ",'";
    names += name;
    names += '\'';
  }
  if (!names.empty()) {
    // An empty value is what RESET leaves of a custom setting: the same as never set.
    sql +=
        " UNION ALL SELECT n, v FROM (SELECT n, pg_catalog.current_setting(n, true) AS v "
        "FROM pg_catalog.unnest(ARRAY[" +
        names + "]::text[]) AS n) AS custom WHERE v <> ''";
  }
  QueryOutcome outcome = co_await simple_query(sql);
  Settings found;
  bool failed = outcome.status != 'I' || outcome.error || outcome.malformed;
  for (const auto& row : outcome.rows) {
    if (row.size() != 2 || !row[0] || !row[1]) {
      failed = true;
      break;
    }
    found[*row[0]] = *row[1];
  }
  if (failed) {
    broken = true;
    co_return std::nullopt;
  }
  applied = found;
  co_return found;
}

bool ServerConnection::server_went_away(bool look_now) {
  if (broken) return true;
  if (!transport_) return false;  // a test's connection
  if (!transport_->is_open()) return true;
  if (!transport_->peer_sent_something(look_now)) return false;
  broken = true;  // a goodbye (FATAL on shutdown), EOF or an error
  return true;
}

std::optional<ServerConnection::CancelTarget> ServerConnection::cancel_target() const {
  if (backend_key_.process_id == 0 || !transport_) return std::nullopt;
  CancelTarget target{transport_->remote_endpoint(), {}};
  if (target.endpoint.port() == 0) return std::nullopt;
  pgwire::write_cancel_request(target.packet, backend_key_.process_id, backend_key_.secret_key);
  return target;
}

void ServerConnection::log_state_change(ServerState next) const {
  spdlog::debug("server connection {}: {} -> {}", id_, server_state_name(state_),
                server_state_name(next));
}

void ServerConnection::close() {
  if (transport_) transport_->close();
  set_state(ServerState::kClosed);
}

}  // namespace sluice::proxy
