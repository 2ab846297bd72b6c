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
#include <mutex>
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
// Shared by all workers (a server connection moving between them keeps what it has prepared,
// by the same names), so locked: it is used when a client prepares, not per message.
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
    std::mutex mutex;
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

}  // namespace sluice::proxy
