// The function's database work over libpq: one connection kept across warm invocations, one
// transaction per event.
#pragma once

#include <libpq-fe.h>

#include <string>

#include "events.hpp"
#include "settings.hpp"

namespace meal_planner {

class Database {
 public:
  explicit Database(DbSettings settings) : settings_(std::move(settings)) {}
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs the event in one transaction (BEGIN … COMMIT) and returns its result JSON. Connects
  // on first use. A connection found broken (a proxy that reclaimed or restarted it) is
  // reopened once and the event retried once, unless COMMIT had been sent: then the outcome is
  // unknown and it is a DatabaseError. Throws FunctionError: DatabaseError (PostgreSQL's
  // message), NoRecipes.
  std::string handle(const Event& event);

 private:
  void connect();
  void disconnect();
  std::string run_transaction(const Event& event);

  DbSettings settings_;
  PGconn* connection_ = nullptr;
};

}  // namespace meal_planner
