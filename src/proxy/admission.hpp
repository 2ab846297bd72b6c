// Which client addresses each listener admits: the network's security-group decision, made by
// the control plane (`sluice serve`) and handed to the proxy as a file it re-reads when it
// changes. Lines are "LISTENER SOURCE": LISTENER is a `listen` entry as written ("127.64.1.2:5432",
// "fd:3"), SOURCE an IPv4 CIDR or "*". A listener without lines admits nobody. Pure parsing and
// matching; the file is watched by the proxy's housekeeping.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::proxy {

class Admission {
 public:
  // Throws std::invalid_argument naming the line at fault.
  static Admission parse(std::string_view text);

  // `peer_ipv4` in host byte order; IPv6 peers pass nullopt and are admitted only by "*".
  bool admits(std::string_view listener, std::optional<uint32_t> peer_ipv4) const;
  size_t size() const { return by_listener_.size(); }

 private:
  struct Range {
    uint32_t network = 0;
    uint32_t mask = 0;
    bool any = false;
  };
  std::map<std::string, std::vector<Range>, std::less<>> by_listener_;
};

// The admission file: reloaded when its modification time or size changes. A file that does not
// parse keeps the previous decision (and says so once).
class AdmissionFile {
 public:
  explicit AdmissionFile(std::string path) : path_(std::move(path)) {}
  // Loads the file now; throws std::runtime_error when it cannot be read or parsed.
  void load();
  // Re-reads the file if it changed; cheap (one stat) otherwise.
  void refresh();
  const Admission& current() const { return current_; }

 private:
  std::string path_;
  Admission current_;
  int64_t stamp_ = -1;
  int64_t size_ = -1;
};

}  // namespace sluice::proxy
