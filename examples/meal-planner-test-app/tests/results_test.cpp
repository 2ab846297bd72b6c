#include "results.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace meal_planner {
namespace {

TEST(Results, Shapes) {
  EXPECT_EQ(migrate_result(), R"({"migrated":true})");
  EXPECT_EQ(recipe_result(42), R"({"recipe_id":42})");
  EXPECT_EQ(
      plan_week_result({{"2026-11-30", 1}, {"2026-12-01", 2}}),
      R"({"days":[{"date":"2026-11-30","recipe_id":1},{"date":"2026-12-01","recipe_id":2}]})");
}

TEST(Results, CycleRecipesInIdOrder) {
  EXPECT_EQ(cycle_recipes({5}), (std::vector<int64_t>{5, 5, 5, 5, 5, 5, 5}));
  EXPECT_EQ(cycle_recipes({1, 2, 3}), (std::vector<int64_t>{1, 2, 3, 1, 2, 3, 1}));
  EXPECT_EQ(cycle_recipes({1, 2, 3, 4, 5, 6, 7}), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));
}

TEST(Results, JsonNumbersAreExactAndIntegralWhenTheyCanBe) {
  EXPECT_EQ(json_number("900"), "900");
  EXPECT_EQ(json_number("900.000"), "900");
  EXPECT_EQ(json_number("1.500"), "1.5");
  EXPECT_EQ(json_number("0.25"), "0.25");
  EXPECT_EQ(json_number("0.30"), "0.3");
  EXPECT_EQ(json_number("100"), "100") << "zeros before the point stay";
  EXPECT_EQ(json_number("100.0"), "100");
  EXPECT_EQ(json_number("12345678901234567890123"), "12345678901234567890123");
}

TEST(Results, ShoppingListSortedByNameThenUnit) {
  const std::string json = shopping_list_result({{"rice", "g", "200"},
                                                 {"lentils", "g", "900.000"},
                                                 {"lentils", "cup", "1.50"},
                                                 {"Zucchini", "", "2"},
                                                 {"ghee \"clarified\"", "kg", "0.30"}});
  EXPECT_EQ(json, R"({"items":[{"name":"Zucchini","quantity":2,"unit":""},)"
                  R"({"name":"ghee \"clarified\"","quantity":0.3,"unit":"kg"},)"
                  R"({"name":"lentils","quantity":1.5,"unit":"cup"},)"
                  R"({"name":"lentils","quantity":900,"unit":"g"},)"
                  R"({"name":"rice","quantity":200,"unit":"g"}]})");
  EXPECT_NO_THROW(boost::json::parse(json));
  EXPECT_EQ(shopping_list_result({}), R"({"items":[]})");
}

TEST(Results, Health) {
  HealthInfo info{"15.4", true, "TLSv1.3", false, "mealplanner", "app"};
  const auto health = boost::json::parse(health_result(info)).as_object();
  EXPECT_EQ(health.at("server_version").as_string(), "15.4");
  EXPECT_TRUE(health.at("tls").as_bool());
  EXPECT_EQ(health.at("tls_protocol").as_string(), "TLSv1.3");
  EXPECT_FALSE(health.at("server_side_tls").as_bool());
  const auto plain =
      boost::json::parse(health_result({"15.4", false, "", std::nullopt, "d", "u"})).as_object();
  EXPECT_FALSE(plain.at("tls").as_bool());
  EXPECT_TRUE(plain.at("tls_protocol").is_null());
  EXPECT_TRUE(plain.at("server_side_tls").is_null());
}

}  // namespace
}  // namespace meal_planner
