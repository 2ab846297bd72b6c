#include "proxy/response_tracker.hpp"

namespace sluice::proxy {

// ------------------------------------------------------------------ ResponseTracker

void ResponseTracker::answer(Entry entry, std::string& out, ClientStatements& client) {
  entries_.push_back(std::move(entry));
  emit_due(out, client);
}

void ResponseTracker::emit_due(std::string& out, ClientStatements& client) {
  while (!entries_.empty()) {
    Entry& head = entries_.front();
    switch (head.kind) {
      case Kind::kParseComplete:
        pgwire::write_parse_complete(out);
        break;
      case Kind::kCloseComplete:
        pgwire::write_close_complete(out);
        break;
      case Kind::kLocalPrepare:
      case Kind::kLocalDeallocate:
      case Kind::kLocalDeallocateAll: {
        auto it = client.find(head.text);
        const bool named_here = it != client.end() && it->second == head.statement;
        if (status_ == 'E') {
          // A failed transaction block refuses every command; a PREPARE then never happened.
          pgwire::write_error(out, "ERROR", "25P02",
                              "current transaction is aborted, commands ignored until end of "
                              "transaction block");
          if (head.kind == Kind::kLocalPrepare && named_here) client.erase(it);
        } else if (head.kind == Kind::kLocalPrepare) {
          pgwire::write_command_complete(out, "PREPARE");
        } else if (head.kind == Kind::kLocalDeallocate) {
          if (named_here) client.erase(it);
          pgwire::write_command_complete(out, "DEALLOCATE");
        } else {
          client.clear();
          pgwire::write_command_complete(out, "DEALLOCATE ALL");
        }
        pgwire::write_ready_for_query(out, status_);
        break;
      }
      default:
        return;
    }
    entries_.pop_front();
  }
}

bool ResponseTracker::end_query_in_error(pgwire::Bytes body, std::string& replacement,
                                         ClientStatements& client, StatementCache& server) {
  bool replaced = false;
  while (!entries_.empty() && entries_.front().kind != Kind::kSimpleQuery &&
         entries_.front().kind != Kind::kSync) {
    Entry entry = std::move(entries_.front());
    entries_.pop_front();
    switch (entry.kind) {
      case Kind::kFailAsQuery:
        // Only the failure the proxy arranged; a failed transaction's own error stays.
        if (auto fields = pgwire::decode_error_fields(body);
            fields && fields->sqlstate() == "26000") {
          replacement = std::move(entry.text);
          replaced = true;
        }
        break;
      case Kind::kSqlPrepare:
        if (auto it = client.find(entry.text); it != client.end() && it->second == entry.statement)
          client.erase(it);
        server.remove(*entry.statement);
        break;
      case Kind::kSwallowSqlPrepare:
        server.remove(*entry.statement);
        break;
      case Kind::kSwallowSqlDeallocate:
        server.restore(entry.statement);
        break;
      default:
        break;
    }
  }
  if (!replaced && !entries_.empty() && entries_.front().rewrite) {
    const Entry& query = entries_.front();
    if (auto moved = error_for_client(body, *query.rewrite, query.text)) {
      replacement = std::move(*moved);
      replaced = true;
    }
  }
  return replaced;
}

void ResponseTracker::skip_to_sync(ClientStatements& client, StatementCache& server) {
  while (!entries_.empty() && entries_.front().kind != Kind::kSync) {
    Entry entry = std::move(entries_.front());
    entries_.pop_front();
    // Undo what the proxy recorded for requests the server never carried out.
    switch (entry.kind) {
      case Kind::kParse:
      case Kind::kParseComplete:
        if (entry.statement) {
          if (auto it = client.find(entry.text);
              it != client.end() && it->second == entry.statement)
            client.erase(it);
          if (entry.kind == Kind::kParse) server.remove(*entry.statement);
        }
        break;
      case Kind::kCloseComplete:
        if (entry.statement && !client.contains(entry.text))
          client.emplace(entry.text, entry.statement);
        break;
      case Kind::kSwallowParse:
      case Kind::kSwallowSqlPrepareExecute:
        server.remove(*entry.statement);
        break;
      case Kind::kSwallowClose:
        server.restore(entry.statement);
        break;
      default:
        break;
    }
  }
}

ResponseTracker::Verdict ResponseTracker::settle(char type, pgwire::Bytes body, std::string& before,
                                                 std::string& after, std::string& replacement,
                                                 ClientStatements& client, StatementCache& server) {
  emit_due(before, client);
  if (entries_.empty()) return Verdict::kForward;  // asynchronous: notices, notifications
  Verdict verdict = Verdict::kForward;
  Entry& head = entries_.front();
  auto pop_if = [&](Kind kind) {
    if (head.kind != kind) return false;
    entries_.pop_front();
    return true;
  };
  // ParseComplete and CloseComplete answer either the proxy's own message (dropped) or the
  // client's (forwarded).
  auto completes = [&](Kind proxys, Kind clients) {
    if (pop_if(proxys))
      verdict = Verdict::kDrop;
    else
      pop_if(clients);
  };
  if (type != 'E' && (head.kind == Kind::kSwallowReply ||
                      (type == 'C' && head.kind == Kind::kSwallowSqlPrepareExecute))) {
    entries_.pop_front();
    emit_due(after, client);
    return Verdict::kDrop;
  }
  switch (type) {
    case 'E':
      // In a simple query the statement fails but the query goes on to ReadyForQuery.
      if (head.kind == Kind::kSync) break;
      if (head.kind == Kind::kSimpleQuery || head.kind == Kind::kSqlPrepare ||
          head.kind == Kind::kSwallowSqlPrepare || head.kind == Kind::kSwallowSqlDeallocate ||
          head.kind == Kind::kFailAsQuery) {
        if (end_query_in_error(body, replacement, client, server)) verdict = Verdict::kReplace;
        break;
      }
      if (head.kind == Kind::kFailAs) {
        // Only the failure the proxy arranged; a failed transaction's own error stays.
        auto fields = pgwire::decode_error_fields(body);
        if (fields && fields->sqlstate() == "26000") {
          verdict = Verdict::kReplace;
          replacement = std::move(head.text);
        }
      } else if (head.kind == Kind::kParse && head.statement) {
        // Bad SQL: the statement exists neither for the client nor on the server.
        if (auto it = client.find(head.text); it != client.end() && it->second == head.statement)
          client.erase(it);
        server.remove(*head.statement);
      } else if (head.kind == Kind::kSwallowParse || head.kind == Kind::kSwallowSqlPrepareExecute) {
        server.remove(*head.statement);
      }
      entries_.pop_front();
      skip_to_sync(client, server);
      break;
    case 'Z':
      while (!entries_.empty()) {
        const Kind kind = entries_.front().kind;
        entries_.pop_front();
        if (kind == Kind::kSync || kind == Kind::kSimpleQuery) break;
      }
      break;
    case '1':
      completes(Kind::kSwallowParse, Kind::kParse);
      break;
    case '2':
      pop_if(Kind::kBind);
      break;
    case '3':
      completes(Kind::kSwallowClose, Kind::kClose);
      break;
    case 'T':
    case 'n':
      pop_if(Kind::kDescribe);
      break;
    case 'C':
      if (pop_if(Kind::kSwallowSqlPrepare) || pop_if(Kind::kSwallowSqlDeallocate)) {
        verdict = Verdict::kDrop;
        break;
      }
      if (pop_if(Kind::kSqlPrepare)) break;
      if (head.kind == Kind::kExecute && head.statement &&
          pgwire::as_text(body) == std::string_view("DEALLOCATE\0", 11)) {
        // A DEALLOCATE of the client's statement, renamed: gone for the client and the server.
        if (auto it = client.find(head.text); it != client.end() && it->second == head.statement)
          client.erase(it);
        server.remove(*head.statement);
      }
      if (head.kind == Kind::kExecute &&
          pgwire::as_text(body) == std::string_view("DEALLOCATE ALL\0", 15)) {
        // The client's own DEALLOCATE ALL ran on the server (psycopg 3 sends it after a
        // rollback): nothing is prepared there any more, for the client or the connection.
        client.clear();
        server.clear();
      }
      pop_if(Kind::kExecute);
      break;
    case 'I':
    case 's':
      pop_if(Kind::kExecute);
      break;
    default:
      break;
  }
  emit_due(after, client);
  return verdict;
}

std::string error_body(std::string_view sqlstate, std::string_view message) {
  std::string message_bytes;
  pgwire::write_error(message_bytes, "ERROR", sqlstate, message);
  return message_bytes.substr(5);  // without the type byte and length word
}

int32_t character_count(std::string_view text) {
  int32_t count = 0;
  for (char c : text) count += (static_cast<uint8_t>(c) & 0xC0) != 0x80;  // not a continuation
  return count;
}

std::optional<std::string> error_for_client(pgwire::Bytes body,
                                            const ResponseTracker::Rewrite& rewrite,
                                            std::string_view names) {
  // The server's name, quoted as PostgreSQL quotes it in messages, and the client's.
  const size_t split = names.find('\0');
  // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict for "\"" + std::string.
  auto quoted = [](std::string_view name) {
    std::string out;
    out.reserve(name.size() + 2);
    out += '"';
    out += name;
    out += '"';
    return out;
  };
  const std::string server_quoted =
      split == std::string_view::npos ? std::string() : quoted(names.substr(0, split));
  const std::string client_quoted =
      split == std::string_view::npos ? std::string() : quoted(names.substr(split + 1));
  // Fields: a code byte and a NUL-terminated value each, then a final NUL.
  const std::string_view fields = pgwire::as_text(body);
  std::string out;
  bool found = false;
  size_t i = 0;
  while (i < fields.size() && fields[i] != '\0') {
    const char code = fields[i];
    const size_t end = fields.find('\0', i + 1);
    if (end == std::string_view::npos) return std::nullopt;  // malformed: leave it alone
    const std::string_view value = fields.substr(i + 1, end - i - 1);
    i = end + 1;
    if (code != 'P') {
      out += code;
      if (code == 'M' && !server_quoted.empty() &&
          value.find(server_quoted) != std::string_view::npos) {
        std::string message(value);
        for (size_t at = message.find(server_quoted); at != std::string::npos;
             at = message.find(server_quoted, at + client_quoted.size()))
          message.replace(at, server_quoted.size(), client_quoted);
        out += message;
        found = true;
      } else {
        out.append(value);
      }
      out += '\0';
      continue;
    }
    found = true;
    int64_t position = 0;
    for (char c : value) {
      if (c < '0' || c > '9' || position > 1'000'000'000) return std::nullopt;
      position = position * 10 + (c - '0');
    }
    position -= rewrite.prefix;
    if (position <= 0) continue;  // inside the proxy's own statement: no place in the client's
    if (position > rewrite.name_at + rewrite.server_name)
      position += rewrite.client_name - rewrite.server_name;
    else if (position > rewrite.name_at)
      position = rewrite.name_at + 1;  // in the renamed name: its first character
    out += 'P';
    out += std::to_string(position);
    out += '\0';
  }
  if (!found) return std::nullopt;
  out += '\0';
  return out;
}

}  // namespace sluice::proxy
