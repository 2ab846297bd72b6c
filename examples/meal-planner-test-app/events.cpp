#include "events.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "runtime/runtime.hpp"

namespace meal_planner {
namespace {

using sluice::runtime::FunctionError;

constexpr std::string_view kActions = "migrate, health, add_recipe, plan_week, shopping_list";

// A caller's text quoted in a message, cut short so a huge value cannot flood the logs.
std::string quoted(std::string_view text) {
  constexpr std::size_t kMax = 64;
  if (text.size() <= kMax) return "\"" + std::string(text) + "\"";
  std::size_t cut = kMax;
  // Not inside a UTF-8 sequence: the message must stay valid UTF-8.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return "\"" + std::string(text.substr(0, cut)) + "...\"";
}

bool is_blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

// A non-blank string without NUL (libpq passes parameters as C strings).
std::optional<std::string> name_field(const boost::json::object& object, const char* key) {
  const auto* field = object.if_contains(key);
  if (!field || !field->is_string()) return std::nullopt;
  const std::string_view text = field->as_string();
  if (is_blank(text) || text.find('\0') != std::string_view::npos) return std::nullopt;
  return std::string(text);
}

std::optional<int32_t> positive_int32(const boost::json::value& value) {
  constexpr auto kMax = std::numeric_limits<int32_t>::max();
  if (value.is_int64() && value.as_int64() > 0 && value.as_int64() <= kMax)
    return static_cast<int32_t>(value.as_int64());
  if (value.is_uint64() && value.as_uint64() > 0 && value.as_uint64() <= kMax)
    return static_cast<int32_t>(value.as_uint64());
  // 4.0 is the integer 4 written another way.
  if (value.is_double() && value.as_double() > 0 && value.as_double() <= kMax &&
      std::trunc(value.as_double()) == value.as_double())
    return static_cast<int32_t>(value.as_double());
  return std::nullopt;
}

// The decimal text of a positive JSON number, for a numeric parameter.
std::optional<std::string> positive_decimal(const boost::json::value& value) {
  if (value.is_int64() && value.as_int64() > 0) return std::to_string(value.as_int64());
  if (value.is_uint64() && value.as_uint64() > 0) return std::to_string(value.as_uint64());
  if (value.is_double() && std::isfinite(value.as_double()) && value.as_double() > 0) {
    char buffer[64];
    // The shortest text that reads back as the same double: 0.1 stays "0.1".
    const auto written = std::to_chars(buffer, buffer + sizeof buffer, value.as_double());
    return std::string(buffer, written.ptr);
  }
  return std::nullopt;
}

Recipe parse_recipe(const boost::json::object& event) {
  const auto invalid = [](const std::string& message) {
    return FunctionError("InvalidRecipe", message);
  };
  const auto* field = event.if_contains("recipe");
  if (!field || !field->is_object()) throw invalid("\"recipe\" must be an object");
  const auto& recipe_object = field->as_object();
  Recipe recipe;
  auto name = name_field(recipe_object, "name");
  if (!name) throw invalid("the recipe's \"name\" must be a non-empty string");
  recipe.name = std::move(*name);
  const auto* servings = recipe_object.if_contains("servings");
  const auto servings_value = servings ? positive_int32(*servings) : std::nullopt;
  if (!servings_value) throw invalid("the recipe's \"servings\" must be a positive integer");
  recipe.servings = *servings_value;
  const auto* ingredients = recipe_object.if_contains("ingredients");
  if (!ingredients || !ingredients->is_array() || ingredients->as_array().empty())
    throw invalid("the recipe's \"ingredients\" must be a non-empty array");
  std::size_t position = 0;
  for (const auto& item : ingredients->as_array()) {
    const std::string which = "ingredient " + std::to_string(++position) + ": ";
    if (!item.is_object()) throw invalid(which + "must be an object");
    const auto& object = item.as_object();
    Ingredient ingredient;
    auto ingredient_name = name_field(object, "name");
    if (!ingredient_name) throw invalid(which + "\"name\" must be a non-empty string");
    ingredient.name = std::move(*ingredient_name);
    const auto* quantity = object.if_contains("quantity");
    auto decimal = quantity ? positive_decimal(*quantity) : std::nullopt;
    if (!decimal) throw invalid(which + "\"quantity\" must be a positive number");
    ingredient.quantity = std::move(*decimal);
    const auto* unit = object.if_contains("unit");
    if (!unit || !unit->is_string() || unit->as_string().find('\0') != std::string_view::npos)
      throw invalid(which + "\"unit\" must be a string");
    ingredient.unit = std::string(unit->as_string());
    recipe.ingredients.push_back(std::move(ingredient));
  }
  return recipe;
}

std::chrono::year_month_day parse_week_start(const boost::json::object& event) {
  const auto* field = event.if_contains("week_start");
  if (!field || !field->is_string())
    throw FunctionError("InvalidDate", "\"week_start\" must be a date, YYYY-MM-DD");
  auto date = parse_date(field->as_string());
  if (!date)
    throw FunctionError("InvalidDate", "\"week_start\" " + quoted(field->as_string()) +
                                           " is not a date between 0001-01-01 and 9999-12-25 "
                                           "written YYYY-MM-DD");
  return *date;
}

}  // namespace

Event parse_event(std::string_view text) {
  boost::system::error_code error;
  const boost::json::value document = boost::json::parse(text, error);
  if (error) throw FunctionError("InvalidEvent", "the event is not JSON: " + error.message());
  if (!document.is_object()) throw FunctionError("InvalidEvent", "the event must be a JSON object");
  const auto& event = document.as_object();
  const auto* action = event.if_contains("action");
  if (!action || !action->is_string())
    throw FunctionError("UnknownAction",
                        "the event needs an \"action\": one of " + std::string(kActions));
  const std::string_view name = action->as_string();
  if (name == "migrate") return MigrateEvent{};
  if (name == "health") return HealthEvent{};
  if (name == "add_recipe") return AddRecipeEvent{parse_recipe(event)};
  if (name == "plan_week") return PlanWeekEvent{parse_week_start(event)};
  if (name == "shopping_list") return ShoppingListEvent{parse_week_start(event)};
  throw FunctionError("UnknownAction", "unknown action " + quoted(name) + "; expected one of " +
                                           std::string(kActions));
}

std::chrono::milliseconds simulated_work(std::string_view text) {
  boost::system::error_code error;
  const boost::json::value document = boost::json::parse(text, error);
  const auto* work =
      !error && document.is_object() ? document.as_object().if_contains("work_ms") : nullptr;
  if (!work) return std::chrono::milliseconds(0);
  if (!work->is_int64() || work->as_int64() < 0 || work->as_int64() > 10000)
    throw FunctionError("InvalidEvent", "\"work_ms\" must be a whole number from 0 to 10000");
  return std::chrono::milliseconds(work->as_int64());
}

std::optional<std::chrono::year_month_day> parse_date(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  const auto number = [&](std::size_t offset, std::size_t length) -> std::optional<int> {
    int value = 0;
    for (std::size_t i = offset; i < offset + length; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  const auto year = number(0, 4), month = number(5, 2), day = number(8, 2);
  if (!year || !month || !day || *year < 1) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year(*year),
                                         std::chrono::month(static_cast<unsigned>(*month)),
                                         std::chrono::day(static_cast<unsigned>(*day))};
  if (!date.ok()) return std::nullopt;
  const std::chrono::year_month_day week_end{std::chrono::sys_days(date) + std::chrono::days(6)};
  if (static_cast<int>(week_end.year()) > 9999) return std::nullopt;
  return date;
}

std::string format_date(std::chrono::year_month_day date) {
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
  return text;
}

std::array<std::string, 7> week_dates(std::chrono::year_month_day start) {
  std::array<std::string, 7> dates;
  for (int offset = 0; offset < 7; ++offset)
    dates[offset] = format_date(std::chrono::sys_days(start) + std::chrono::days(offset));
  return dates;
}

}  // namespace meal_planner
