// Named prepared statements in transaction pooling, on the client's side of the relay: the
// client's Parse, Bind, Describe, Close and Execute, and its SQL PREPARE, EXECUTE and
// DEALLOCATE, translated to the server's names (prepared_statements.hpp), with statements the
// lent connection lacks prepared on demand and errors made to read as PostgreSQL's own.
//
// Pure: it works on plain data (the client's frames, the lent connection's StatementCache) and
// writes into output buffers (what goes to the server, what the proxy answers itself) and the
// ResponseTracker; what it learns for the session (a pin, a settings change) goes through
// StatementEvents. Unit-tested without sockets.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "pgwire/codec.hpp"
#include "proxy/pinning.hpp"
#include "proxy/prepared_statements.hpp"
#include "proxy/response_tracker.hpp"
#include "proxy/sql_prepared.hpp"

namespace sluice::proxy {

struct SqlPreparedCommand;

// What the router tells its session.
class StatementEvents {
 public:
  virtual bool pinned() const = 0;
  virtual void pin(PinReason reason) = 0;
  // A statement that changes settings runs: they are read back before the connection goes.
  virtual void settings_changed(std::string_view sql) = 0;

 protected:
  ~StatementEvents() = default;
};

class StatementRouter {
 public:
  // `enabled`: max_prepared_statements > 0. Otherwise named protocol statements pin and SQL
  // PREPARE goes through as written. `statements`: the client's, kept by its session (they
  // outlive a router that goes while the session is idle).
  StatementRouter(StatementRegistry& registry, bool enabled, ResponseTracker& tracker,
                  std::string& to_server, std::string& to_client, StatementEvents& events,
                  ClientStatements& statements)
      : registry_(registry),
        enabled_(enabled),
        tracker_(tracker),
        to_server_(to_server),
        to_client_(to_client),
        events_(events),
        statements_(statements) {}

  bool enabled() const { return enabled_; }
  // The client's statements, by its own names.
  ClientStatements& statements() { return statements_; }

  // A simple query the proxy answers alone (DEALLOCATE of a name the client has, DEALLOCATE
  // ALL): no server needs to be borrowed for it.
  // Inline where the first word rules it out (every query asks, twice).
  bool answered_without_server(const pgwire::Frame& query) const {
    return enabled_ && may_be_sql_prepared_command(pgwire::as_text(query.body)) &&
           answered_without_server_slow(query);
  }
  // Whether a Close needs a server: the client's own named statement is closed by the proxy
  // (and a malformed Close is refused before anything is sent).
  bool close_needs_server(const pgwire::Frame& close) const;

  // A simple query that is one SQL PREPARE, EXECUTE or DEALLOCATE: translated to the server's
  // names and written, or answered by the proxy. False when it is not one, or when it needs a
  // server and `server` (the lent connection's statements) is null: the caller goes on as for
  // any query.
  bool route_query(std::string_view sql, StatementCache* server) {
    return enabled_ && may_be_sql_prepared_command(sql) && route_query_slow(sql, server);
  }

  // The client's Close of its own named statement, if `close` is one: answered by the proxy,
  // wherever the client stands. Nullopt for a malformed Close.
  std::optional<bool> close_client_statement(const pgwire::Frame& close);

  // An extended-protocol message (Parse, Bind, Describe, Execute, Close) for the lent
  // connection: renamed, prepared on demand, recorded in the tracker. `parse` is the decoded
  // Parse, if the message is one. False for a malformed message.
  bool route_extended(const pgwire::Frame& frame, std::optional<pgwire::ParseMessage>& parse,
                      StatementCache& server);
  // Whether the message route_extended() last took went to the server (renamed or not) rather
  // than being answered or made to fail. For a streamed Bind's head (frame.unread > 0), its
  // unread rest must then follow it there; otherwise the rest is dropped.
  bool passed_on() const { return passed_on_; }

  // DEALLOCATE ALL or DISCARD ALL ran in a pinned session: every name goes, here and there.
  void drop_all(StatementCache& server);

  // Nothing carried from one message to the next: a router made anew would act the same.
  bool at_rest() const {
    return !unnamed_deallocates_.statement && unnamed_deallocates_.name.empty() &&
           !portal_deallocates_.statement && portal_deallocates_.name.empty();
  }

 private:
  bool answered_without_server_slow(const pgwire::Frame& query) const;
  bool route_query_slow(std::string_view sql, StatementCache* server);
  // "EXECUTE <one of the client's statements>" (or DEALLOCATE) in a Parse: rewritten into
  // `rewritten` with the server's name. Returns false when the request was made to fail.
  bool translate_parse(pgwire::ParseMessage& parse, std::string& rewritten, StatementRef& runs,
                       bool& translated, StatementCache& server);
  // Pins or notes settings for what a Parse runs.
  void note_parse_effects(const pgwire::ParseMessage& parse, bool translated);
  bool relay_extended(const pgwire::Frame& frame, const std::optional<pgwire::ParseMessage>& parse,
                      const StatementRef& runs, StatementCache& server);
  bool relay_parse(const pgwire::Frame& frame, const pgwire::ParseMessage& parse,
                   const StatementRef& runs, StatementCache& server);
  bool relay_sql_prepared(const SqlPreparedCommand& command, std::string_view sql,
                          StatementCache* server);
  // PREPARE of the client's: the statement, interned or the client's own.
  StatementRef sql_prepare(const SqlPreparedCommand& command, std::string_view sql,
                           StatementCache& server, std::string& prefix, bool& answered);
  // EXECUTE of the client's `statement`, prepared first by SQL in `prefix` if need be. False
  // when the request was made to fail instead.
  bool sql_execute(const SqlPreparedCommand& command, std::string_view sql,
                   const StatementRef& statement, StatementCache& server, std::string& prefix);
  bool forward(const pgwire::Frame& frame, ResponseTracker::Kind kind);
  // The client's statement `name`, prepared on the lent connection (a Parse goes ahead if the
  // connection lacks it); null, with PostgreSQL's 26000 on its way, when there is none.
  const PreparedStatement* use_statement(std::string_view name, StatementCache& server);
  // Prepares `statement` (and what it runs) on the lent connection unless it is there. False,
  // with the request made to fail, when only SQL can prepare it.
  bool ensure_on_server(const StatementRef& statement, std::string_view name,
                        StatementCache& server);
  // Sends Parse for `statement` (after a Close of the LRU's victim, if any) and expects its
  // reply as `expectation` says.
  void prepare_on_server(const StatementRef& statement, ResponseTracker::Entry expectation,
                         StatementCache& server);
  // Makes the server fail the current request as PostgreSQL would have, with this error.
  void fail_as(std::string_view sqlstate, const std::string& message);
  // The same for a simple query.
  void fail_as_query(std::string_view sqlstate, const std::string& message);

  StatementRegistry& registry_;
  const bool enabled_;
  ResponseTracker& tracker_;
  std::string& to_server_;
  std::string& to_client_;
  StatementEvents& events_;
  ClientStatements& statements_;
  // A DEALLOCATE of one of the client's statements sent through the extended protocol, as the
  // unnamed statement and then as the unnamed portal bound from it.
  struct Deallocation {
    StatementRef statement;
    std::string name;
  };
  Deallocation unnamed_deallocates_, portal_deallocates_;
  bool passed_on_ = false;
};

}  // namespace sluice::proxy
