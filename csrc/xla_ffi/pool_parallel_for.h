// A parallel for over the engine's work units on XLA's intra-op thread pool,
// as the XLA FFI hands it to a CPU custom call (TF's intra-op pool when TF
// runs the computation, so tf.config.threading settings apply).
//
// The calling thread takes part: chunks are claimed from a shared counter by
// the caller and by the tasks it schedules, and the caller waits only for
// chunks already claimed by a running thread. A task that starts after every
// chunk is claimed does nothing, so a call never waits on a task that has
// not started (several custom calls may run at once on the pool's threads).
// Each unit belongs to exactly one chunk, and the engine's units are
// independent, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "xla/ffi/api/ffi.h"

namespace corrops {

// How many threads a call of `units` units of `cost_per_unit` cycles each
// gets, by Eigen's cost model (Eigen::TensorCostModel::numThreads, which TF's
// ParallelFor and so the TF kernels use): one thread below ~1e5 cycles in
// all, one more per further ~1e5, at most `max_threads`.
inline int64_t ThreadsForCost(int64_t units, int64_t cost_per_unit, int64_t max_threads) {
  constexpr double kStartupCycles = 100000, kPerThreadCycles = 100000;
  const double total = static_cast<double>(units) * static_cast<double>(cost_per_unit);
  const auto wanted = static_cast<int64_t>((total - kStartupCycles) / kPerThreadCycles + 0.9);
  return std::clamp<int64_t>(wanted, 1, std::max<int64_t>(1, max_threads));
}

inline void ParallelForOnPool(xla::ffi::ThreadPool& pool, int64_t units, int64_t cost_per_unit,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (units <= 0) return;
  const int64_t chunks = std::min(units, ThreadsForCost(units, cost_per_unit, pool.num_threads()));
  if (chunks == 1) return fn(0, units);

  struct Shared {
    std::atomic<int64_t> next{0};
    int64_t chunks = 0, units = 0;
    const std::function<void(int64_t, int64_t)>* fn = nullptr;  // used while the caller waits
    std::mutex mu;
    std::condition_variable all_done;
    int64_t done = 0;

    void RunChunks() {
      for (int64_t c = next.fetch_add(1); c < chunks; c = next.fetch_add(1)) {
        (*fn)(units* c / chunks, units * (c + 1) / chunks);
        std::lock_guard<std::mutex> lock(mu);
        if (++done == chunks) all_done.notify_all();
      }
    }
  };
  auto shared = std::make_shared<Shared>();
  shared->chunks = chunks;
  shared->units = units;
  shared->fn = &fn;
  for (int64_t i = 1; i < chunks; ++i) pool.Schedule([shared] { shared->RunChunks(); });
  shared->RunChunks();
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->all_done.wait(lock, [&] { return shared->done == shared->chunks; });
}

}  // namespace corrops
