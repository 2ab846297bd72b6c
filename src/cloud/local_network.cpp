#include "cloud/local_network.hpp"

#include "cloud/sockets.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <sstream>

namespace sluice::cloud {

std::string replace_hosts_block(std::string_view text, std::string_view tag,
                                const HostsEntries& entries) {
  const std::string begin = "# BEGIN sluice " + std::string(tag);
  const std::string end = "# END sluice " + std::string(tag);
  std::string out;
  bool inside = false;
  std::istringstream lines{std::string(text)};
  for (std::string line; std::getline(lines, line);) {
    if (line == begin) {
      inside = true;
      continue;
    }
    if (inside) {
      inside = line != end;
      continue;
    }
    out += line + "\n";
  }
  if (entries.empty()) return out;
  out += begin + "\n";
  for (const auto& [address, name] : entries) out += address + " " + name + "\n";
  out += end + "\n";
  return out;
}

std::string LocalNetwork::allocate_address(const std::set<std::string>& taken, int port) const {
  std::random_device seed;
  std::mt19937 random(seed());
  // 127.64.0.0/10, skipping .0 and .255 so no address looks like a network or broadcast.
  std::uniform_int_distribution<int> second(64, 127), third(0, 255), fourth(1, 254);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const std::string address = "127." + std::to_string(second(random)) + "." +
                                std::to_string(third(random)) + "." +
                                std::to_string(fourth(random));
    if (taken.contains(address)) continue;
    if (can_bind(address, port)) return address;
  }
  throw std::runtime_error("no free loopback address for port " + std::to_string(port));
}

void LocalNetwork::publish(const HostsEntries& entries) {
  if (hosts_file_.empty() || entries == published_) return;
  const int fd = ::open(hosts_file_.c_str(), O_RDWR | O_CLOEXEC);
  auto fail = [&](const char* what) {
    if (!warned_)
      spdlog::warn("cannot {} {} ({}): endpoint names will not resolve on this machine", what,
                   hosts_file_, std::strerror(errno));
    warned_ = true;
    if (fd >= 0) ::close(fd);
  };
  if (fd < 0) return fail("open");
  // Other sluice instances edit their own blocks of the same file.
  if (::flock(fd, LOCK_EX) != 0) return fail("lock");
  std::string text;
  char buffer[8192];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, n);
  const std::string updated = replace_hosts_block(text, tag_, entries);
  if (updated != text) {
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, updated.data(), updated.size(), 0) != static_cast<ssize_t>(updated.size()))
      return fail("write");
  }
  ::close(fd);  // releases the lock
  published_ = entries;
}

}  // namespace sluice::cloud
