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
// Pure: no I/O, so every rule here is unit-tested.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
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

  StatementRef intern(pgwire::Bytes definition, bool changes_settings = false);
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
    // Sent by the proxy on its own account; the server's reply is dropped.
    kSwallowParse,
    kSwallowClose,
    // Sent by the proxy to make the server fail as PostgreSQL would have; its error is replaced
    // by `text` (an ErrorResponse body).
    kFailAs,
    // Answered by the proxy (nothing sent): emitted to the client when its turn comes.
    kParseComplete,
    kCloseComplete,
  };
  struct Entry {
    Kind kind = Kind::kSync;
    StatementRef statement;  // the statement concerned, if any
    std::string text;        // the client's statement name, or the error body of kFailAs
  };
  enum class Verdict { kForward, kDrop, kReplace };

  bool empty() const { return entries_.empty(); }
  void clear() { entries_.clear(); }
  // A reply the proxy makes itself (kParseComplete, kCloseComplete). When nothing is owed, it
  // is due now and written to `out`; otherwise it waits for its turn.
  void answer(Entry entry, std::string& out);
  void expect(Entry entry) { entries_.push_back(std::move(entry)); }

  // Called for each server message, in order. Answers that are due before it are appended to
  // `before`; when the verdict is kReplace, `replacement` is the ErrorResponse body to send
  // instead. Answers due right after it are appended to `after`. The client's and the
  // connection's statement records are corrected for requests the server skipped.
  Verdict on_server_message(char type, std::string& before, std::string& after,
                            std::string& replacement, ClientStatements& client,
                            StatementCache& server) {
    // Most replies settle nothing: rows, notices, and everything inside a simple query's reply
    // until its ReadyForQuery. Between calls no answer of the proxy's is at the head (each is
    // emitted as soon as it gets there), so these are forwarded as they are.
    if (type == 'D' || type == 'N' || type == 'A' || type == 'S' || entries_.empty() ||
        (type != 'Z' && entries_.front().kind == Kind::kSimpleQuery))
      return Verdict::kForward;
    return settle(type, before, after, replacement, client, server);
  }

 private:
  Verdict settle(char type, std::string& before, std::string& after, std::string& replacement,
                 ClientStatements& client, StatementCache& server);
  void emit_due(std::string& out);
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
};

// The ErrorResponse body PostgreSQL sends for `message` with `sqlstate`.
std::string error_body(std::string_view sqlstate, std::string_view message);

}  // namespace sluice::proxy
