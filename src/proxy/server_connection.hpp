// One connection from the proxy to PostgreSQL: login, setup, and the state the pool needs to
// decide whether it may be lent to a client.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pgwire/codec.hpp"
#include "proxy/context.hpp"
#include "proxy/prepared_statements.hpp"
#include "proxy/session_settings.hpp"
#include "proxy/target_health.hpp"
#include "proxy/transport.hpp"

namespace sluice::proxy {

struct Credential;
class Pool;

// A failure to reach or use the server, shaped as the ErrorResponse a client would get.
struct ServerError {
  std::string severity = "ERROR";
  std::string sqlstate = "08006";
  std::string message;
  // Worth retrying until the borrow timeout (refused, starting up, too many connections).
  bool transient = false;
};

class ServerConnection : public std::enable_shared_from_this<ServerConnection> {
 public:
  using Clock = std::chrono::steady_clock;

  ServerConnection(ProxyContext& ctx, Pool& pool, uint64_t id);
  ~ServerConnection();

  // Connects, negotiates TLS, logs in as the pool's user, runs init_query and reads
  // max_connections. Gives up at `deadline`. The outcome goes to the target's health.
  awaitable<std::optional<ServerError>> open(Clock::time_point deadline);

  // Makes the session's settings equal `wanted` (one round trip, only when they differ).
  // On an error from the server the settings are unchanged (the batch runs as one
  // implicit transaction) and the error is returned.
  awaitable<std::optional<ServerError>> apply_settings(const Settings& wanted);

  // Reads back what SET, RESET and set_config() left in this session (settings whose source is
  // the session), in one round trip, and records it as `applied`. Nullopt if the server failed.
  // Custom settings ("app.tenant") are not in pg_settings: those named in `custom_names` are
  // asked for by name.
  awaitable<std::optional<Settings>> read_session_settings(
      const std::vector<std::string>& custom_names);

  // While idle in the pool, any byte from the server means it is going away (admin shutdown,
  // crash). The poller records an edge on the idle socket; only then is it peeked at, so a
  // borrow of a quiet connection costs no system call.
  bool server_went_away();

  // Asks the server to cancel whatever this connection runs (a separate connection, as
  // PostgreSQL wants). Until the server has taken the request (it closes that connection), the
  // pool does not lend this connection again: a late signal must not cancel the next client's
  // query.
  void send_cancel();
  bool cancel_in_flight() const { return cancels_in_flight_ > 0; }
  // Set by the pool when it got this connection back while a cancel was in flight: the pool
  // takes it back once the cancel is done.
  bool returned_while_cancelling = false;

  Transport& transport() { return *transport_; }
  ReadBuffer& inbound() { return inbound_; }
  Pool& pool() { return pool_; }
  uint64_t id() const { return id_; }
  uint32_t backend_pid() const { return backend_key_.process_id; }

  bool broken = false;
  bool opened = false;
  Clock::time_point last_used;
  // Lent to a client (PoolManager's count of lent connections), since when, and whether the
  // borrow is a pinned session's (whose length says nothing about the server's load).
  bool lent_out = false;
  bool pinned_borrow = false;
  Clock::time_point lent_at;
  std::map<std::string, std::string> parameters;  // as last reported by ParameterStatus
  Settings applied;                               // what our SETs made of this session
  StatementCache statements;                      // named statements prepared here
  std::optional<int> server_max_connections;

 private:
  // open() without the health bookkeeping; `outcome` says how far it got.
  awaitable<std::optional<ServerError>> establish(Clock::time_point deadline,
                                                  LoginOutcome& outcome);
  awaitable<std::optional<ServerError>> login(const Credential& cred);
  awaitable<std::optional<ServerError>> run_setup();
  // One simple-protocol query of the proxy's own, read to its ReadyForQuery. Status 0 means the
  // connection was lost; ParameterStatus updates `parameters`.
  struct QueryOutcome {
    char status = 0;
    std::optional<ServerError> error;  // the first one
    std::vector<std::vector<std::optional<std::string>>> rows;
    bool malformed = false;
  };
  awaitable<QueryOutcome> simple_query(std::string_view sql);
  awaitable<bool> read_frame(pgwire::Frame& frame);
  void cancel_done();
  void consume_frame(const pgwire::Frame& frame) { inbound_.consume(frame.wire_size()); }

  ProxyContext& ctx_;
  Pool& pool_;
  uint64_t id_;
  std::unique_ptr<Transport> transport_;
  ReadBuffer inbound_;
  pgwire::BackendKeyData backend_key_;
  int cancels_in_flight_ = 0;
};

// Turns an ErrorResponse body from the server into a ServerError.
ServerError server_error_from(const pgwire::ErrorFields& fields);

}  // namespace sluice::proxy
