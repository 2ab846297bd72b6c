// How endpoint names reach the processes behind them on this machine. Every endpoint (a cluster,
// a proxy endpoint) gets its own loopback address from 127.64.0.0/10, so all of them can listen
// on 5432 as in AWS; the names resolve through a block of the hosts file that sluice serve owns
// (/etc/hosts by default), so an unmodified libpq client finds them. See docs/control-plane.md.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::cloud {

using HostsEntries = std::vector<std::pair<std::string, std::string>>;  // (address, name)

// `hosts_text` with the block between "# BEGIN sluice <tag>" and "# END sluice <tag>" replaced
// by `entries` (removed when there are none); everything else stays as it was.
std::string replace_hosts_block(std::string_view hosts_text, std::string_view tag,
                                const HostsEntries& entries);

class LocalNetwork {
 public:
  // `hosts_file` empty: names are not published (the addresses still work).
  LocalNetwork(std::string hosts_file, std::string tag)
      : hosts_file_(std::move(hosts_file)), tag_(std::move(tag)) {}

  // A loopback address not in `taken` on which `port` is free right now.
  std::string allocate_address(const std::set<std::string>& taken, int port) const;
  // Rewrites our block of the hosts file (in place: it is often a bind mount) under a lock.
  // Logs and carries on when the file cannot be written.
  void publish(const HostsEntries& entries);
  void unpublish() { publish({}); }
  const std::string& hosts_file() const { return hosts_file_; }

 private:
  std::string hosts_file_;
  std::string tag_;
  HostsEntries published_;
  bool warned_ = false;
};

}  // namespace sluice::cloud
