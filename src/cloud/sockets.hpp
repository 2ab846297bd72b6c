// The control plane's own small socket needs, in one place: a free port, whether an address
// is free or accepts connections, a GET to one of our own processes, a listener inside a network
// namespace. Plain system calls, IPv4 only, all blocking (bounded where they could wait): the
// probes among them (accepts_connections, local_http_get) run on a ProbeWorker, never on the
// API's thread.
#pragma once

#include <netinet/in.h>

#include <optional>
#include <string>

namespace sluice::cloud {

// address:port as a sockaddr_in (the address dotted IPv4).
sockaddr_in ipv4(const std::string& address, int port);
// A TCP port nothing listens on at 127.0.0.1 right now. Throws std::runtime_error.
int free_local_port();
// Whether a TCP socket can be bound to address:port now.
bool can_bind(const std::string& address, int port);
// Whether something accepts TCP connections at address:port within `timeout_ms` (loopback:
// refused or accepted at once, unless the listener's backlog is full).
bool accepts_connections(const std::string& address, int port, int timeout_ms = 1000);
// GET http://127.0.0.1:PORT/PATH from one of our own processes; the body of a 200, bounded by
// `timeout_ms`.
std::optional<std::string> local_http_get(int port, const std::string& path, int timeout_ms);
// listen_in_namespace() is in common/netns.hpp (sluice-proxy opens such sockets too).

}  // namespace sluice::cloud
