#include "proxy/admission.hpp"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace sluice::proxy {

Admission Admission::parse(std::string_view text) {
  Admission out;
  std::istringstream lines{std::string(text)};
  int number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    if (line.empty() || line.front() == '#') continue;
    std::istringstream words(line);
    std::string listener, source, extra;
    words >> listener >> source;
    if (listener.empty() || source.empty() || (words >> extra))
      throw std::invalid_argument("line " + std::to_string(number) +
                                  ": expected \"LISTENER CIDR\" or \"LISTENER *\"");
    Range range;
    if (source == "*") {
      range.any = true;
    } else {
      const size_t slash = source.find('/');
      const std::string address = source.substr(0, slash);
      int prefix = 32;
      if (slash != std::string::npos) {
        const char* first = source.data() + slash + 1;
        const char* last = source.data() + source.size();
        auto [end, ec] = std::from_chars(first, last, prefix);
        if (ec != std::errc() || end != last || prefix < 0 || prefix > 32)
          throw std::invalid_argument("line " + std::to_string(number) + ": bad prefix in " +
                                      source);
      }
      in_addr parsed{};
      if (::inet_pton(AF_INET, address.c_str(), &parsed) != 1)
        throw std::invalid_argument("line " + std::to_string(number) + ": " + source +
                                    " is not an IPv4 CIDR");
      range.mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
      range.network = ntohl(parsed.s_addr) & range.mask;
    }
    out.by_listener_[listener].push_back(range);
  }
  return out;
}

bool Admission::admits(std::string_view listener, std::optional<uint32_t> peer) const {
  auto it = by_listener_.find(listener);
  if (it == by_listener_.end()) return false;
  for (const Range& range : it->second) {
    if (range.any) return true;
    if (peer && (*peer & range.mask) == range.network) return true;
  }
  return false;
}

void AdmissionFile::load() {
  std::ifstream in(path_);
  if (!in) throw std::runtime_error("cannot read the admission file " + path_);
  std::stringstream text;
  text << in.rdbuf();
  try {
    current_ = Admission::parse(text.str());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path_ + ": " + e.what());
  }
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) {
    stamp_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    size_ = st.st_size;
  }
}

void AdmissionFile::refresh() {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return;  // being replaced: keep the last decision
  const int64_t stamp = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (stamp == stamp_ && st.st_size == size_) return;
  try {
    load();
    spdlog::info("admission rules reloaded from {}", path_);
  } catch (const std::exception& e) {
    stamp_ = stamp;  // once per change, not every tick
    size_ = st.st_size;
    spdlog::error("{}; keeping the previous admission rules", e.what());
  }
}

}  // namespace sluice::proxy
