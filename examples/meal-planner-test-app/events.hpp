// The function's events, parsed and validated before any database work (pure: no I/O). Bad
// input is a sluice::runtime::FunctionError whose type the caller sees as errorType.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace meal_planner {

struct Ingredient {
  std::string name;
  std::string quantity;  // a positive decimal, as PostgreSQL's numeric reads it ("300", "0.5")
  std::string unit;      // may be empty ("2 eggs")
};

struct Recipe {
  std::string name;
  int32_t servings = 0;
  std::vector<Ingredient> ingredients;  // never empty
};

struct MigrateEvent {};
struct HealthEvent {};
struct AddRecipeEvent {
  Recipe recipe;
};
struct PlanWeekEvent {
  std::chrono::year_month_day week_start;
};
struct ShoppingListEvent {
  std::chrono::year_month_day week_start;
};

using Event =
    std::variant<MigrateEvent, HealthEvent, AddRecipeEvent, PlanWeekEvent, ShoppingListEvent>;

// {"action": "migrate" | "health" | "add_recipe" | "plan_week" | "shopping_list", …}.
// Throws FunctionError: InvalidEvent (not JSON, not an object), UnknownAction, InvalidRecipe,
// InvalidDate.
Event parse_event(std::string_view text);

// The optional "work_ms" of any event (0 to 10000, default 0): time the function spends before
// its transaction, standing in for the rest of a real handler's work (calls to other services,
// computation). Bursts use it so that invocations overlap as they do on Lambda, where a cold
// start alone takes longer than this host's. Throws FunctionError InvalidEvent when malformed.
std::chrono::milliseconds simulated_work(std::string_view text);

// "YYYY-MM-DD", a real calendar day from 0001-01-01 to 9999-12-25 (its week must end by 9999).
std::optional<std::chrono::year_month_day> parse_date(std::string_view text);
std::string format_date(std::chrono::year_month_day date);
// The seven days from `start`, as YYYY-MM-DD.
std::array<std::string, 7> week_dates(std::chrono::year_month_day start);

}  // namespace meal_planner
