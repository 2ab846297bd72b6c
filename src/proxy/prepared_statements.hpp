// Named prepared statements in transaction pooling, without pinning.
//
// A client's statement names are its own; the server only ever sees the proxy's names
// ("sluice_<id>"), one per distinct definition (SQL and parameter types), shared by every client
// that prepares the same thing. Each server connection keeps a bounded LRU of what it has
// prepared; a client's Bind or Describe on a connection that lacks its statement gets a Parse
// sent ahead of it. The ResponseTracker then puts the server's replies back into the shape the
// client expects: replies to what the proxy added are dropped, and what the proxy answered
// itself (a Parse the connection already had, a Close) is inserted in its place.
//
// SQL PREPARE, EXECUTE and DEALLOCATE share the client's names (PostgreSQL has one namespace
// for both). A simple query that is one of them is rewritten to the server's name; a statement
// the connection lacks is prepared by a "PREPARE sluice_<id> …;" in front of the client's
// query, whose reply is dropped. DEALLOCATE, and a PREPARE the connection already has, are
// answered by the proxy.
//
// Pure: no I/O, so every rule here is unit-tested.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pgwire/codec.hpp"

namespace sluice::proxy {

struct PreparedStatement {
  uint64_t id = 0;
  std::string server_name;        // what the server knows it as
  std::string definition;         // Parse body after the name: SQL, NUL, parameter types
  bool changes_settings = false;  // SET, RESET, set_config(): executing it changes settings
  // A SQL PREPARE with a parameter type list, whose type names only the server can resolve:
  // what follows the name ("(int, text) AS SELECT …"). `definition` is empty then, and the
  // statement is the client's alone.
  std::string sql_tail;
  // A Parse of "EXECUTE <client's name> …" runs another statement, under its server name: that
  // one must be on the connection too whenever this one is prepared or run.
  std::shared_ptr<const PreparedStatement> runs;

  // The statement's SQL text.
  std::string_view text() const;
  // What follows "PREPARE <server_name> " to prepare it with SQL, or "" when only a protocol
  // Parse can (declared parameter type OIDs have no SQL spelling here).
  std::string sql_prepare_tail() const;
};
using StatementRef = std::shared_ptr<const PreparedStatement>;

// The name no statement ever has on the server: a Bind to it fails the way a missing
// statement does, which is how the proxy makes the server fail a request for it.
inline constexpr std::string_view kMissingStatement = "sluice_missing";

// One entry per distinct definition while anyone (a client or a server connection) uses it.
class StatementRegistry {
 public:
  StatementRegistry() = default;
  StatementRegistry(const StatementRegistry&) = delete;
  StatementRegistry& operator=(const StatementRegistry&) = delete;

  // `runs`: see PreparedStatement::runs (part of the definition already, by its server name).
  StatementRef intern(pgwire::Bytes definition, bool changes_settings = false,
                      StatementRef runs = nullptr);
  // A statement of one client's SQL PREPARE with declared types: not shared.
  StatementRef make_sql(std::string sql_tail, bool changes_settings);
  size_t size() const;

 private:
  // Shared with each statement's deleter, which removes the entry when the last user goes; a
  // statement may outlive the registry at shutdown.
  struct State {
    std::unordered_map<std::string, std::weak_ptr<const PreparedStatement>> by_definition;
    uint64_t next_id = 1;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// What one server connection has prepared, least recently used first out.
class StatementCache {
 public:
  explicit StatementCache(size_t capacity) : capacity_(capacity) {}
  // True when prepared here; counts as a use.
  bool has(const PreparedStatement& statement);
  // Records `statement` as prepared here. Returns the statement to close on the server to stay
  // within capacity, if any.
  StatementRef add(StatementRef statement);
  // Back in without evicting anything (a Close that the server skipped).
  void restore(StatementRef statement);
  void remove(const PreparedStatement& statement);
  void clear();
  size_t size() const { return index_.size(); }

 private:
  size_t capacity_;
  std::list<StatementRef> lru_;  // most recent at the front
  std::unordered_map<uint64_t, std::list<StatementRef>::iterator> index_;
};

// A client's statements by its own names.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using ClientStatements = std::unordered_map<std::string, StatementRef, NameHash, std::equal_to<>>;

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
  };
  enum class Verdict { kForward, kDrop, kReplace };

  bool empty() const { return entries_.empty(); }
  void clear() { entries_.clear(); }
  // A reply the proxy makes itself (kParseComplete, kCloseComplete, kLocal*). When nothing is
  // owed, it is due now and written to `out`; otherwise it waits for its turn.
  void answer(Entry entry, std::string& out, ClientStatements& client);
  void expect(Entry entry) { entries_.push_back(std::move(entry)); }
  // The transaction status of the server's latest ReadyForQuery ('I' on a fresh borrow).
  void note_ready(char status) { status_ = status; }

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
    void push_back(Entry entry) { items_.push_back(std::move(entry)); }
    void pop_front() {
      items_[head_++] = Entry{};
      if (head_ == items_.size()) clear();
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
