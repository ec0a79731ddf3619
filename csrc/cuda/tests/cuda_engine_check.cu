// The CUDA kernels on a GPU, without TensorFlow: every launcher (forward;
// backward per step; backward constant along time) on every element type,
// over the cases of kernel_cases.h (each layout class and the edge cases),
// compared with the CPU engine in float64 on the same rounded inputs, run
// twice (the same bits), and compared bitwise with the same kernels' host
// execution (one order of operations by construction; -fmad=false on the
// device, no contraction on the host).
//
//   ctest --test-dir build/cmake -R cuda_engine_check     (or run the binary)
//
// Exit status 0 when every comparison holds, 1 otherwise, 77 without a GPU
// (ctest reports the test as skipped).
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cuda/kernels/elements.h"
#include "cuda/kernels/exec.h"
#include "cuda/tests/kernel_cases.h"

namespace {

using namespace corrops::check;  // NOLINT: the test's own vocabulary
using corrops::Method;
using corrops::cuda::Bfloat16;
using corrops::cuda::Half;

// Device memory for RunKernels: inputs copied in, outputs filled with 0xA5
// bytes and copied back; freed with the object.
struct DeviceMem {
  std::vector<void*> owned;
  cudaError_t err = cudaSuccess;
  void* alloc(size_t bytes) {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes < 1 ? 1 : bytes);
    if (e != cudaSuccess && err == cudaSuccess) err = e;
    owned.push_back(p);
    return p;
  }
  template <typename V>
  const V* in(const std::vector<V>& v) {
    void* p = alloc(sizeof(V) * v.size());
    if (!v.empty()) cudaMemcpy(p, v.data(), sizeof(V) * v.size(), cudaMemcpyHostToDevice);
    return static_cast<const V*>(p);
  }
  template <typename V>
  V* out(int64_t count) {
    void* p = alloc(sizeof(V) * count);
    cudaMemset(p, 0xA5, sizeof(V) * count);
    return static_cast<V*>(p);
  }
  void sync() {
    const cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess && err == cudaSuccess) err = e;
  }
  template <typename V>
  std::vector<V> back(const V* p, int64_t count) {
    std::vector<V> out(count);
    if (count) cudaMemcpy(out.data(), p, sizeof(V) * count, cudaMemcpyDeviceToHost);
    return out;
  }
  ~DeviceMem() {
    for (void* p : owned) cudaFree(p);
  }
};

template <typename T>
bool CheckCase(const Case& c, Method method, std::mt19937_64& rng) {
  if (!Applies<T>(c)) return true;
  const Inputs in = MakeInputs(c, rng);
  const Rounded<T> r = RoundAll<T>(in);
  const double eps = EpsFor<T>(c.data);
  const Reference want = ReferenceFor<T>(c.layout, method, eps, r, in.mask);
  corrops::cuda::DeviceLaunch device{nullptr};
  DeviceMem mem;
  const Outputs<T> a = RunKernels<T>(mem, device, c.layout, method, eps, r, in.mask);
  const Outputs<T> b = RunKernels<T>(mem, device, c.layout, method, eps, r, in.mask);
  corrops::cuda::HostLaunch host;
  HostMem host_mem;
  const Outputs<T> h = RunKernels<T>(host_mem, host, c.layout, method, eps, r, in.mask);
  std::string report;
  bool ok = device.err == cudaSuccess && mem.err == cudaSuccess;
  if (!ok)
    report += std::string(" CUDA error: ") +
              cudaGetErrorString(device.err != cudaSuccess ? device.err : mem.err);
  ok = ok && MatchesReference(c.layout, a, want, &report) &&
       SameOutputs("two runs", a, b, &report) && SameOutputs("device vs host", a, h, &report);
  PrintResult<T>(ok, c, method, report);
  return ok;
}

template <typename T>
int CheckType(std::mt19937_64& rng) {
  int failures = 0;
  for (const Case& c : kCases)
    for (Method m : {Method::kPearson, Method::kCcc}) failures += !CheckCase<T>(c, m, rng);
  return failures;
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("cuda_engine_check: no CUDA device here; skipped\n");
    return 77;
  }
  std::mt19937_64 rng(12345);
  const int failures = CheckType<float>(rng) + CheckType<double>(rng) + CheckType<Half>(rng) +
                       CheckType<Bfloat16>(rng);
  std::printf("cuda_engine_check: %d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
