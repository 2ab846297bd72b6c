// What the function host keeps for each invocation and each execution environment, shared by
// function_host.cpp (invocations, the Runtime API) and environment.cpp (the processes).
// Private to src/functions.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "auth/crypto.hpp"
#include "cloud/ids.hpp"
#include "cloud/records.hpp"
#include "cloud/server.hpp"
#include "functions/cgroups.hpp"
#include "functions/function_host.hpp"

namespace sluice::functions {

using Clock = std::chrono::steady_clock;

inline int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// What decides whether a warm environment still runs the function as configured now.
inline std::string revision_of(const cloud::FunctionRecord& function) {
  return function.revision_id + "/" + function.code_sha256;
}

inline cloud::ApiResponse runtime_reply(int status, std::string body) {
  cloud::ApiResponse out;
  out.status = status;
  out.body = std::move(body);
  return out;
}

struct FunctionHost::Invocation {
  explicit Invocation(const boost::asio::any_io_executor& executor) : wake(executor) {}
  enum class Stage { kQueued, kDelivered, kDone };

  std::string request_id = cloud::uuid4();
  std::string payload;
  std::string function_arn;
  int timeout_seconds = 3;
  Stage stage = Stage::kQueued;
  Clock::time_point created = Clock::now();
  Clock::time_point delivered_at;
  int64_t deadline_ms = 0;
  boost::asio::steady_timer wake;  // cancelled at every step the invoker waits for
  Outcome outcome;
};

struct FunctionHost::Environment {
  enum class State { kStarting, kIdle, kBusy, kStopping };

  explicit Environment(const boost::asio::any_io_executor& executor)
      : next_wait(executor), pidfd(executor), output(executor), kill_timer(executor) {}

  std::string id = auth::hex(auth::random_bytes(16));
  std::string function;
  std::string revision;
  int memory_mb = 128;
  State state = State::kStarting;
  pid_t pid = -1;
  bool frozen = false;
  bool waiting_next = false;  // its runtime waits in `next`
  std::shared_ptr<Invocation> current;
  boost::asio::steady_timer next_wait;
  boost::asio::posix::stream_descriptor pidfd;
  boost::asio::posix::stream_descriptor output;
  boost::asio::steady_timer kill_timer;
  std::unique_ptr<cloud::ApiServer> api;
  std::unique_ptr<EnvironmentCgroups> cgroups;
  Clock::time_point started = Clock::now();
  Clock::time_point idle_since = Clock::now();
  std::optional<double> init_ms;  // set at the first `next`
  bool init_reported = false;
  std::string log_group;
  std::string log_stream;
  std::string partial_line;
  std::string access_key;
  std::string scratch;
  std::string bootstrap;
};

}  // namespace sluice::functions
