// The admin console: psql connects to the virtual database "sluice" as one of `admin_users` and
// gets PgBouncer 1.18's SHOW commands (same column names and types, so dashboards and
// pgbouncer_exporter read them), PAUSE, RESUME, RELOAD and SHUTDOWN.
//
// This file is the pure part: parsing a command, and turning snapshots of the workers into rows
// and those into protocol messages. admin_hub.hpp gathers the snapshots and runs the session.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/config.hpp"
#include "proxy/session_settings.hpp"
#include "proxy/target_health.hpp"

namespace sluice::proxy {

// The database name that reaches the console instead of a server.
inline constexpr std::string_view kAdminDatabase = "sluice";

enum class AdminVerb { kShow, kPause, kResume, kReload, kShutdown };
enum class ShowWhat {
  kHelp,
  kVersion,
  kPools,
  kClients,
  kServers,
  kStats,
  kStatsTotals,
  kStatsAverages,
  kConfig,
  kTargets,
  kDatabases,
  kLists,
};

struct AdminCommand {
  AdminVerb verb = AdminVerb::kShow;
  ShowWhat what = ShowWhat::kHelp;
  bool operator==(const AdminCommand&) const = default;
};

// One simple-protocol query: case-insensitive, surrounding blanks and one trailing ';' allowed.
// An unknown or malformed command gives the message the client is told.
std::variant<AdminCommand, std::string> parse_admin_command(std::string_view sql);

// What a console client is told at login (ParameterStatus): enough for psql and drivers, with
// a server_version that libpq parses (PQserverVersion) and the client's application_name.
std::vector<std::pair<std::string, std::string>> admin_console_parameters(const Settings& startup);

// The console's commands, for SHOW HELP (sent as a NOTICE's detail, as PgBouncer does).
std::string admin_help_text();

// ------------------------------------------------------------------ what the workers report

using WallClock = std::chrono::system_clock;

// One pool (database, user) of one worker. Clients are this pool's sessions; servers its
// connections by state.
struct PoolSnapshot {
  std::string database;
  std::string user;
  bool console = false;  // the admin console's own (no server connections)
  uint32_t cl_active = 0;
  uint32_t cl_waiting = 0;
  uint32_t sv_lent = 0;
  uint32_t sv_pinned = 0;
  uint32_t sv_idle = 0;
  uint32_t sv_opening = 0;
  uint32_t sv_cancelling = 0;
  std::chrono::microseconds max_wait{0};  // the oldest client waiting for a connection
  // Since start: transactions (borrows returned), queries, time lent, time clients waited.
  uint64_t transactions = 0;
  uint64_t queries = 0;
  uint64_t lent_us = 0;
  uint64_t wait_us = 0;
};

struct ClientSnapshot {
  std::string user;
  std::string database;
  bool waiting = false;  // for a server connection
  std::chrono::microseconds waited{0};
  std::string addr;
  uint16_t port = 0;
  WallClock::time_point connect_time;
  WallClock::time_point request_time;
  uint32_t process_id = 0;         // what its BackendKeyData said
  std::optional<uint64_t> server;  // the server connection it holds
  bool tls = false;
  std::string application_name;
  bool parked = false;
  size_t worker = 0;
};

struct ServerSnapshot {
  std::string user;
  std::string database;
  std::string state;  // server_state_name()
  uint64_t id = 0;
  uint32_t backend_pid = 0;
  std::optional<uint32_t> client;  // the process id of the client holding it
  WallClock::time_point connect_time;
  WallClock::time_point request_time;
  bool tls = false;
  std::string application_name;
  size_t worker = 0;
};

struct WorkerSnapshot {
  std::vector<PoolSnapshot> pools;
  std::vector<ClientSnapshot> clients;
  std::vector<ServerSnapshot> servers;  // idle and lent ones (not those logging in)
  uint32_t logins = 0;                  // clients logging in
};

struct ProxySnapshot {
  std::vector<WorkerSnapshot> workers;
  HostPort target;
  TargetHealthStatus health;
  std::optional<WallClock::time_point> checked_at;
  // Each server's verdict and role ([target] hosts: several), the primary first; empty: the
  // one target above.
  std::vector<TargetHealth::HostReport> hosts;
  size_t cap = 0;   // server connections allowed
  size_t used = 0;  // server connections open (or reserved)
  bool paused = false;
  std::chrono::seconds uptime{0};
};

// ------------------------------------------------------------------ result sets

// Type OIDs as PgBouncer 1.18 declares them.
enum class ColumnType : uint32_t { kInt8 = 20, kInt4 = 23, kText = 25, kNumeric = 1700 };

struct Column {
  std::string name;
  ColumnType type = ColumnType::kText;
};

struct RowSet {
  std::vector<Column> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};

// SHOW HELP: a NOTICE "Console usage" whose detail lists the commands, then CommandComplete.
void write_admin_help(std::string& out);

// RowDescription, a DataRow per row (text format) and CommandComplete `tag`.
void write_row_set(std::string& out, const RowSet& rows, std::string_view tag = "SHOW");
// The same in parts, for a large set sent a batch of rows at a time.
void write_row_description(std::string& out, const std::vector<Column>& columns);
void write_data_rows(std::string& out, const RowSet& rows, size_t begin, size_t end);
void write_complete(std::string& out, std::string_view tag);

// Names a client chose (its database, its application_name) as the console shows them: bytes
// outside printable ASCII become '?', as PostgreSQL cleans application_name, so that no client
// can send the console's reader bytes that are not UTF-8 or control sequences.
std::string printable_ascii(std::string_view text);

// "2026-12-06 04:06:26 UTC", as PgBouncer writes times.
std::string admin_time(WallClock::time_point at);

RowSet show_pools(const ProxySnapshot& snapshot);
RowSet show_clients(const ProxySnapshot& snapshot);
RowSet show_servers(const ProxySnapshot& snapshot);
RowSet show_stats(const ProxySnapshot& snapshot);
// SHOW STATS_TOTALS and STATS_AVERAGES: SHOW STATS's halves under PgBouncer's short names
// (xact_count, bytes_received, …), which pgbouncer_exporter reads.
RowSet show_stats_totals(const ProxySnapshot& snapshot);
RowSet show_stats_averages(const ProxySnapshot& snapshot);
RowSet show_databases(const ProxySnapshot& snapshot);
RowSet show_lists(const ProxySnapshot& snapshot);
RowSet show_targets(const ProxySnapshot& snapshot);
RowSet show_config(const Config& config);
RowSet show_version();

}  // namespace sluice::proxy
