// One client of the proxy, from its first byte to its last. The session orchestrates its rooms:
//
//   ClientLogin      TLS and startup negotiation, authentication, the first ReadyForQuery
//   (this class)     the client reader: each message checked, a server borrowed when one is
//                    needed (a ServerLease from the pool), the message relayed
//   StatementRouter  named prepared statements translated to the server's names (pure)
//   BackendLink      the server's replies, the release rule, pinning, cleanup at the end
//
// The client reader and the link's reply loop run on one executor, so the state below changes
// only between suspension points.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "pgwire/codec.hpp"
#include "proxy/backend_link.hpp"
#include "proxy/client_login.hpp"
#include "proxy/context.hpp"
#include "proxy/failed_transaction.hpp"
#include "proxy/lease.hpp"
#include "proxy/session_settings.hpp"
#include "proxy/statement_router.hpp"
#include "proxy/transport.hpp"

namespace sluice::proxy {

class Pool;
struct ServerError;

class ClientSession final : public std::enable_shared_from_this<ClientSession>,
                            private BackendLink::Owner,
                            private StatementEvents,
                            private Poller::ParkedReader {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Phase { kStartup, kReady, kClosed };

  // `fd`: a client connection as the worker accepted it (see Transport's constructor).
  ClientSession(ProxyContext& ctx, int fd, const tcp::endpoint& remote);
  ~ClientSession();

  awaitable<void> run();

  // Called by the registry's sweeper and on shutdown.
  Phase phase() const { return phase_; }
  Clock::time_point last_activity() const { return last_activity_; }
  // Past login_timeout: logging in for longer than that, not counting the wait at the gate.
  bool login_overdue(Clock::time_point now, Clock::duration limit) const {
    return phase_ == Phase::kStartup && !login_clock_.queued && now - login_clock_.started > limit;
  }
  bool holds_server() const { return link_.attached(); }
  // Waiting for the server on the client's behalf (not idle, whatever the clock says).
  bool busy() const { return link_.tracker().busy(); }
  bool in_transaction() const { return link_.tracker().transaction_status() != 'I'; }
  // Sends a FATAL and disconnects; the session's own cleanup then runs.
  void terminate(std::string sqlstate, std::string message);
  // A CancelRequest carrying this session's key: cancels the query it runs now, if any.
  void cancel_running_query() { link_.cancel_running_query(); }
  uint32_t cancel_pid() const { return cancel_pid_; }
  // Idle for a while: the read buffer and scratch space go back (taken again at the next
  // message), and the session parks (its coroutines end until the client's next byte), so that
  // thousands of idle clients hold little more than their sockets and session objects.
  void release_idle_memory();
  bool parked() const { return parked_self_ != nullptr; }
  // Shutdown of a worker whose loop no longer runs: a parked session is let go.
  void drop_if_parked();
  uint32_t cancel_key() const { return cancel_key_; }

 private:
  // The relay, until the client leaves (then the session's cleanup) or the session parks.
  awaitable<void> serve();
  enum class Relayed { kEnded, kParked };
  awaitable<Relayed> relay();
  // Whether nothing but the client's next message is awaited: no server lent, nothing
  // buffered either way, no message half through. Then the session may park.
  bool may_park() const;
  // Ends the coroutines (the reply loop's here; the reader's returns kParked) and waits for the
  // client's next byte without one: resume_reading() starts serve() again.
  void park();
  void resume_reading() override;
  // Whether the client's message at the start of `data`, not whole yet, is passed on as it
  // comes rather than held whole (see kStreamedHeadSize).
  bool streams(pgwire::Bytes data) const;
  // The next bytes of the message being streamed: to the server, or dropped.
  void pass_stream();
  enum class Step { kContinue, kEnd, kViolation /* protocol violation: violation_ says what */ };
  // Whether `frame` is relayed to a server, so one must be borrowed before handle_frame().
  bool needs_server(const pgwire::Frame& frame) const;
  // Acts on one client message, without waiting: a server is attached already if one was
  // needed and could be had.
  Step handle_frame(const pgwire::Frame& frame);
  Step handle_query(const pgwire::Frame& frame);
  Step handle_extended(const pgwire::Frame& frame);
  Step handle_sync(const pgwire::Frame& frame);
  Step violation(std::string what);
  // Small and on every message: inlined (a call each cost more than their bodies).
  [[gnu::always_inline]] inline void count_query();
  [[gnu::always_inline]] inline void forward(const pgwire::Frame& frame);
  // Borrowing without suspending: an idle connection that already carries the client's
  // settings is attached at once. Otherwise the lease taken, if any, is left in `idle`.
  bool attach_now(ServerLease& idle);
  // Borrows (or takes `lease`), applies the client's settings and attaches the connection.
  // On failure the error is queued for the client and no server is attached.
  awaitable<void> attach(ServerLease lease);
  awaitable<void> leave();
  // Queue our own replies on the transport (sent at once as far as the socket takes them, in
  // order with everything else written).
  bool send_to_client();
  void reply_error(const ServerError& error);

  // BackendLink::Owner
  ClientStatements& client_statements() override { return router_.statements(); }
  void server_released() override;
  void server_lost(bool fatal_forwarded) override;
  void server_lost_session_kept(const Loss& loss) override;
  // A client message while its transaction block failed with its lost server.
  Step handle_in_failed_transaction(const pgwire::Frame& frame);
  // StatementEvents
  bool pinned() const override { return link_.pinned().has_value(); }
  void pin(PinReason reason) override { link_.pin(reason); }
  void settings_changed(std::string_view sql) override;

  ProxyContext& ctx_;
  Transport client_;
  ReadBuffer inbound_;
  std::string to_client_;  // replies the proxy makes itself, flushed before waiting
  std::string to_server_;  // client messages batched for one write
  Phase phase_ = Phase::kStartup;
  LoginClock login_clock_;
  Clock::time_point last_activity_;
  uint32_t cancel_pid_ = 0;
  uint32_t cancel_key_ = 0;
  bool counted_ = false;  // in client_connections

  ClientSettings settings_;
  Pool* pool_ = nullptr;
  BackendLink link_;
  StatementRouter router_;
  bool memory_released_ = false;                // release_idle_memory() ran since the last message
  bool awaiting_client_ = false;                // the reader waits for the client's next bytes
  bool park_requested_ = false;                 // the reader, woken, parks if it still may
  std::shared_ptr<ClientSession> parked_self_;  // who owns a parked session: itself
  bool skip_until_sync_ = false;  // after an error in the extended protocol, as PostgreSQL does
  // The transaction block whose server was lost, until the client ends it.
  std::unique_ptr<FailedTransaction> failed_transaction_;
  std::string violation_;   // what handle_frame() found wrong
  bool passed_on_ = false;  // handle_frame() sent the message to the server
  struct Streaming {
    size_t unread = 0;       // bytes still to come of the message being streamed
    bool passed_on = false;  // they go to the server (else they are dropped)
  } streaming_;
};

}  // namespace sluice::proxy
