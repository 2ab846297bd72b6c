#include "proxy/client_login.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "auth/crypto.hpp"
#include "auth/md5.hpp"
#include "auth/scram.hpp"
#include "proxy/admin_console.hpp"
#include "proxy/client_registry.hpp"
#include "proxy/login_gate.hpp"
#include "proxy/pool.hpp"
#include "proxy/secrets.hpp"

namespace sluice::proxy {
namespace {

constexpr size_t kMaxAuthMessage = 10000;
constexpr size_t kMaxCachedSettings = 1000;

}  // namespace

awaitable<std::optional<LoginResult>> ClientLogin::run() {
  // The gate is entered at the client's first byte: a connection that sends nothing takes no
  // place from those that log in (login_timeout ends it).
  if (inbound_.empty() && !co_await client_.read_some(inbound_, 1024)) co_return std::nullopt;
  LoginGate::Pass pass;
  if (ctx_.logins) {
    const auto queued_at = std::chrono::steady_clock::now();
    clock_.queued = true;
    pass = co_await ctx_.logins->enter();
    clock_.queued = false;
    clock_.started += std::chrono::steady_clock::now() - queued_at;
  }
  pgwire::StartupMessage startup;
  if (!co_await negotiate_startup(startup)) co_return std::nullopt;
  auto& metrics = ctx_.metrics;
  (client_.tls() ? metrics.client_connections_tls : metrics.client_connections_no_tls).add(1);
  if (auto unrecognized = pgwire::protocol_negotiation_needed(startup)) {
    // A newer minor version, or protocol options: answered as PostgreSQL 15 does (3.0, none
    // of the options), and the login goes on.
    std::string out;
    pgwire::write_negotiate_protocol_version(out, 3u << 16, *unrecognized);
    if (!co_await client_.write_all(out)) co_return std::nullopt;
  }
  LoginResult result;
  result.user = *startup.find("user");
  result.database = *startup.find("database");
  if (!co_await admit(startup, result)) co_return std::nullopt;
  // The secrets as they are now: a reload during this login leaves it what it began with.
  const std::shared_ptr<const SecretStore> secrets = ctx_.secrets;
  result.credential = secrets->find_shared(result.user);
  if (!result.credential && !secrets->unavailable().empty()) {
    // A secret the proxy may not read may be this user's: say so rather than fail the login as
    // a wrong password (the same answer for every user without credentials).
    spdlog::warn("login as \"{}\" from {}: no credentials for this user; {}", result.user,
                 client_.peer(), secrets->unavailable().front());
    std::string out;
    pgwire::write_error(out, "FATAL", "28000",
                        "This proxy has no credentials for the role \"" + result.user +
                            "\". Check the credentials for this role and try again.",
                        secrets->unavailable().front());
    co_await client_.write_all(out);
    co_return std::nullopt;
  }
  // An unknown user goes through the same exchange, against a decoy: nothing tells which
  // users exist.
  std::optional<Credential> decoy;
  if (!result.credential) decoy = secrets->decoy(result.user);
  const Credential& credential = result.credential ? *result.credential : *decoy;
  if (!co_await authenticate(credential, result.credential != nullptr, result.user))
    co_return std::nullopt;
  const bool ready =
      result.database == kAdminDatabase ? co_await enter_console(result) : co_await finish(result);
  if (!ready) co_return std::nullopt;
  co_return result;
}

awaitable<bool> ClientLogin::admit(const pgwire::StartupMessage& startup, LoginResult& result) {
  if (ctx_.config.require_tls && !client_.tls())
    co_return co_await send_fatal("28000", "This proxy requires TLS connections.");
  if (ctx_.clients->logged_in() >= ctx_.config.max_client_connections)
    co_return co_await send_fatal(
        "53300", "The maximum number of client connections to the proxy exceeded " +
                     std::to_string(ctx_.config.max_client_connections) + ".");
  if (ctx_.draining && !ctx_.handed_over)
    co_return co_await send_fatal("57P03", "the proxy is shutting down");
  if (auto error = settings_from_startup(startup.params, result.settings.wanted))
    co_return co_await send_fatal("22023", *error);
  result.settings.startup = result.settings.wanted;
  co_return true;
}

awaitable<bool> send_fatal(Transport& client, std::string_view sqlstate, std::string_view message) {
  std::string out;
  pgwire::write_error(out, "FATAL", sqlstate, message);
  co_await client.write_all(out);
  co_return false;
}

awaitable<bool> ClientLogin::flush() {
  if (to_client_.empty()) co_return true;
  const bool ok = client_.write(to_client_);
  to_client_.clear();
  if (!ok) co_return false;
  if (!client_.has_backlog()) co_return true;
  co_return co_await client_.flush();
}

awaitable<bool> ClientLogin::negotiate_startup(pgwire::StartupMessage& startup) {
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
      Transport::TakeTurn take_turn;
      if (ctx_.logins) take_turn = [gate = ctx_.logins] { return gate->next_step(); };
      co_await client_.start_tls_as_server(*ctx_.client_tls, std::move(take_turn));
    } catch (const boost::system::system_error& e) {
      spdlog::debug("TLS handshake with {} failed: {}", client_.peer(), e.code().message());
      co_return false;
    }
  }
  co_return co_await send_fatal("08P01", "too many startup negotiation packets");
}

awaitable<bool> ClientLogin::read_auth_message(std::string& payload) {
  for (;;) {
    pgwire::Frame frame;
    auto status = pgwire::peek_frame(inbound_.readable(), kMaxAuthMessage, frame);
    if (status == pgwire::FrameStatus::kReady) {
      if (frame.type != 'p') co_return false;
      payload.assign(pgwire::as_text(frame.body));
      inbound_.consume(frame.wire_size());
      co_return true;
    }
    if (status != pgwire::FrameStatus::kNeedMore) co_return false;
    if (!co_await client_.read_some(inbound_, 1024)) co_return false;
  }
}

awaitable<bool> ClientLogin::authenticate(const Credential& credential, bool known,
                                          const std::string& user) {
  const bool ok = credential.client_auth == AuthType::kMd5
                      ? co_await authenticate_md5(credential)
                      : co_await authenticate_scram(credential);
  if (ok && known) co_return true;
  ctx_.metrics.client_connections_setup_failed_auth.add(1);
  spdlog::info("login failed for user \"{}\" from {}", user, client_.peer());
  if (ctx_.config.auth_failure_delay > 0) {
    // As PostgreSQL's auth_delay: each guess costs the guesser this long, not the proxy.
    steady_timer delay(client_.get_executor(),
                       std::chrono::milliseconds(ctx_.config.auth_failure_delay));
    co_await delay.async_wait(as_tuple_awaitable);
  }
  // One message for a wrong password and an unknown user: nothing tells which users exist.
  co_return co_await send_fatal("28P01",
                                "password authentication failed for user \"" + user + "\"");
}

awaitable<bool> ClientLogin::authenticate_scram(const Credential& credential) {
  std::string out;
  const std::string_view mechanisms[] = {"SCRAM-SHA-256"};
  pgwire::write_auth_sasl(out, mechanisms);
  if (!co_await client_.write_all(out)) co_return false;
  std::string payload;
  if (!co_await read_auth_message(payload)) co_return false;
  auto initial = pgwire::decode_sasl_initial_response(
      {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()});
  if (!initial || initial->mechanism != "SCRAM-SHA-256") co_return false;
  // Current and, during a rotation's grace period, previous: one exchange checks both.
  std::array<const StagedPassword*, auth::kMaxScramCandidates> passwords;
  const size_t count =
      credential.client_passwords(std::chrono::system_clock::now(), rotation_grace(), passwords);
  std::array<const auth::ScramVerifier*, auth::kMaxScramCandidates> verifiers;
  for (size_t i = 0; i < verifiers.size(); ++i) verifiers[i] = &passwords[i]->scram;
  auth::ScramServer scram(std::span(verifiers.data(), count),
                          auth::base64_encode(auth::pooled_random_bytes(18)));
  auto server_first = scram.handle_client_first(initial->data);
  if (!server_first) co_return false;
  out.clear();
  pgwire::write_auth_sasl_continue(out, *server_first);
  if (!co_await client_.write_all(out)) co_return false;
  if (!co_await read_auth_message(payload)) co_return false;
  auto server_final = scram.handle_client_final(payload);
  if (!server_final) co_return false;
  if (scram.matched() != 0) log_previous_password(credential);
  pgwire::write_auth_sasl_final(to_client_, *server_final);
  co_return true;
}

std::chrono::seconds ClientLogin::rotation_grace() const {
  return std::chrono::seconds(ctx_.config.rotation_grace_seconds);
}

void ClientLogin::log_previous_password(const Credential& credential) const {
  spdlog::debug("user \"{}\" from {} logged in with the password staged AWSPREVIOUS",
                credential.username, client_.peer());
}

awaitable<bool> ClientLogin::authenticate_md5(const Credential& credential) {
  std::array<uint8_t, 4> salt;
  const std::string random = auth::pooled_random_bytes(4);
  std::memcpy(salt.data(), random.data(), 4);
  std::string out;
  pgwire::write_auth_md5(out, salt);
  if (!co_await client_.write_all(out)) co_return false;
  std::string payload;
  if (!co_await read_auth_message(payload)) co_return false;
  auto password =
      pgwire::decode_password({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()});
  if (!password) co_return false;
  const auto matched =
      credential.check_md5(salt, *password, std::chrono::system_clock::now(), rotation_grace());
  if (matched && *matched != 0) log_previous_password(credential);
  co_return matched.has_value();
}

awaitable<bool> ClientLogin::finish(LoginResult& result) {
  pgwire::write_auth_ok(to_client_);
  Pool& pool = ctx_.pools->pool_for(result.database, result.credential);
  result.pool = &pool;
  const Settings& settings = result.settings.wanted;
  const std::map<std::string, std::string>* parameters = known_parameters(settings, pool);
  std::map<std::string, std::string> learned;
  if (!parameters) {
    // First client of this pool, or first with these settings.
    if (auto error = co_await check_settings(settings, pool, learned)) {
      co_await flush();
      co_return co_await send_fatal(error->sqlstate, error->message);
    }
    parameters = &learned;
  }
  for (const auto& [name, value] : *parameters)
    pgwire::write_parameter_status(to_client_, name, value);
  pgwire::write_backend_key_data(to_client_, cancel_pid_, cancel_key_);
  pgwire::write_ready_for_query(to_client_, 'I');
  co_return co_await flush();
}

awaitable<bool> ClientLogin::enter_console(LoginResult& result) {
  const auto& admins = ctx_.config.admin_users;
  if (!ctx_.admin || std::find(admins.begin(), admins.end(), result.user) == admins.end()) {
    co_await flush();
    co_return co_await send_fatal(
        "28000", "user \"" + result.user +
                     "\" may not use the admin console: database \"sluice\" is for the users "
                     "listed in admin_users");
  }
  pgwire::write_auth_ok(to_client_);
  result.admin = true;
  // Listed in SHOW POOLS as PgBouncer lists its console; never given a server connection.
  result.pool = &ctx_.pools->pool_for(std::string(kAdminDatabase), result.credential);
  for (const auto& [name, value] : admin_console_parameters(result.settings.wanted))
    pgwire::write_parameter_status(to_client_, name, value);
  pgwire::write_backend_key_data(to_client_, cancel_pid_, cancel_key_);
  pgwire::write_ready_for_query(to_client_, 'I');
  co_return co_await flush();
}

const std::map<std::string, std::string>* ClientLogin::known_parameters(const Settings& settings,
                                                                        Pool& pool) const {
  if (settings.empty()) return ctx_.pools->default_parameters(pool);
  auto it = pool.validated_settings.find(settings_key(settings));
  return it != pool.validated_settings.end() ? &it->second : nullptr;
}

awaitable<std::optional<ServerError>> ClientLogin::check_settings(
    const Settings& settings, Pool& pool, std::map<std::string, std::string>& learned) {
  auto borrowed = co_await ctx_.pools->acquire(
      pool, std::chrono::steady_clock::now() +
                std::chrono::seconds(ctx_.config.connection_borrow_timeout));
  if (!borrowed.lease) co_return borrowed.error;
  auto error = co_await borrowed.lease->apply_settings(settings);
  learned = borrowed.lease->parameters;
  borrowed.lease.release(!borrowed.lease->broken);
  if (error) co_return error;
  if (settings.empty()) {
    ctx_.pools->learn_default_parameters(pool, learned);
  } else {
    if (pool.validated_settings.size() >= kMaxCachedSettings) pool.validated_settings.clear();
    pool.validated_settings[settings_key(settings)] = learned;
  }
  co_return std::nullopt;
}

}  // namespace sluice::proxy
