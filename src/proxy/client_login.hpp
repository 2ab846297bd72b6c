// A client's way in, from its first byte to its first ReadyForQuery: SSL and GSS negotiation,
// the startup packet, the proxy's own admission checks (TLS required, client limit, draining,
// startup settings), SCRAM-SHA-256 or MD5 against the secret store, and the first check of the
// client's settings against the server (once per distinct set, cached by the pool).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "pgwire/codec.hpp"
#include "proxy/context.hpp"
#include "proxy/session_settings.hpp"
#include "proxy/transport.hpp"

namespace sluice::proxy {

class Pool;
struct Credential;
struct ServerError;

struct LoginResult {
  std::string user;
  std::string database;
  ClientSettings settings;
  Pool* pool = nullptr;
  std::shared_ptr<const Credential> credential;  // the user's, from the secrets of the login
  bool admin = false;  // the admin console (database "sluice"): no server connection
};

// Sends a FATAL ErrorResponse (the caller closes the connection). Always false, for
// `co_return co_await send_fatal(...)` in checks.
awaitable<bool> send_fatal(Transport& client, std::string_view sqlstate, std::string_view message);

// What login_timeout measures: the client's own time, from its connection on, less the time it
// waited its turn at the login gate (a storm queues there; those queued are not timed out).
struct LoginClock {
  std::chrono::steady_clock::time_point started;
  bool queued = false;  // waiting at the gate now
};

class ClientLogin {
 public:
  // `inbound` keeps what the client sent beyond its login (a pipelined first query). `clock`
  // is the session's, which the registry's sweep reads.
  ClientLogin(ProxyContext& ctx, Transport& client, ReadBuffer& inbound, uint32_t cancel_pid,
              uint32_t cancel_key, LoginClock& clock)
      : ctx_(ctx),
        client_(client),
        inbound_(inbound),
        cancel_pid_(cancel_pid),
        cancel_key_(cancel_key),
        clock_(clock) {}

  // Nullopt when the client was refused (and told why with a FATAL) or left.
  awaitable<std::optional<LoginResult>> run();

 private:
  awaitable<bool> negotiate_startup(pgwire::StartupMessage& startup);
  // The checks made before any password: a FATAL for the first that fails.
  awaitable<bool> admit(const pgwire::StartupMessage& startup, LoginResult& result);
  // `known`: the credential is the user's (not a decoy).
  awaitable<bool> authenticate(const Credential& credential, bool known, const std::string& user);
  awaitable<bool> authenticate_scram(const Credential& credential);
  awaitable<bool> authenticate_md5(const Credential& credential);
  awaitable<bool> read_auth_message(std::string& payload);
  std::chrono::seconds rotation_grace() const;
  void log_previous_password(const Credential& credential) const;
  // AuthenticationOk, the server's parameters for these settings, BackendKeyData and
  // ReadyForQuery.
  awaitable<bool> finish(LoginResult& result);
  // The same for the admin console, if the user is one of admin_users (else a FATAL).
  awaitable<bool> enter_console(LoginResult& result);
  // What the server reports for these settings, if the pool knows already.
  const std::map<std::string, std::string>* known_parameters(const Settings& settings,
                                                             Pool& pool) const;
  // Lets the server check these settings on a lent connection, and learns what it reports
  // (canonical forms such as "ISO, MDY"); the pool remembers.
  awaitable<std::optional<ServerError>> check_settings(const Settings& settings, Pool& pool,
                                                       std::map<std::string, std::string>& learned);
  awaitable<bool> send_fatal(std::string_view sqlstate, std::string_view message) {
    return sluice::proxy::send_fatal(client_, sqlstate, message);
  }
  awaitable<bool> flush();

  ProxyContext& ctx_;
  Transport& client_;
  ReadBuffer& inbound_;
  uint32_t cancel_pid_;
  uint32_t cancel_key_;
  LoginClock& clock_;
  std::string to_client_;  // replies gathered for one write
};

}  // namespace sluice::proxy
