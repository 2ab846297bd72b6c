#include "proxy/statement_router.hpp"

#include "proxy/sql_prepared.hpp"

namespace sluice::proxy {
namespace {
constexpr uint8_t kNoParameters[6] = {0, 0, 0, 0, 0, 0};
}  // namespace

bool StatementRouter::answered_without_server_slow(const pgwire::Frame& query) const {
  auto sql = pgwire::decode_query(query.body);
  if (!sql) return false;
  auto command = parse_sql_prepared_command(*sql);
  if (!command) return false;
  using CommandKind = SqlPreparedCommand::Kind;
  return command->kind == CommandKind::kDeallocateAll ||
         (command->kind == CommandKind::kDeallocate && statements_.contains(command->name));
}

bool StatementRouter::close_needs_server(const pgwire::Frame& close) const {
  if (!enabled_) return true;
  auto target = pgwire::decode_describe_or_close(close.body);
  return target && !(target->kind == 'S' && !target->name.empty());
}

std::optional<bool> StatementRouter::close_client_statement(const pgwire::Frame& close) {
  auto target = pgwire::decode_describe_or_close(close.body);
  if (!target) return std::nullopt;
  if (target->kind != 'S' || target->name.empty()) return false;
  StatementRef closed;
  if (auto it = statements_.find(target->name); it != statements_.end()) {
    closed = std::move(it->second);
    statements_.erase(it);
  }
  // Closing a name that does not exist is not an error in PostgreSQL either. The server keeps
  // the statement for other clients until its LRU lets it go.
  tracker_.answer(
      {ResponseTracker::Kind::kCloseComplete, std::move(closed), std::string(target->name)},
      to_client_, statements_);
  return true;
}

void StatementRouter::drop_all(StatementCache& server) {
  statements_.clear();
  server.clear();
}

// ------------------------------------------------------------------ extended protocol

bool StatementRouter::route_extended(const pgwire::Frame& frame,
                                     std::optional<pgwire::ParseMessage>& parse,
                                     StatementCache& server) {
  passed_on_ = false;
  std::string rewritten;  // outlives `parse`'s views into it
  StatementRef runs;
  bool translated = false;
  if (parse && !translate_parse(*parse, rewritten, runs, translated, server)) return true;
  if (parse) note_parse_effects(*parse, translated);
  return relay_extended(frame, parse, runs, server);
}

bool StatementRouter::translate_parse(pgwire::ParseMessage& parse, std::string& rewritten,
                                      StatementRef& runs, bool& translated,
                                      StatementCache& server) {
  // "EXECUTE <one of the client's statements>" through the extended protocol (psycopg 3 with
  // parameters, say): the same translation as in a simple query.
  if (!enabled_ || !may_be_sql_prepared_command(parse.query)) return true;
  auto command = parse_sql_prepared_command(parse.query);
  if (!command) return true;
  using CommandKind = SqlPreparedCommand::Kind;
  auto it = statements_.find(command->name);
  const bool execute = command->kind == CommandKind::kExecute;
  // DEALLOCATE: psycopg 3 sends it when its own statement cache overflows. The records change
  // when the server reports it done, in case Bind and Execute never follow.
  const bool deallocate = command->kind == CommandKind::kDeallocate && parse.statement.empty();
  if ((execute || deallocate) && it != statements_.end()) {
    // The server's name in the client's (the statement prepared first if need be); the
    // parameter types after the SQL's NUL stay as they were.
    runs = it->second;
    if (!ensure_on_server(runs, command->name, server)) return false;
    rewritten.append(parse.query.substr(0, command->name_begin));
    rewritten += runs->server_name;
    rewritten.append(parse.query.substr(command->name_end));
    const auto* types = parse.definition.data() + parse.query.size();
    rewritten.append(reinterpret_cast<const char*>(types),
                     parse.definition.size() - parse.query.size());
    parse.query = std::string_view(rewritten.data(), rewritten.find('\0'));
    parse.definition = {reinterpret_cast<const uint8_t*>(rewritten.data()), rewritten.size()};
    if (deallocate) unnamed_deallocates_ = {runs, command->name};
    if (execute && runs->changes_settings && parse.statement.empty())
      events_.settings_changed(runs->text());
    translated = true;
  } else if (command->kind == CommandKind::kDeallocateAll) {
    // psycopg 3 sends this after a rollback. It runs on the server as written; the tracker
    // forgets the client's and the connection's statements when it succeeds.
    translated = true;
  }
  return true;
}

void StatementRouter::note_parse_effects(const pgwire::ParseMessage& parse, bool translated) {
  if (events_.pinned()) return;
  if (translated) {
    // Only what the arguments do; EXECUTE itself is translated.
    const StatementEffects effects = statement_effects(parse.query);
    if (effects.pin && *effects.pin != PinReason::kPreparedStatement) events_.pin(*effects.pin);
    return;
  }
  if (!parse.statement.empty() && !enabled_) {
    events_.pin(PinReason::kNamedProtocolStatement);
    return;
  }
  const StatementEffects effects = statement_effects(parse.query);
  if (effects.pin) events_.pin(*effects.pin);
  // An unnamed statement runs in this round; a named one whenever it is bound.
  if (effects.changes_settings && parse.statement.empty()) events_.settings_changed(parse.query);
}

bool StatementRouter::forward(const pgwire::Frame& frame, ResponseTracker::Kind kind) {
  to_server_.append(reinterpret_cast<const char*>(frame.body.data()) - 5, frame.wire_size());
  tracker_.expect(kind);
  passed_on_ = true;
  return true;
}

bool StatementRouter::relay_extended(const pgwire::Frame& frame,
                                     const std::optional<pgwire::ParseMessage>& parse,
                                     const StatementRef& runs, StatementCache& server) {
  using Kind = ResponseTracker::Kind;
  switch (frame.type) {
    case 'P':
      return relay_parse(frame, *parse, runs, server);
    case 'B': {
      auto bind = pgwire::decode_bind(frame.body);
      if (!bind) return false;
      if (bind->portal.empty())
        portal_deallocates_ = bind->statement.empty() ? unnamed_deallocates_ : Deallocation{};
      if (!enabled_ || bind->statement.empty()) return forward(frame, Kind::kBind);
      const PreparedStatement* statement = use_statement(bind->statement, server);
      if (!statement) return true;
      if (statement->changes_settings) events_.settings_changed(statement->text());
      pgwire::write_bind(to_server_, bind->portal, statement->server_name, bind->rest,
                         frame.unread);
      tracker_.expect(Kind::kBind);
      passed_on_ = true;
      return true;
    }
    case 'D': {
      auto target = pgwire::decode_describe_or_close(frame.body);
      if (!target) return false;
      if (!enabled_ || target->kind == 'P' || target->name.empty())
        return forward(frame, Kind::kDescribe);
      const PreparedStatement* statement = use_statement(target->name, server);
      if (!statement) return true;
      pgwire::write_describe(to_server_, 'S', statement->server_name);
      tracker_.expect(Kind::kDescribe);
      return true;
    }
    case 'C':
      if (!pgwire::decode_describe_or_close(frame.body)) return false;
      return forward(frame, Kind::kClose);
    default: {  // 'E'
      auto portal = pgwire::decode_execute_portal(frame.body);
      if (portal && portal->empty() && portal_deallocates_.statement) {
        // Its CommandComplete tells the tracker the client's statement is gone.
        to_server_.append(reinterpret_cast<const char*>(frame.body.data()) - 5, frame.wire_size());
        tracker_.expect({Kind::kExecute, portal_deallocates_.statement, portal_deallocates_.name});
        portal_deallocates_ = {};
        passed_on_ = true;
        return true;
      }
      return forward(frame, Kind::kExecute);
    }
  }
}

bool StatementRouter::relay_parse(const pgwire::Frame& frame, const pgwire::ParseMessage& parse,
                                  const StatementRef& runs, StatementCache& server) {
  using Kind = ResponseTracker::Kind;
  if (parse.statement.empty() && unnamed_deallocates_.statement != runs)
    unnamed_deallocates_ = {};  // a new unnamed statement replaces the DEALLOCATE
  if (runs && parse.statement.empty()) {
    pgwire::write_parse(to_server_, "", parse.definition);  // the rewritten text
    tracker_.expect(Kind::kParse);
    return true;
  }
  if (!enabled_ || parse.statement.empty()) return forward(frame, Kind::kParse);
  if (statements_.contains(parse.statement)) {
    fail_as("42P05", "prepared statement \"" + std::string(parse.statement) + "\" already exists");
    return true;
  }
  auto statement = registry_.intern(
      parse.definition,
      runs ? runs->changes_settings : statement_effects(parse.query).changes_settings, runs);
  statements_.emplace(std::string(parse.statement), statement);
  if (server.has(*statement)) {
    // Already prepared on this connection (by this client or another): answer for it.
    tracker_.answer({Kind::kParseComplete, statement, std::string(parse.statement)}, to_client_,
                    statements_);
  } else {
    prepare_on_server(statement, {Kind::kParse, statement, std::string(parse.statement)}, server);
  }
  return true;
}

const PreparedStatement* StatementRouter::use_statement(std::string_view name,
                                                        StatementCache& server) {
  auto it = statements_.find(name);
  if (it == statements_.end()) {
    fail_as("26000", "prepared statement \"" + std::string(name) + "\" does not exist");
    return nullptr;
  }
  const StatementRef& statement = it->second;
  if (!ensure_on_server(statement, name, server)) return nullptr;
  return statement.get();
}

bool StatementRouter::ensure_on_server(const StatementRef& statement, std::string_view name,
                                       StatementCache& server) {
  if (statement->runs && !ensure_on_server(statement->runs, name, server)) return false;
  if (server.has(*statement)) return true;
  if (!statement->definition.empty()) {
    prepare_on_server(statement, {ResponseTracker::Kind::kSwallowParse, statement, {}}, server);
    return true;
  }
  // A SQL PREPARE with a type list: only SQL can prepare it, so the proxy runs that SQL as an
  // extended-protocol statement of its own. The helper's name is closed first (closing a name
  // that does not exist is no error), as a failed attempt may have left it behind; the client's
  // unnamed statement and portal are left alone.
  using Kind = ResponseTracker::Kind;
  constexpr std::string_view kHelper = "sluice_sql_prepare";
  if (StatementRef evicted = server.add(statement)) {
    pgwire::write_close(to_server_, 'S', evicted->server_name);
    tracker_.expect({Kind::kSwallowClose, std::move(evicted)});
  }
  pgwire::write_close(to_server_, 'P', kHelper);
  pgwire::write_close(to_server_, 'S', kHelper);
  std::string definition = "PREPARE " + statement->server_name + " " + statement->sql_tail;
  definition.append("\0\0\0", 3);
  pgwire::write_parse(to_server_, kHelper,
                      {reinterpret_cast<const uint8_t*>(definition.data()), definition.size()});
  pgwire::write_bind(to_server_, kHelper, kHelper, kNoParameters);
  pgwire::MessageWriter w(to_server_);
  w.begin('E');
  w.cstring(kHelper);
  w.int32(0);
  w.end();
  for (int i = 0; i < 4; ++i) tracker_.expect(Kind::kSwallowReply);
  tracker_.expect({Kind::kSwallowSqlPrepareExecute, statement});
  return true;
}

void StatementRouter::prepare_on_server(const StatementRef& statement,
                                        ResponseTracker::Entry expectation,
                                        StatementCache& server) {
  if (StatementRef evicted = server.add(statement)) {
    pgwire::write_close(to_server_, 'S', evicted->server_name);
    tracker_.expect({ResponseTracker::Kind::kSwallowClose, std::move(evicted), {}});
  }
  pgwire::write_parse(to_server_, statement->server_name,
                      {reinterpret_cast<const uint8_t*>(statement->definition.data()),
                       statement->definition.size()});
  tracker_.expect(std::move(expectation));
}

void StatementRouter::fail_as(std::string_view sqlstate, const std::string& message) {
  // A Bind of a statement no server has: the server fails, and skips to Sync, exactly as
  // PostgreSQL would for the client's request; its error is replaced by the one it would give.
  pgwire::write_bind(to_server_, "", kMissingStatement, kNoParameters);
  tracker_.expect({ResponseTracker::Kind::kFailAs, nullptr, error_body(sqlstate, message)});
}

// ------------------------------------------------------------------ SQL PREPARE and EXECUTE

bool StatementRouter::route_query_slow(std::string_view sql, StatementCache* server) {
  auto command = parse_sql_prepared_command(sql);
  return command && relay_sql_prepared(*command, sql, server);
}

bool StatementRouter::relay_sql_prepared(const SqlPreparedCommand& command, std::string_view sql,
                                         StatementCache* server) {
  using Kind = ResponseTracker::Kind;
  using CommandKind = SqlPreparedCommand::Kind;
  auto it = statements_.find(command.name);
  const bool known = it != statements_.end();
  // A pinned session may hold statements under the client's own names (a PREPARE sent through
  // the extended protocol pins and goes through as written): those are the server's business.
  if (events_.pinned() && (command.kind == CommandKind::kDeallocateAll ||
                           (command.kind != CommandKind::kPrepare && !known)))
    return false;
  if (command.kind == CommandKind::kDeallocateAll) {
    tracker_.answer({Kind::kLocalDeallocateAll}, to_client_, statements_);
    return true;
  }
  if (command.kind == CommandKind::kDeallocate && known) {
    tracker_.answer({Kind::kLocalDeallocate, it->second, command.name}, to_client_, statements_);
    return true;
  }
  if (!server) return false;  // no connection could be had: its error is queued already
  const std::string quoted = "\"" + command.name + "\"";
  if (command.kind == CommandKind::kPrepare && known) {
    fail_as_query("42P05", "prepared statement " + quoted + " already exists");
    return true;
  }
  if (command.kind != CommandKind::kPrepare && !known) {
    fail_as_query("26000", "prepared statement " + quoted + " does not exist");
    return true;
  }
  std::string prefix;  // the proxy's own statements in front of the client's
  StatementRef statement;
  if (command.kind == CommandKind::kPrepare) {
    bool answered = false;
    statement = sql_prepare(command, sql, *server, prefix, answered);
    if (answered) return true;
  } else {
    statement = it->second;
    if (!sql_execute(command, sql, statement, *server, prefix)) return true;
  }
  std::string text = prefix;
  text.append(sql.substr(0, command.name_begin));
  text += statement->server_name;
  text.append(sql.substr(command.name_end));
  ResponseTracker::Rewrite rewrite;
  rewrite.prefix = character_count(prefix);
  rewrite.name_at = character_count(sql.substr(0, command.name_begin));
  rewrite.server_name = character_count(statement->server_name);
  rewrite.client_name =
      character_count(sql.substr(command.name_begin, command.name_end - command.name_begin));
  // The names, for error messages that quote the statement: the server's, NUL, the client's.
  tracker_.expect(
      {Kind::kSimpleQuery, nullptr, statement->server_name + '\0' + command.name, rewrite});
  pgwire::write_query(to_server_, text);
  return true;
}

StatementRef StatementRouter::sql_prepare(const SqlPreparedCommand& command, std::string_view sql,
                                          StatementCache& server, std::string& prefix,
                                          bool& answered) {
  using Kind = ResponseTracker::Kind;
  const StatementEffects effects = statement_effects(command.body);
  if (effects.pin && !events_.pinned()) events_.pin(*effects.pin);
  StatementRef statement;
  if (command.declares_types) {
    // Only the server knows what the type names mean: this statement is the client's own.
    const std::string_view tail =
        sql.substr(command.name_end, command.statement_end - command.name_end);
    statement = registry_.make_sql(std::string(tail), effects.changes_settings);
  } else {
    // The same as a protocol Parse of the body with no declared types: shared with it.
    std::string definition(command.body);
    definition.append("\0\0\0", 3);
    statement =
        registry_.intern({reinterpret_cast<const uint8_t*>(definition.data()), definition.size()},
                         effects.changes_settings);
  }
  statements_.emplace(command.name, statement);
  if (server.has(*statement)) {
    tracker_.answer({Kind::kLocalPrepare, statement, command.name}, to_client_, statements_);
    answered = true;
    return statement;
  }
  if (StatementRef evicted = server.add(statement)) {
    prefix += "DEALLOCATE " + evicted->server_name + ";\n";
    tracker_.expect({Kind::kSwallowSqlDeallocate, std::move(evicted)});
  }
  tracker_.expect({Kind::kSqlPrepare, statement, command.name});
  return statement;
}

bool StatementRouter::sql_execute(const SqlPreparedCommand& command, std::string_view sql,
                                  const StatementRef& statement, StatementCache& server,
                                  std::string& prefix) {
  // EXECUTE, alone or inside EXPLAIN or CREATE TABLE AS. What the rest of the query does
  // (arguments may call functions; CREATE may make a temporary table): EXECUTE itself is what
  // is translated here.
  using Kind = ResponseTracker::Kind;
  for (std::string_view part :
       {sql.substr(0, command.keyword_begin), sql.substr(command.name_end)}) {
    const StatementEffects effects = statement_effects(part);
    if (effects.pin && !events_.pinned()) events_.pin(*effects.pin);
    if (effects.changes_settings) events_.settings_changed(part);
  }
  if (statement->changes_settings) events_.settings_changed(statement->text());
  if (server.has(*statement)) return true;
  const std::string tail = statement->sql_prepare_tail();
  if (tail.empty()) {
    fail_as_query("0A000", "prepared statement \"" + command.name +
                               "\" declares parameter types by OID in a protocol Parse; sluice "
                               "runs it on this server connection only through Bind");
    return false;
  }
  if (StatementRef evicted = server.add(statement)) {
    prefix += "DEALLOCATE " + evicted->server_name + ";\n";
    tracker_.expect({Kind::kSwallowSqlDeallocate, std::move(evicted)});
  }
  // A newline first: the tail may end in a line comment.
  prefix += "PREPARE " + statement->server_name + " " + tail + "\n;\n";
  tracker_.expect({Kind::kSwallowSqlPrepare, statement});
  return true;
}

void StatementRouter::fail_as_query(std::string_view sqlstate, const std::string& message) {
  // A query the server fails (as it would the client's, in a failed transaction too) with an
  // error the tracker replaces by PostgreSQL's own for the client's query.
  tracker_.expect({ResponseTracker::Kind::kFailAsQuery, nullptr, error_body(sqlstate, message)});
  tracker_.expect(ResponseTracker::Kind::kSimpleQuery);
  pgwire::write_query(to_server_, "EXECUTE " + std::string(kMissingStatement));
}

}  // namespace sluice::proxy
