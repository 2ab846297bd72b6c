#include "common/netns.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sluice {

int listen_in_namespace(const std::string& ns, const std::string& address, int port,
                        bool reuse_port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (ns.empty() || ns.find('/') != std::string::npos || ns.starts_with(".") ||
      ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1)
    throw std::runtime_error("not a namespace and IPv4 address: " + ns + "/" + address);
  const int home = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  const int target = ::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  if (home < 0 || target < 0 || ::setns(target, CLONE_NEWNET) != 0) {
    const std::string why = std::strerror(errno);
    if (home >= 0) ::close(home);
    if (target >= 0) ::close(target);
    throw std::runtime_error("cannot enter the network namespace " + ns + ": " + why);
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  bool ok = fd >= 0 && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0;
  if (ok && reuse_port) ok = ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0;
  ok = ok && ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0 &&
       ::listen(fd, 4096) == 0;
  const std::string why = ok ? "" : std::strerror(errno);
  const bool back = ::setns(home, CLONE_NEWNET) == 0;
  ::close(home);
  ::close(target);
  if (!back) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot return to this process's own network namespace");
  }
  if (!ok) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot listen on " + address + ":" + std::to_string(port) + " in " +
                             ns + ": " + why);
  }
  return fd;
}

}  // namespace sluice
