#include "cloud/store.hpp"

#include <sqlite3.h>

#include <memory>
#include <stdexcept>

namespace sluice::cloud {
namespace {

using Statement = std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)>;

Statement prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK)
    throw std::runtime_error(std::string("store: ") + sqlite3_errmsg(db));
  return Statement(raw, sqlite3_finalize);
}

void bind(sqlite3_stmt* statement, int index, std::string_view text) {
  sqlite3_bind_text(statement, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

std::string column(sqlite3_stmt* statement, int index) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement, index));
  return text ? std::string(text, static_cast<size_t>(sqlite3_column_bytes(statement, index))) : "";
}

void run(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw std::runtime_error("store: " + message);
  }
}

}  // namespace

Store::Store(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open " + path + ": " + message);
  }
  // WAL: a crash never leaves a half-written document; NORMAL sync is durable at checkpoints.
  run(db_,
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
      "CREATE TABLE IF NOT EXISTS resources (kind TEXT NOT NULL, id TEXT NOT NULL,"
      " document TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT, UNIQUE (kind, id))");
}

Store::~Store() {
  sqlite3_close(db_);
}

bool Store::insert(std::string_view kind, std::string_view id, std::string_view document) {
  auto statement =
      prepare(db_, "INSERT OR IGNORE INTO resources (kind, id, document) VALUES (?, ?, ?)");
  bind(statement.get(), 1, kind);
  bind(statement.get(), 2, id);
  bind(statement.get(), 3, document);
  if (sqlite3_step(statement.get()) != SQLITE_DONE)
    throw std::runtime_error(std::string("store: ") + sqlite3_errmsg(db_));
  return sqlite3_changes(db_) == 1;
}

void Store::put(std::string_view kind, std::string_view id, std::string_view document) {
  auto statement = prepare(db_,
                           "INSERT INTO resources (kind, id, document) VALUES (?, ?, ?)"
                           " ON CONFLICT (kind, id) DO UPDATE SET document = excluded.document");
  bind(statement.get(), 1, kind);
  bind(statement.get(), 2, id);
  bind(statement.get(), 3, document);
  if (sqlite3_step(statement.get()) != SQLITE_DONE)
    throw std::runtime_error(std::string("store: ") + sqlite3_errmsg(db_));
}

std::optional<std::string> Store::get(std::string_view kind, std::string_view id) const {
  auto statement = prepare(db_, "SELECT document FROM resources WHERE kind = ? AND id = ?");
  bind(statement.get(), 1, kind);
  bind(statement.get(), 2, id);
  if (sqlite3_step(statement.get()) != SQLITE_ROW) return std::nullopt;
  return column(statement.get(), 0);
}

bool Store::remove(std::string_view kind, std::string_view id) {
  auto statement = prepare(db_, "DELETE FROM resources WHERE kind = ? AND id = ?");
  bind(statement.get(), 1, kind);
  bind(statement.get(), 2, id);
  if (sqlite3_step(statement.get()) != SQLITE_DONE)
    throw std::runtime_error(std::string("store: ") + sqlite3_errmsg(db_));
  return sqlite3_changes(db_) == 1;
}

std::vector<std::pair<std::string, std::string>> Store::list(std::string_view kind) const {
  auto statement = prepare(db_, "SELECT id, document FROM resources WHERE kind = ? ORDER BY seq");
  bind(statement.get(), 1, kind);
  std::vector<std::pair<std::string, std::string>> out;
  while (sqlite3_step(statement.get()) == SQLITE_ROW)
    out.emplace_back(column(statement.get(), 0), column(statement.get(), 1));
  return out;
}

}  // namespace sluice::cloud
