#include "proxy/keepalive.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace sluice::proxy {

std::string apply_keepalive(int fd, const TcpKeepalive& keepalive) {
  auto set = [fd](int level, int name, int value, const char* what) -> std::string {
    if (::setsockopt(fd, level, name, &value, sizeof value) == 0) return {};
    return std::string(what) + ": " + std::strerror(errno);
  };
  if (!keepalive.enabled) return set(SOL_SOCKET, SO_KEEPALIVE, 0, "SO_KEEPALIVE");
  struct Option {
    int level;
    int name;
    uint32_t value;
    const char* what;
  };
  const Option options[] = {{SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
                            {IPPROTO_TCP, TCP_KEEPIDLE, keepalive.idle, "TCP_KEEPIDLE"},
                            {IPPROTO_TCP, TCP_KEEPINTVL, keepalive.interval, "TCP_KEEPINTVL"},
                            {IPPROTO_TCP, TCP_KEEPCNT, keepalive.count, "TCP_KEEPCNT"}};
  for (const Option& o : options) {
    auto refused = set(o.level, o.name, static_cast<int>(o.value), o.what);
    if (!refused.empty()) return refused;
  }
  return {};
}

}  // namespace sluice::proxy
