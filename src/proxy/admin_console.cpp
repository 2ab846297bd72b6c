#include "proxy/admin_console.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

namespace sluice::proxy {
namespace {

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  return text;
}

// Words separated by blanks; quotes and other punctuation make a command unknown.
std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && blank(text[i])) ++i;
    const size_t start = i;
    while (i < text.size() && !blank(text[i])) ++i;
    if (i > start) words.push_back(upper(text.substr(start, i - start)));
  }
  return words;
}

// What the client is told about a command it sent: printable and short, whatever it was.
std::string quoted(std::string_view sql) {
  std::string out;
  for (char c : sql.substr(0, 60)) out += std::isprint(static_cast<unsigned char>(c)) ? c : ' ';
  if (sql.size() > 60) out += "...";
  return "\"" + out + "\"";
}

std::string text(uint64_t n) {
  return std::to_string(n);
}

// The pieces of the wire format this console writes (text format, one byte per type).
void put_be32(std::string& out, uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}
void put_be16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}
// Starts a message; end_message() fills in its length.
size_t begin_message(std::string& out, char type) {
  out += type;
  const size_t at = out.size();
  put_be32(out, 0);
  return at;
}
void end_message(std::string& out, size_t at) {
  const auto length = static_cast<uint32_t>(out.size() - at);
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<char>(length >> (24 - 8 * i));
}

std::string micros_part(std::chrono::microseconds d) {
  return text(d.count() % 1000000);
}
std::string seconds_part(std::chrono::microseconds d) {
  return text(d.count() / 1000000);
}

}  // namespace

std::variant<AdminCommand, std::string> parse_admin_command(std::string_view sql) {
  std::string_view body = trim(sql);
  if (!body.empty() && body.back() == ';') body = trim(body.substr(0, body.size() - 1));
  const auto unknown = [&] {
    return "unknown admin console command " + quoted(trim(sql)) + "; SHOW HELP lists the commands";
  };
  if (body.find(';') != std::string_view::npos)
    return "one admin console command at a time, please: " + quoted(trim(sql));
  const std::vector<std::string> words = words_of(body);
  if (words.empty()) return std::string("empty command; SHOW HELP lists the commands");
  if (words.size() == 1) {
    if (words[0] == "PAUSE") return AdminCommand{AdminVerb::kPause};
    if (words[0] == "RESUME") return AdminCommand{AdminVerb::kResume};
    if (words[0] == "RELOAD") return AdminCommand{AdminVerb::kReload};
    if (words[0] == "SHUTDOWN") return AdminCommand{AdminVerb::kShutdown};
    if (words[0] == "SHOW") return std::string("SHOW what? SHOW HELP lists the commands");
    return unknown();
  }
  if (words.size() == 2 && words[0] == "SHOW") {
    static const std::map<std::string, ShowWhat, std::less<>> kShows = {
        {"HELP", ShowWhat::kHelp},
        {"VERSION", ShowWhat::kVersion},
        {"POOLS", ShowWhat::kPools},
        {"CLIENTS", ShowWhat::kClients},
        {"SERVERS", ShowWhat::kServers},
        {"STATS", ShowWhat::kStats},
        {"CONFIG", ShowWhat::kConfig},
        {"TARGETS", ShowWhat::kTargets},
        {"DATABASES", ShowWhat::kDatabases},
        {"LISTS", ShowWhat::kLists},
        {"STATS_TOTALS", ShowWhat::kStatsTotals},
        {"STATS_AVERAGES", ShowWhat::kStatsAverages}};
    if (auto it = kShows.find(words[1]); it != kShows.end())
      return AdminCommand{AdminVerb::kShow, it->second};
  }
  if (words[0] == "PAUSE" || words[0] == "RESUME")
    return words[0] + " takes no arguments here: it applies to every pool";
  return unknown();
}

std::vector<std::pair<std::string, std::string>> admin_console_parameters(const Settings& startup) {
  const auto name = startup.find("application_name");
  return {{"application_name", name != startup.end() ? name->second : ""},
          {"client_encoding", "UTF8"},
          {"DateStyle", "ISO, MDY"},
          {"integer_datetimes", "on"},
          {"IntervalStyle", "postgres"},
          {"is_superuser", "off"},
          {"server_encoding", "UTF8"},
          {"server_version", "15.0 (sluice-proxy admin console)"},
          {"standard_conforming_strings", "on"},
          {"TimeZone", "UTC"}};
}

std::string admin_help_text() {
  return "\n"
         "\tSHOW HELP|VERSION|POOLS|CLIENTS|SERVERS|CONFIG|TARGETS|DATABASES|LISTS\n"
         "\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES\n"
         "\tPAUSE\n"
         "\tRESUME\n"
         "\tRELOAD\n"
         "\tSHUTDOWN";
}

void write_row_description(std::string& out, const std::vector<Column>& columns) {
  const size_t at = begin_message(out, 'T');
  put_be16(out, static_cast<uint16_t>(columns.size()));
  for (const Column& column : columns) {
    out += column.name;
    out += '\0';
    put_be32(out, 0);  // no table
    put_be16(out, 0);  // no column number
    put_be32(out, static_cast<uint32_t>(column.type));
    put_be16(out, column.type == ColumnType::kInt4   ? 4
                  : column.type == ColumnType::kInt8 ? 8
                                                     : 0xffff);
    put_be32(out, 0xffffffff);  // no type modifier
    put_be16(out, 0);           // text
  }
  end_message(out, at);
}

void write_data_rows(std::string& out, const RowSet& rows, size_t begin, size_t end) {
  for (size_t i = begin; i < end && i < rows.rows.size(); ++i) {
    const size_t at = begin_message(out, 'D');
    put_be16(out, static_cast<uint16_t>(rows.rows[i].size()));
    for (const auto& value : rows.rows[i]) {
      if (!value) {
        put_be32(out, 0xffffffff);
        continue;
      }
      put_be32(out, static_cast<uint32_t>(value->size()));
      out += *value;
    }
    end_message(out, at);
  }
}

void write_complete(std::string& out, std::string_view tag) {
  const size_t at = begin_message(out, 'C');
  out += tag;
  out += '\0';
  end_message(out, at);
}

void write_row_set(std::string& out, const RowSet& rows, std::string_view tag) {
  write_row_description(out, rows.columns);
  write_data_rows(out, rows, 0, rows.rows.size());
  write_complete(out, tag);
}

void write_admin_help(std::string& out) {
  size_t at = begin_message(out, 'N');
  for (const auto& [field, value] : {std::pair<char, std::string>{'S', "NOTICE"},
                                     {'V', "NOTICE"},
                                     {'C', "00000"},
                                     {'M', "Console usage"},
                                     {'D', admin_help_text()}}) {
    out += field;
    out += value;
    out += '\0';
  }
  out += '\0';
  end_message(out, at);
  at = begin_message(out, 'C');
  out += "SHOW";
  out += '\0';
  end_message(out, at);
}

std::string printable_ascii(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c < 32 || c > 126) c = '?';
  return out;
}

std::string admin_time(WallClock::time_point at) {
  const std::time_t seconds = WallClock::to_time_t(at);
  // Thousands of rows share a few seconds: strftime once per second seen last.
  thread_local std::time_t last_seconds = -1;
  thread_local std::string last_text;
  if (seconds == last_seconds) return last_text;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S UTC", &utc);
  last_seconds = seconds;
  last_text = buffer;
  return last_text;
}

// ------------------------------------------------------------------ rows

namespace {

using Key = std::pair<std::string, std::string>;

// Every worker keeps its own pools: one row per (database, user) adds them up.
std::map<Key, PoolSnapshot> merged_pools(const ProxySnapshot& snapshot) {
  std::map<Key, PoolSnapshot> pools;
  for (const WorkerSnapshot& worker : snapshot.workers)
    for (const PoolSnapshot& p : worker.pools) {
      auto [it, fresh] = pools.try_emplace({p.database, p.user}, p);
      if (fresh) continue;
      PoolSnapshot& sum = it->second;
      sum.cl_active += p.cl_active;
      sum.cl_waiting += p.cl_waiting;
      sum.sv_lent += p.sv_lent;
      sum.sv_pinned += p.sv_pinned;
      sum.sv_idle += p.sv_idle;
      sum.sv_opening += p.sv_opening;
      sum.sv_cancelling += p.sv_cancelling;
      sum.max_wait = std::max(sum.max_wait, p.max_wait);
      sum.transactions += p.transactions;
      sum.queries += p.queries;
      sum.lent_us += p.lent_us;
      sum.wait_us += p.wait_us;
    }
  return pools;
}

std::vector<Column> connection_columns() {
  using T = ColumnType;
  return {{"type", T::kText},         {"user", T::kText},       {"database", T::kText},
          {"state", T::kText},        {"addr", T::kText},       {"port", T::kInt4},
          {"local_addr", T::kText},   {"local_port", T::kInt4}, {"connect_time", T::kText},
          {"request_time", T::kText}, {"wait", T::kInt4},       {"wait_us", T::kInt4},
          {"close_needed", T::kInt4}, {"ptr", T::kText},        {"link", T::kText},
          {"remote_pid", T::kInt4},   {"tls", T::kText},        {"application_name", T::kText}};
}

std::string client_ptr(uint32_t process_id) {
  return "c" + text(process_id);
}
std::string server_ptr(uint64_t id) {
  return "s" + text(id);
}

}  // namespace

RowSet show_pools(const ProxySnapshot& snapshot) {
  using T = ColumnType;
  RowSet out;
  out.columns = {{"database", T::kText},
                 {"user", T::kText},
                 {"cl_active", T::kInt4},
                 {"cl_waiting", T::kInt4},
                 {"cl_active_cancel_req", T::kInt4},
                 {"cl_waiting_cancel_req", T::kInt4},
                 {"sv_active", T::kInt4},
                 {"sv_active_cancel", T::kInt4},
                 {"sv_being_canceled", T::kInt4},
                 {"sv_idle", T::kInt4},
                 {"sv_used", T::kInt4},
                 {"sv_tested", T::kInt4},
                 {"sv_login", T::kInt4},
                 {"maxwait", T::kInt4},
                 {"maxwait_us", T::kInt4},
                 {"pool_mode", T::kText},
                 // sluice's own: of sv_active, those pinned to their client's session.
                 {"sv_pinned", T::kInt4}};
  for (const auto& [key, p] : merged_pools(snapshot))
    out.rows.push_back({p.database, p.user, text(p.cl_active), text(p.cl_waiting), "0", "0",
                        text(p.sv_lent + p.sv_pinned), "0", text(p.sv_cancelling), text(p.sv_idle),
                        "0", "0", text(p.sv_opening), seconds_part(p.max_wait),
                        micros_part(p.max_wait), p.console ? "statement" : "transaction",
                        text(p.sv_pinned)});
  return out;
}

RowSet show_clients(const ProxySnapshot& snapshot) {
  RowSet out;
  out.columns = connection_columns();
  out.columns.push_back({"worker", ColumnType::kInt4});  // sluice's own
  out.columns.push_back({"parked", ColumnType::kInt4});  // sluice's own: idle, no coroutine
  for (const WorkerSnapshot& worker : snapshot.workers)
    for (const ClientSnapshot& c : worker.clients)
      out.rows.push_back({"C",
                          c.user,
                          c.database,
                          c.waiting ? "waiting" : "active",
                          c.addr,
                          text(c.port),
                          std::nullopt,
                          std::nullopt,
                          admin_time(c.connect_time),
                          admin_time(c.request_time),
                          seconds_part(c.waited),
                          micros_part(c.waited),
                          "0",
                          client_ptr(c.process_id),
                          c.server ? std::optional(server_ptr(*c.server)) : std::nullopt,
                          "0",
                          c.tls ? "TLS" : "",
                          c.application_name,
                          text(c.worker),
                          c.parked ? "1" : "0"});
  return out;
}

RowSet show_servers(const ProxySnapshot& snapshot) {
  RowSet out;
  out.columns = connection_columns();
  out.columns.push_back({"worker", ColumnType::kInt4});        // sluice's own
  out.columns.push_back({"sluice_state", ColumnType::kText});  // sluice's own: lent, pinned, …
  for (const WorkerSnapshot& worker : snapshot.workers)
    for (const ServerSnapshot& s : worker.servers) {
      const bool active = s.state == "lent" || s.state == "pinned";
      const std::string state = active                    ? "active"
                                : s.state == "cancelling" ? "being_canceled"
                                : s.state == "opening"    ? "new"
                                                          : s.state;
      out.rows.push_back({"S",
                          s.user,
                          s.database,
                          state,
                          snapshot.target.host,
                          text(snapshot.target.port),
                          std::nullopt,
                          std::nullopt,
                          admin_time(s.connect_time),
                          admin_time(s.request_time),
                          "0",
                          "0",
                          "0",
                          server_ptr(s.id),
                          s.client ? std::optional(client_ptr(*s.client)) : std::nullopt,
                          text(s.backend_pid),
                          s.tls ? "TLS" : "",
                          s.application_name,
                          text(s.worker),
                          s.state});
    }
  return out;
}

RowSet show_stats(const ProxySnapshot& snapshot) {
  using T = ColumnType;
  RowSet out;
  for (const char* name : {"database", "total_xact_count", "total_query_count", "total_received",
                           "total_sent", "total_xact_time", "total_query_time", "total_wait_time",
                           "avg_xact_count", "avg_query_count", "avg_recv", "avg_sent",
                           "avg_xact_time", "avg_query_time", "avg_wait_time"})
    out.columns.push_back({name, out.columns.empty() ? T::kText : T::kNumeric});
  struct Totals {
    uint64_t xacts = 0, queries = 0, lent_us = 0, wait_us = 0;
  };
  std::map<std::string, Totals> by_database;
  for (const auto& [key, p] : merged_pools(snapshot)) {
    Totals& t = by_database[p.database];
    t.xacts += p.transactions;
    t.queries += p.queries;
    t.lent_us += p.lent_us;
    t.wait_us += p.wait_us;
  }
  // Averages over the proxy's life (PgBouncer's are over its last stats_period).
  const uint64_t seconds = std::max<int64_t>(snapshot.uptime.count(), 1);
  for (const auto& [database, t] : by_database) {
    // Transaction pooling: a server connection is lent for one transaction, so the time lent is
    // both the transaction's and (to the proxy's knowledge) its queries'.
    const uint64_t avg_xact_time = t.xacts ? t.lent_us / t.xacts : 0;
    out.rows.push_back({database, text(t.xacts), text(t.queries), "0", "0", text(t.lent_us),
                        text(t.lent_us), text(t.wait_us), text(t.xacts / seconds),
                        text(t.queries / seconds), "0", "0", text(avg_xact_time),
                        text(t.queries ? t.lent_us / t.queries : 0),
                        text(t.xacts ? t.wait_us / t.xacts : 0)});
  }
  return out;
}

namespace {
// Columns [first, first + 7) of SHOW STATS, after the database, under PgBouncer's short names.
RowSet stats_half(const ProxySnapshot& snapshot, size_t first) {
  static const char* kNames[] = {"xact_count", "query_count", "bytes_received", "bytes_sent",
                                 "xact_time",  "query_time",  "wait_time"};
  const RowSet all = show_stats(snapshot);
  RowSet out;
  out.columns.push_back(all.columns[0]);
  for (const char* name : kNames) out.columns.push_back({name, ColumnType::kNumeric});
  for (const auto& row : all.rows) {
    std::vector<std::optional<std::string>> half{row[0]};
    half.insert(half.end(), row.begin() + first, row.begin() + first + 7);
    out.rows.push_back(std::move(half));
  }
  return out;
}
}  // namespace

RowSet show_stats_totals(const ProxySnapshot& snapshot) {
  return stats_half(snapshot, 1);
}
RowSet show_stats_averages(const ProxySnapshot& snapshot) {
  return stats_half(snapshot, 8);
}

RowSet show_databases(const ProxySnapshot& snapshot) {
  using T = ColumnType;
  RowSet out;
  out.columns = {{"name", T::kText},
                 {"host", T::kText},
                 {"port", T::kInt4},
                 {"database", T::kText},
                 {"force_user", T::kText},
                 {"pool_size", T::kInt4},
                 {"min_pool_size", T::kInt4},
                 {"reserve_pool", T::kInt4},
                 {"pool_mode", T::kText},
                 {"max_connections", T::kInt4},
                 {"current_connections", T::kInt4},
                 {"paused", T::kInt4},
                 {"disabled", T::kInt4}};
  std::map<std::string, std::pair<bool, uint32_t>> databases;  // console?, connections
  for (const auto& [key, p] : merged_pools(snapshot)) {
    auto& [console, connections] = databases[p.database];
    console = p.console;
    connections += p.sv_lent + p.sv_pinned + p.sv_idle + p.sv_opening + p.sv_cancelling;
  }
  for (const auto& [name, entry] : databases) {
    const auto& [console, connections] = entry;
    if (console) {
      out.rows.push_back({name, std::nullopt, text(snapshot.target.port), name, std::nullopt, "0",
                          "0", "0", "statement", "0", "0", "0", "0"});
      continue;
    }
    // One cap for all pools together: each database may use all of it.
    out.rows.push_back({name, snapshot.target.host, text(snapshot.target.port), name, std::nullopt,
                        text(snapshot.cap), "0", "0", "transaction", text(snapshot.cap),
                        text(connections), snapshot.paused ? "1" : "0", "0"});
  }
  return out;
}

RowSet show_lists(const ProxySnapshot& snapshot) {
  RowSet out;
  out.columns = {{"list", ColumnType::kText}, {"items", ColumnType::kInt4}};
  const auto pools = merged_pools(snapshot);
  std::map<std::string, int> databases, users;
  uint64_t clients = 0, logins = 0, servers = 0;
  for (const auto& [key, p] : pools) {
    databases[p.database] = 1;
    users[p.user] = 1;
  }
  for (const WorkerSnapshot& worker : snapshot.workers) {
    clients += worker.clients.size();
    logins += worker.logins;
  }
  for (const auto& [key, p] : pools)
    servers += p.sv_lent + p.sv_pinned + p.sv_idle + p.sv_opening + p.sv_cancelling;
  const std::pair<const char*, uint64_t> lists[] = {{"databases", databases.size()},
                                                    {"users", users.size()},
                                                    {"pools", pools.size()},
                                                    {"free_clients", 0},
                                                    {"used_clients", clients},
                                                    {"login_clients", logins},
                                                    {"free_servers", 0},
                                                    {"used_servers", servers},
                                                    {"dns_names", 0},
                                                    {"dns_zones", 0},
                                                    {"dns_queries", 0},
                                                    {"dns_pending", 0}};
  for (const auto& [name, items] : lists) out.rows.push_back({name, text(items)});
  return out;
}

RowSet show_targets(const ProxySnapshot& snapshot) {
  using T = ColumnType;
  RowSet out;
  // describe-db-proxy-targets' TargetHealth, one row per target.
  out.columns = {{"host", T::kText},   {"port", T::kInt4},        {"state", T::kText},
                 {"reason", T::kText}, {"description", T::kText}, {"checked_at", T::kText},
                 {"role", T::kText}};
  const auto row = [&](const HostPort& address, const TargetHealthStatus& health,
                       const std::optional<WallClock::time_point>& checked_at, HostRole role) {
    const std::string_view reason = to_string(health.reason);
    out.rows.push_back({address.host, text(address.port), std::string(to_string(health.state)),
                        reason.empty() ? std::nullopt : std::optional(std::string(reason)),
                        health.description,
                        checked_at ? std::optional(admin_time(*checked_at)) : std::nullopt,
                        std::string(to_string(role))});
  };
  if (snapshot.hosts.empty())
    row(snapshot.target, snapshot.health, snapshot.checked_at, HostRole::kUnknown);
  for (const auto& host : snapshot.hosts)
    row(host.address, host.status, host.checked_at, host.role);
  return out;
}

RowSet show_config(const Config& c) {
  RowSet out;
  out.columns = {{"key", ColumnType::kText},
                 {"value", ColumnType::kText},
                 {"default", ColumnType::kText},
                 {"changeable", ColumnType::kText}};
  const Config d;  // the defaults (workers: one per core)
  const auto add = [&](std::string key, std::string value, std::optional<std::string> fallback) {
    // What a reload (SIGHUP, RELOAD) changes: everything but these (see Proxy::reload).
    const bool restart_only = key == "name" || key == "workers" || key == "log_format" ||
                              key == "tls.record_layer" || key == "handover_socket";
    out.rows.push_back(
        {std::move(key), std::move(value), std::move(fallback), restart_only ? "no" : "yes"});
  };
  const auto yes_no = [](bool b) { return std::string(b ? "true" : "false"); };
  const auto listen = [&] {
    std::string all = c.listen.label();
    for (const HostPort& more : c.extra_listen) all += ", " + more.label();
    return all;
  };
  std::string admins;
  for (const std::string& user : c.admin_users) admins += (admins.empty() ? "" : ", ") + user;
  std::string secrets;
  for (const AuthConfig& a : c.auth)  // paths only: never a secret's content
    secrets += (secrets.empty() ? "" : ", ") + a.secret_file;
  static const char* kTls[] = {"disable", "prefer", "require", "verify-full"};
  add("name", c.name, d.name);
  add("listen", listen(), d.listen.label());
  add("require_tls", yes_no(c.require_tls), yes_no(d.require_tls));
  add("admin_users", admins, "");
  add("idle_client_timeout", text(c.idle_client_timeout), text(d.idle_client_timeout));
  add("max_client_connections", text(c.max_client_connections), text(d.max_client_connections));
  // The same under PgBouncer's name, which pgbouncer_exporter reads.
  add("max_client_conn", text(c.max_client_connections), text(d.max_client_connections));
  add("max_message_size", text(c.max_message_size), text(d.max_message_size));
  add("debug_logging", yes_no(c.debug_logging), yes_no(d.debug_logging));
  add("log_level", c.log_level, "");
  add("log_format", c.log_format == LogFormat::kJson ? "json" : "text", "text");
  add("login_timeout", text(c.login_timeout), text(d.login_timeout));
  add("max_pending_logins", text(c.max_pending_logins), text(d.max_pending_logins));
  add("max_concurrent_logins", text(c.max_concurrent_logins), text(d.max_concurrent_logins));
  add("auth_failure_delay", text(c.auth_failure_delay), text(d.auth_failure_delay));
  add("workers", text(c.workers), text(default_workers()));
  add("tls.cert_file", c.tls_cert_file, "");
  add("tls.key_file", c.tls_key_file, "");
  add("tls.record_layer", c.tls_sluice_records ? "sluice" : "openssl", "sluice");
  add("auth.secret_file", secrets, std::nullopt);
  add("target.host", c.target.host, d.target.host);
  add("target.port", text(c.target.port), text(d.target.port));
  add("target.tls", kTls[static_cast<int>(c.target_tls)], "prefer");
  add("target.ca_file", c.target_ca_file, "");
  add("target.health_check_interval", text(c.health_check_interval), text(d.health_check_interval));
  add("connection_pool.max_connections_percent", text(c.max_connections_percent),
      text(d.max_connections_percent));
  add("connection_pool.max_idle_connections_percent", text(c.max_idle_connections_percent),
      text(d.max_idle_connections_percent));
  add("connection_pool.idle_connection_seconds", text(c.idle_connection_seconds),
      text(d.idle_connection_seconds));
  add("connection_pool.connection_borrow_timeout", text(c.connection_borrow_timeout),
      text(d.connection_borrow_timeout));
  add("connection_pool.init_query", c.init_query, "");
  add("connection_pool.adaptive_concurrency", yes_no(c.adaptive_concurrency),
      yes_no(d.adaptive_concurrency));
  add("connection_pool.max_prepared_statements", text(c.max_prepared_statements),
      text(d.max_prepared_statements));
  add("admission.file", c.admission_file, "");
  add("metrics.listen", c.metrics_listen ? c.metrics_listen->label() : "", "");
  return out;
}

RowSet show_version() {
  RowSet out;
  out.columns = {{"version", ColumnType::kText}};
  out.rows.push_back({"sluice-proxy (admin console of PgBouncer 1.18's kind)"});
  return out;
}

}  // namespace sluice::proxy
