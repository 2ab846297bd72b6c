// One client of the proxy, from its first byte to its last: TLS and startup negotiation,
// authentication, then the transaction-pooled relay.
//
// Two coroutines carry the relay. The client reader forwards client messages to the server
// connection it borrows on demand; while a connection is lent, a server reader forwards the
// server's replies and returns the connection at the ReadyForQuery that ends the client's last
// pending request outside a transaction. Both run on one executor, so the state below changes
// only between suspension points.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "pgwire/codec.hpp"
#include "proxy/context.hpp"
#include "proxy/pinning.hpp"
#include "proxy/prepared_statements.hpp"
#include "proxy/session_settings.hpp"
#include "proxy/transport.hpp"
#include "proxy/wakeup.hpp"

namespace sluice::proxy {

class Pool;
class ServerConnection;
struct Credential;
struct ServerError;
struct SqlPreparedCommand;

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Phase { kStartup, kReady, kClosed };

  ClientSession(ProxyContext& ctx, tcp_socket socket);
  ~ClientSession();

  awaitable<void> run();

  // Called by the registry's sweeper and on shutdown.
  Phase phase() const { return phase_; }
  Clock::time_point last_activity() const { return last_activity_; }
  Clock::time_point accepted_at() const { return accepted_at_; }
  bool holds_server() const { return server_ != nullptr; }
  // Waiting for the server on the client's behalf (not idle, whatever the clock says).
  bool busy() const { return outstanding_ > 0 || unsynced_; }
  bool in_transaction() const { return transaction_ != 'I'; }
  // Sends a FATAL and disconnects; the session's own cleanup then runs.
  void terminate(std::string sqlstate, std::string message);
  // A CancelRequest carrying this session's key: cancels the query it runs now, if any.
  void cancel_running_query();
  uint32_t cancel_pid() const { return cancel_pid_; }
  uint32_t cancel_key() const { return cancel_key_; }

 private:
  // Startup phase.
  awaitable<bool> negotiate_startup(pgwire::StartupMessage& startup);
  awaitable<bool> authenticate(const Credential& credential);
  awaitable<bool> authenticate_scram(const Credential& credential);
  awaitable<bool> authenticate_md5(const Credential& credential);
  awaitable<bool> read_auth_message(std::string& payload);
  awaitable<bool> finish_login();
  awaitable<bool> send_fatal(std::string_view sqlstate, std::string_view message);

  // Relay.
  awaitable<void> relay();
  enum class Step { kContinue, kEnd, kViolation /* protocol violation: violation_ says what */ };
  // Whether `frame` is relayed to a server, so one must be borrowed before handle_frame().
  bool needs_server(const pgwire::Frame& frame) const;
  // Acts on one client message, without waiting: a server is attached already if one was
  // needed and could be had.
  Step handle_frame(const pgwire::Frame& frame);
  // Borrowing without suspending: an idle connection that already carries the client's
  // settings is adopted at once. Otherwise the connection taken, if any, is left in `idle`
  // for attach().
  bool attach_now(std::shared_ptr<ServerConnection>& idle);
  // Borrows (or takes `connection`), applies the client's settings and adopts the connection.
  // On failure the error is queued for the client and no server is attached.
  awaitable<void> attach(std::shared_ptr<ServerConnection> connection);
  void adopt(std::shared_ptr<ServerConnection> connection);
  // The server reader. Runs for the whole relay: whenever a server is lent, it forwards the
  // server's replies and returns the connection at the ReadyForQuery that ends the client's
  // last pending request outside a transaction. One coroutine per session, not one per borrow.
  awaitable<void> server_pump();
  // Extended-protocol messages once a server is attached: named statements are renamed to the
  // server's names and prepared on demand; every message is recorded in expected_. False for a
  // malformed message.
  bool relay_extended(const pgwire::Frame& frame, const std::optional<pgwire::ParseMessage>& parse,
                      const StatementRef& runs);
  bool statements_enabled() const { return ctx_.config.max_prepared_statements > 0; }
  // The client's statement `name`, prepared on the lent connection (a Parse goes ahead if the
  // connection lacks it); null, with PostgreSQL's 26000 on its way, when there is none.
  const PreparedStatement* use_statement(std::string_view name);
  // Sends Parse for `statement` (after a Close of the LRU's victim, if any) and expects its
  // reply as `expectation` says.
  void prepare_on_server(const StatementRef& statement, ResponseTracker::Entry expectation);
  // Makes the server fail the current request as PostgreSQL would have, with this error.
  void fail_as(std::string_view sqlstate, const std::string& message);
  // Prepares `statement` (and what it runs) on the lent connection unless it is there. False,
  // with the request made to fail, when only SQL can prepare it.
  bool ensure_on_server(const StatementRef& statement, std::string_view name);
  // The same for a simple query.
  void fail_as_query(std::string_view sqlstate, const std::string& message);
  // A query that is one SQL PREPARE, EXECUTE or DEALLOCATE: translated to the server's names
  // and sent, or answered by the proxy. False when it needs a server and none could be had.
  bool relay_sql_prepared(const SqlPreparedCommand& command, std::string_view sql);
  // DEALLOCATE of a name the client has, or DEALLOCATE ALL: nothing to borrow a server for.
  bool answered_without_server(const pgwire::Frame& frame) const;
  // The client's Close of its own named statement: answered by the proxy.
  void close_statement(std::string_view name);
  // A statement that changes settings was sent: read them back before the connection goes.
  void note_settings_change(std::string_view sql);
  void pin(PinReason reason);
  void unpin();
  void release_server();
  void server_lost(const std::shared_ptr<ServerConnection>& server, bool fatal_forwarded);
  awaitable<void> leave();
  // Queue our own replies, or the client's batched messages, on the transport (sent at once
  // as far as the socket takes them, in order with everything else written).
  bool send_to_client();
  void send_to_server();
  // send_to_client(), then waits until the client took everything.
  awaitable<bool> flush_to_client();
  void reply_error(const ServerError& error);

  ProxyContext& ctx_;
  Transport client_;
  ReadBuffer inbound_;
  std::string to_client_;  // replies the proxy makes itself, flushed before waiting
  std::string to_server_;  // client messages batched for one write
  Phase phase_ = Phase::kStartup;
  Clock::time_point accepted_at_;
  Clock::time_point last_activity_;
  uint32_t cancel_pid_ = 0;
  uint32_t cancel_key_ = 0;
  bool counted_ = false;  // in client_connections

  std::string user_;
  std::string database_;
  Settings settings_;              // what every borrowed connection is made to match
  Settings startup_settings_;      // from the startup packet: what RESET returns to
  bool settings_changed_ = false;  // SET/RESET/set_config() ran since the last read-back
  std::vector<std::string> custom_setting_names_;  // dotted names seen in the client's SETs
  Pool* pool_ = nullptr;

  std::shared_ptr<ServerConnection> server_;
  Wakeup server_attached_;  // wakes server_pump()
  int outstanding_ = 0;     // Query/Sync/FunctionCall sent, ReadyForQuery not yet seen
  bool unsynced_ = false;   // extended-protocol messages sent since the last Sync
  char transaction_ = 'I';
  bool skip_until_sync_ = false;  // after an error in the extended protocol, as PostgreSQL does
  std::optional<PinReason> pinned_;
  bool discarding_ = false;      // the client left a pinned session; DISCARD ALL is running
  ClientStatements statements_;  // named statements, by the client's names
  // A DEALLOCATE of one of the client's statements sent through the extended protocol, as the
  // unnamed statement and then as the unnamed portal bound from it.
  struct Deallocation {
    StatementRef statement;
    std::string name;
  };
  Deallocation unnamed_deallocates_, portal_deallocates_;
  ResponseTracker expected_;  // what the lent server still owes, and how to pass it on
  // Scratch for the server reader when replies must be reshaped (kept: no allocation per batch).
  std::string answers_before_, answers_after_, replacement_, reshaped_;
  bool client_gone_ = false;
  std::string violation_;  // what handle_frame() found wrong
  std::optional<Clock::time_point> request_started_;
};

}  // namespace sluice::proxy
