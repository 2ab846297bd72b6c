// The processes behind the region's resources (PostgreSQL, sluice-proxy, one-shot tools such as
// initdb): started as a given user with their output in a log file, restarted with backoff when
// they crash, stopped in order on shutdown. Driven by `reap()` from the API's event loop: no
// threads, no signal handlers of its own.
#pragma once

#include <sys/types.h>

#include <csignal>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace sluice::cloud {

struct ProcessSpec {
  std::vector<std::string> argv;       // argv[0] is the program's path
  std::vector<std::string> extra_env;  // NAME=VALUE added to our environment
  std::string log_file;                // stdout and stderr, appended
  std::string run_as;                  // a user name; empty runs as ourselves
  bool restart = true;                 // false: a one-shot whose exit code is kept
  int stop_signal = SIGTERM;           // also sent if sluice serve dies (PR_SET_PDEATHSIG)
  int stop_order = 0;                  // lower stops first (proxies before databases)
  std::vector<int> inherit_fds;        // become descriptors 3, 4, … of the child

  bool operator==(const ProcessSpec&) const = default;
};

class Supervisor {
 public:
  using Clock = std::chrono::steady_clock;

  enum class State { kAbsent, kRunning, kBackoff, kExited };
  struct Status {
    State state = State::kAbsent;
    pid_t pid = 0;
    int exit_code = 0;  // of the last exit; 128+N for signal N
    int restarts = 0;
  };

  Supervisor() = default;
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts `name` unless it already runs with the same spec; with a different spec it is stopped
  // (synchronously, up to `grace`) and started again. Throws std::runtime_error if it cannot
  // fork or the user does not exist.
  void ensure(const std::string& name, const ProcessSpec& spec);
  // Stops `name` (its stop signal, then SIGKILL after `grace`) and forgets it. Blocks.
  void stop(const std::string& name, std::chrono::milliseconds grace = std::chrono::seconds(15));
  // Sends `signal` to `name` if it runs with this very spec (SIGHUP: reload its files); false
  // otherwise (absent, in backoff, or to be restarted with a new spec by ensure()).
  bool signal_if_running(const std::string& name, const ProcessSpec& spec, int signal);
  // Forgets an exited one-shot.
  void forget(const std::string& name);
  Status status(const std::string& name) const;

  // Collects exited children and restarts crashed ones (1 s, 2 s, 4 s … 30 s apart).
  void reap();
  // Stops everything, lowest stop_order first. Blocks up to `grace` per order.
  void stop_all(std::chrono::milliseconds grace = std::chrono::seconds(15));

 private:
  struct Child {
    ProcessSpec spec;
    Status status;
    Clock::time_point restart_at;
  };
  void spawn(const std::string& name, Child& child);
  // Signals and waits for the given children; SIGKILL after `grace`.
  void terminate(const std::vector<std::string>& names, std::chrono::milliseconds grace);

  std::map<std::string, Child> children_;
};

}  // namespace sluice::cloud
