#include "functions/cgroups.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace sluice::functions {
namespace fs = std::filesystem;
namespace {

bool write_file(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value;
  out.flush();
  return static_cast<bool>(out);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The environment's folder under a v1 controller, or "" when the controller is not there.
std::string make_group(const std::string& root, const char* controller, const std::string& tag,
                       const std::string& id) {
  const fs::path mount = fs::path(root) / controller;
  std::error_code ec;
  if (::geteuid() != 0 || !fs::exists(mount / "cgroup.procs", ec)) return {};
  const fs::path folder = mount / ("sluice-" + tag) / id;
  fs::create_directories(folder, ec);
  if (ec) {
    spdlog::warn("cannot make cgroup {}: {}", folder.string(), ec.message());
    return {};
  }
  return folder.string();
}

}  // namespace

void remove_instance_cgroups(const std::string& root, const std::string& tag) {
  for (const char* controller : {"freezer", "memory"}) {
    const fs::path folder = fs::path(root) / controller / ("sluice-" + tag);
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) continue;
    // Environments whose group could not be removed while their last processes were exiting.
    for (int attempt = 0; attempt < 20; ++attempt) {
      bool left = false;
      for (const auto& entry : fs::directory_iterator(folder, ec))
        if (entry.is_directory() && ::rmdir(entry.path().c_str()) != 0) left = true;
      if (!left) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::rmdir(folder.c_str());  // only when empty
  }
}

EnvironmentCgroups::EnvironmentCgroups(const std::string& root, const std::string& tag,
                                       const std::string& environment_id,
                                       int64_t memory_limit_bytes)
    : freezer_(make_group(root, "freezer", tag, environment_id)),
      memory_(make_group(root, "memory", tag, environment_id)) {
  if (memory_.empty()) return;
  const std::string limit = std::to_string(memory_limit_bytes);
  if (!write_file(memory_ + "/memory.limit_in_bytes", limit)) {
    spdlog::warn("cannot set the memory limit of {}", memory_);
    return;
  }
  // With swap accounting, swap may not stretch the limit either.
  if (fs::exists(memory_ + "/memory.memsw.limit_in_bytes"))
    write_file(memory_ + "/memory.memsw.limit_in_bytes", limit);
}

EnvironmentCgroups::~EnvironmentCgroups() {
  // The processes are gone (killed and reaped) by now; a group empties a moment later.
  for (const std::string& folder : {freezer_, memory_}) {
    if (folder.empty()) continue;
    for (int attempt = 0; attempt < 50 && ::rmdir(folder.c_str()) != 0 && errno == EBUSY; ++attempt)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::vector<std::string> EnvironmentCgroups::procs_files() const {
  std::vector<std::string> files;
  for (const std::string& folder : {freezer_, memory_})
    if (!folder.empty()) files.push_back(folder + "/cgroup.procs");
  return files;
}

bool EnvironmentCgroups::freeze() {
  return has_freezer() && write_file(freezer_ + "/freezer.state", "FROZEN");
}

bool EnvironmentCgroups::thaw() {
  return has_freezer() && write_file(freezer_ + "/freezer.state", "THAWED");
}

int64_t EnvironmentCgroups::max_memory_used() const {
  if (!has_memory()) return 0;
  try {
    return std::stoll(read_file(memory_ + "/memory.max_usage_in_bytes"));
  } catch (const std::exception&) {
    return 0;
  }
}

bool EnvironmentCgroups::out_of_memory() const {
  if (!has_memory()) return false;
  // "oom_kill N" (kernels since 4.13); else a failed charge at the limit is the best sign.
  std::istringstream control(read_file(memory_ + "/memory.oom_control"));
  std::string key;
  int64_t value = 0;
  while (control >> key >> value)
    if (key == "oom_kill") return value > 0;
  try {
    return std::stoll(read_file(memory_ + "/memory.failcnt")) > 0;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace sluice::functions
