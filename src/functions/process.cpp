#include "functions/process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>

namespace sluice::functions {
namespace {

// In the child, between fork and exec: report and leave without running anything of ours.
[[noreturn]] void child_fail(const char* what) {
  const char* why = std::strerror(errno);
  const char prefix[] = "sluice: cannot start the execution environment: ";
  [[maybe_unused]] ssize_t ignored = ::write(2, prefix, sizeof prefix - 1);
  ignored = ::write(2, what, std::strlen(what));
  ignored = ::write(2, ": ", 2);
  ignored = ::write(2, why, std::strlen(why));
  ignored = ::write(2, "\n", 1);
  ::_exit(127);
}

}  // namespace

std::pair<uid_t, gid_t> user_ids(const std::string& user) {
  const passwd* pw = ::getpwnam(user.c_str());
  if (!pw) throw std::runtime_error("no user \"" + user + "\" to run functions as");
  return {pw->pw_uid, pw->pw_gid};
}

LaunchedProcess launch(const LaunchSpec& spec) {
  // Everything the child needs, prepared before fork: afterwards only system calls.
  std::vector<std::string> env_storage = spec.environment;
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string program = spec.program;
  char* argv[] = {program.data(), nullptr};
  const bool switch_user = !spec.user.empty() && ::geteuid() == 0;
  const auto [uid, gid] = switch_user ? user_ids(spec.user) : std::pair<uid_t, gid_t>{0, 0};
  int netns = -1;
  if (!spec.network_namespace.empty()) {
    netns = ::open(("/var/run/netns/" + spec.network_namespace).c_str(), O_RDONLY | O_CLOEXEC);
    if (netns < 0)
      throw std::runtime_error("no network namespace " + spec.network_namespace + ": " +
                               std::strerror(errno));
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    if (netns >= 0) ::close(netns);
    throw std::runtime_error(std::string("cannot make a pipe: ") + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const std::string why = std::strerror(errno);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    if (netns >= 0) ::close(netns);
    throw std::runtime_error("cannot fork an execution environment: " + why);
  }
  if (pid == 0) {
    ::setsid();  // its own process group: frozen, thawed and killed as one
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ::dup2(null_fd, 0);
    ::dup2(pipe_fds[1], 1);
    ::dup2(pipe_fds[1], 2);
    char pid_text[24];
    const int length = std::snprintf(pid_text, sizeof pid_text, "%d", ::getpid());
    for (const std::string& procs : spec.cgroup_procs) {
      const int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, pid_text, static_cast<size_t>(length)) != length)
        child_fail(procs.c_str());
      ::close(fd);
    }
    if (netns >= 0) {
      if (::setns(netns, CLONE_NEWNET) != 0) child_fail("setns");
      // Names resolve as inside the VPC: the namespace's hosts file, in a mount namespace of
      // our own (what `ip netns exec` does).
      if (!spec.hosts_file.empty()) {
        if (::unshare(CLONE_NEWNS) != 0) child_fail("unshare");
        if (::mount("", "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) child_fail("mount /");
        if (::mount(spec.hosts_file.c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) != 0)
          child_fail(spec.hosts_file.c_str());
      }
    }
    if (switch_user) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)
        child_fail("setuid");
    }
    // A killed sluice serve takes its environments along.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(125);
    if (!spec.working_directory.empty() && ::chdir(spec.working_directory.c_str()) != 0)
      child_fail(spec.working_directory.c_str());
    // Nothing of sluice serve's (listeners, other environments' pipes) leaks into the function.
    ::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv, envp.data());
    child_fail(argv[0]);
  }
  ::close(pipe_fds[1]);
  if (netns >= 0) ::close(netns);
  ::fcntl(pipe_fds[0], F_SETFL, ::fcntl(pipe_fds[0], F_GETFL) | O_NONBLOCK);
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const std::string why = std::strerror(errno);
    ::kill(pid, SIGKILL);
    ::close(pipe_fds[0]);
    throw std::runtime_error("pidfd_open: " + why);
  }
  ::fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  return {pid, pidfd, pipe_fds[0]};
}

}  // namespace sluice::functions
