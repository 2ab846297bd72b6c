// sluice-proxy configuration: the TOML file, validated into plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::proxy {

enum class AuthType { kScramSha256, kMd5 };
enum class TargetTls { kDisable, kPrefer, kRequire, kVerifyFull };
enum class LogFormat { kText, kJson };

struct HostPort {
  bool operator==(const HostPort&) const = default;
  std::string host;
  uint16_t port = 0;
  // A listening socket inherited from the parent ("fd:N" in `listen`): sluice serve opens it
  // inside a VPC's network namespace.
  int fd = -1;
  // HOST:PORT inside this network namespace ("netns:NAME/HOST:PORT"): sluice serve's VPCs, so
  // that a new endpoint there is a reload, not a new process inheriting a new socket.
  std::string netns = {};
  // As written in the configuration: what admission rules name a listener by.
  std::string label() const {
    if (fd >= 0) return "fd:" + std::to_string(fd);
    const std::string address = host + ":" + std::to_string(port);
    return netns.empty() ? address : "netns:" + netns + "/" + address;
  }
};

// Keepalive probes on a TCP socket (setsockopt SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT): a peer
// that stopped answering is declared dead after idle + interval * count seconds.
struct TcpKeepalive {
  bool operator==(const TcpKeepalive&) const = default;
  bool enabled = true;
  uint32_t idle = 30;      // seconds without traffic before the first probe
  uint32_t interval = 10;  // seconds between unanswered probes
  uint32_t count = 3;      // unanswered probes before the connection is dropped
};

struct AuthConfig {
  bool operator==(const AuthConfig&) const = default;
  std::string secret_file;
  AuthType client_password_auth_type = AuthType::kScramSha256;
  // Set instead of secret_file: the secret cannot be had, and this says why (never a secret).
  std::string unavailable_reason = {};
};

// One worker per core (what `workers` defaults to).
uint32_t default_workers();

struct Config {
  std::string name = "sluice-proxy";
  HostPort listen{"127.0.0.1", 6432};
  // More addresses to accept clients on (`listen` as an array: its first is `listen`), e.g. one
  // per proxy endpoint. All share the pools.
  std::vector<HostPort> extra_listen;
  bool require_tls = true;
  uint32_t idle_client_timeout = 1800;  // seconds, 1..28800 as RDS Proxy
  uint32_t max_client_connections = 10000;
  uint32_t max_message_size = 64 * 1024 * 1024;
  bool debug_logging = false;
  // Log lines as text or JSON (one object per line), and the least level logged; without
  // log_level, debug_logging picks debug or info (with it, debug_logging follows it).
  LogFormat log_format = LogFormat::kText;
  std::string log_level;  // trace, debug, info, warn, error, critical or off; empty: see above
  // Logins: a client that has not finished logging in after login_timeout seconds is closed
  // (slowloris); at most max_pending_logins clients may be logging in at once (more are refused
  // with FATAL 53300 at once); a failed login is answered after auth_failure_delay milliseconds
  // (PostgreSQL's auth_delay), which slows password guessing.
  uint32_t login_timeout = 15;
  uint32_t max_pending_logins = 5000;
  // Clients doing login work (TLS handshake, authentication) at once, per worker; more wait their
  // turn from their first byte on.
  uint32_t max_concurrent_logins = 100;
  uint32_t auth_failure_delay = 0;
  // Event-loop threads, each with its own listening sockets (SO_REUSEPORT), clients and pools;
  // the server connection cap is shared. Default: one per core.
  uint32_t workers = 1;
  // New clients go to as few workers as their load needs (client_placement.hpp); true: to every
  // worker as the kernel spreads them (SO_REUSEPORT), whatever the load.
  bool spread_clients = false;
  // Zero-downtime upgrade (handover.hpp): the Unix socket where this proxy offers its listening
  // sockets to a successor started with --takeover; empty: none.
  std::string handover_socket;

  std::string tls_cert_file;  // both empty: ephemeral self-signed certificate
  std::string tls_key_file;
  // [tls] record_layer: after a client's TLS 1.3 handshake its records move from OpenSSL to
  // sluice's record layer ("sluice", the default) or stay with OpenSSL ("openssl"). See
  // src/tls/record_layer.hpp: idle clients keep ~15 KB less, transactions cost fewer
  // instructions, and each login costs OpenSSL's key log lines (~0.2M instructions).
  bool tls_sluice_records = true;

  std::vector<AuthConfig> auth;
  // During a rotation, clients may still log in with a secret's AWSPREVIOUS password for this
  // many seconds after it stopped being AWSCURRENT (0..86400).
  uint32_t rotation_grace_seconds = 300;
  // Users who may open the admin console (database "sluice": SHOW, PAUSE, RESUME, RELOAD,
  // SHUTDOWN). Each logs in with its [[auth]] secret like any client.
  std::vector<std::string> admin_users;

  HostPort target{"127.0.0.1", 5432};
  // [target] hosts: the servers of one primary/standby cluster (target is the first). Read-write
  // traffic goes to whichever is the primary; a standby's connections are never lent. Empty:
  // `target` alone, whatever its role.
  std::vector<HostPort> target_hosts;
  // Every server the proxy may log in to: target_hosts, or `target` alone.
  std::vector<HostPort> servers() const {
    return target_hosts.empty() ? std::vector<HostPort>{target} : target_hosts;
  }
  // TCP keepalives on server connections, so a server that vanished (power loss, network
  // partition) is noticed while the connection is idle or waits for a reply.
  TcpKeepalive target_keepalive;
  TargetTls target_tls = TargetTls::kPrefer;
  std::string target_ca_file;
  // Seconds between active health probes of the target (a login per configured user);
  // 0: health follows client traffic only.
  uint32_t health_check_interval = 0;

  uint32_t max_connections_percent = 100;
  uint32_t max_idle_connections_percent = 50;
  uint32_t connection_borrow_timeout = 120;  // seconds
  std::string init_query;
  uint32_t idle_connection_seconds = 300;  // RDS Proxy: idle after 5 minutes without use
  // Seconds a server connection may live (PgBouncer's server_lifetime): an older one is closed
  // when it is idle, never while lent. 0: unlimited.
  uint32_t server_lifetime = 3600;
  // Named statements each server connection keeps prepared (LRU); 0 pins sessions that
  // prepare named statements instead, as RDS Proxy does.
  uint32_t max_prepared_statements = 200;
  // Lend fewer connections than the cap while the server is saturated (concurrency_limit.hpp).
  bool adaptive_concurrency = true;

  std::optional<HostPort> metrics_listen;
  // Which sources each listener admits (admission.hpp); empty: everyone.
  std::string admission_file;
};

// A bad configuration: `key` is the dotted TOML key at fault.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string key, const std::string& why)
      : std::runtime_error(key + ": " + why), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

// The configuration keys whose values differ between `before` and `after` (dotted, as written
// in the file; auth entries as "auth"), for a reload's log line and its decisions.
std::vector<std::string> changed_keys(const Config& before, const Config& after);

// Parses and validates; relative paths are resolved against the file's folder.
Config load_config(const std::string& path);
Config parse_config(const std::string& toml_text, const std::string& base_dir);

std::optional<HostPort> parse_host_port(const std::string& text);
// A `listen` entry: HOST:PORT, fd:N (N >= 3) for an inherited listening socket, or
// netns:NAME/HOST:PORT (IPv4) inside a named network namespace.
std::optional<HostPort> parse_listen(const std::string& text);

}  // namespace sluice::proxy
