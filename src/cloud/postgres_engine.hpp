// How the region runs Aurora PostgreSQL locally: a real PostgreSQL, owned by the `postgres` user
// when sluice serve runs as root (PostgreSQL refuses root), with TLS on and Aurora's
// max_connections for the cluster's capacity. These are the commands and files; the RDS service
// decides when to run them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cloud/supervisor.hpp"

namespace sluice::cloud {

// Aurora Serverless v2: max_connections = LEAST(DBInstanceClassMemory / 9531392, 5000), with the
// instance memory that MaxCapacity ACUs give (1 → 189, 4 → 823, 8 → 1669, 16 → 3360, ≥ 32 → 5000).
int aurora_max_connections(double max_capacity_acus);

// Where a cluster's files live: DIR/data (PGDATA), the TLS pair PostgreSQL reads, its socket
// folder and log. The folder belongs to the database user.
struct ClusterFiles {
  std::string dir;
  std::string data() const { return dir + "/data"; }
  std::string password_file() const { return dir + "/initdb.pw"; }
  std::string cert_file() const { return dir + "/server.crt"; }
  std::string key_file() const { return dir + "/server.key"; }
  std::string log_file() const { return dir + "/postgres.log"; }
  std::string socket_dir() const { return dir; }
};

struct PostgresSettings {
  std::string listen_address;  // one loopback address of the region
  int port = 5432;
  int max_connections = 189;
};

class PostgresEngine {
 public:
  // `bin_dir` empty: the newest /usr/lib/postgresql/N/bin. Throws if there is none.
  explicit PostgresEngine(std::string bin_dir = {});

  // The user PostgreSQL runs as: "postgres" when we are root, else ourselves ("").
  const std::string& run_as() const { return run_as_; }
  const std::string& bin_dir() const { return bin_dir_; }

  // Creates the folder (mode 0700, handed to the database user) and the password file initdb
  // reads.
  void prepare(const ClusterFiles& files, const std::string& master_password) const;
  ProcessSpec initdb(const ClusterFiles& files, const std::string& master_user) const;
  // After initdb: drops the password file, writes pg_hba.conf (scram-sha-256 from anywhere the
  // network lets in) and copies the TLS pair where PostgreSQL may read it.
  void finish_initdb(const ClusterFiles& files, const std::string& cert_file,
                     const std::string& key_file) const;
  // Re-copies the TLS pair (the certificate is reissued when endpoint names change).
  void install_certificate(const ClusterFiles& files, const std::string& cert_file,
                           const std::string& key_file) const;
  ProcessSpec server(const ClusterFiles& files, const PostgresSettings& settings) const;
  // `createdb` over the cluster's socket, with the master password in the environment.
  ProcessSpec create_database(const ClusterFiles& files, int port, const std::string& master_user,
                              const std::string& master_password,
                              const std::string& database) const;

 private:
  void hand_over(const std::string& path) const;  // chown to the database user

  std::string bin_dir_;
  std::string run_as_;
};

// Whether postmaster.pid in `data_dir` says the server accepts connections.
bool postgres_ready(const std::string& data_dir);
// The status word of a postmaster.pid's text ("ready", "starting", "stopping"), or "".
std::string postmaster_status(const std::string& pid_file_text);

}  // namespace sluice::cloud
