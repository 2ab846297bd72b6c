// The control plane's state: JSON documents by (kind, id) in one SQLite file, so resources
// survive restarts. One writer (the API thread); every call is its own transaction.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct sqlite3;

namespace sluice::cloud {

class Store {
 public:
  explicit Store(const std::string& path);  // throws std::runtime_error
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // False when (kind, id) exists already.
  bool insert(std::string_view kind, std::string_view id, std::string_view document);
  void put(std::string_view kind, std::string_view id, std::string_view document);
  std::optional<std::string> get(std::string_view kind, std::string_view id) const;
  bool remove(std::string_view kind, std::string_view id);
  // (id, document) pairs in creation order.
  std::vector<std::pair<std::string, std::string>> list(std::string_view kind) const;

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace sluice::cloud
