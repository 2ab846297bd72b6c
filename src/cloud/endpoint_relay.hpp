// Database endpoints inside a VPC: connections to a cluster's address in the VPC's namespace are
// relayed, byte for byte, to its PostgreSQL on the host's loopback, as AWS's network carries them
// to an Aurora writer. Sources are admitted as the security groups say (a set the control plane
// recomputes every tick); a refused connection is closed before a byte is read, as a dropped
// packet would be. No pooling, no parsing: a function that connects here holds a server
// connection for as long as its socket is open, which is the point of comparing with the proxy.
// The relay runs on a thread of its own, so relayed traffic never waits behind API calls.
#pragma once

#include <boost/asio.hpp>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace sluice::cloud {

class EndpointRelay {
 public:
  EndpointRelay() = default;
  ~EndpointRelay();
  EndpointRelay(const EndpointRelay&) = delete;
  EndpointRelay& operator=(const EndpointRelay&) = delete;

  // Relays connections accepted on `listening_fd` (a duplicate is taken; the caller keeps its
  // own) to `target`, admitting sources whose address is in `admitted`. Called again for the
  // same descriptor, it replaces the target and the admitted set.
  void relay(int listening_fd, const boost::asio::ip::tcp::endpoint& target,
             std::set<std::string> admitted);
  // Stops accepting on `listening_fd`; relayed connections carry on until either side closes.
  void stop(int listening_fd);
  // Stops everything, connections included.
  void shutdown();

  struct Listener;  // one relayed endpoint (endpoint_relay.cpp)

 private:
  void start_thread();

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::map<int, std::shared_ptr<Listener>> listeners_;  // by the caller's descriptor; relay thread
};

}  // namespace sluice::cloud
