#include "proxy/prepared_statements.hpp"

namespace sluice::proxy {

// ------------------------------------------------------------------ StatementRegistry

StatementRef StatementRegistry::intern(pgwire::Bytes definition, bool changes_settings,
                                       StatementRef runs) {
  std::string key(reinterpret_cast<const char*>(definition.data()), definition.size());
  std::lock_guard lock(state_->mutex);
  auto& by_definition = state_->by_definition;
  if (auto it = by_definition.find(key); it != by_definition.end())
    if (auto existing = it->second.lock()) return existing;
  auto* statement = new PreparedStatement;
  statement->id = state_->next_id++;
  statement->server_name = "sluice_" + std::to_string(statement->id);
  statement->definition = key;
  statement->changes_settings = changes_settings;
  statement->runs = std::move(runs);
  std::weak_ptr<State> state = state_;
  StatementRef ref(statement, [state](const PreparedStatement* gone) {
    if (auto alive = state.lock()) {
      std::lock_guard lock(alive->mutex);
      auto it = alive->by_definition.find(gone->definition);
      if (it != alive->by_definition.end() && it->second.expired()) alive->by_definition.erase(it);
    }
    delete gone;
  });
  by_definition[std::move(key)] = ref;
  return ref;
}

StatementRef StatementRegistry::make_sql(std::string sql_tail, bool changes_settings) {
  auto statement = std::make_shared<PreparedStatement>();
  {
    std::lock_guard lock(state_->mutex);
    statement->id = state_->next_id++;
  }
  statement->server_name = "sluice_" + std::to_string(statement->id);
  statement->sql_tail = std::move(sql_tail);
  statement->changes_settings = changes_settings;
  return statement;
}

size_t StatementRegistry::size() const {
  std::lock_guard lock(state_->mutex);
  return state_->by_definition.size();
}

std::string_view PreparedStatement::text() const {
  if (definition.empty()) return sql_tail;
  return std::string_view(definition.data(), definition.find('\0'));
}

std::string PreparedStatement::sql_prepare_tail() const {
  if (definition.empty()) return sql_tail;
  // After the SQL's NUL: an int16 count and that many int32 type OIDs; 0 means "infer", as a
  // PREPARE without a type list does.
  const size_t at = definition.find('\0') + 1;
  const auto* types = reinterpret_cast<const uint8_t*>(definition.data()) + at;
  const size_t bytes = definition.size() - at;
  if (bytes < 2) return {};
  const size_t count = static_cast<size_t>(types[0] << 8 | types[1]);
  if (bytes != 2 + 4 * count) return {};
  for (size_t i = 2; i < bytes; ++i)
    if (types[i] != 0) return {};
  return "AS " + std::string(text());
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

}  // namespace sluice::proxy
