// The processes behind execution environments: how one starts (its listener, credentials,
// control groups, namespace and Lambda's environment variables), is frozen and thawed, is
// stopped, is reaped, and how its output becomes log lines.
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "cloud/sockets.hpp"
#include "cloud/vpc_network.hpp"
#include "common/netns.hpp"
#include "functions/host_state.hpp"
#include "functions/invocation_log.hpp"
#include "functions/process.hpp"
#include "functions/runtime_api.hpp"

namespace sluice::functions {
namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using cloud::ApiError;
using cloud::ApiRequest;
using cloud::ApiResponse;

std::vector<std::string> FunctionHost::lambda_variables(const cloud::FunctionRecord& function,
                                                        const Environment& env,
                                                        const std::string& code,
                                                        const std::string& endpoint,
                                                        const cloud::RoleSession& credentials) {
  std::vector<std::string> out;
  if (function.variables.is_object())
    for (const auto& [key, value] : function.variables.as_object())
      if (value.is_string()) out.push_back(std::string(key) + "=" + std::string(value.as_string()));
  const std::string& arn = function.arn;
  const std::string region = arn.size() > 15 ? arn.substr(15, arn.find(':', 15) - 15) : "";
  for (std::string variable : std::initializer_list<std::string>{
           "PATH=/usr/local/bin:/usr/bin:/bin",
           "LANG=C.UTF-8",
           "TZ=:UTC",
           "LD_LIBRARY_PATH=" + code + "/lib",
           "_HANDLER=" + function.handler,
           "AWS_REGION=" + region,
           "AWS_DEFAULT_REGION=" + region,
           "AWS_LAMBDA_FUNCTION_NAME=" + env.function,
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + std::to_string(env.memory_mb),
           "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
           "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
           "AWS_LAMBDA_LOG_GROUP_NAME=" + env.log_group,
           "AWS_LAMBDA_LOG_STREAM_NAME=" + env.log_stream,
           "AWS_LAMBDA_RUNTIME_API=" + endpoint,
           "LAMBDA_TASK_ROOT=" + code,
           "LAMBDA_RUNTIME_DIR=" + code,
           "AWS_ACCESS_KEY_ID=" + credentials.access_key_id,
           "AWS_SECRET_ACCESS_KEY=" + credentials.secret_access_key,
           "AWS_SESSION_TOKEN=" + credentials.session_token,
           "AWS_ENDPOINT_URL=http://" + endpoint,
           "TMPDIR=" + env.scratch,
           "HOME=" + env.scratch,
       }) {
    const std::string key = variable.substr(0, variable.find('=') + 1);
    std::erase_if(out, [&](const std::string& e) { return e.starts_with(key); });
    out.push_back(std::move(variable));
  }
  return out;
}

std::string FunctionHost::environment_namespace(const cloud::FunctionRecord& function) {
  // Inside the VPC: one of the function's Hyperplane interfaces, in turn.
  const auto interfaces = function.interface_ids();
  if (interfaces.empty()) return "";
  cloud::VpcNetwork* vpc = plane_.vpc_network();
  if (!vpc) {
    spdlog::warn(
        "{} has a VpcConfig but this sluice serve cannot make network namespaces: "
        "it runs on the host's network",
        function.name);
    return "";
  }
  const std::string network_namespace =
      vpc->interface_namespace(interfaces[next_interface_++ % interfaces.size()]);
  if (!fs::exists("/var/run/netns/" + network_namespace))
    throw ApiError("ResourceNotReadyException",
                   "The function is currently in the following state: Pending", 502);
  return network_namespace;
}

std::string FunctionHost::start_runtime_api(const EnvironmentPtr& env,
                                            const std::string& network_namespace) {
  const int listener =
      network_namespace.empty() ? -1 : listen_in_namespace(network_namespace, "127.0.0.1", 0);
  std::weak_ptr<Environment> weak = env;
  cloud::Handler handler = [this, weak](ApiRequest& request) -> asio::awaitable<ApiResponse> {
    EnvironmentPtr self = weak.lock();
    if (!self) co_return runtime_reply(410, error_body("Runtime.Gone", "environment ended"));
    co_return co_await runtime_call(self, request);
  };
  env->api =
      listener >= 0
          ? std::make_unique<cloud::ApiServer>(io_, listener, handler)
          : std::make_unique<cloud::ApiServer>(
                io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), handler);
  env->api->start();
  return "127.0.0.1:" + std::to_string(env->api->port());
}

FunctionHost::EnvironmentPtr FunctionHost::start_environment(
    const cloud::FunctionRecord& function) {
  auto env = std::make_shared<Environment>(io_.get_executor());
  env->function = function.name;
  env->revision = revision_of(function);
  env->memory_mb = static_cast<int>(function.memory_size);
  env->log_group = log_group_name(env->function);
  env->log_stream = log_stream_name(std::chrono::system_clock::now(), env->id);
  const std::string network_namespace = environment_namespace(function);
  const std::string code = code_.folder(function.code_file, function.code_sha256);
  const std::string endpoint = start_runtime_api(env, network_namespace);
  const cloud::RoleSession credentials =
      plane_.role_credentials().issue(function.role, env->function);
  env->access_key = credentials.access_key_id;
  env->scratch = options_.home + "/functions-runtime/env/" + env->id;
  fs::create_directories(env->scratch);
  const bool as_user = ::geteuid() == 0 && !options_.user.empty();
  if (as_user) {
    const auto [uid, gid] = user_ids(options_.user);
    if (::chown(env->scratch.c_str(), uid, gid) != 0)
      spdlog::warn("cannot hand {} to {}", env->scratch, options_.user);
  }
  LaunchSpec spec;
  spec.program = env->bootstrap = code + "/bootstrap";
  spec.working_directory = code;
  spec.network_namespace = network_namespace;
  if (!network_namespace.empty()) spec.hosts_file = "/etc/netns/" + network_namespace + "/hosts";
  spec.user = as_user ? options_.user : "";
  spec.environment = lambda_variables(function, *env, code, endpoint, credentials);
  env->cgroups = std::make_unique<EnvironmentCgroups>(options_.cgroup_root, options_.tag, env->id,
                                                      int64_t{env->memory_mb} * 1024 * 1024);
  spec.cgroup_procs = env->cgroups->procs_files();
  LaunchedProcess process;
  try {
    process = launch(spec);
  } catch (...) {
    plane_.role_credentials().revoke(env->access_key);
    std::error_code ec;
    fs::remove_all(env->scratch, ec);
    throw;
  }
  env->pid = process.pid;
  env->pidfd.assign(process.pidfd);
  env->output.assign(process.output);
  environments_[env->id] = env;
  watch(env);
  read_output(env);
  return env;
}

void FunctionHost::stop_environment(const EnvironmentPtr& env, std::chrono::milliseconds grace) {
  if (env->state == Environment::State::kStopping) {
    if (grace.count() == 0) ::kill(-env->pid, SIGKILL);
    return;
  }
  env->state = Environment::State::kStopping;
  thaw(env);
  env->api->stop();
  env->next_wait.cancel();
  if (grace.count() == 0) {
    ::kill(-env->pid, SIGKILL);
    ::kill(env->pid, SIGKILL);
    return;
  }
  ::kill(-env->pid, SIGTERM);
  env->kill_timer.expires_after(grace);
  env->kill_timer.async_wait([env](const boost::system::error_code& ec) {
    if (!ec) {
      ::kill(-env->pid, SIGKILL);
      ::kill(env->pid, SIGKILL);
    }
  });
}

void FunctionHost::watch(const EnvironmentPtr& env) {
  // The pidfd turns readable when the process has exited, however it ended.
  env->pidfd.async_wait(asio::posix::stream_descriptor::wait_read,
                        [this, env](const boost::system::error_code& ec) {
                          if (ec == asio::error::operation_aborted) return;
                          exited(env);
                        });
}

void FunctionHost::exited(const EnvironmentPtr& env) {
  int status = 0;
  while (::waitpid(env->pid, &status, 0) < 0 && errno == EINTR) {
  }
  // What the bootstrap started goes with it (its process group), thawed so it can die.
  thaw(env);
  ::kill(-env->pid, SIGKILL);
  drain_output(env);
  if (env->current) {
    const std::string id = env->current->request_id;
    const bool out_of_memory = env->cgroups && env->cgroups->out_of_memory();
    const std::string how =
        WIFSIGNALED(status)
            ? (WTERMSIG(status) == SIGKILL ? std::string("signal: killed")
                                           : "signal: " + std::string(strsignal(WTERMSIG(status))))
            : "exit status " + std::to_string(WEXITSTATUS(status));
    std::string type = out_of_memory ? "Runtime.OutOfMemory" : "Runtime.ExitError";
    std::string message = "RequestId: " + id + " Error: Runtime exited with error: " + how;
    if (!env->init_ms && !out_of_memory) {
      // It never asked for work: a missing or broken bootstrap, or an init that crashed.
      if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        type = "Runtime.InvalidEntrypoint";
        message = "RequestId: " + id + " Error: Couldn't find valid bootstrap(s): [" +
                  env->bootstrap + "]";
      }
    }
    log_line(env, message);
    log_line(env, type);
    finish(env, error_body(type, message), true);
  }
  env->state = Environment::State::kStopping;
  env->api->stop();
  env->next_wait.cancel();
  env->kill_timer.cancel();
  boost::system::error_code ignored;
  env->output.close(ignored);
  env->pidfd.close(ignored);
  plane_.role_credentials().revoke(env->access_key);
  std::error_code ec;
  fs::remove_all(env->scratch, ec);
  environments_.erase(env->id);
  // Its control groups go with it (once the kernel has emptied them).
  asio::post(io_, [env] { env->cgroups.reset(); });
}

void FunctionHost::freeze(const EnvironmentPtr& env) {
  if (env->frozen) return;
  if (!(env->cgroups && env->cgroups->freeze())) ::kill(-env->pid, SIGSTOP);
  env->frozen = true;
}

void FunctionHost::thaw(const EnvironmentPtr& env) {
  if (!env->frozen) return;
  if (!(env->cgroups && env->cgroups->thaw())) ::kill(-env->pid, SIGCONT);
  env->frozen = false;
}

void FunctionHost::read_output(const EnvironmentPtr& env) {
  auto buffer = std::make_shared<std::array<char, 8192>>();
  env->output.async_read_some(asio::buffer(*buffer),
                              [this, env, buffer](const boost::system::error_code& ec, size_t n) {
                                if (n > 0) take_output(env, std::string_view(buffer->data(), n));
                                if (!ec) read_output(env);
                              });
}

void FunctionHost::drain_output(const EnvironmentPtr& env) {
  if (!env->output.is_open()) return;
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(env->output.native_handle(), buffer, sizeof buffer);
    if (n <= 0) break;
    take_output(env, std::string_view(buffer, static_cast<size_t>(n)));
  }
}

void FunctionHost::take_output(const EnvironmentPtr& env, std::string_view bytes) {
  env->partial_line.append(bytes);
  size_t start = 0;
  for (size_t newline; (newline = env->partial_line.find('\n', start)) != std::string::npos;
       start = newline + 1)
    log_line(env, env->partial_line.substr(start, newline - start));
  env->partial_line.erase(0, start);
  // A line without an end is still logged once it is long (CloudWatch's event limit is 256 KB).
  if (env->partial_line.size() > 64 * 1024) {
    log_line(env, env->partial_line);
    env->partial_line.clear();
  }
}

void FunctionHost::log_line(const EnvironmentPtr& env, const std::string& line) {
  if (env->current) env->current->outcome.log += line + "\n";
  try {
    plane_.log_store().append(env->log_group, env->log_stream, epoch_ms(), line + "\n");
  } catch (const std::exception& e) {
    // A full disk must not take the host down with it: the invocation goes on unlogged.
    spdlog::error("cannot log for {}: {}", env->function, e.what());
  }
}

int FunctionHost::max_memory_used_mb(const Environment& env) const {
  int64_t bytes = env.cgroups ? env.cgroups->max_memory_used() : 0;
  if (bytes == 0) {  // without the memory controller: the process's own peak
    std::ifstream status("/proc/" + std::to_string(env.pid) + "/status");
    for (std::string key; status >> key;) {
      if (key == "VmHWM:") {
        int64_t kb = 0;
        status >> kb;
        bytes = kb * 1024;
        break;
      }
      status.ignore(4096, '\n');
    }
  }
  return static_cast<int>((bytes + 1024 * 1024 - 1) / (1024 * 1024));
}

void FunctionHost::shutdown() {
  for (const auto& [id, env] : std::map(environments_)) {
    stop_environment(env, std::chrono::milliseconds(0));
    int status = 0;
    ::waitpid(env->pid, &status, 0);
    env->pidfd.cancel();
    env->output.cancel();
    if (env->current) {
      env->current->outcome = {error_body("Runtime.Stopping", "sluice serve is stopping"), true,
                               ""};
      env->current->stage = Invocation::Stage::kDone;
      env->current->wake.cancel();
    }
    plane_.role_credentials().revoke(env->access_key);
    std::error_code ec;
    fs::remove_all(env->scratch, ec);
    env->cgroups.reset();
  }
  environments_.clear();
  remove_instance_cgroups(options_.cgroup_root, options_.tag);
}

}  // namespace sluice::functions
