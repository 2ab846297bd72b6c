// A client's session settings (startup parameters and `options -c`), and the SQL that makes a
// server connection match them. Pure.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::proxy {

// Case-insensitive on names, as PostgreSQL treats GUC names.
struct GucNameLess {
  bool operator()(const std::string& a, const std::string& b) const;
};
using Settings = std::map<std::string, std::string, GucNameLess>;

// Equal settings (as ==). The common cases, none or one (application_name), without walking
// the trees: std::map's == steps its iterators through out-of-line calls, on every borrow.
inline bool same_settings(const Settings& a, const Settings& b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  if (a.size() == 1) {
    const auto& [a_name, a_value] = *a.begin();
    const auto& [b_name, b_value] = *b.begin();
    return a_name == b_name && a_value == b_value;
  }
  return a == b;
}

// Builds a client's settings from its startup parameters. `user`, `database` and protocol
// extensions (`_pq_.*`) are not settings; `options` is expanded. Returns an error message for
// parameters the proxy cannot honour safely (replication, role, session_authorization) or that
// are malformed.
std::optional<std::string> settings_from_startup(
    const std::vector<std::pair<std::string, std::string>>& params, Settings& out);

// SQL that turns a connection with settings `current` into one with `wanted`:
// SET for new or different values, RESET for settings only `current` has. Empty when equal.
std::string settings_sync_sql(const Settings& current, const Settings& wanted);

// A stable text form, to key caches of validated settings.
std::string settings_key(const Settings& settings);

bool is_valid_guc_name(std::string_view name);

// One client's settings, owned by its session. (A server connection knows what its own session
// holds, ServerConnection::applied; the pool caches settings the server accepted. Those are other
// facts.)
struct ClientSettings {
  Settings wanted;                        // what every lent connection is made to match
  Settings startup;                       // from the startup packet: what RESET returns to
  bool changed = false;                   // SET, RESET or set_config() ran since the last read-back
  std::vector<std::string> custom_names;  // dotted names seen in the client's SETs

  // A statement that changes settings ran: they are read back before the connection goes.
  // True when the client has invented so many custom names that each read-back would ask for
  // too many: its session should be pinned instead.
  bool note_change(std::string_view sql);
  // What the read-back found (`changed` was cleared when it started: a SET sent meanwhile
  // stays noted). As in PostgreSQL, a setting no SET holds any more has the
  // client's startup value.
  void adopt_read_back(Settings found);
};

}  // namespace sluice::proxy
