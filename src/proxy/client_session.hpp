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
#include "proxy/slab_pool.hpp"
#include "proxy/statement_router.hpp"
#include "proxy/transport.hpp"

namespace sluice::proxy {

class Pool;
struct ServerError;
struct Waiter;

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
  bool holds_server() const { return active_ && active_->link.attached(); }
  // Waiting for the server on the client's behalf (not idle, whatever the clock says).
  bool busy() const { return active_ && active_->link.tracker().busy(); }
  bool in_transaction() const {
    return active_ && active_->link.tracker().transaction_status() != 'I';
  }
  // Sends a FATAL and disconnects; the session's own cleanup then runs.
  void terminate(std::string sqlstate, std::string message);
  // A CancelRequest carrying this session's key: cancels the query it runs now, if any.
  void cancel_running_query() {
    if (active_) active_->link.cancel_running_query();
  }
  uint32_t cancel_pid() const { return cancel_pid_; }
  // Idle for a while: the read buffer and scratch space go back (taken again at the next
  // message), and the session parks (its coroutines end until the client's next byte), so that
  // thousands of idle clients hold little more than their sockets and session objects. A parked
  // session also lets go of its Active part when that holds nothing a new one would not.
  void release_idle_memory();
  bool parked() const { return parked_self_ != nullptr; }
  // Shutdown of a worker whose loop no longer runs: a parked session is let go.
  void drop_if_parked();
  uint32_t cancel_key() const { return cancel_key_; }

  // What the admin console shows of a logged-in session.
  const Pool* pool() const { return pool_; }
  const Transport& transport() const { return client_; }
  Clock::time_point connected_at() const { return login_clock_.started; }
  const ClientSettings& settings() const { return settings_; }
  ServerConnection* held_server() const {
    return active_ && active_->link.attached() ? &active_->link.server() : nullptr;
  }
  // Since when it waits to borrow a server connection, if it does.
  std::optional<Clock::time_point> borrowing_since() const {
    if (!active_ || active_->borrowing_since == Clock::time_point{}) return std::nullopt;
    return active_->borrowing_since;
  }

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
  enum class Step { kContinue, kEnd, kViolation /* protocol violation: see Active::violation */ };
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
  // No idle connection: at the cap, the client joins the pool's line with the session's own
  // waiter (true: the reader waits on it, then calls attach_from_line()).
  bool join_line();
  // After that wait: the connection handed over, carrying the client's settings, is attached
  // (true); otherwise `lease` is what was handed, if anything, and attach() does the rest.
  bool attach_from_line(ServerLease& lease);
  // The borrow that started at `start` ended (the latency metrics, SHOW STATS).
  void note_borrowed_after(Clock::time_point start);
  // Borrows (or takes `lease`), applies the client's settings and attaches the connection.
  // On failure the error is queued for the client and no server is attached. `woken`: after a
  // wait in line (join_line()) that did not end with a connection attached.
  awaitable<void> attach(ServerLease lease, bool woken = false);
  awaitable<void> leave();
  // Queue our own replies on the transport (sent at once as far as the socket takes them, in
  // order with everything else written).
  bool send_to_client();
  void reply_error(const ServerError& error);

  // BackendLink::Owner
  ClientStatements& client_statements() override { return statements_; }
  void server_released() override;
  void server_lost(bool fatal_forwarded) override;
  void server_lost_session_kept(const Loss& loss) override;
  // A client message while its transaction block failed with its lost server.
  Step handle_in_failed_transaction(const pgwire::Frame& frame);
  // StatementEvents
  bool pinned() const override { return active_->link.pinned().has_value(); }
  void pin(PinReason reason) override { active_->link.pin(reason); }
  void settings_changed(std::string_view sql) override;

  // What a session needs only while its client is active: buffers, the link and its reply loop,
  // the statement router. A parked session at rest holds none (about 0.7 KB less per idle
  // client); the next byte makes a new one. Active parts share slabs of their own, which are
  // unmapped as the sessions on them go idle.
  struct Active : SlabAllocated<Active> {
    explicit Active(ClientSession& session);
    // Nothing carried from one message to the next but what the session keeps itself.
    bool at_rest() const {
      return inbound.empty() && to_client.empty() && to_server.empty() && streaming.unread == 0 &&
             link.at_rest() && router.at_rest();
    }

    ReadBuffer inbound;
    std::string to_client;  // replies the proxy makes itself, flushed before waiting
    std::string to_server;  // client messages batched for one write
    BackendLink link;
    StatementRouter router;
    std::string violation;         // what handle_frame() found wrong
    bool awaiting_client = false;  // the reader waits for the client's next bytes
    bool park_requested = false;   // the reader, woken, parks if it still may
    bool passed_on = false;        // handle_frame() sent the message to the server
    struct Streaming {
      size_t unread = 0;       // bytes still to come of the message being streamed
      bool passed_on = false;  // they go to the server (else they are dropped)
    } streaming;
    // Waiting for a server connection since then (the admin console's cl_waiting); zero: not.
    Clock::time_point borrowing_since{};
    // In the pool's line at the cap (join_line()); made at the first wait, then reused.
    std::shared_ptr<Waiter> waiter;
  };

  ProxyContext& ctx_;
  Transport client_;
  Clock::time_point last_activity_;
  LoginClock login_clock_;
  uint32_t cancel_pid_ = 0;
  uint32_t cancel_key_ = 0;
  Phase phase_ = Phase::kStartup;
  bool counted_ = false;          // in client_connections
  bool memory_released_ = false;  // release_idle_memory() ran since the last message
  bool skip_until_sync_ = false;  // after an error in the extended protocol, as PostgreSQL does
  Pool* pool_ = nullptr;
  ClientSettings settings_;
  ClientStatements statements_;                 // the client's named statements, by its names
  std::shared_ptr<ClientSession> parked_self_;  // who owns a parked session: itself
  std::unique_ptr<Active> active_;              // null only while parked (and at rest)
  // The transaction block whose server was lost, until the client ends it.
  std::unique_ptr<FailedTransaction> failed_transaction_;
};

}  // namespace sluice::proxy
