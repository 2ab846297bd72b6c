#include "results.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <tuple>

namespace meal_planner {

std::string migrate_result() {
  return boost::json::serialize(boost::json::object{{"migrated", true}});
}

std::string recipe_result(int64_t recipe_id) {
  return boost::json::serialize(boost::json::object{{"recipe_id", recipe_id}});
}

std::string plan_week_result(const std::vector<PlannedDay>& days) {
  boost::json::array list;
  for (const auto& day : days)
    list.push_back(boost::json::object{{"date", day.date}, {"recipe_id", day.recipe_id}});
  return boost::json::serialize(boost::json::object{{"days", std::move(list)}});
}

std::vector<int64_t> cycle_recipes(const std::vector<int64_t>& recipe_ids) {
  std::vector<int64_t> week;
  for (std::size_t day = 0; day < 7; ++day) week.push_back(recipe_ids[day % recipe_ids.size()]);
  return week;
}

std::string json_number(std::string_view numeric_text) {
  std::string text(numeric_text);
  if (const auto point = text.find('.'); point != std::string::npos) {
    const auto last_digit = text.find_last_not_of('0');
    // "900.000" -> "900", "1.500" -> "1.5"
    text.erase(last_digit == point ? point : last_digit + 1);
  }
  return text;
}

std::string shopping_list_result(std::vector<ShoppingItem> items) {
  std::sort(items.begin(), items.end(), [](const ShoppingItem& a, const ShoppingItem& b) {
    return std::tie(a.name, a.unit) < std::tie(b.name, b.unit);
  });
  // Written by hand so quantities keep PostgreSQL's exact decimals (a double would print 0.1 + 0.2
  // as 0.30000000000000004, and Boost.JSON writes 0.75 as 7.5E-1).
  std::string json = "{\"items\":[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) json += ',';
    json += "{\"name\":" + boost::json::serialize(boost::json::string(items[i].name)) +
            ",\"quantity\":" + json_number(items[i].quantity) +
            ",\"unit\":" + boost::json::serialize(boost::json::string(items[i].unit)) + "}";
  }
  return json + "]}";
}

std::string health_result(const HealthInfo& health) {
  boost::json::object result{
      {"server_version", health.server_version},
      {"tls", health.tls},
      {"tls_protocol", health.tls_protocol.empty() ? boost::json::value(nullptr)
                                                   : boost::json::value(health.tls_protocol)},
      {"server_side_tls", health.server_side_tls ? boost::json::value(*health.server_side_tls)
                                                 : boost::json::value(nullptr)},
      {"database", health.database},
      {"user", health.user}};
  return boost::json::serialize(result);
}

}  // namespace meal_planner
