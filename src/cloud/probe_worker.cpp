#include "cloud/probe_worker.hpp"

#include <spdlog/spdlog.h>

#include <exception>

namespace sluice::cloud {

ProbeWorker::ProbeWorker(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
}

ProbeWorker::~ProbeWorker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  for (auto& thread : threads_) thread.join();
}

void ProbeWorker::enqueue(Job job) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void ProbeWorker::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    lock.unlock();
    std::function<void()> completion;
    try {
      completion = job();
    } catch (const std::exception& e) {
      spdlog::error("probe: {}", e.what());
    }
    lock.lock();
    --running_;
    if (completion) finished_.push_back(std::move(completion));
  }
}

size_t ProbeWorker::deliver() {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(mutex_);
    ready.swap(finished_);
  }
  for (auto& completion : ready) {
    try {
      completion();
    } catch (const std::exception& e) {
      spdlog::error("probe result: {}", e.what());
    }
  }
  return ready.size();
}

size_t ProbeWorker::outstanding() const {
  std::lock_guard lock(mutex_);
  return queue_.size() + running_ + finished_.size();
}

}  // namespace sluice::cloud
