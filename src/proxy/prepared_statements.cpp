#include "proxy/prepared_statements.hpp"

namespace sluice::proxy {

// ------------------------------------------------------------------ StatementRegistry

StatementRef StatementRegistry::intern(pgwire::Bytes definition, bool changes_settings) {
  std::string key(reinterpret_cast<const char*>(definition.data()), definition.size());
  auto& by_definition = state_->by_definition;
  if (auto it = by_definition.find(key); it != by_definition.end())
    if (auto existing = it->second.lock()) return existing;
  auto* statement = new PreparedStatement;
  statement->id = state_->next_id++;
  statement->server_name = "sluice_" + std::to_string(statement->id);
  statement->definition = key;
  statement->changes_settings = changes_settings;
  std::weak_ptr<State> state = state_;
  StatementRef ref(statement, [state](const PreparedStatement* gone) {
    if (auto alive = state.lock()) {
      auto it = alive->by_definition.find(gone->definition);
      if (it != alive->by_definition.end() && it->second.expired()) alive->by_definition.erase(it);
    }
    delete gone;
  });
  by_definition[std::move(key)] = ref;
  return ref;
}

size_t StatementRegistry::size() const {
  return state_->by_definition.size();
}

// ------------------------------------------------------------------ StatementCache

bool StatementCache::has(const PreparedStatement& statement) {
  auto it = index_.find(statement.id);
  if (it == index_.end()) return false;
  lru_.splice(lru_.begin(), lru_, it->second);
  return true;
}

StatementRef StatementCache::add(StatementRef statement) {
  if (has(*statement)) return nullptr;
  lru_.push_front(std::move(statement));
  index_[lru_.front()->id] = lru_.begin();
  if (index_.size() <= capacity_) return nullptr;
  StatementRef evicted = std::move(lru_.back());
  lru_.pop_back();
  index_.erase(evicted->id);
  return evicted;
}

void StatementCache::restore(StatementRef statement) {
  if (has(*statement)) return;
  lru_.push_back(std::move(statement));
  index_[lru_.back()->id] = std::prev(lru_.end());
}

void StatementCache::remove(const PreparedStatement& statement) {
  auto it = index_.find(statement.id);
  if (it == index_.end()) return;
  lru_.erase(it->second);
  index_.erase(it);
}

void StatementCache::clear() {
  lru_.clear();
  index_.clear();
}

// ------------------------------------------------------------------ ResponseTracker

void ResponseTracker::answer(Entry entry, std::string& out) {
  entries_.push_back(std::move(entry));
  emit_due(out);
}

void ResponseTracker::emit_due(std::string& out) {
  while (!entries_.empty()) {
    const Kind kind = entries_.front().kind;
    if (kind == Kind::kParseComplete)
      pgwire::write_parse_complete(out);
    else if (kind == Kind::kCloseComplete)
      pgwire::write_close_complete(out);
    else
      return;
    entries_.pop_front();
  }
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

ResponseTracker::Verdict ResponseTracker::settle(char type, std::string& before, std::string& after,
                                                 std::string& replacement, ClientStatements& client,
                                                 StatementCache& server) {
  emit_due(before);
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
  switch (type) {
    case 'E':
      // In a simple query the statement fails but the query goes on to ReadyForQuery.
      if (head.kind == Kind::kSimpleQuery || head.kind == Kind::kSync) break;
      if (head.kind == Kind::kFailAs) {
        verdict = Verdict::kReplace;
        replacement = std::move(head.text);
      } else if (head.kind == Kind::kParse && head.statement) {
        // Bad SQL: the statement exists neither for the client nor on the server.
        if (auto it = client.find(head.text); it != client.end() && it->second == head.statement)
          client.erase(it);
        server.remove(*head.statement);
      } else if (head.kind == Kind::kSwallowParse) {
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
    case 'I':
    case 's':
      pop_if(Kind::kExecute);
      break;
    default:
      break;
  }
  emit_due(after);
  return verdict;
}

std::string error_body(std::string_view sqlstate, std::string_view message) {
  std::string message_bytes;
  pgwire::write_error(message_bytes, "ERROR", sqlstate, message);
  return message_bytes.substr(5);  // without the type byte and length word
}

}  // namespace sluice::proxy
