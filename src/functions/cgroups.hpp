// An execution environment's control groups, cgroup v1 (this machine's kind:
// /sys/fs/cgroup/{freezer,memory}): the freezer stops every process of the environment between
// invocations, the memory controller enforces MemorySize and says whether it killed one. Each
// controller is optional: where one is missing (or we are not root) the environment freezes
// with SIGSTOP/SIGCONT and runs without a memory limit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::functions {

// Removes ROOT/{freezer,memory}/sluice-TAG once its environments' groups are gone (at shutdown),
// so repeated runs leave nothing behind.
void remove_instance_cgroups(const std::string& root, const std::string& tag);

class EnvironmentCgroups {
 public:
  // ROOT/{freezer,memory}/sluice-TAG/ENV, each made where its controller is mounted under
  // `root` (normally /sys/fs/cgroup).
  EnvironmentCgroups(const std::string& root, const std::string& tag,
                     const std::string& environment_id, int64_t memory_limit_bytes);
  ~EnvironmentCgroups();
  EnvironmentCgroups(const EnvironmentCgroups&) = delete;
  EnvironmentCgroups& operator=(const EnvironmentCgroups&) = delete;

  // The cgroup.procs files a new process writes its pid into before it runs the function.
  std::vector<std::string> procs_files() const;
  bool has_freezer() const { return !freezer_.empty(); }
  bool has_memory() const { return !memory_.empty(); }
  // FROZEN / THAWED; false when there is no freezer.
  bool freeze();
  bool thaw();
  // The peak memory of the environment's processes, in bytes (0 without the controller).
  int64_t max_memory_used() const;
  // Whether the memory controller killed a process for exceeding the limit.
  bool out_of_memory() const;

 private:
  std::string freezer_;  // folder, or "" without that controller
  std::string memory_;
};

}  // namespace sluice::functions
