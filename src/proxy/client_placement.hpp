// Which worker thread a new client goes to (pure: fed with the workers' loads, unit-tested).
//
// SO_REUSEPORT spreads clients evenly over every worker, whatever the load. An event loop that
// has little to do sleeps in epoll_wait between nearly every pair of events, and each sleep and
// wake-up costs a context switch: on a 2-core machine that the database shares, pgbench -S
// -c 32 through two workers took 1.0-1.7 voluntary context switches per transaction against
// 0.4 through one, and about a quarter more proxy CPU per transaction (docs/benchmarks.md).
// So new clients go to as few workers as the load needs: the first `active` workers, where
// `active` grows with the clients (kClientsPerWorker each, so that a burst of logins spreads
// before any load is measured) and with the CPU the workers use (kBusyPerWorker of a core
// each); among those, the one with the fewest clients. Clients already placed stay where they
// are. With one worker's worth of load the others stay asleep, as PgBouncer's single thread
// would; at 16 cores under load every worker is in use and the clients are spread evenly.
#pragma once

#include <cstddef>
#include <span>

namespace sluice::proxy {

struct WorkerLoad {
  size_t clients = 0;  // client sessions now
  double busy = 0;     // CPU used over the last measurement period, in cores (0..1)
};

// How many workers are given new clients.
size_t workers_in_use(std::span<const WorkerLoad> loads);
// The worker for a new client accepted by worker `here` (kept there when it is as good).
size_t place_client(std::span<const WorkerLoad> loads, size_t here);

inline constexpr size_t kClientsPerWorker = 64;
inline constexpr double kBusyPerWorker = 0.5;

}  // namespace sluice::proxy
