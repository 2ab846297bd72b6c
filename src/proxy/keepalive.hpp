// TCP keepalives on server connections: a server that vanished without a word (power loss,
// a network partition, a failover that moved its address) is noticed even while its connection
// is idle in the pool or waits for a reply, instead of after the kernel's two hours.
#pragma once

#include <string>

#include "proxy/config.hpp"

namespace sluice::proxy {

// Sets SO_KEEPALIVE and, when enabled, TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT on `fd`.
// Returns what the kernel refused, or an empty string.
std::string apply_keepalive(int fd, const TcpKeepalive& keepalive);

}  // namespace sluice::proxy
