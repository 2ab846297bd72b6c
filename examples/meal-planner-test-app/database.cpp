#include "database.hpp"

#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "results.hpp"
#include "runtime/runtime.hpp"

namespace meal_planner {
namespace {

using sluice::runtime::FunctionError;

// Serializes concurrent migrations (CREATE … IF NOT EXISTS races on the catalogs otherwise).
constexpr const char* kMigrationLockKey = "7305412998";

constexpr const char* kSchema[] = {
    R"(create table if not exists recipes (
         id bigint generated always as identity primary key,
         name text not null check (name <> ''),
         servings integer not null check (servings > 0),
         created_at timestamptz not null default now()))",
    R"(create table if not exists ingredients (
         recipe_id bigint not null references recipes (id) on delete cascade,
         position integer not null,
         name text not null check (name <> ''),
         quantity numeric not null check (quantity > 0),
         unit text not null,
         primary key (recipe_id, position)))",
    R"(create table if not exists meal_plans (
         plan_date date primary key,
         recipe_id bigint not null references recipes (id)))",
    "create index if not exists meal_plans_recipe_id_idx on meal_plans (recipe_id)",
};

// The connection broke under a statement; `commit_sent` says whether it was COMMIT.
struct ConnectionLost : std::runtime_error {
  ConnectionLost(const std::string& message, bool commit_sent)
      : std::runtime_error(message), commit_sent(commit_sent) {}
  bool commit_sent;
};

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

FunctionError database_error(const std::string& message) {
  return FunctionError("DatabaseError", message);
}

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

class Session {
 public:
  explicit Session(PGconn* connection) : connection_(connection) {}

  // One statement with text parameters (PQexecParams: parameters never enter the SQL text).
  ResultPtr exec(const char* sql, const std::vector<std::string>& parameters = {},
                 bool is_commit = false) {
    std::vector<const char*> values;
    for (const auto& parameter : parameters) values.push_back(parameter.c_str());
    ResultPtr result(PQexecParams(connection_, sql, static_cast<int>(values.size()), nullptr,
                                  values.data(), nullptr, nullptr, 0),
                     &PQclear);
    const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
    if (PQstatus(connection_) == CONNECTION_BAD)
      throw ConnectionLost(trimmed(PQerrorMessage(connection_)), is_commit);
    std::string message;
    if (result) {
      const char* primary = PQresultErrorField(result.get(), PG_DIAG_MESSAGE_PRIMARY);
      const char* sqlstate = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
      message = primary ? primary : trimmed(PQresultErrorMessage(result.get()));
      if (sqlstate) message += std::string(" (SQLSTATE ") + sqlstate + ")";
    } else {
      message = trimmed(PQerrorMessage(connection_));
    }
    throw database_error(message);
  }

  std::string value(const ResultPtr& result, int row, int column) {
    return PQgetisnull(result.get(), row, column) ? "" : PQgetvalue(result.get(), row, column);
  }

  PGconn* connection() const { return connection_; }

 private:
  PGconn* connection_;
};

std::string migrate(Session& session) {
  session.exec("select pg_advisory_xact_lock($1::bigint)", {kMigrationLockKey});
  for (const char* statement : kSchema) session.exec(statement);
  return migrate_result();
}

std::string health(Session& session) {
  const auto result = session.exec(
      "select current_setting('server_version'), current_database(), current_user, "
      "(select ssl from pg_stat_ssl where pid = pg_backend_pid())");
  HealthInfo info;
  info.server_version = session.value(result, 0, 0);
  info.database = session.value(result, 0, 1);
  info.user = session.value(result, 0, 2);
  if (!PQgetisnull(result.get(), 0, 3)) info.server_side_tls = session.value(result, 0, 3) == "t";
  info.tls = PQsslInUse(session.connection()) == 1;
  if (const char* protocol = PQsslAttribute(session.connection(), "protocol"); info.tls && protocol)
    info.tls_protocol = protocol;
  return health_result(info);
}

std::string add_recipe(Session& session, const Recipe& recipe) {
  const auto inserted =
      session.exec("insert into recipes (name, servings) values ($1, $2::integer) returning id",
                   {recipe.name, std::to_string(recipe.servings)});
  const std::string recipe_id = session.value(inserted, 0, 0);
  int position = 0;
  for (const auto& ingredient : recipe.ingredients)
    session.exec(
        "insert into ingredients (recipe_id, position, name, quantity, unit) "
        "values ($1::bigint, $2::integer, $3, $4::numeric, $5)",
        {recipe_id, std::to_string(++position), ingredient.name, ingredient.quantity,
         ingredient.unit});
  return recipe_result(std::stoll(recipe_id));
}

std::string plan_week(Session& session, const PlanWeekEvent& event) {
  // Seven days never need more than the first seven recipes.
  const auto recipes = session.exec("select id from recipes order by id limit 7");
  std::vector<int64_t> recipe_ids;
  for (int row = 0; row < PQntuples(recipes.get()); ++row)
    recipe_ids.push_back(std::stoll(session.value(recipes, row, 0)));
  if (recipe_ids.empty())
    throw FunctionError("NoRecipes", "there are no recipes to plan a week with: add_recipe first");
  const auto dates = week_dates(event.week_start);
  const auto week = cycle_recipes(recipe_ids);
  std::vector<PlannedDay> days;
  for (std::size_t day = 0; day < dates.size(); ++day) {
    session.exec(
        "insert into meal_plans (plan_date, recipe_id) values ($1::date, $2::bigint) "
        "on conflict (plan_date) do update set recipe_id = excluded.recipe_id",
        {dates[day], std::to_string(week[day])});
    days.push_back({dates[day], week[day]});
  }
  return plan_week_result(days);
}

std::string shopping_list(Session& session, const ShoppingListEvent& event) {
  const auto dates = week_dates(event.week_start);
  // One row per planned day and ingredient before grouping: a recipe planned three times counts
  // three times.
  const auto result = session.exec(
      "select i.name, i.unit, sum(i.quantity)::text from meal_plans p "
      "join ingredients i on i.recipe_id = p.recipe_id "
      "where p.plan_date between $1::date and $2::date group by i.name, i.unit",
      {dates.front(), dates.back()});
  std::vector<ShoppingItem> items;
  for (int row = 0; row < PQntuples(result.get()); ++row)
    items.push_back({session.value(result, row, 0), session.value(result, row, 1),
                     session.value(result, row, 2)});
  return shopping_list_result(std::move(items));
}

template <class... Handlers>
struct Overloaded : Handlers... {
  using Handlers::operator()...;
};

}  // namespace

Database::~Database() {
  disconnect();
}

void Database::disconnect() {
  if (connection_) PQfinish(connection_);
  connection_ = nullptr;
}

void Database::connect() {
  disconnect();
  std::vector<const char*> keywords, values;
  const auto parameters = settings_.connection_parameters();
  for (const auto& [keyword, value] : parameters) {
    keywords.push_back(keyword.c_str());
    values.push_back(value.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  connection_ = PQconnectdbParams(keywords.data(), values.data(), /*expand_dbname=*/0);
  if (!connection_) throw database_error("out of memory while connecting");
  if (PQstatus(connection_) != CONNECTION_OK) {
    // libpq's message names the server and the reason, never the password.
    const std::string message = trimmed(PQerrorMessage(connection_));
    disconnect();
    throw database_error(message);
  }
  // CREATE … IF NOT EXISTS notices are not the function's output.
  PQsetNoticeProcessor(
      connection_, [](void*, const char*) {}, nullptr);
}

std::string Database::run_transaction(const Event& event) {
  Session session(connection_);
  session.exec("begin");
  std::string result;
  try {
    result = std::visit(
        Overloaded{[&](const MigrateEvent&) { return migrate(session); },
                   [&](const HealthEvent&) { return health(session); },
                   [&](const AddRecipeEvent& add) { return add_recipe(session, add.recipe); },
                   [&](const PlanWeekEvent& plan) { return plan_week(session, plan); },
                   [&](const ShoppingListEvent& list) { return shopping_list(session, list); }},
        event);
  } catch (const FunctionError&) {
    // Nothing of the event stays. A rollback that fails leaves a connection to drop.
    if (PQstatus(connection_) == CONNECTION_OK) {
      ResultPtr rollback(
          PQexecParams(connection_, "rollback", 0, nullptr, nullptr, nullptr, nullptr, 0),
          &PQclear);
      if (!rollback || PQresultStatus(rollback.get()) != PGRES_COMMAND_OK) disconnect();
    }
    throw;
  }
  session.exec("commit", {}, /*is_commit=*/true);
  return result;
}

std::string Database::handle(const Event& event) {
  for (int attempt = 1;; ++attempt) {
    if (!connection_ || PQstatus(connection_) != CONNECTION_OK) connect();
    try {
      return run_transaction(event);
    } catch (const ConnectionLost& lost) {
      disconnect();
      if (lost.commit_sent)
        throw database_error(
            "the connection was lost while committing, so whether the event "
            "was saved is unknown: " +
            std::string(lost.what()));
      if (attempt == 2) throw database_error(lost.what());
      std::fprintf(stderr, "meal-planner: the database connection was lost (%s); reconnecting\n",
                   lost.what());
    }
  }
}

}  // namespace meal_planner
