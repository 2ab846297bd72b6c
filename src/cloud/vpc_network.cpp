#include "cloud/vpc_network.hpp"

#include "common/netns.hpp"

#include "cloud/sockets.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <sched.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

extern char** environ;

namespace sluice::cloud {
namespace fs = std::filesystem;
namespace {

// Interface names hold at most 15 characters: a short hash names each veth end.
std::string short_hash(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 5; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

// iproute2's `ip`, where Debian puts it (PATH may lack the sbin folders), else from PATH.
const char* ip_binary() {
  for (const char* path : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
    if (::access(path, X_OK) == 0) return path;
  return "ip";
}

// Runs `ip` and returns its exit code and what it said on stderr.
std::pair<int, std::string> ip_command(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> pointers;
  for (auto& a : argv) pointers.push_back(a.data());
  pointers.push_back(nullptr);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  pid_t pid = 0;
  const int spawned =
      ::posix_spawnp(&pid, ip_binary(), &actions, nullptr, pointers.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  std::string message;
  char buffer[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) message.append(buffer, n);
  ::close(pipe_fds[0]);
  if (spawned != 0) return {127, "cannot run ip: " + std::string(std::strerror(spawned))};
  int status = 0;
  ::waitpid(pid, &status, 0);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, message};
}

std::string joined(const std::vector<std::string>& args) {
  std::string out = "ip";
  for (const auto& a : args) out += " " + a;
  return out;
}

// `ip` that may find its work done already ("File exists").
void run_ip_idempotent(const std::vector<std::string>& args) {
  auto [code, message] = ip_command(args);
  if (code != 0 && message.find("File exists") == std::string::npos)
    throw std::runtime_error(joined(args) + ": " + message);
}

void delete_namespace(const std::string& ns) {
  ip_command({"netns", "delete", ns});
  std::error_code ec;
  fs::remove_all("/etc/netns/" + ns, ec);
}

}  // namespace

void run_ip(const std::vector<std::string>& args) {
  auto [code, message] = ip_command(args);
  if (code != 0) throw std::runtime_error(joined(args) + ": " + message);
}

VpcNetwork::~VpcNetwork() {
  remove_all();
}

bool VpcNetwork::available() {
  if (available_ < 0) {
    available_ = 0;
    if (::geteuid() == 0) {
      const std::string probe = "sl" + tag_ + "-probe";
      delete_namespace(probe);
      available_ = ip_command({"netns", "add", probe}).first == 0;
      delete_namespace(probe);
    }
    if (!available_)
      spdlog::warn(
          "network namespaces are not available (sluice serve needs root and iproute2): "
          "endpoints are reachable from this host only, and security groups are not enforced");
  }
  return available_ == 1;
}

std::string VpcNetwork::vpc_namespace(const std::string& vpc_id) const {
  return "sl" + tag_ + "-" + vpc_id;
}

std::string VpcNetwork::interface_namespace(const std::string& eni_id) const {
  return "sl" + tag_ + "-" + eni_id;
}

void VpcNetwork::ensure_vpc(const std::string& vpc_id) {
  if (vpcs_.contains(vpc_id)) return;
  const std::string ns = vpc_namespace(vpc_id);
  delete_namespace(ns);  // a previous run's, killed before it could clean up
  run_ip({"netns", "add", ns});
  run_ip({"-n", ns, "link", "set", "lo", "up"});
  vpcs_.insert(vpc_id);
}

std::string VpcNetwork::listener_namespace(const std::string& vpc_id, const std::string& address) {
  ensure_vpc(vpc_id);
  if (addresses_.insert(vpc_id + " " + address).second)
    run_ip_idempotent({"-n", vpc_namespace(vpc_id), "addr", "add", address + "/32", "dev", "lo"});
  return vpc_namespace(vpc_id);
}

int VpcNetwork::listener(const std::string& vpc_id, const std::string& address, int port) {
  const std::string key = vpc_id + " " + address + " " + std::to_string(port);
  if (auto it = listeners_.find(key); it != listeners_.end()) return it->second;
  ensure_vpc(vpc_id);
  run_ip_idempotent({"-n", vpc_namespace(vpc_id), "addr", "add", address + "/32", "dev", "lo"});
  const int fd = listen_in_namespace(vpc_namespace(vpc_id), address, port);
  listeners_[key] = fd;
  return fd;
}

void VpcNetwork::close_listener(const std::string& vpc_id, const std::string& address, int port) {
  const std::string key = vpc_id + " " + address + " " + std::to_string(port);
  if (auto it = listeners_.find(key); it != listeners_.end()) {
    ::close(it->second);
    listeners_.erase(it);
  }
}

void VpcNetwork::write_hosts(const std::string& ns, const HostsEntries& hosts) {
  fs::create_directories("/etc/netns/" + ns);
  const std::string path = "/etc/netns/" + ns + "/hosts";
  {
    // Rewritten in place (never replaced): running functions have it mounted as /etc/hosts.
    std::ofstream out(path, std::ios::trunc);
    out << "127.0.0.1 localhost\n::1 localhost\n";
    for (const auto& [address, name] : hosts) out << address << " " << name << "\n";
  }
  // Public, as /etc/hosts is: functions read it as an unprivileged user.
  const auto readable = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                        fs::perms::others_read;
  fs::permissions(path, readable);
  fs::permissions("/etc/netns/" + ns, readable | fs::perms::owner_exec | fs::perms::group_exec |
                                          fs::perms::others_exec);
}

void VpcNetwork::ensure_interface(const Ec2::NetworkInterface& eni, const HostsEntries& hosts) {
  const std::string ns = interface_namespace(eni.id);
  if (interfaces_.contains(eni.id)) {
    if (hosts_[eni.id] != hosts) {
      write_hosts(ns, hosts);
      hosts_[eni.id] = hosts;
    }
    return;
  }
  ensure_vpc(eni.vpc_id);
  const std::string vpc_ns = vpc_namespace(eni.vpc_id);
  const std::string id = short_hash(tag_ + eni.id);
  const std::string outside = "sv" + id, inside = "se" + id;
  delete_namespace(ns);
  ip_command({"link", "delete", outside});
  run_ip({"netns", "add", ns});
  run_ip({"-n", ns, "link", "set", "lo", "up"});
  run_ip({"link", "add", outside, "type", "veth", "peer", "name", inside});
  run_ip({"link", "set", outside, "netns", vpc_ns});
  run_ip({"link", "set", inside, "netns", ns});
  run_ip({"-n", ns, "link", "set", inside, "name", "eth0"});
  run_ip({"-n", ns, "addr", "add", eni.ip + "/32", "dev", "eth0"});
  run_ip({"-n", ns, "link", "set", "eth0", "up"});
  run_ip({"-n", ns, "route", "add", "default", "dev", "eth0"});
  run_ip({"-n", vpc_ns, "link", "set", outside, "up"});
  run_ip({"-n", vpc_ns, "route", "add", eni.ip + "/32", "dev", outside});
  write_hosts(ns, hosts);
  interfaces_[eni.id] = eni.vpc_id;
  hosts_[eni.id] = hosts;
  spdlog::info("network interface {} ({}) in {}: namespace {}", eni.id, eni.ip, eni.vpc_id, ns);
}

void VpcNetwork::remove_interface(const std::string& eni_id) {
  if (!interfaces_.contains(eni_id)) return;
  delete_namespace(interface_namespace(eni_id));  // its veth pair goes with it
  interfaces_.erase(eni_id);
  hosts_.erase(eni_id);
}

std::vector<std::string> VpcNetwork::interfaces() const {
  std::vector<std::string> out;
  for (const auto& [eni, vpc] : interfaces_) out.push_back(eni);
  return out;
}

void VpcNetwork::remove_all() {
  for (const auto& [key, fd] : listeners_) ::close(fd);
  listeners_.clear();
  for (const auto& eni : interfaces()) remove_interface(eni);
  for (const auto& vpc : vpcs_) delete_namespace(vpc_namespace(vpc));
  vpcs_.clear();
  addresses_.clear();
}

}  // namespace sluice::cloud
