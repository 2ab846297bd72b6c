// The function's results as JSON text (pure: no I/O).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meal_planner {

std::string migrate_result();
std::string recipe_result(int64_t recipe_id);

struct PlannedDay {
  std::string date;  // YYYY-MM-DD
  int64_t recipe_id = 0;
};
std::string plan_week_result(const std::vector<PlannedDay>& days);

// Recipe ids for the week's seven days: cycling through `recipe_ids` (in id order) from the
// first. `recipe_ids` must not be empty.
std::vector<int64_t> cycle_recipes(const std::vector<int64_t>& recipe_ids);

struct ShoppingItem {
  std::string name;
  std::string unit;
  std::string quantity;  // PostgreSQL's numeric text, e.g. "900" or "1.500"
};
// {"items":[{"name":…,"quantity":…,"unit":…},…]} sorted by name then unit (byte order), the
// quantities exact, as integers when integral.
std::string shopping_list_result(std::vector<ShoppingItem> items);

// A numeric's text as a JSON number: "900.000" -> "900", "1.500" -> "1.5", "0.25" -> "0.25".
std::string json_number(std::string_view numeric_text);

struct HealthInfo {
  std::string server_version;
  bool tls = false;                     // this client's connection (PQsslInUse)
  std::string tls_protocol;             // e.g. "TLSv1.3", empty without TLS
  std::optional<bool> server_side_tls;  // pg_stat_ssl for the server's backend: through a
                                        // proxy, the proxy's own connection
  std::string database;
  std::string user;
};
std::string health_result(const HealthInfo& health);

}  // namespace meal_planner
