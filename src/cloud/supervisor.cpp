#include "cloud/supervisor.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace sluice::cloud {
namespace {

int exit_code_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;
}

// Everything the child needs, prepared before fork: after it, only async-signal-safe calls.
struct Launch {
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
  int log_fd = -1;
  std::vector<int> inherit_fds;
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;
};

Launch prepare(const ProcessSpec& spec) {
  Launch launch;
  launch.argv_storage = spec.argv;
  for (char** e = environ; *e; ++e) launch.env_storage.emplace_back(*e);
  for (const std::string& extra : spec.extra_env) {
    const std::string name = extra.substr(0, extra.find('=') + 1);
    std::erase_if(launch.env_storage, [&](const std::string& e) { return e.starts_with(name); });
    launch.env_storage.push_back(extra);
  }
  for (auto& a : launch.argv_storage) launch.argv.push_back(a.data());
  launch.argv.push_back(nullptr);
  for (auto& e : launch.env_storage) launch.envp.push_back(e.data());
  launch.envp.push_back(nullptr);
  if (!spec.run_as.empty()) {
    const passwd* pw = ::getpwnam(spec.run_as.c_str());
    if (!pw) throw std::runtime_error("no user \"" + spec.run_as + "\" to run " + spec.argv[0]);
    launch.switch_user = pw->pw_uid != ::geteuid();
    launch.uid = pw->pw_uid;
    launch.gid = pw->pw_gid;
    launch.user = spec.run_as;
  }
  launch.inherit_fds = spec.inherit_fds;
  launch.log_fd = ::open(spec.log_file.empty() ? "/dev/null" : spec.log_file.c_str(),
                         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (launch.log_fd < 0)
    throw std::runtime_error("cannot open " + spec.log_file + ": " + std::strerror(errno));
  if (launch.switch_user && ::fchown(launch.log_fd, launch.uid, launch.gid) != 0)
    spdlog::warn("cannot hand {} to {}: {}", spec.log_file, spec.run_as, std::strerror(errno));
  return launch;
}

[[noreturn]] void exec_child(const Launch& launch, int stop_signal, pid_t parent) {
  ::setsid();  // its own group: a terminal's ^C reaches sluice serve, which stops it in order
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ::dup2(null_fd, 0);
  ::dup2(launch.log_fd, 1);
  ::dup2(launch.log_fd, 2);
  // Listening sockets to hand over, as 3, 4, …: first out of the way of those numbers, then in
  // place (dup2 clears close-on-exec).
  std::vector<int> moved;
  for (int fd : launch.inherit_fds) moved.push_back(::fcntl(fd, F_DUPFD_CLOEXEC, 64));
  for (size_t i = 0; i < moved.size(); ++i) ::dup2(moved[i], static_cast<int>(3 + i));
  // Databases and proxies hold a descriptor per connection.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  if (launch.switch_user) {
    if (::initgroups(launch.user.c_str(), launch.gid) != 0 || ::setgid(launch.gid) != 0 ||
        ::setuid(launch.uid) != 0)
      ::_exit(126);
  }
  // After the user switch, which clears it. If sluice serve is gone already, so are we.
  ::prctl(PR_SET_PDEATHSIG, stop_signal);
  if (::getppid() != parent) ::_exit(125);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(launch.argv[0], launch.argv.data(), launch.envp.data());
  ::_exit(127);
}

}  // namespace

Supervisor::~Supervisor() {
  stop_all(std::chrono::seconds(5));
}

void Supervisor::spawn(const std::string& name, Child& child) {
  Launch launch = prepare(child.spec);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(launch.log_fd);
    throw std::runtime_error("cannot fork for " + name + ": " + std::strerror(errno));
  }
  if (pid == 0) exec_child(launch, child.spec.stop_signal, parent);
  ::close(launch.log_fd);
  child.status.state = State::kRunning;
  child.status.pid = pid;
  spdlog::info("started {} (pid {})", name, pid);
}

void Supervisor::ensure(const std::string& name, const ProcessSpec& spec) {
  auto it = children_.find(name);
  if (it != children_.end()) {
    if (it->second.spec == spec && it->second.status.state != State::kExited) return;
    if (it->second.spec != spec) stop(name);
  }
  Child& child = children_[name];
  child.spec = spec;
  child.status = {};
  spawn(name, child);
}

void Supervisor::terminate(const std::vector<std::string>& names, std::chrono::milliseconds grace) {
  std::set<pid_t> waiting;
  for (const auto& name : names) {
    auto it = children_.find(name);
    if (it == children_.end() || it->second.status.state != State::kRunning) continue;
    ::kill(it->second.status.pid, it->second.spec.stop_signal);
    waiting.insert(it->second.status.pid);
  }
  const auto deadline = Clock::now() + grace;
  bool killed = false;
  while (!waiting.empty()) {
    for (auto pid_it = waiting.begin(); pid_it != waiting.end();) {
      int wait_status = 0;
      const pid_t done = ::waitpid(*pid_it, &wait_status, WNOHANG);
      if (done == *pid_it || (done < 0 && errno == ECHILD))
        pid_it = waiting.erase(pid_it);
      else
        ++pid_it;
    }
    if (waiting.empty()) break;
    if (!killed && Clock::now() >= deadline) {
      for (pid_t pid : waiting) ::kill(pid, SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (const auto& name : names) {
    auto it = children_.find(name);
    if (it != children_.end()) it->second.status.state = State::kExited;
  }
}

void Supervisor::stop(const std::string& name, std::chrono::milliseconds grace) {
  if (!children_.contains(name)) return;
  terminate({name}, grace);
  spdlog::info("stopped {}", name);
  children_.erase(name);
}

bool Supervisor::signal_if_running(const std::string& name, const ProcessSpec& spec, int signal) {
  auto it = children_.find(name);
  if (it == children_.end() || it->second.status.state != State::kRunning ||
      !(it->second.spec == spec))
    return false;
  return ::kill(it->second.status.pid, signal) == 0;
}

void Supervisor::forget(const std::string& name) {
  auto it = children_.find(name);
  if (it != children_.end() && it->second.status.state != State::kRunning) children_.erase(it);
}

Supervisor::Status Supervisor::status(const std::string& name) const {
  auto it = children_.find(name);
  return it == children_.end() ? Status{} : it->second.status;
}

void Supervisor::reap() {
  for (auto& [name, child] : children_) {
    if (child.status.state == State::kRunning) {
      int wait_status = 0;
      if (::waitpid(child.status.pid, &wait_status, WNOHANG) != child.status.pid) continue;
      child.status.exit_code = exit_code_of(wait_status);
      if (!child.spec.restart) {
        child.status.state = State::kExited;
        continue;
      }
      const int backoff = 1 << std::min(child.status.restarts, 5);
      spdlog::warn("{} (pid {}) exited with {}; restarting in {} s", name, child.status.pid,
                   child.status.exit_code, std::min(backoff, 30));
      child.status.state = State::kBackoff;
      child.restart_at = Clock::now() + std::chrono::seconds(std::min(backoff, 30));
    } else if (child.status.state == State::kBackoff && Clock::now() >= child.restart_at) {
      ++child.status.restarts;
      try {
        spawn(name, child);
      } catch (const std::exception& e) {
        spdlog::error("cannot restart {}: {}", name, e.what());
        child.restart_at = Clock::now() + std::chrono::seconds(30);
      }
    }
  }
}

void Supervisor::stop_all(std::chrono::milliseconds grace) {
  std::map<int, std::vector<std::string>> by_order;
  for (const auto& [name, child] : children_) by_order[child.spec.stop_order].push_back(name);
  for (const auto& [order, names] : by_order) terminate(names, grace);
  children_.clear();
}

}  // namespace sluice::cloud
