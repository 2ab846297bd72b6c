#include "functions/function_host.hpp"

#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>

#include "auth/crypto.hpp"
#include "cloud/ids.hpp"
#include "cloud/server.hpp"
#include "cloud/vpc_network.hpp"
#include "common/encoding.hpp"
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

namespace {

// Lambda's init limit: an init that has not asked for work after 10 s is given the invocation's
// own timeout on top (Lambda retries a slow init within the first invocation, under the
// function's timeout), so a machine saturated by a burst of cold starts slows them down rather
// than failing them.
constexpr auto kInitLimit = std::chrono::seconds(10);

// Lambda's error envelope (REST-JSON); `reason` for throttles.
ApiResponse lambda_error(const ApiError& e, const std::string& reason = {}) {
  json::object body{{"Type", "User"}, {"message", e.what()}};
  if (!reason.empty()) body["Reason"] = reason;
  ApiResponse out;
  out.status = e.status;
  out.body = json::serialize(body);
  out.headers.emplace_back("x-amzn-ErrorType", e.code);
  return out;
}

struct Throttled : ApiError {
  explicit Throttled(std::string why)
      : ApiError("TooManyRequestsException", "Rate Exceeded.", 429), reason(std::move(why)) {}
  std::string reason;
};

std::string trace_id() {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  return fmt::format("Root=1-{:08x}-{};Parent={};Sampled=0", seconds,
                     auth::hex(auth::random_bytes(12)), auth::hex(auth::random_bytes(8)));
}

}  // namespace

FunctionHost::FunctionHost(asio::io_context& io, cloud::ControlPlane& plane,
                           FunctionHostOptions options)
    : io_(io),
      plane_(plane),
      options_(std::move(options)),
      code_(options_.home + "/functions-runtime/code") {
  // The function user must reach its code and scratch folders (and nothing else of ours): the
  // folders on the way are passable, not listable.
  const auto passable = fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec;
  for (const std::string& folder :
       {options_.home + "/functions-runtime", options_.home + "/functions-runtime/code",
        options_.home + "/functions-runtime/env"}) {
    fs::create_directories(folder);
    fs::permissions(folder, passable);
  }
}

FunctionHost::~FunctionHost() {
  shutdown();
}

asio::awaitable<ApiResponse> FunctionHost::handle(ApiRequest& request) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  constexpr std::string_view kFunctions = "/2015-03-31/functions/";
  constexpr std::string_view kInvocations = "/invocations";
  if (request.method == "POST" && path.starts_with(kFunctions) && path.ends_with(kInvocations) &&
      path.size() > kFunctions.size() + kInvocations.size()) {
    const std::string name =
        path.substr(kFunctions.size(), path.size() - kFunctions.size() - kInvocations.size());
    if (name.find('/') == std::string::npos) {
      // Role credentials, their policies and --strict-auth apply to Invoke as to every call.
      if (auto refusal = plane_.authorize(request)) co_return *refusal;
      co_return co_await invoke(request, name);
    }
  }
  if (request.method == "GET" && path.starts_with(kEnvironmentsPath))
    co_return environments_view(path.substr(kEnvironmentsPath.size()));
  co_return plane_.handle(request);
}

asio::awaitable<ApiResponse> FunctionHost::invoke(ApiRequest& request, const std::string& name) {
  try {
    // Names may come percent-encoded (a full ARN); Lambda::load accepts either form.
    const cloud::FunctionRecord function = plane_.lambda().function(cloud::percent_decode(name));
    const std::string type = request.header("x-amz-invocation-type").empty()
                                 ? "RequestResponse"
                                 : request.header("x-amz-invocation-type");
    if (type != "RequestResponse" && type != "Event" && type != "DryRun")
      throw ApiError("InvalidParameterValueException",
                     "1 validation error detected: Value '" + type +
                         "' at 'invocationType' failed to satisfy constraint: Member must "
                         "satisfy enum value set: [Event, RequestResponse, DryRun]");
    if (request.body.size() > kMaxPayloadBytes)
      throw ApiError("RequestTooLargeException",
                     "Request must be smaller than " + std::to_string(kMaxPayloadBytes) +
                         " bytes for the InvokeFunction operation",
                     413);
    boost::system::error_code parse_error;
    if (!request.body.empty()) json::parse(request.body, parse_error);
    if (parse_error)
      throw ApiError("InvalidRequestContentException",
                     "Could not parse request body into json: " + parse_error.message());
    std::string payload = request.body.empty() ? "{}" : request.body;
    ApiResponse out;
    out.headers.emplace_back("X-Amz-Executed-Version", "$LATEST");
    if (type == "DryRun") {
      out.status = 204;
      co_return out;
    }
    if (type == "Event") {
      asio::co_spawn(io_, run_event(function.name, std::move(payload)), asio::detached);
      out.status = 202;
      co_return out;
    }
    Outcome outcome = co_await run(function, std::move(payload));
    out.body = std::move(outcome.payload);
    if (outcome.function_error) out.headers.emplace_back("X-Amz-Function-Error", "Unhandled");
    if (request.header("x-amz-log-type") == "Tail")
      out.headers.emplace_back("X-Amz-Log-Result", auth::base64_encode(log_tail(outcome.log)));
    co_return out;
  } catch (const Throttled& e) {
    co_return lambda_error(e, e.reason);
  } catch (const ApiError& e) {
    co_return lambda_error(e);
  } catch (const std::exception& e) {
    // The host could not run it (no process, a package that no longer unpacks …).
    spdlog::error("invoking {}: {}", name, e.what());
    co_return lambda_error(ApiError("ServiceException", e.what(), 500));
  }
}

void FunctionHost::admit(const cloud::FunctionRecord& function) {
  const std::string& name = function.name;
  std::map<std::string, int> busy;  // by function
  for (const auto& [id, env] : environments_)
    if (env->current) ++busy[env->function];
  std::map<std::string, int64_t> reserved;
  for (const auto& f : plane_.lambda().functions())
    if (f.reserved_concurrency) reserved[f.name] = *f.reserved_concurrency;
  if (auto it = reserved.find(name); it != reserved.end()) {
    if (busy[name] >= it->second)
      throw Throttled("ReservedFunctionConcurrentInvocationLimitExceeded");
  } else {
    int64_t pool = options_.account_concurrency;
    for (const auto& [id, r] : reserved) pool -= r;
    int64_t in_use = 0;
    for (const auto& [fn, count] : busy)
      if (!reserved.contains(fn)) in_use += count;
    if (in_use >= pool) throw Throttled("ConcurrentInvocationLimitExceeded");
  }
  int& peak = peak_concurrency_[name];
  peak = std::max(peak, busy[name] + 1);
}

FunctionHost::EnvironmentPtr FunctionHost::take_idle(const cloud::FunctionRecord& function) {
  const std::string& name = function.name;
  const std::string revision = revision_of(function);
  EnvironmentPtr best;
  for (const auto& [id, env] : environments_) {
    if (env->function != name || env->state != Environment::State::kIdle || env->current) continue;
    if (env->revision != revision) continue;  // retired by tick()
    // The most recently used: the others can age out and be reclaimed.
    if (!best || env->idle_since > best->idle_since) best = env;
  }
  return best;
}

asio::awaitable<FunctionHost::Outcome> FunctionHost::run(const cloud::FunctionRecord& function,
                                                         std::string payload) {
  admit(function);
  auto invocation = std::make_shared<Invocation>(io_.get_executor());
  invocation->payload = std::move(payload);
  invocation->function_arn = function.arn;
  invocation->timeout_seconds = static_cast<int>(function.timeout);
  EnvironmentPtr env = take_idle(function);
  if (!env) env = start_environment(function);
  env->state = Environment::State::kBusy;
  env->current = invocation;
  if (env->waiting_next) deliver(env);
  while (invocation->stage != Invocation::Stage::kDone) {
    const auto timeout = std::chrono::seconds(invocation->timeout_seconds);
    const auto deadline = invocation->stage == Invocation::Stage::kQueued
                              ? invocation->created + kInitLimit + timeout
                              : invocation->delivered_at + timeout;
    invocation->wake.expires_at(deadline);
    co_await invocation->wake.async_wait(asio::as_tuple(asio::use_awaitable));
    if (invocation->stage != Invocation::Stage::kDone && Clock::now() >= deadline &&
        env->current == invocation)
      time_out(env);
  }
  co_return std::move(invocation->outcome);
}

asio::awaitable<void> FunctionHost::run_event(std::string name, std::string payload) {
  // Lambda's asynchronous invocation: the first attempt at once, two retries after a back-off.
  const std::chrono::milliseconds delays[] = {
      std::chrono::milliseconds(0), options_.event_retry_delay, options_.event_retry_delay * 2};
  asio::steady_timer timer(io_);
  std::string why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt > 0) {
      timer.expires_after(delays[attempt]);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    try {
      const cloud::FunctionRecord function = plane_.lambda().function(name);
      Outcome outcome = co_await run(function, payload);
      if (!outcome.function_error) co_return;
      why = "function error " + outcome.payload.substr(0, 200);
    } catch (const ApiError& e) {
      why = e.code + ": " + e.what();
      if (e.status == 404) break;  // the function is gone: nothing to retry
    } catch (const std::exception& e) {
      why = e.what();  // the host could not run it: retried like a function error
    }
    spdlog::info("Event invocation of {} failed (attempt {} of 3): {}", name, attempt + 1, why);
  }
  spdlog::warn("Event invocation of {} dropped after its retries: {}", name, why);
}

asio::awaitable<ApiResponse> FunctionHost::runtime_call(EnvironmentPtr env, ApiRequest& request) {
  const RuntimeRoute route = route_runtime(request.method, request.target);
  switch (route.call) {
    case RuntimeCall::kNotRuntime:
      // The environment's endpoint for AWS calls (AWS_ENDPOINT_URL): sluice serve's API.
      co_return co_await handle(request);
    case RuntimeCall::kUnknown:
      co_return runtime_reply(
          404, error_body("InvalidRequest", "no such Runtime API call: " + request.target));
    case RuntimeCall::kNext:
      co_return co_await next_invocation(env);
    case RuntimeCall::kInitError: {
      if (env->init_ms)
        co_return runtime_reply(403,
                                error_body("InvalidStateTransition",
                                           "init/error is for the init phase, which has ended"));
      log_line(env, "INIT_REPORT Init Duration: " + fmt::format("{:.2f}", ms_since(env->started)) +
                        " ms\tPhase: init\tStatus: error\tError Type: " +
                        request.header("lambda-runtime-function-error-type"));
      if (env->current) finish(env, request.body, true);
      // After answering: the environment ends as Lambda's does after a failed init.
      asio::post(io_, [this, env] { stop_environment(env, std::chrono::milliseconds(0)); });
      co_return runtime_reply(202, std::string(kAccepted));
    }
    case RuntimeCall::kResponse:
    case RuntimeCall::kError: {
      if (!env->current || env->current->request_id != route.request_id ||
          env->current->stage != Invocation::Stage::kDelivered)
        co_return runtime_reply(400, error_body("InvalidRequestID", "Invalid request ID"));
      if (route.call == RuntimeCall::kResponse && request.body.size() > kMaxPayloadBytes) {
        finish(env,
               error_body("Function.ResponseSizeTooLarge",
                          "Response payload size exceeded maximum allowed payload size (" +
                              std::to_string(kMaxPayloadBytes) + " bytes)."),
               true);
        co_return runtime_reply(413, error_body("RequestEntityTooLarge",
                                                "Exceeded maximum allowed payload size (" +
                                                    std::to_string(kMaxPayloadBytes) + " bytes)."));
      }
      finish(env, request.body, route.call == RuntimeCall::kError);
      co_return runtime_reply(202, std::string(kAccepted));
    }
  }
  co_return runtime_reply(500, "{}");
}

asio::awaitable<ApiResponse> FunctionHost::next_invocation(EnvironmentPtr env) {
  if (!env->init_ms) env->init_ms = ms_since(env->started);
  if (!env->current || env->current->stage != Invocation::Stage::kQueued) {
    // Nothing to do: the environment sleeps here, frozen, until an invocation comes.
    env->waiting_next = true;
    if (!env->current) freeze(env);
    env->next_wait.expires_at(Clock::time_point::max());
    co_await env->next_wait.async_wait(asio::as_tuple(asio::use_awaitable));
    env->waiting_next = false;
    if (env->state == Environment::State::kStopping || !env->current)
      co_return runtime_reply(500, error_body("Runtime.Stopping", "the environment is ending"));
  } else {
    deliver(env);
  }
  const Invocation& invocation = *env->current;
  ApiResponse out = runtime_reply(200, invocation.payload);
  out.headers.emplace_back("Lambda-Runtime-Aws-Request-Id", invocation.request_id);
  out.headers.emplace_back("Lambda-Runtime-Deadline-Ms", std::to_string(invocation.deadline_ms));
  out.headers.emplace_back("Lambda-Runtime-Invoked-Function-Arn", invocation.function_arn);
  out.headers.emplace_back("Lambda-Runtime-Trace-Id", trace_id());
  co_return out;
}

void FunctionHost::deliver(const EnvironmentPtr& env) {
  Invocation& invocation = *env->current;
  invocation.stage = Invocation::Stage::kDelivered;
  invocation.delivered_at = Clock::now();
  invocation.deadline_ms = epoch_ms() + int64_t{invocation.timeout_seconds} * 1000;
  thaw(env);
  log_line(env, start_line(invocation.request_id));
  env->next_wait.cancel();
  invocation.wake.cancel();
}

void FunctionHost::finish(const EnvironmentPtr& env, std::string payload, bool function_error) {
  std::shared_ptr<Invocation> invocation = env->current;
  drain_output(env);  // what the function printed before it answered belongs to this invocation
  Report report;
  report.request_id = invocation->request_id;
  report.duration_ms =
      invocation->stage == Invocation::Stage::kDelivered ? ms_since(invocation->delivered_at) : 0.0;
  report.memory_size_mb = env->memory_mb;
  report.max_memory_used_mb = max_memory_used_mb(*env);
  if (!env->init_reported && env->init_ms) {
    report.init_duration_ms = env->init_ms;
    env->init_reported = true;
  }
  log_line(env, end_line(invocation->request_id));
  log_line(env, report_line(report));
  invocation->outcome.payload = std::move(payload);
  invocation->outcome.function_error = function_error;
  invocation->stage = Invocation::Stage::kDone;
  invocation->wake.cancel();
  env->current.reset();
  if (env->state == Environment::State::kBusy || env->state == Environment::State::kStarting) {
    env->state = Environment::State::kIdle;
    env->idle_since = Clock::now();
  }
}

void FunctionHost::time_out(const EnvironmentPtr& env) {
  const Invocation& invocation = *env->current;
  const bool initializing = invocation.stage == Invocation::Stage::kQueued;
  const std::string message =
      initializing ? "RequestId: " + invocation.request_id +
                         " Error: the runtime did not ask for its first invocation within " +
                         std::to_string(10 + invocation.timeout_seconds) +
                         " seconds of starting (init timed out)"
                   : "RequestId: " + invocation.request_id +
                         " Error: " + timeout_message(invocation.timeout_seconds);
  log_line(env, fmt::format("{} {}", invocation.request_id,
                            initializing ? std::string("Init timed out")
                                         : timeout_message(invocation.timeout_seconds)));
  finish(env, error_body(initializing ? "Runtime.InitError" : "Sandbox.Timedout", message), true);
  // A timed-out environment is reset: the next invocation gets a new one.
  stop_environment(env, std::chrono::milliseconds(0));
}

void FunctionHost::tick() {
  const auto now = Clock::now();
  std::map<std::string, std::optional<std::string>> revisions;  // by function; none: deleted
  std::vector<EnvironmentPtr> retire;
  for (const auto& [id, env] : environments_) {
    if (env->state != Environment::State::kIdle || env->current) continue;
    auto [it, fresh] = revisions.try_emplace(env->function);
    if (fresh) {
      try {
        it->second = revision_of(plane_.lambda().function(env->function));
      } catch (const ApiError&) {
        it->second.reset();
      }
    }
    // Reclaimed after the idle period, or retired because the function changed (its code or
    // configuration) or is gone.
    if (now - env->idle_since >= options_.idle_timeout || it->second != env->revision)
      retire.push_back(env);
  }
  for (const auto& env : retire) stop_environment(env, std::chrono::seconds(2));
}

ApiResponse FunctionHost::environments_view(const std::string& name) {
  json::array environments;
  int busy = 0;
  for (const auto& [id, env] : environments_) {
    if (env->function != name) continue;
    const char* state = env->state == Environment::State::kStarting ? "starting"
                        : env->state == Environment::State::kIdle   ? "idle"
                        : env->state == Environment::State::kBusy   ? "busy"
                                                                    : "stopping";
    busy += env->current ? 1 : 0;
    environments.push_back(json::object{{"Id", env->id},
                                        {"Pid", env->pid},
                                        {"State", state},
                                        {"Frozen", env->frozen},
                                        {"LogStreamName", env->log_stream}});
  }
  auto peak = peak_concurrency_.find(name);
  ApiResponse out;
  out.body = json::serialize(
      json::object{{"FunctionName", name},
                   {"Environments", environments},
                   {"Busy", busy},
                   {"PeakConcurrency", peak == peak_concurrency_.end() ? 0 : peak->second}});
  return out;
}

}  // namespace sluice::functions
