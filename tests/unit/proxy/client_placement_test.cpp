#include "proxy/client_placement.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace sluice::proxy {
namespace {

// Places `count` clients one after another, each accepted by the worker the kernel would pick
// (round robin), with the workers' CPU as given; returns the clients per worker.
std::vector<size_t> place_many(size_t workers, size_t count, std::vector<double> busy = {}) {
  std::vector<WorkerLoad> loads(workers);
  for (size_t i = 0; i < busy.size() && i < workers; ++i) loads[i].busy = busy[i];
  for (size_t n = 0; n < count; ++n) ++loads[place_client(loads, n % workers)].clients;
  std::vector<size_t> clients;
  for (const auto& load : loads) clients.push_back(load.clients);
  return clients;
}

TEST(ClientPlacement, AFewQuietClientsShareOneWorker) {
  // pgbench -c 32 through two workers: one event loop does it with fewer wake-ups.
  EXPECT_EQ(place_many(2, 32), (std::vector<size_t>{32, 0}));
  std::vector<size_t> first_only(16, 0);
  first_only[0] = 32;
  EXPECT_EQ(place_many(16, 32), first_only);
}

TEST(ClientPlacement, ManyClientsSpreadEvenlyEvenBeforeAnyLoadIsMeasured) {
  // A login storm on 16 cores: every worker takes a share, none more than a few above even.
  const auto clients = place_many(16, 1024);
  size_t total = 0;
  for (size_t c : clients) {
    total += c;
    EXPECT_GE(c, 48u);
    EXPECT_LE(c, 80u);
  }
  EXPECT_EQ(total, 1024u);
}

TEST(ClientPlacement, ABusyWorkerBringsAnotherIn) {
  // Worker 0 uses 0.7 of a core with 32 clients: new ones go to worker 1 until it has as many.
  std::vector<WorkerLoad> loads{{32, 0.7}, {0, 0.0}};
  EXPECT_EQ(workers_in_use(loads), 2u);
  EXPECT_EQ(place_client(loads, 0), 1u);
  loads[1].clients = 32;
  EXPECT_EQ(place_client(loads, 1), 1u);  // a tie: where it was accepted
  EXPECT_EQ(place_client(loads, 0), 0u);
  // Quiet again: new clients go back to the first worker (those on the second stay).
  loads[0].busy = 0.2;
  loads[1].busy = 0.1;
  EXPECT_EQ(workers_in_use(loads), 2u);  // 65 clients with the new one
  loads[1].clients = 10;
  EXPECT_EQ(workers_in_use(loads), 1u);
  EXPECT_EQ(place_client(loads, 1), 0u);
}

TEST(ClientPlacement, EveryCoreBusyUsesEveryWorker) {
  std::vector<WorkerLoad> loads(16, WorkerLoad{4, 0.9});
  EXPECT_EQ(workers_in_use(loads), 16u);
  loads[9].clients = 1;
  EXPECT_EQ(place_client(loads, 3), 9u);
}

TEST(ClientPlacement, OneWorker) {
  std::vector<WorkerLoad> loads{{500, 1.0}};
  EXPECT_EQ(place_client(loads, 0), 0u);
}

}  // namespace
}  // namespace sluice::proxy
