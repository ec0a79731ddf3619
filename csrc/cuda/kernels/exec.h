// The execution context the CUDA kernels' bodies are written against, with a
// device and a host implementation, so that one source runs on a GPU and,
// thread by thread, on the CPU (the ctest cuda_kernels_on_host).
//
// A kernel body is a sequence of phases separated by block-wide barriers:
// `b.each([&](int tid, Local& lo) { ... })` runs the phase for thread `tid`
// and then waits at a barrier. On the device each thread runs its own `tid`
// and __syncthreads() is the barrier; on the host the whole block runs one
// phase for every thread in turn before the next phase starts, which is what
// a barrier guarantees. State a thread keeps across barriers lives in its
// `Local` (registers on the device, one slot per thread on the host); state
// threads share lives in the kernel's `Shared` (shared memory). A phase may
// not read what another thread of the same phase writes (as in CUDA), and
// every thread calls each() the same number of times (no early return).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__CUDACC__)
#define CORROPS_KERNEL_FN __host__ __device__ __forceinline__
#else
#define CORROPS_KERNEL_FN inline
#endif

namespace corrops {
namespace cuda {

// Threads per block, at most: every kernel's shared arrays are sized by it.
constexpr int kBlockThreads = 256;
// Blocks per launch, at most (a one-dimensional grid).
constexpr int64_t kMaxBlocks = 2147483647;

#if defined(__CUDACC__)
// One thread of a block on the device.
template <class Shared, class L>
struct DeviceBlock {
  using Local = L;
  Shared* sh;
  L lo;
  __device__ __forceinline__ int64_t block() const { return blockIdx.x; }
  __device__ __forceinline__ Shared& shared() const { return *sh; }
  template <class F>
  __device__ __forceinline__ void each(F&& f) {
    f(static_cast<int>(threadIdx.x), lo);
    __syncthreads();
  }
};

// The device entry point of every kernel K: K::Shared in shared memory, the
// body run by each thread of the block.
template <class K>
__global__ void __launch_bounds__(kBlockThreads) run_kernel(const K k) {
  __shared__ typename K::Shared sh;
  DeviceBlock<typename K::Shared, typename K::Local> b{&sh, {}};
  k(b);
}

// The device launcher of launch_sequence.h: each kernel as run_kernel<K> on
// `stream`; the first launch error is kept.
struct DeviceLaunch {
  cudaStream_t stream;
  cudaError_t err = cudaSuccess;
  template <class K>
  bool operator()(const K& k, int64_t blocks, int threads) {
    run_kernel<K><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(k);
    err = cudaGetLastError();
    return err == cudaSuccess;
  }
};
#endif

// A whole block on the host: phases run for every thread in turn.
template <class Shared, class L>
struct HostBlock {
  using Local = L;
  int64_t index;
  int threads;
  Shared* sh;
  L* locals;
  // Host and device as the kernels' bodies are, so that a CUDA compiler
  // accepts the calls; only the host ever runs them.
  CORROPS_KERNEL_FN int64_t block() const { return index; }
  CORROPS_KERNEL_FN Shared& shared() const { return *sh; }
  template <class F>
  CORROPS_KERNEL_FN void each(F&& f) {
    for (int t = 0; t < threads; ++t) f(t, locals[t]);
  }
};

// Runs kernel K on the host over `blocks` blocks of `threads` threads, one
// block after another. Shared memory and each thread's locals start as a
// byte pattern (0xA5) that is no meaningful number, as uninitialised memory
// on the device: a kernel that reads before it writes gets garbage here too.
template <class K>
void run_on_host(const K& k, int64_t blocks, int threads) {
  using Shared = typename K::Shared;
  using Local = typename K::Local;
  auto sh = std::make_unique<Shared>();
  std::vector<Local> locals(static_cast<size_t>(threads));
  for (int64_t i = 0; i < blocks; ++i) {
    std::memset(static_cast<void*>(sh.get()), 0xA5, sizeof(Shared));
    std::memset(static_cast<void*>(locals.data()), 0xA5, sizeof(Local) * locals.size());
    HostBlock<Shared, Local> b{i, threads, sh.get(), locals.data()};
    k(b);
  }
}

// The launcher of the host execution (launch_sequence.h's Launch concept).
struct HostLaunch {
  template <class K>
  bool operator()(const K& k, int64_t blocks, int threads) {
    run_on_host(k, blocks, threads);
    return true;
  }
};

}  // namespace cuda
}  // namespace corrops
