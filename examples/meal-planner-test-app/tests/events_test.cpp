#include "events.hpp"

#include <gtest/gtest.h>

#include "runtime/runtime.hpp"

namespace meal_planner {
namespace {

using sluice::runtime::FunctionError;

// The errorType parse_event reports for `text`, "" when it parses.
std::string error_type(std::string_view text) {
  try {
    parse_event(text);
    return "";
  } catch (const FunctionError& e) {
    return e.type();
  }
}

std::string error_message(std::string_view text) {
  try {
    parse_event(text);
    return "";
  } catch (const FunctionError& e) {
    return e.what();
  }
}

std::string recipe_event(const std::string& recipe) {
  return R"({"action":"add_recipe","recipe":)" + recipe + "}";
}

TEST(ParseEvent, Actions) {
  EXPECT_TRUE(std::holds_alternative<MigrateEvent>(parse_event(R"({"action":"migrate"})")));
  EXPECT_TRUE(std::holds_alternative<HealthEvent>(parse_event(R"({"action":"health"})")));
  const Event plan = parse_event(R"({"action":"plan_week","week_start":"2026-11-30"})");
  ASSERT_TRUE(std::holds_alternative<PlanWeekEvent>(plan));
  EXPECT_EQ(format_date(std::get<PlanWeekEvent>(plan).week_start), "2026-11-30");
  const Event list = parse_event(R"({"action":"shopping_list","week_start":"2024-02-29"})");
  ASSERT_TRUE(std::holds_alternative<ShoppingListEvent>(list));
  EXPECT_EQ(format_date(std::get<ShoppingListEvent>(list).week_start), "2024-02-29");
}

TEST(ParseEvent, AddRecipe) {
  const Event event = parse_event(recipe_event(
      R"({"name":"Dal","servings":4,"ingredients":[{"name":"lentils","quantity":300,"unit":"g"},
          {"name":"ghee","quantity":0.1,"unit":"kg"},{"name":"eggs","quantity":2,"unit":""},
          {"name":"salt","quantity":1.5e1,"unit":"g","note":"extra keys are ignored"}]})"));
  ASSERT_TRUE(std::holds_alternative<AddRecipeEvent>(event));
  const Recipe& recipe = std::get<AddRecipeEvent>(event).recipe;
  EXPECT_EQ(recipe.name, "Dal");
  EXPECT_EQ(recipe.servings, 4);
  ASSERT_EQ(recipe.ingredients.size(), 4u);
  EXPECT_EQ(recipe.ingredients[0].name, "lentils");
  EXPECT_EQ(recipe.ingredients[0].quantity, "300");
  EXPECT_EQ(recipe.ingredients[0].unit, "g");
  EXPECT_EQ(recipe.ingredients[1].quantity, "0.1");
  EXPECT_EQ(recipe.ingredients[2].unit, "");
  EXPECT_EQ(recipe.ingredients[3].quantity, "15");
  // 4.0 is an integer written another way.
  EXPECT_EQ(
      error_type(recipe_event(
          R"({"name":"x","servings":4.0,"ingredients":[{"name":"a","quantity":1,"unit":"g"}]})")),
      "");
}

TEST(ParseEvent, InvalidEvents) {
  EXPECT_EQ(error_type("not json"), "InvalidEvent");
  EXPECT_EQ(error_type(""), "InvalidEvent");
  EXPECT_EQ(error_type(R"({"action":"migrate")"), "InvalidEvent");
  EXPECT_EQ(error_type("[1,2]"), "InvalidEvent");
  EXPECT_EQ(error_type(R"("migrate")"), "InvalidEvent");
  EXPECT_EQ(error_type("null"), "InvalidEvent");
  EXPECT_EQ(error_type("{}"), "UnknownAction");
  EXPECT_EQ(error_type(R"({"action":7})"), "UnknownAction");
  EXPECT_EQ(error_type(R"({"action":"drop_tables"})"), "UnknownAction");
  EXPECT_EQ(error_type(R"({"action":"MIGRATE"})"), "UnknownAction");
  EXPECT_NE(error_message(R"({"action":"drop_tables"})").find("\"drop_tables\""),
            std::string::npos);
  // A huge action is cut short in the message, on a UTF-8 boundary.
  const std::string long_action = std::string(63, 'a') + "\xc3\xa9" + std::string(1000, 'b');
  const std::string message = error_message(R"({"action":")" + long_action + "\"}");
  EXPECT_LT(message.size(), 200u);
  EXPECT_NE(message.find(std::string(63, 'a') + "...\""), std::string::npos);
}

TEST(ParseEvent, InvalidRecipes) {
  const std::string good_ingredients = R"([{"name":"a","quantity":1,"unit":"g"}])";
  const auto with = [&](const std::string& name, const std::string& servings,
                        const std::string& ingredients) {
    return error_type(recipe_event(R"({"name":)" + name + R"(,"servings":)" + servings +
                                   R"(,"ingredients":)" + ingredients + "}"));
  };
  EXPECT_EQ(with(R"("Dal")", "4", good_ingredients), "");
  EXPECT_EQ(error_type(R"({"action":"add_recipe"})"), "InvalidRecipe");
  EXPECT_EQ(error_type(R"({"action":"add_recipe","recipe":"Dal"})"), "InvalidRecipe");
  EXPECT_EQ(error_type(recipe_event(R"({"servings":4,"ingredients":)" + good_ingredients + "}")),
            "InvalidRecipe");
  for (const char* name : {R"("")", R"("   ")", "7", "null", R"("a\u0000b")"})
    EXPECT_EQ(with(name, "4", good_ingredients), "InvalidRecipe") << name;
  EXPECT_EQ(error_type(recipe_event(R"({"name":"Dal","ingredients":)" + good_ingredients + "}")),
            "InvalidRecipe");
  for (const char* servings : {"0", "-2", "2.5", R"("4")", "null", "true", "3000000000", "1e300"})
    EXPECT_EQ(with(R"("Dal")", servings, good_ingredients), "InvalidRecipe") << servings;
  for (const char* ingredients :
       {"[]", "{}", "null", R"("lentils")", "[1]", R"([{"quantity":1,"unit":"g"}])",
        R"([{"name":"","quantity":1,"unit":"g"}])", R"([{"name":5,"quantity":1,"unit":"g"}])",
        R"([{"name":"a","unit":"g"}])", R"([{"name":"a","quantity":0,"unit":"g"}])",
        R"([{"name":"a","quantity":-1,"unit":"g"}])",
        R"([{"name":"a","quantity":-0.5,"unit":"g"}])",
        R"([{"name":"a","quantity":"300","unit":"g"}])", R"([{"name":"a","quantity":1}])",
        R"([{"name":"a","quantity":1,"unit":null}])", R"([{"name":"a","quantity":1,"unit":5}])",
        R"([{"name":"a","quantity":1,"unit":"g"},{"name":"b","quantity":1}])"})
    EXPECT_EQ(with(R"("Dal")", "4", ingredients), "InvalidRecipe") << ingredients;
  EXPECT_NE(
      error_message(
          recipe_event(
              R"({"name":"Dal","servings":4,"ingredients":[{"name":"a","quantity":1,"unit":"g"},
                    {"name":"b","quantity":0,"unit":"g"}]})"))
          .find("ingredient 2"),
      std::string::npos);
}

TEST(ParseEvent, InvalidDates) {
  const auto plan = [](const std::string& week_start) {
    return error_type(R"({"action":"plan_week","week_start":)" + week_start + "}");
  };
  const auto list = [](const std::string& week_start) {
    return error_type(R"({"action":"shopping_list","week_start":)" + week_start + "}");
  };
  EXPECT_EQ(plan(R"("2026-11-30")"), "");
  EXPECT_EQ(error_type(R"({"action":"plan_week"})"), "InvalidDate");
  EXPECT_EQ(error_type(R"({"action":"shopping_list"})"), "InvalidDate");
  for (const char* bad : {R"("2026-02-30")", R"("2026-13-01")", R"("2026-00-10")",
                          R"("2026-11-31")", R"("2025-02-29")", R"("26-11-30")", R"("2026/11/30")",
                          R"("2026-11-30T00:00")", R"(" 2026-11-30")", R"("0000-01-01")",
                          R"("9999-12-31")", R"("")", "20261130", "null", R"("abcd-ef-gh")"}) {
    EXPECT_EQ(plan(bad), "InvalidDate") << bad;
    EXPECT_EQ(list(bad), "InvalidDate") << bad;
  }
}

TEST(Dates, WeekDatesCrossMonthsAndLeapDays) {
  const auto week = week_dates(*parse_date("2026-11-30"));
  EXPECT_EQ(week[0], "2026-11-30");
  EXPECT_EQ(week[1], "2026-12-01");
  EXPECT_EQ(week[6], "2026-12-06");
  const auto leap = week_dates(*parse_date("2028-02-26"));
  EXPECT_EQ(leap[3], "2028-02-29");
  EXPECT_EQ(leap[4], "2028-03-01");
  EXPECT_EQ(week_dates(*parse_date("2026-12-28"))[6], "2027-01-03");
  EXPECT_EQ(week_dates(*parse_date("0001-01-01"))[0], "0001-01-01");
  EXPECT_TRUE(parse_date("9999-12-25"));
  EXPECT_FALSE(parse_date("9999-12-26"));
}

TEST(Events, SimulatedWorkIsOptionalAndBounded) {
  EXPECT_EQ(simulated_work(R"({"action":"health"})"), std::chrono::milliseconds(0));
  EXPECT_EQ(simulated_work(R"({"action":"health","work_ms":250})"), std::chrono::milliseconds(250));
  for (const char* bad :
       {R"({"work_ms":-1})", R"({"work_ms":10001})", R"({"work_ms":"5"})", R"({"work_ms":1.5})"}) {
    try {
      simulated_work(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const sluice::runtime::FunctionError& e) {
      EXPECT_EQ(e.type(), "InvalidEvent") << bad;
    }
  }
}

}  // namespace
}  // namespace meal_planner
