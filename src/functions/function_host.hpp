// The function host: Lambda's Invoke API, and for each execution environment a process running
// the function's `bootstrap` with its own Runtime API. Environments serve one invocation at a
// time, stay warm between invocations frozen (their sockets open and idle, as on Lambda), are
// reclaimed after an idle period, and are killed on timeout or when they exceed their memory.
// Each environment's API listener also forwards AWS calls to the control plane, as a VPC endpoint
// would: a function inside a VPC reaches the proxy and Secrets Manager, nothing else.
// Everything runs on the API's event loop.
#pragma once

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "cloud/api.hpp"
#include "cloud/control_plane.hpp"
#include "functions/code_cache.hpp"

namespace sluice::functions {

struct FunctionHostOptions {
  std::string home;  // sluice serve's home: code and environments' scratch folders go here
  std::string tag;   // keeps this instance's control groups apart from another's
  int account_concurrency = 1000;
  std::chrono::seconds idle_timeout{300};
  std::string user = "nobody";  // functions run as this user when sluice serve is root
  // Where the cgroup v1 controllers are mounted; without freezer and memory controllers there,
  // environments freeze with SIGSTOP/SIGCONT and run without a memory limit.
  std::string cgroup_root = "/sys/fs/cgroup";
  // Event invocations that fail are retried after this, then after twice this (Lambda: 1 min).
  std::chrono::milliseconds event_retry_delay{std::chrono::minutes(1)};
};

class FunctionHost {
 public:
  // GET here + a function name: its environments (sluice's own view, for tests and the demo).
  static constexpr std::string_view kEnvironmentsPath = "/sluice/functions/";

  FunctionHost(boost::asio::io_context& io, cloud::ControlPlane& plane,
               FunctionHostOptions options);
  ~FunctionHost();
  FunctionHost(const FunctionHost&) = delete;
  FunctionHost& operator=(const FunctionHost&) = delete;

  // Invoke requests are the host's; every other request goes to the control plane.
  boost::asio::awaitable<cloud::ApiResponse> handle(cloud::ApiRequest& request);
  // Reclaims idle environments and retires those of changed functions; call about once a second.
  void tick();
  // Kills every environment.
  void shutdown();

 private:
  struct Invocation;
  struct Environment;
  using EnvironmentPtr = std::shared_ptr<Environment>;
  struct Outcome {
    std::string payload;
    bool function_error = false;
    std::string log;  // this invocation's log lines
  };

  boost::asio::awaitable<cloud::ApiResponse> invoke(cloud::ApiRequest& request,
                                                    const std::string& name);
  // Runs one invocation to its end. Throws ApiError (throttled, not ready, …).
  boost::asio::awaitable<Outcome> run(const cloud::FunctionRecord& function, std::string payload);
  boost::asio::awaitable<void> run_event(std::string name, std::string payload);
  boost::asio::awaitable<cloud::ApiResponse> runtime_call(EnvironmentPtr env,
                                                          cloud::ApiRequest& request);
  boost::asio::awaitable<cloud::ApiResponse> next_invocation(EnvironmentPtr env);
  cloud::ApiResponse environments_view(const std::string& name);

  void admit(const cloud::FunctionRecord& function);  // throws TooManyRequestsException
  EnvironmentPtr take_idle(const cloud::FunctionRecord& function);
  EnvironmentPtr start_environment(const cloud::FunctionRecord& function);
  // The namespace of one of the function's interfaces ("" outside a VPC), in turn.
  std::string environment_namespace(const cloud::FunctionRecord& function);
  // The environment's Runtime API (inside its namespace, if any); its HOST:PORT.
  std::string start_runtime_api(const EnvironmentPtr& env, const std::string& network_namespace);
  // Lambda's environment variables: the function's own, then the reserved ones (which win).
  static std::vector<std::string> lambda_variables(const cloud::FunctionRecord& function,
                                                   const Environment& env, const std::string& code,
                                                   const std::string& endpoint,
                                                   const cloud::RoleSession& credentials);
  void deliver(const EnvironmentPtr& env);
  void finish(const EnvironmentPtr& env, std::string payload, bool function_error);
  void time_out(const EnvironmentPtr& env);
  void stop_environment(const EnvironmentPtr& env, std::chrono::milliseconds grace);
  void exited(const EnvironmentPtr& env);
  void freeze(const EnvironmentPtr& env);
  void thaw(const EnvironmentPtr& env);
  void watch(const EnvironmentPtr& env);
  void read_output(const EnvironmentPtr& env);
  void drain_output(const EnvironmentPtr& env);
  void take_output(const EnvironmentPtr& env, std::string_view bytes);
  void log_line(const EnvironmentPtr& env, const std::string& line);
  int max_memory_used_mb(const Environment& env) const;

  boost::asio::io_context& io_;
  cloud::ControlPlane& plane_;
  FunctionHostOptions options_;
  CodeCache code_;
  std::map<std::string, EnvironmentPtr> environments_;  // by environment id
  std::map<std::string, int> peak_concurrency_;         // by function name
  size_t next_interface_ = 0;                           // spreads environments over subnets
};

}  // namespace sluice::functions
