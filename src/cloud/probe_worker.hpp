// Blocking probes off the API's thread. `sluice serve` serves the API and moves resources along
// (ControlPlane::tick) on one thread, which alone touches the state (the store, the services'
// maps). What could make that thread wait on the network (asking a running proxy for its target
// health, whether an endpoint accepts connections) runs here instead, on worker threads that see
// only the values the probe was given; its result waits until the API thread collects it with
// deliver() (every tick) and applies it to the state there. So an API call never waits on a probe,
// and the state stays single-threaded.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice::cloud {

class ProbeWorker {
 public:
  explicit ProbeWorker(int threads = 2);
  // Waits for the probes running (they are bounded by their timeouts); drops the queued ones and
  // the results nobody collected.
  ~ProbeWorker();
  ProbeWorker(const ProbeWorker&) = delete;
  ProbeWorker& operator=(const ProbeWorker&) = delete;

  // Runs `probe` on a worker thread, then `done` with its result on the thread that calls
  // deliver(). `probe` must not touch shared state: give it copies. A probe that throws is logged
  // and its `done` never runs.
  template <typename Result>
  void run(std::function<Result()> probe, std::function<void(Result)> done) {
    enqueue([probe = std::move(probe), done = std::move(done)]() -> std::function<void()> {
      return [done, result = probe()]() mutable { done(std::move(result)); };
    });
  }
  // Runs the `done` of every probe finished since the last call, here and in the order they
  // finished. Returns how many ran.
  size_t deliver();
  // Probes queued or running, and results not delivered yet.
  size_t outstanding() const;

 private:
  using Job = std::function<std::function<void()>()>;  // a probe, returning its completion
  void enqueue(Job job);
  void loop();

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::vector<std::function<void()>> finished_;
  size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sluice::cloud
