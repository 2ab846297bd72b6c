// libFuzzer: the SQL the proxy reads in a client's queries (pinning, settings changes, SQL
// PREPARE/EXECUTE/DEALLOCATE), on any text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/pinning.hpp"
#include "proxy/sql_prepared.hpp"

using namespace sluice::proxy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view sql(reinterpret_cast<const char*>(data), size);
  (void)statement_effects(sql);
  (void)drops_all_statements(sql);
  std::vector<std::string> names;
  collect_custom_setting_names(sql, names);
  if (may_be_sql_prepared_command(sql)) (void)parse_sql_prepared_command(sql);
  return 0;
}
