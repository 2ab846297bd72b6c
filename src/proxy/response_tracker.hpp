// What the server owes for what was sent to it, in order, and therefore when a lent connection
// may go back to the pool.
//
// Every message relayed to the server, and every one the proxy adds on its own account, is
// recorded as an Entry; the server's replies settle them in order. The tracker is the one owner
// of what is outstanding (requests not yet answered by ReadyForQuery, extended-protocol messages
// not yet followed by Sync) and of the transaction status: may_release() is the release rule.
//
// It also puts replies back into the shape the client expects when the proxy renamed or prepared
// statements (prepared_statements.hpp): replies to what the proxy added are dropped, and what
// the proxy answered itself is inserted in its place.
//
// Pure: no I/O, so every rule here is unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pgwire/codec.hpp"
#include "proxy/prepared_statements.hpp"

namespace sluice::proxy {

// What the server owes for what was sent to it, in order.
class ResponseTracker {
 public:
  enum class Kind : uint8_t {
    // Sent for the client; the server's replies are forwarded.
    kParse,
    kBind,
    kDescribe,
    kExecute,
    kClose,
    kSync,
    kSimpleQuery,  // Query or FunctionCall: replies up to ReadyForQuery
    // Statements of one simple query, ahead of its kSimpleQuery entry. An error ends the
    // query: what the proxy recorded for these statements is undone.
    kSqlPrepare,            // the client's PREPARE, renamed: its reply is forwarded
    kSwallowSqlPrepare,     // the proxy's PREPARE of a statement EXECUTE needs: dropped
    kSwallowSqlDeallocate,  // the proxy's DEALLOCATE of a statement its LRU let go: dropped
    kFailAsQuery,           // a query made to fail; a 26000 error is replaced by `text`
    // Sent by the proxy on its own account; the server's reply is dropped.
    kSwallowParse,
    kSwallowClose,
    kSwallowReply,  // one reply of any kind but an error (a helper's Close, Parse, Bind)
    kSwallowSqlPrepareExecute,  // the CommandComplete of a SQL PREPARE run by Execute
    // Sent by the proxy to make the server fail as PostgreSQL would have; its error is replaced
    // by `text` (an ErrorResponse body).
    kFailAs,
    // Answered by the proxy (nothing sent): emitted to the client when its turn comes.
    kParseComplete,
    kCloseComplete,
    // Whole simple queries answered by the proxy, with the transaction status of that moment
    // (in a failed transaction, PostgreSQL's error instead). They change the client's names
    // only when they succeed.
    kLocalPrepare,  // PREPARE of a statement the connection has already
    kLocalDeallocate,
    kLocalDeallocateAll,
  };
  // Where a simple query was rewritten, to move error positions back onto the client's text.
  // Lengths and offsets count characters, as PostgreSQL's positions do.
  struct Rewrite {
    int32_t prefix = 0;       // characters the proxy put in front
    int32_t name_at = 0;      // where the statement name starts in the client's text
    int32_t server_name = 0;  // length of the name the server saw
    int32_t client_name = 0;  // length of the name as the client wrote it
  };
  struct Entry {
    Entry() = default;
    Entry(Kind kind, StatementRef statement = nullptr, std::string text = {},
          std::optional<Rewrite> rewrite = std::nullopt)
        : kind(kind), statement(std::move(statement)), text(std::move(text)), rewrite(rewrite) {}
    Kind kind = Kind::kSync;
    StatementRef statement;          // the statement concerned, if any
    std::string text;                // the client's statement name, or the error body of kFailAs
    std::optional<Rewrite> rewrite;  // kSimpleQuery: set when the query was rewritten
    // kSync: its batch executed something; its batch held nothing else (a lone Sync).
    bool after_execute = false;
    bool alone = false;
  };
  enum class Verdict { kForward, kDrop, kReplace };

  bool empty() const { return entries_.empty(); }
  // Starts over: nothing owed, nothing unsynced, no transaction (a newly lent connection, or
  // one that is gone).
  void clear() {
    entries_.clear();
    requests_ = 0;
    unsynced_ = false;
    executed_ = batched_ = false;
    status_ = 'I';
  }
  // A reply the proxy makes itself (kParseComplete, kCloseComplete, kLocal*). When nothing is
  // owed, it is due now and written to `out`; otherwise it waits for its turn.
  void answer(Entry entry, std::string& out, ClientStatements& client);
  // Something sent to the server. A query or a Sync is a request that ReadyForQuery ends.
  void expect(Entry entry) {
    if (entry.kind == Kind::kSimpleQuery) {
      ++requests_;
    } else if (entry.kind == Kind::kSync) {
      ++requests_;
      unsynced_ = false;
      entry.after_execute = std::exchange(executed_, false);
      entry.alone = !std::exchange(batched_, false);
    } else if (entry.kind == Kind::kExecute) {
      executed_ = true;
    }
    entries_.push_back(std::move(entry));
  }
  // The same for an entry that names nothing (the common case: a query or a Sync relayed as
  // it came), made in place.
  void expect(Kind kind) {
    if (kind == Kind::kSimpleQuery) {
      ++requests_;
    } else if (kind == Kind::kSync) {
      ++requests_;
      unsynced_ = false;
      entries_.push_back(kind);
      entries_.back().after_execute = std::exchange(executed_, false);
      entries_.back().alone = !std::exchange(batched_, false);
      return;
    } else if (kind == Kind::kExecute) {
      executed_ = true;
    }
    entries_.push_back(kind);
  }
  // The client sent an extended-protocol message: a Sync must follow before the connection
  // can go, whether or not anything reached the server.
  void note_unsynced() {
    unsynced_ = true;
    batched_ = true;
  }
  // The client's Sync was answered by the proxy (nothing was sent to a server).
  void note_synced() {
    unsynced_ = false;
    batched_ = executed_ = false;
  }
  // The server's ReadyForQuery. False when no request was waiting for it: the server's state is
  // unknown then.
  bool note_ready(char status) {
    status_ = status;
    if (requests_ <= 0) return false;
    --requests_;
    return true;
  }

  // The release rule: every request answered, the extended protocol synced, outside a
  // transaction, and no reply of the proxy's own still to come.
  bool may_release() const {
    return requests_ == 0 && !unsynced_ && status_ == 'I' && entries_.empty();
  }
  // Waiting for the server on the client's behalf.
  bool busy() const { return requests_ > 0 || unsynced_; }
  int outstanding_requests() const { return requests_; }
  // The reply to a simple query is being relayed: everything but ReadyForQuery, an error and
  // a ParameterStatus goes to the client as it came (see on_server_message()).
  bool inside_simple_query() const {
    return !entries_.empty() && entries_.front().kind == Kind::kSimpleQuery;
  }
  // The transaction status of the server's latest ReadyForQuery ('I' on a fresh borrow).
  char transaction_status() const { return status_; }
  // Everything of the first request's batch is answered but its ReadyForQuery, and that Sync
  // settles nothing: inside a transaction block, or after a batch that executed nothing (a
  // Parse and Sync, as drivers prepare). A server lost now owes no error for it: PostgreSQL
  // never fails such a Sync, and a driver that has its ParseComplete takes a second reply for
  // a broken protocol (psycopg's prepare raises, libpq's pipeline waits).
  bool only_idle_sync_owed() const {
    if (entries_.empty()) return false;
    const Entry& sync = entries_.front();
    return sync.kind == Kind::kSync && !sync.alone && (status_ != 'I' || !sync.after_execute);
  }

  // Called for each server message, in order. Answers that are due before it are appended to
  // `before`; when the verdict is kReplace, `replacement` is the ErrorResponse body to send
  // instead. Answers due right after it are appended to `after`. The client's and the
  // connection's statement records are corrected for requests the server skipped.
  Verdict on_server_message(char type, pgwire::Bytes body, std::string& before, std::string& after,
                            std::string& replacement, ClientStatements& client,
                            StatementCache& server) {
    // Most replies settle nothing: rows, notices, and everything inside a simple query's reply
    // until its ReadyForQuery (but an error, whose position may need moving). Between calls no
    // answer of the proxy's is at the head (each is emitted as soon as it gets there), so these
    // are forwarded as they are.
    if (type == 'D' || type == 'N' || type == 'A' || type == 'S' || entries_.empty() ||
        (type != 'Z' && type != 'E' && entries_.front().kind == Kind::kSimpleQuery))
      return Verdict::kForward;
    if (type == 'Z' &&
        (entries_.front().kind == Kind::kSimpleQuery || entries_.front().kind == Kind::kSync)) {
      // The end of a request relayed as it came: settled without settle()'s general case
      // (nothing of the proxy's can be due before it; what is due after it follows it).
      entries_.pop_front();
      if (!entries_.empty()) emit_due(after, client);
      return Verdict::kForward;
    }
    return settle(type, body, before, after, replacement, client, server);
  }

 private:
  Verdict settle(char type, pgwire::Bytes body, std::string& before, std::string& after,
                 std::string& replacement, ClientStatements& client, StatementCache& server);
  void emit_due(std::string& out, ClientStatements& client);
  // An error ended a simple query: undoes the records of its statements that did not run, and
  // fixes the error's position for the client's text. True when `replacement` is set.
  bool end_query_in_error(pgwire::Bytes body, std::string& replacement, ClientStatements& client,
                          StatementCache& server);
  // After an error in the extended protocol the server discards everything up to Sync.
  void skip_to_sync(ClientStatements& client, StatementCache& server);

  // A FIFO that keeps its memory: std::deque frees a block whenever it runs empty, which on the
  // relay's hot path meant a malloc and a free per request.
  class Queue {
   public:
    bool empty() const { return head_ == items_.size(); }
    Entry& front() { return items_[head_]; }
    const Entry& front() const { return items_[head_]; }
    void push_back(Entry entry) { items_.push_back(std::move(entry)); }
    void push_back(Kind kind) { items_.emplace_back().kind = kind; }
    Entry& back() { return items_.back(); }
    void pop_front() {
      if (head_ + 1 == items_.size()) {
        clear();
        return;
      }
      // What it refers to goes now, not when the queue next runs empty.
      Entry& entry = items_[head_++];
      entry.statement.reset();
      std::string().swap(entry.text);
    }
    void clear() {
      items_.clear();
      head_ = 0;
    }

   private:
    std::vector<Entry> items_;
    size_t head_ = 0;
  };
  Queue entries_;
  int requests_ = 0;  // queries and Syncs sent, ReadyForQuery not yet seen
  bool unsynced_ = false;
  bool executed_ = false;  // an Execute went out since the last Sync
  bool batched_ = false;   // an extended-protocol message came since the last Sync
  char status_ = 'I';
};

// The ErrorResponse body PostgreSQL sends for `message` with `sqlstate`.
std::string error_body(std::string_view sqlstate, std::string_view message);

// `body` (an ErrorResponse's) for the client's text: its position moved from the server's text
// back to the client's (or dropped when it points into what the proxy added), and the server's
// statement name in its message replaced by the client's. `names` is "server NUL client" (or
// empty). Nothing when there is nothing to change.
std::optional<std::string> error_for_client(pgwire::Bytes body,
                                            const ResponseTracker::Rewrite& rewrite,
                                            std::string_view names = {});

// Length of `text` in characters (UTF-8), as PostgreSQL counts error positions.
int32_t character_count(std::string_view text);

}  // namespace sluice::proxy
