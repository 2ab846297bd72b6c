// A client session's side of its lent server connection: the server's reply loop, the release
// rule, and what is outstanding.
//
// One coroutine per session (run()) reads the lent connection whenever there is one, forwards
// the server's replies to the client (reshaped where the proxy renamed or prepared statements),
// and gives the connection back at the ReadyForQuery that leaves nothing owed outside a
// transaction (ResponseTracker::may_release), after reading back settings the client changed.
// The link also owns pinning: a pinned session keeps its connection until it ends, when
// client_left() wipes it (DISCARD ALL) or closes it.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "proxy/context.hpp"
#include "proxy/lease.hpp"
#include "proxy/pinning.hpp"
#include "proxy/response_tracker.hpp"
#include "proxy/session_settings.hpp"
#include "proxy/transport.hpp"
#include "proxy/wakeup.hpp"

namespace sluice::proxy {

class ServerConnection;

// Streaming. A message larger than this, once this much of it has arrived, is passed on as it
// comes instead of being held whole: rows and COPY data from the server, COPY data and Bind
// parameters from the client. What the proxy must read (everything else) stays whole.
inline constexpr size_t kStreamedHeadSize = 64 * 1024;
// The most one relay loop moves before letting other sessions run: a large transfer never
// stalls everyone else on its event loop.
inline constexpr size_t kFairShareBytes = 256 * 1024;
// Yields to the other coroutines of the executor (they run before this one resumes).
awaitable<void> yield_to_others();
// Gives back a scratch buffer's memory after a large message went through it. Inline: three
// times per transaction, and mostly nothing to do.
inline void shrink_if_large(std::string& buffer) {
  constexpr size_t kKeep = 64 * 1024;
  if (buffer.capacity() > kKeep && buffer.empty()) std::string().swap(buffer);
}

class BackendLink {
 public:
  using Clock = std::chrono::steady_clock;

  // What the link tells its session.
  class Owner {
   public:
    virtual ClientStatements& client_statements() = 0;
    // The connection went back to the pool.
    virtual void server_released() = 0;
    // The connection was lost while lent and the client's session cannot go on (the client
    // must be told, unless it left). `fatal_forwarded`: the server's FATAL reached the client.
    virtual void server_lost(bool fatal_forwarded) = 0;
    // The connection was lost while lent, and the client keeps its session: what the server
    // owed was answered already (an error, then ReadyForQuery for each request).
    struct Loss {
      bool in_transaction = false;  // its transaction block is gone: the client must end it
      bool reported = false;        // an error for the loss answered a request of the client's
      bool mid_batch = false;       // inside an extended-protocol batch: skip to its Sync
      // The server's FATAL (as an ERROR body) when it came between requests: the client is
      // told at its next command instead (an unasked-for error would be taken as that
      // command's answer, then the proxy's own).
      std::string unsent_error;
    };
    virtual void server_lost_session_kept(const Loss& loss) = 0;

   protected:
    ~Owner() = default;
  };

  BackendLink(ProxyContext& ctx, Transport& client, ClientSettings& settings, Owner& owner);
  ~BackendLink();
  BackendLink(const BackendLink&) = delete;
  BackendLink& operator=(const BackendLink&) = delete;

  // The reply loop, for the whole relay. Ends once the client left and no connection is lent,
  // or when end_idle_loop() ends it (then run() may start again).
  awaitable<void> run();
  // The reply loop waits for a connection to be lent (the session's state alone says what the
  // link holds).
  bool idle() const { return !lease_ && attached_.waiting(); }
  // An idle session parks: the reply loop, idle(), ends now and its frames go.
  void end_idle_loop();
  // Nothing lent, owed, pinned or pending: a link made anew would act the same (so an idle
  // session may let this one go).
  bool at_rest() const {
    return !lease_ && tracker_.may_release() && !pinned_ && !discarding_ && !client_gone_ &&
           !closing_ && !in_transaction_counted_ && !client_mid_message_ && server_unread_ == 0 &&
           !request_started_;
  }

  bool attached() const { return static_cast<bool>(lease_); }
  ServerConnection& server() const { return *lease_; }
  ResponseTracker& tracker() { return tracker_; }
  const ResponseTracker& tracker() const { return tracker_; }

  // Takes a lent connection that already carries the client's settings; the reply loop wakes
  // at its first reply.
  void attach(ServerLease lease);
  // Writes the client's messages (the buffer is cleared). A failed write surfaces as a failed
  // read in the reply loop, which reports it.
  void send(std::string& bytes);
  // Waits while the server's socket is full (a server slow to take a COPY stream).
  awaitable<bool> flush_if_backlogged();
  // When the client's pending request arrived (for the latency metrics).
  void note_request(Clock::time_point arrived) {
    if (!request_started_) request_started_ = arrived;
  }

  // The client is midway through a message it streams to the lent connection (its head went
  // out, the rest follows): the connection cannot go back to the pool until the message ends.
  void set_client_mid_message(bool mid) { client_mid_message_ = mid; }

  std::optional<PinReason> pinned() const { return pinned_; }
  void pin(PinReason reason);
  // Cancels what the lent connection runs, if the client is waiting for it.
  void cancel_running_query();
  bool client_gone() const { return client_gone_; }
  // The client is gone: a lent connection is rolled back, wiped or closed, and the reply loop
  // ends once none is lent.
  awaitable<void> client_left();

 private:
  // The replies in `data` up to the last whole message, checked and reshaped if need be.
  // Returns how many bytes were consumed; `out` is what the client gets.
  struct Batch {
    size_t consumed = 0;
    std::string_view out;
    bool fatal = false;           // the server sent FATAL or PANIC: the connection is going
    bool fatal_answered = false;  // ... as the answer to a request of the client's
    bool demote = false;          // ... and it reaches the client as an ERROR (it stays)
    bool violation = false;       // a malformed or unrequested message: its state is unknown
  };
  Batch read_batch(pgwire::Bytes data, ServerConnection& server);
  // Whether the server's message at the start of `data`, not whole yet, is passed on as it
  // comes: a row or COPY data of a request in progress.
  bool streams(pgwire::Bytes data) const;
  // What one reply tells the link (transaction status, parameter changes, fatal errors). False
  // when the batch must stop here.
  bool inspect(const pgwire::Frame& frame, ServerConnection& server, Batch& batch);
  [[gnu::always_inline]] inline void note_latency(const Batch& batch);
  // The release rule held: the connection goes back to the pool.
  void release();
  // The same after what must come first: a wiped pinned session's records cleared, changed
  // settings read back. The connection stays when it was lost meanwhile, or when the client sent
  // more (then `buffered` says whether replies wait in its buffer).
  awaitable<void> release_after_cleanup(const std::shared_ptr<ServerConnection>& server,
                                        bool& buffered);
  void set_transaction(char status);
  void unpin();
  // Why a lent connection is given up.
  enum class Loss {
    kClosed,         // the server closed it, or reading failed
    kFatal,          // the server's FATAL or PANIC went to the client (demoted if it stays)
    kViolation,      // a reply that cannot be read or was never asked for: state unknown
    kCleanupFailed,  // reading back settings failed: the client's settings are unknown
  };
  // Whether the client's session survives losing its connection now: it does unless it was
  // pinned (its session state lived on that server), a reply was half through to the client,
  // or the proxy drains.
  bool session_survives_loss() const;
  void lost(const std::shared_ptr<ServerConnection>& server, Loss cause,
            bool fatal_answered = false);
  // What the lost server owed, answered as PostgreSQL answers a request that failed (an error,
  // then ReadyForQuery for each request); `error_sent`: the first request's error went already.
  // Returns whether an error for the loss reached the client.
  bool answer_for_lost_server(ServerConnection& server, bool error_sent, std::string& out);
  // A reply the lost server never sent, passed through the tracker as if it had.
  void answer_as_server(char type, std::string_view body, ServerConnection& server,
                        std::string& out);
  // Writing to the client failed: nothing more is sent to it.
  void client_went();

  ProxyContext& ctx_;
  Transport& client_;
  ClientSettings& settings_;
  Owner& owner_;
  ServerLease lease_;
  ResponseTracker tracker_;  // what the lent server still owes, and how to pass it on
  Wakeup attached_;          // wakes run() when a connection is lent
  std::optional<PinReason> pinned_;
  bool discarding_ = false;        // the client left a pinned session; DISCARD ALL is running
  bool client_gone_ = false;       // the client's socket is closed: nothing more is sent to it
  bool closing_ = false;           // client_left() ran: run() ends once no connection is lent
  bool ending_idle_loop_ = false;  // end_idle_loop() ran: run() ends
  bool in_transaction_counted_ = false;  // in database_connections_currently_in_transaction
  bool client_mid_message_ = false;      // see set_client_mid_message()
  bool reading_settings_ = false;        // release_after_cleanup() reads settings back
  std::string unsent_error_;             // see Owner::Loss::unsent_error
  size_t server_unread_ = 0;  // bytes still to come of the server's message being streamed
  std::optional<Clock::time_point> request_started_;
  // Scratch for reshaped replies (kept: no allocation per batch).
  std::string answers_before_, answers_after_, replacement_, reshaped_;
};

}  // namespace sluice::proxy
