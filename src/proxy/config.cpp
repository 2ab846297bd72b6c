#include "proxy/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace sluice::proxy {

uint32_t default_workers() {
  const unsigned cores = std::thread::hardware_concurrency();
  return std::clamp<uint32_t>(cores, 1, 256);
}
namespace {

std::string resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || std::filesystem::path(path).is_absolute() || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / path).string();
}

// Rejects keys we do not know: a typo must not silently fall back to a default.
void check_keys(const toml::table& table, const std::string& prefix,
                const std::set<std::string>& known) {
  for (const auto& [key, value] : table) {
    if (!known.contains(std::string(key.str())))
      throw ConfigError(prefix + std::string(key.str()), "unknown key");
  }
}

template <typename T>
std::optional<T> get(const toml::table& table, const std::string& prefix, const char* key) {
  const toml::node* node = table.get(key);
  if (!node) return std::nullopt;
  if constexpr (std::is_same_v<T, bool>) {
    if (auto v = node->value_exact<bool>()) return *v;
    throw ConfigError(prefix + key, "must be true or false");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (auto v = node->value_exact<std::string>()) return *v;
    throw ConfigError(prefix + key, "must be a string");
  } else {
    if (auto v = node->value_exact<int64_t>()) return *v;
    throw ConfigError(prefix + key, "must be an integer");
  }
}

uint32_t get_range(const toml::table& table, const std::string& prefix, const char* key,
                   int64_t low, int64_t high, uint32_t fallback) {
  auto v = get<int64_t>(table, prefix, key);
  if (!v) return fallback;
  if (*v < low || *v > high)
    throw ConfigError(prefix + key,
                      "must be between " + std::to_string(low) + " and " + std::to_string(high));
  return static_cast<uint32_t>(*v);
}

HostPort get_host_port(const toml::table& table, const std::string& prefix, const char* key,
                       HostPort fallback) {
  auto text = get<std::string>(table, prefix, key);
  if (!text) return fallback;
  auto hp = parse_host_port(*text);
  if (!hp) throw ConfigError(prefix + key, "must be HOST:PORT with a port from 1 to 65535");
  return *hp;
}

const toml::table* get_table(const toml::table& root, const char* key) {
  const toml::node* node = root.get(key);
  if (!node) return nullptr;
  if (!node->is_table()) throw ConfigError(key, "must be a table");
  return node->as_table();
}

}  // namespace

std::optional<HostPort> parse_listen(const std::string& text) {
  if (text.starts_with("fd:")) {
    int fd = -1;
    const char* first = text.data() + 3;
    const char* last = text.data() + text.size();
    auto [end, ec] = std::from_chars(first, last, fd);
    if (ec != std::errc() || end != last || fd < 3) return std::nullopt;
    HostPort hp;
    hp.fd = fd;
    return hp;
  }
  if (text.starts_with("netns:")) {
    const size_t slash = text.find('/');
    if (slash == std::string::npos || slash == 6) return std::nullopt;
    const std::string name = text.substr(6, slash - 6);
    if (name.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
            std::string::npos ||
        name.starts_with("."))
      return std::nullopt;
    auto hp = parse_host_port(text.substr(slash + 1));
    if (!hp) return std::nullopt;
    hp->netns = name;
    return hp;
  }
  return parse_host_port(text);
}

std::optional<HostPort> parse_host_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string port_text = text.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  int port = std::stoi(port_text);
  if (port < 1 || port > 65535) return std::nullopt;
  return HostPort{host, static_cast<uint16_t>(port)};
}

Config parse_config(const std::string& toml_text, const std::string& base_dir) {
  toml::table root;
  try {
    root = toml::parse(toml_text);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << "line " << e.source().begin.line;
    throw ConfigError(where.str(), std::string(e.description()));
  }
  check_keys(root, "",
             {"name",
              "listen",
              "require_tls",
              "idle_client_timeout",
              "max_client_connections",
              "max_message_size",
              "debug_logging",
              "log_format",
              "log_level",
              "login_timeout",
              "max_pending_logins",
              "max_concurrent_logins",
              "auth_failure_delay",
              "rotation_grace_seconds",
              "workers",
              "spread_clients",
              "handover_socket",
              "tls",
              "auth",
              "target",
              "connection_pool",
              "metrics",
              "admission",
              "admin_users"});
  Config c;
  if (auto v = get<std::string>(root, "", "name")) {
    if (v->empty() || v->size() > 63) throw ConfigError("name", "must be 1 to 63 characters");
    c.name = *v;
  }
  if (const toml::array* addresses =
          root.get("listen") ? root.get("listen")->as_array() : nullptr) {
    if (addresses->empty() || addresses->size() > 64)
      throw ConfigError("listen", "must be HOST:PORT or an array of 1 to 64 of them");
    for (size_t i = 0; i < addresses->size(); ++i) {
      const auto* text = addresses->get(i)->as_string();
      auto hp = text ? parse_listen(text->get()) : std::nullopt;
      if (!hp)
        throw ConfigError("listen[" + std::to_string(i) + "]",
                          "must be HOST:PORT with a port from 1 to 65535");
      if (i == 0)
        c.listen = *hp;
      else
        c.extra_listen.push_back(*hp);
    }
  } else if (auto text = get<std::string>(root, "", "listen")) {
    auto hp = parse_listen(*text);
    if (!hp)
      throw ConfigError(
          "listen", "must be HOST:PORT with a port from 1 to 65535, fd:N or netns:NAME/HOST:PORT");
    c.listen = *hp;
  }
  c.require_tls = get<bool>(root, "", "require_tls").value_or(c.require_tls);
  c.idle_client_timeout = get_range(root, "", "idle_client_timeout", 1, 28800, 1800);
  c.max_client_connections = get_range(root, "", "max_client_connections", 1, 1000000, 10000);
  c.max_message_size =
      get_range(root, "", "max_message_size", 1024, 1024LL * 1024 * 1024, c.max_message_size);
  c.debug_logging = get<bool>(root, "", "debug_logging").value_or(false);
  if (auto format = get<std::string>(root, "", "log_format")) {
    if (*format == "json")
      c.log_format = LogFormat::kJson;
    else if (*format != "text")
      throw ConfigError("log_format", "must be \"text\" or \"json\"");
  }
  if (auto level = get<std::string>(root, "", "log_level")) {
    static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};
    if (!kLevels.count(*level))
      throw ConfigError("log_level",
                        "must be one of trace, debug, info, warn, error, critical, off");
    c.log_level = *level;
    // debug_logging gates the work of making debug lines; log_level decides.
    c.debug_logging = c.log_level == "debug" || c.log_level == "trace";
  }
  c.login_timeout = get_range(root, "", "login_timeout", 1, 600, c.login_timeout);
  c.max_pending_logins =
      get_range(root, "", "max_pending_logins", 1, 1000000, c.max_pending_logins);
  c.auth_failure_delay = get_range(root, "", "auth_failure_delay", 0, 10000, 0);
  c.rotation_grace_seconds = get_range(root, "", "rotation_grace_seconds", 0, 86400, 300);
  c.max_concurrent_logins =
      get_range(root, "", "max_concurrent_logins", 1, 100000, c.max_concurrent_logins);
  c.workers = get_range(root, "", "workers", 1, 256, default_workers());
  c.spread_clients = get<bool>(root, "", "spread_clients").value_or(false);
  if (auto path = get<std::string>(root, "", "handover_socket")) {
    // sockaddr_un's path holds 107 bytes and a NUL, and the socket is bound first under a
    // temporary name 12 bytes longer (handover.cpp).
    if (path->empty() || path->size() > 95)
      throw ConfigError("handover_socket", "must be a path of 1 to 95 bytes");
    c.handover_socket = resolve(base_dir, *path);
    if (c.handover_socket.size() > 95)
      throw ConfigError("handover_socket", "must be a path of at most 95 bytes once resolved");
  }

  if (const toml::table* tls = get_table(root, "tls")) {
    check_keys(*tls, "tls.", {"cert_file", "key_file", "record_layer"});
    if (auto layer = get<std::string>(*tls, "tls.", "record_layer")) {
      if (*layer != "sluice" && *layer != "openssl")
        throw ConfigError("tls.record_layer", "must be \"sluice\" or \"openssl\"");
      c.tls_sluice_records = *layer == "sluice";
    }
    c.tls_cert_file = resolve(base_dir, get<std::string>(*tls, "tls.", "cert_file").value_or(""));
    c.tls_key_file = resolve(base_dir, get<std::string>(*tls, "tls.", "key_file").value_or(""));
    if (c.tls_cert_file.empty() != c.tls_key_file.empty())
      throw ConfigError(c.tls_cert_file.empty() ? "tls.cert_file" : "tls.key_file",
                        "cert_file and key_file go together");
  }

  if (const toml::node* admins = root.get("admin_users")) {
    const toml::array* names = admins->as_array();
    if (!names || names->size() > 200)
      throw ConfigError("admin_users", "must be an array of up to 200 user names");
    for (size_t i = 0; i < names->size(); ++i) {
      const auto* name = names->get(i)->as_string();
      if (!name || name->get().empty() || name->get().size() > 63)
        throw ConfigError("admin_users[" + std::to_string(i) + "]",
                          "must be a user name of 1 to 63 characters");
      c.admin_users.push_back(name->get());
    }
  }

  const toml::node* auth = root.get("auth");
  if (!auth)
    throw ConfigError("auth", "at least one [[auth]] entry with a secret_file is required");
  const toml::array* auth_array = auth->as_array();
  if (!auth_array || auth_array->empty() || auth_array->size() > 200)
    throw ConfigError("auth", "must be 1 to 200 [[auth]] tables");
  for (size_t i = 0; i < auth_array->size(); ++i) {
    const std::string prefix = "auth[" + std::to_string(i) + "].";
    const toml::table* entry = (*auth_array)[i].as_table();
    if (!entry) throw ConfigError("auth", "entries must be tables");
    check_keys(*entry, prefix, {"secret_file", "client_password_auth_type", "unavailable_reason"});
    AuthConfig a;
    auto file = get<std::string>(*entry, prefix, "secret_file");
    a.unavailable_reason = get<std::string>(*entry, prefix, "unavailable_reason").value_or("");
    if (!a.unavailable_reason.empty()) {
      // A secret the proxy may not read (sluice serve: the proxy's role lost access): logins
      // as a user without credentials are told why instead of failing as a wrong password.
      if (file) throw ConfigError(prefix + "unavailable_reason", "excludes secret_file");
      c.auth.push_back(std::move(a));
      continue;
    }
    if (!file || file->empty()) throw ConfigError(prefix + "secret_file", "is required");
    a.secret_file = resolve(base_dir, *file);
    auto type = get<std::string>(*entry, prefix, "client_password_auth_type")
                    .value_or("POSTGRES_SCRAM_SHA_256");
    if (type == "POSTGRES_SCRAM_SHA_256")
      a.client_password_auth_type = AuthType::kScramSha256;
    else if (type == "POSTGRES_MD5")
      a.client_password_auth_type = AuthType::kMd5;
    else
      throw ConfigError(prefix + "client_password_auth_type",
                        "must be POSTGRES_SCRAM_SHA_256 or POSTGRES_MD5");
    c.auth.push_back(std::move(a));
  }

  const toml::table* target = get_table(root, "target");
  if (!target) throw ConfigError("target", "the [target] table is required");
  check_keys(*target, "target.",
             {"host", "port", "hosts", "tls", "ca_file", "health_check_interval", "tcp_keepalive",
              "tcp_keepalive_idle", "tcp_keepalive_interval", "tcp_keepalive_count"});
  if (const toml::node* hosts = target->get("hosts")) {
    if (target->get("host") || target->get("port"))
      throw ConfigError("target.hosts", "is an alternative to target.host and target.port");
    const toml::array* list = hosts->as_array();
    if (!list || list->empty() || list->size() > 16)
      throw ConfigError("target.hosts", "must be an array of 1 to 16 \"HOST:PORT\" strings");
    for (size_t i = 0; i < list->size(); ++i) {
      const auto* text = list->get(i)->as_string();
      auto hp = text ? parse_host_port(text->get()) : std::nullopt;
      const std::string key = "target.hosts[" + std::to_string(i) + "]";
      if (!hp || hp->host.empty())
        throw ConfigError(key, "must be HOST:PORT with a port from 1 to 65535");
      for (const HostPort& seen : c.target_hosts)
        if (seen.host == hp->host && seen.port == hp->port)
          throw ConfigError(key, "names " + hp->label() + " twice");
      c.target_hosts.push_back(*hp);
    }
    c.target = c.target_hosts.front();
  } else {
    c.target.host = get<std::string>(*target, "target.", "host").value_or("127.0.0.1");
    if (c.target.host.empty()) throw ConfigError("target.host", "must not be empty");
    c.target.port = static_cast<uint16_t>(get_range(*target, "target.", "port", 1, 65535, 5432));
  }
  c.target_keepalive.enabled =
      get<bool>(*target, "target.", "tcp_keepalive").value_or(c.target_keepalive.enabled);
  c.target_keepalive.idle =
      get_range(*target, "target.", "tcp_keepalive_idle", 1, 7200, c.target_keepalive.idle);
  c.target_keepalive.interval =
      get_range(*target, "target.", "tcp_keepalive_interval", 1, 600, c.target_keepalive.interval);
  c.target_keepalive.count =
      get_range(*target, "target.", "tcp_keepalive_count", 1, 127, c.target_keepalive.count);
  auto tls = get<std::string>(*target, "target.", "tls").value_or("prefer");
  if (tls == "disable")
    c.target_tls = TargetTls::kDisable;
  else if (tls == "prefer")
    c.target_tls = TargetTls::kPrefer;
  else if (tls == "require")
    c.target_tls = TargetTls::kRequire;
  else if (tls == "verify-full")
    c.target_tls = TargetTls::kVerifyFull;
  else
    throw ConfigError("target.tls", "must be disable, prefer, require or verify-full");
  c.target_ca_file =
      resolve(base_dir, get<std::string>(*target, "target.", "ca_file").value_or(""));
  c.health_check_interval = get_range(*target, "target.", "health_check_interval", 0, 3600, 0);

  if (const toml::table* pool = get_table(root, "connection_pool")) {
    const std::string p = "connection_pool.";
    check_keys(*pool, p,
               {"max_connections_percent", "max_idle_connections_percent",
                "connection_borrow_timeout", "init_query", "idle_connection_seconds",
                "max_prepared_statements", "adaptive_concurrency", "server_lifetime"});
    c.max_connections_percent = get_range(*pool, p, "max_connections_percent", 1, 100, 100);
    // RDS Proxy's default: half of MaxConnectionsPercent.
    c.max_idle_connections_percent =
        get_range(*pool, p, "max_idle_connections_percent", 0, c.max_connections_percent,
                  c.max_connections_percent / 2);
    c.connection_borrow_timeout = get_range(*pool, p, "connection_borrow_timeout", 0, 300, 120);
    c.init_query = get<std::string>(*pool, p, "init_query").value_or("");
    c.idle_connection_seconds = get_range(*pool, p, "idle_connection_seconds", 1, 86400, 300);
    c.max_prepared_statements = get_range(*pool, p, "max_prepared_statements", 0, 100000, 200);
    c.adaptive_concurrency = get<bool>(*pool, p, "adaptive_concurrency").value_or(true);
    c.server_lifetime = get_range(*pool, p, "server_lifetime", 0, 604800, c.server_lifetime);
  } else {
    c.max_idle_connections_percent = 50;
  }

  if (const toml::table* admission = get_table(root, "admission")) {
    check_keys(*admission, "admission.", {"file"});
    c.admission_file =
        resolve(base_dir, get<std::string>(*admission, "admission.", "file").value_or(""));
    if (c.admission_file.empty()) throw ConfigError("admission.file", "is required");
  }
  if (const toml::table* metrics = get_table(root, "metrics")) {
    check_keys(*metrics, "metrics.", {"listen"});
    if (metrics->get("listen"))
      c.metrics_listen = get_host_port(*metrics, "metrics.", "listen", {});
  }
  return c;
}

Config load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("--config", "cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), std::filesystem::path(path).parent_path().string());
}

std::vector<std::string> changed_keys(const Config& before, const Config& after) {
  std::vector<std::string> keys;
  auto check = [&](const char* key, const auto& a, const auto& b) {
    if (!(a == b)) keys.emplace_back(key);
  };
  check("name", before.name, after.name);
  check("listen", before.listen, after.listen);
  if (before.listen == after.listen) check("listen", before.extra_listen, after.extra_listen);
  check("require_tls", before.require_tls, after.require_tls);
  check("idle_client_timeout", before.idle_client_timeout, after.idle_client_timeout);
  check("max_client_connections", before.max_client_connections, after.max_client_connections);
  check("max_message_size", before.max_message_size, after.max_message_size);
  check("debug_logging", before.debug_logging, after.debug_logging);
  check("log_format", before.log_format, after.log_format);
  check("log_level", before.log_level, after.log_level);
  check("login_timeout", before.login_timeout, after.login_timeout);
  check("max_pending_logins", before.max_pending_logins, after.max_pending_logins);
  check("max_concurrent_logins", before.max_concurrent_logins, after.max_concurrent_logins);
  check("auth_failure_delay", before.auth_failure_delay, after.auth_failure_delay);
  check("rotation_grace_seconds", before.rotation_grace_seconds, after.rotation_grace_seconds);
  check("handover_socket", before.handover_socket, after.handover_socket);
  check("workers", before.workers, after.workers);
  check("spread_clients", before.spread_clients, after.spread_clients);
  check("tls.cert_file", before.tls_cert_file, after.tls_cert_file);
  check("tls.key_file", before.tls_key_file, after.tls_key_file);
  check("tls.record_layer", before.tls_sluice_records, after.tls_sluice_records);
  check("auth", before.auth, after.auth);
  check("target.host", before.target.host, after.target.host);
  check("target.port", before.target.port, after.target.port);
  check("target.hosts", before.target_hosts, after.target_hosts);
  check("target.tcp_keepalive", before.target_keepalive, after.target_keepalive);
  check("connection_pool.server_lifetime", before.server_lifetime, after.server_lifetime);
  check("target.tls", before.target_tls, after.target_tls);
  check("target.ca_file", before.target_ca_file, after.target_ca_file);
  check("target.health_check_interval", before.health_check_interval, after.health_check_interval);
  check("connection_pool.max_connections_percent", before.max_connections_percent,
        after.max_connections_percent);
  check("connection_pool.max_idle_connections_percent", before.max_idle_connections_percent,
        after.max_idle_connections_percent);
  check("connection_pool.connection_borrow_timeout", before.connection_borrow_timeout,
        after.connection_borrow_timeout);
  check("connection_pool.init_query", before.init_query, after.init_query);
  check("connection_pool.idle_connection_seconds", before.idle_connection_seconds,
        after.idle_connection_seconds);
  check("connection_pool.max_prepared_statements", before.max_prepared_statements,
        after.max_prepared_statements);
  check("connection_pool.adaptive_concurrency", before.adaptive_concurrency,
        after.adaptive_concurrency);
  check("metrics.listen", before.metrics_listen, after.metrics_listen);
  check("admission.file", before.admission_file, after.admission_file);
  check("admin_users", before.admin_users, after.admin_users);
  return keys;
}

}  // namespace sluice::proxy
