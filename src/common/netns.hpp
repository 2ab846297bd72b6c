// Listening sockets inside a named network namespace (/var/run/netns/NAME, as `ip netns add`
// makes them): sluice serve's VPCs. A socket belongs to the namespace it was made in, so the
// calling thread steps in, makes it, and steps back. Needs CAP_SYS_ADMIN (root).
#pragma once

#include <string>

namespace sluice {

// A listening IPv4 TCP socket on ADDRESS:PORT in namespace `ns` (close-on-exec, blocking).
// `reuse_port`: SO_REUSEPORT, so that several sockets (one per worker thread) share the address.
// Throws std::runtime_error saying why.
int listen_in_namespace(const std::string& ns, const std::string& address, int port,
                        bool reuse_port = false);

}  // namespace sluice
