#include "proxy/client_placement.hpp"

#include <algorithm>
#include <cmath>

namespace sluice::proxy {

size_t workers_in_use(std::span<const WorkerLoad> loads) {
  if (loads.empty()) return 0;
  size_t clients = 1;  // the new one
  double busy = 0;
  for (const WorkerLoad& load : loads) {
    clients += load.clients;
    busy += std::max(load.busy, 0.0);
  }
  const size_t by_clients = (clients + kClientsPerWorker - 1) / kClientsPerWorker;
  const size_t by_busy = static_cast<size_t>(std::ceil(busy / kBusyPerWorker));
  return std::clamp<size_t>(std::max(by_clients, by_busy), 1, loads.size());
}

size_t place_client(std::span<const WorkerLoad> loads, size_t here) {
  const size_t active = workers_in_use(loads);
  if (active == 0) return here;
  size_t best = 0;
  for (size_t i = 1; i < active; ++i)
    if (loads[i].clients < loads[best].clients) best = i;
  // A tie with the worker that accepted it: it stays (no hand-over between threads).
  if (here < active && loads[here].clients == loads[best].clients) return here;
  return best;
}

}  // namespace sluice::proxy
