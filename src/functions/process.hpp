// Starting an execution environment's process: the function's `bootstrap` with exactly the
// environment Lambda gives it, inside its network interface's namespace (with that namespace's
// /etc/hosts) and its control groups, as an unprivileged user, its output on a pipe.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace sluice::functions {

struct LaunchSpec {
  std::string program;                    // the bootstrap
  std::vector<std::string> environment;   // NAME=VALUE: the whole environment
  std::string working_directory;          // LAMBDA_TASK_ROOT
  std::string network_namespace;          // a name under /var/run/netns; "" stays in ours
  std::string hosts_file;                 // mounted over /etc/hosts inside the namespace
  std::vector<std::string> cgroup_procs;  // joined before the program runs
  std::string user;                       // run as this user when we are root; "" as ourselves
};

struct LaunchedProcess {
  pid_t pid = -1;
  int pidfd = -1;   // readable once the process has exited
  int output = -1;  // the read end of its stdout and stderr (non-blocking)
};

// Forks and execs. Throws std::runtime_error when it cannot fork; a failure inside the child
// (no such program, namespace gone) is written to its output and ends it with status 127.
LaunchedProcess launch(const LaunchSpec& spec);

// The uid and gid of `user` (throws when there is none).
std::pair<uid_t, gid_t> user_ids(const std::string& user);

}  // namespace sluice::functions
