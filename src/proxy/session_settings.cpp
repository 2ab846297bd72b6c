#include "proxy/session_settings.hpp"

#include <strings.h>
#include <algorithm>
#include <cctype>

#include "pgwire/codec.hpp"
#include "proxy/pinning.hpp"

namespace sluice::proxy {

bool GucNameLess::operator()(const std::string& a, const std::string& b) const {
  return strcasecmp(a.c_str(), b.c_str()) < 0;
}

bool is_valid_guc_name(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  });
}

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<std::string> add_setting(const std::string& name, const std::string& value,
                                       Settings& out) {
  if (!is_valid_guc_name(name)) return "invalid parameter name \"" + name + "\"";
  if (value.find('\0') != std::string::npos) return "invalid value for parameter \"" + name + "\"";
  // These change who the session is; they cannot be re-applied per transaction safely.
  for (const char* refused : {"role", "session_authorization", "replication"})
    if (iequals(name, refused)) return "parameter \"" + name + "\" is not supported by this proxy";
  out[name] = value;
  return std::nullopt;
}

void append_identifier(std::string& sql, std::string_view name) {
  // Names are validated to [A-Za-z0-9_.]; dotted names (extension.setting) stay unquoted
  // parts, and PostgreSQL folds case for GUC names anyway.
  sql += name;
}

void append_literal(std::string& sql, std::string_view value) {
  // E'' form: correct whatever standard_conforming_strings says.
  sql += "E'";
  for (char c : value) {
    if (c == '\'' || c == '\\') sql += c;
    sql += c;
  }
  sql += '\'';
}

}  // namespace

std::optional<std::string> settings_from_startup(
    const std::vector<std::pair<std::string, std::string>>& params, Settings& out) {
  for (const auto& [name, value] : params) {
    if (name == "user" || name == "database" || name.starts_with("_pq_.")) continue;
    if (name == "options") {
      std::string error;
      auto pairs = pgwire::parse_options(value, error);
      if (!pairs) return error;
      for (const auto& [n, v] : *pairs)
        if (auto e = add_setting(n, v, out)) return e;
      continue;
    }
    if (auto e = add_setting(name, value, out)) return e;
  }
  return std::nullopt;
}

std::string settings_sync_sql(const Settings& current, const Settings& wanted) {
  // set_config() rather than SET: it parses the value as a startup parameter or the server's
  // configuration file would, so list values ("a, b" for search_path) stay lists; SET would
  // take a quoted list as one element.
  std::string sql;
  for (const auto& [name, value] : wanted) {
    auto it = current.find(name);
    if (it != current.end() && it->second == value) continue;
    sql += sql.empty() || sql.back() == ';' ? "SELECT " : ",";
    sql += "pg_catalog.set_config(";
    append_literal(sql, name);
    sql += ", ";
    append_literal(sql, value);
    sql += ", false)";
  }
  if (!sql.empty()) sql += ';';
  for (const auto& [name, value] : current) {
    if (wanted.contains(name)) continue;
    sql += "RESET ";
    append_identifier(sql, name);
    sql += ';';
  }
  return sql;
}

std::string settings_key(const Settings& settings) {
  std::string key;
  for (const auto& [name, value] : settings) {
    for (char c : name) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    key += '=';
    key += value;
    key += '\0';
  }
  return key;
}

bool ClientSettings::note_change(std::string_view sql) {
  changed = true;
  collect_custom_setting_names(sql, custom_names);
  // Each name is asked for at every read-back.
  return custom_names.size() > 64;
}

void ClientSettings::adopt_read_back(Settings found) {
  for (const auto& [name, value] : startup) found.emplace(name, value);
  wanted = std::move(found);
}

}  // namespace sluice::proxy
