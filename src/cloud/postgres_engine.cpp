#include "cloud/postgres_engine.hpp"

#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace sluice::cloud {
namespace fs = std::filesystem;

int aurora_max_connections(double acus) {
  // Aurora's published values; memory, and so the formula, is linear in ACUs between them.
  static constexpr std::array<std::pair<double, double>, 4> kKnown{
      {{1, 189}, {4, 823}, {8, 1669}, {16, 3360}}};
  acus = std::max(acus, 0.5);
  size_t i = 0;
  while (i + 2 < kKnown.size() && acus > kKnown[i + 1].first) ++i;
  const auto [x0, y0] = kKnown[i];
  const auto [x1, y1] = kKnown[i + 1];
  const double value = y0 + (acus - x0) * (y1 - y0) / (x1 - x0);
  return static_cast<int>(std::clamp(std::floor(value), 1.0, 5000.0));
}

std::string postmaster_status(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  for (int n = 1; std::getline(lines, line); ++n) {
    if (n != 8) continue;
    line.erase(line.find_last_not_of(" \t\r") + 1);
    return line;
  }
  return "";
}

bool postgres_ready(const std::string& data_dir) {
  std::ifstream in(data_dir + "/postmaster.pid");
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  return postmaster_status(text.str()) == "ready";
}

PostgresEngine::PostgresEngine(std::string bin_dir) : bin_dir_(std::move(bin_dir)) {
  if (bin_dir_.empty()) {
    int newest = 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
      const int version = std::atoi(entry.path().filename().c_str());
      if (version > newest && fs::exists(entry.path() / "bin" / "postgres")) {
        newest = version;
        bin_dir_ = (entry.path() / "bin").string();
      }
    }
  }
  if (bin_dir_.empty() || !fs::exists(bin_dir_ + "/postgres"))
    throw std::runtime_error(
        "no PostgreSQL server binaries (looked in /usr/lib/postgresql/*/bin; install "
        "postgresql or pass --postgres-bin)");
  if (::geteuid() == 0) run_as_ = "postgres";
}

void PostgresEngine::hand_over(const std::string& path) const {
  if (run_as_.empty()) return;
  const passwd* pw = ::getpwnam(run_as_.c_str());
  if (!pw) throw std::runtime_error("no user \"" + run_as_ + "\" to own " + path);
  if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0)
    throw std::runtime_error("cannot hand " + path + " to " + run_as_);
}

namespace {
void write_private(const std::string& path, const std::string& content) {
  fs::remove(path);
  std::ofstream out(path, std::ios::trunc);
  ::chmod(path.c_str(), 0600);
  out << content;
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}
}  // namespace

void PostgresEngine::prepare(const ClusterFiles& files, const std::string& password) const {
  fs::create_directories(files.dir);
  ::chmod(files.dir.c_str(), 0700);
  hand_over(files.dir);
  write_private(files.password_file(), password + "\n");
  hand_over(files.password_file());
}

ProcessSpec PostgresEngine::initdb(const ClusterFiles& files, const std::string& user) const {
  ProcessSpec spec;
  spec.argv = {bin_dir_ + "/initdb",
               "-D",
               files.data(),
               "-U",
               user,
               "--pwfile=" + files.password_file(),
               "--auth=scram-sha-256",
               "-E",
               "UTF8",
               "--no-locale",
               "--no-sync",
               "--no-instructions"};
  spec.log_file = files.dir + "/initdb.log";
  spec.run_as = run_as_;
  spec.restart = false;
  return spec;
}

void PostgresEngine::install_certificate(const ClusterFiles& files, const std::string& cert_file,
                                         const std::string& key_file) const {
  write_private(files.cert_file(), read_file(cert_file));
  write_private(files.key_file(), read_file(key_file));
  hand_over(files.cert_file());
  hand_over(files.key_file());
}

void PostgresEngine::finish_initdb(const ClusterFiles& files, const std::string& cert_file,
                                   const std::string& key_file) const {
  fs::remove(files.password_file());
  // Who may connect is the network's business (security groups); PostgreSQL asks everyone for
  // the password, as RDS does.
  const std::string hba = files.data() + "/pg_hba.conf";
  write_private(hba,
                "# Written by sluice: password (SCRAM) for every connection.\n"
                "local all all scram-sha-256\n"
                "host all all 0.0.0.0/0 scram-sha-256\n"
                "host all all ::/0 scram-sha-256\n");
  hand_over(hba);
  install_certificate(files, cert_file, key_file);
}

ProcessSpec PostgresEngine::server(const ClusterFiles& files,
                                   const PostgresSettings& settings) const {
  ProcessSpec spec;
  spec.argv = {bin_dir_ + "/postgres",
               "-D",
               files.data(),
               "-c",
               "listen_addresses=" + settings.listen_address,
               "-c",
               "port=" + std::to_string(settings.port),
               "-c",
               "unix_socket_directories=" + files.socket_dir(),
               "-c",
               "max_connections=" + std::to_string(settings.max_connections),
               "-c",
               "ssl=on",
               "-c",
               "ssl_cert_file=" + files.cert_file(),
               "-c",
               "ssl_key_file=" + files.key_file(),
               "-c",
               "ssl_min_protocol_version=TLSv1.2",
               "-c",
               "password_encryption=scram-sha-256"};
  spec.log_file = files.log_file();
  spec.run_as = run_as_;
  spec.stop_signal = SIGINT;  // fast shutdown: roll back, disconnect, checkpoint
  spec.stop_order = 1;        // after the proxies in front of it
  return spec;
}

ProcessSpec PostgresEngine::create_database(const ClusterFiles& files, int port,
                                            const std::string& user, const std::string& password,
                                            const std::string& database) const {
  ProcessSpec spec;
  spec.argv = {bin_dir_ + "/createdb",
               "-h",
               files.socket_dir(),
               "-p",
               std::to_string(port),
               "-U",
               user,
               "--",
               database};
  spec.extra_env = {"PGPASSWORD=" + password};  // never on the command line
  spec.log_file = files.dir + "/createdb.log";
  spec.run_as = run_as_;
  spec.restart = false;
  return spec;
}

}  // namespace sluice::cloud
