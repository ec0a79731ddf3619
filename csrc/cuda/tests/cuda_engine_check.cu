// Standalone check of the CUDA kernels, without TensorFlow: every launcher
// (forward; backward with a per-step upstream gradient; the broadcast of a
// time-constant one followed by the backward) on every element type (float,
// double, half, bfloat16), over each layout class the kernels distinguish
// (contiguous rows short, aligned, cached and streamed; column groups;
// channels; masks; both methods; empty time), each compared with the CPU
// engine in float64 on the same rounded inputs.
//
//   ctest --test-dir build/cmake -R cuda_engine_check     (or run the binary)
//
// Exit status 0 when every comparison holds, 1 otherwise, 77 without a GPU
// (ctest reports the test as skipped).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/corr_loss_cuda.h"
#include "cuda/tests/cpu_reference.h"

namespace {

using corrops::Layout;
using corrops::Method;

constexpr double kEps = 1e-7;

struct Case {
  const char* name;
  Layout layout;
  bool masked;
};

// outer, time, groups, channels.
const Case kCases[] = {
    {"contiguous rows, short", {3, 17, 1, 1}, false},
    {"contiguous rows, aligned", {4, 2048, 1, 1}, false},
    {"contiguous rows, streamed", {2, 5000, 1, 1}, false},
    {"contiguous rows, masked", {5, 300, 1, 1}, true},
    {"column groups", {2, 11, 3, 2}, false},
    {"column groups, masked", {3, 40, 4, 1}, true},
    {"channels", {3, 40, 1, 5}, false},
    {"channels, masked", {2, 33, 2, 3}, true},
    {"one step", {4, 1, 2, 1}, false},
    {"empty time", {2, 0, 1, 1}, false},
};

double ToDouble(double v) { return v; }
double ToDouble(float v) { return v; }
double ToDouble(__half v) { return __half2float(v); }
double ToDouble(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T>
T FromDouble(double v) {
  if constexpr (std::is_same_v<T, __half>) return __float2half(static_cast<float>(v));
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16(static_cast<float>(v));
  return static_cast<T>(v);
}

template <typename T>
const char* TypeName() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  if constexpr (std::is_same_v<T, double>) return "float64";
  if constexpr (std::is_same_v<T, __half>) return "float16";
  return "bfloat16";
}

// Relative tolerance of each element type against the float64 engine.
template <typename T>
double Tolerance() {
  if constexpr (std::is_same_v<T, double>) return 1e-9;
  if constexpr (std::is_same_v<T, float>) return 2e-4;
  if constexpr (std::is_same_v<T, __half>) return 2e-2;
  return 5e-2;
}

// A device copy of `host`, freed with the object.
template <typename T>
struct DeviceArray {
  T* ptr = nullptr;
  size_t size = 0;
  explicit DeviceArray(const std::vector<T>& host) : size(host.size()) {
    cudaMalloc(&ptr, std::max<size_t>(1, size) * sizeof(T));
    if (size) cudaMemcpy(ptr, host.data(), size * sizeof(T), cudaMemcpyHostToDevice);
  }
  explicit DeviceArray(size_t n) : size(n) { cudaMalloc(&ptr, std::max<size_t>(1, n) * sizeof(T)); }
  ~DeviceArray() { cudaFree(ptr); }
  std::vector<T> Host() const {
    std::vector<T> out(size);
    if (size) cudaMemcpy(out.data(), ptr, size * sizeof(T), cudaMemcpyDeviceToHost);
    return out;
  }
};

// Largest |got - want| over the scale of want; false (and a message) past tol.
template <typename T>
bool Close(const char* what, const std::vector<T>& got, const std::vector<double>& want, double tol,
           std::string* report) {
  double scale = 1.0, worst = 0.0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = ToDouble(got[i]);
    if (std::isnan(g) != std::isnan(want[i])) worst = INFINITY;
    if (!std::isnan(g)) worst = std::max(worst, std::abs(g - want[i]) / scale);
  }
  if (worst <= tol) return true;
  *report += std::string(" ") + what + " off by " + std::to_string(worst);
  return false;
}

template <typename T>
bool CheckCase(const Case& c, Method method, std::mt19937_64& rng) {
  const Layout l = c.layout;
  const int64_t n = l.elements(), steps = l.loss_elements();
  std::normal_distribution<double> normal;
  std::vector<T> x(n), y(n), g(steps), gc(l.outer * l.groups);
  std::vector<double> xd(n), yd(n), gd(steps), gcd(gc.size());
  for (int64_t i = 0; i < n; ++i) {
    x[i] = FromDouble<T>(normal(rng));
    y[i] = FromDouble<T>(0.5 * ToDouble(x[i]) + normal(rng));
    xd[i] = ToDouble(x[i]);
    yd[i] = ToDouble(y[i]);
  }
  for (int64_t i = 0; i < steps; ++i) gd[i] = ToDouble(g[i] = FromDouble<T>(normal(rng)));
  for (size_t i = 0; i < gc.size(); ++i) gcd[i] = ToDouble(gc[i] = FromDouble<T>(normal(rng)));
  std::vector<char> mask_bytes(c.masked ? steps : 0);
  for (auto& m : mask_bytes) m = std::uniform_real_distribution<double>()(rng) < 0.75;
  const bool* mask = c.masked ? reinterpret_cast<const bool*>(mask_bytes.data()) : nullptr;

  // The CPU engine in float64: loss, stats, gradients for both upstream forms.
  std::vector<double> loss(steps, 0.0), stats(l.rows() * corrops::kStatsPerRow);
  std::vector<double> gx(n), gy(n), gx_const(n), gy_const(n);
  corrops::check::cpu_forward(l, method, kEps, xd.data(), yd.data(), mask, loss.data(),
                              stats.data());
  corrops::check::cpu_backward(l, method, kEps, gd.data(), xd.data(), yd.data(), mask, stats.data(),
                               gx.data(), gy.data(), false);
  corrops::check::cpu_backward(l, method, kEps, gcd.data(), xd.data(), yd.data(), mask,
                               stats.data(), gx_const.data(), gy_const.data(), l.time != 1);

  // The CUDA kernels.
  DeviceArray<T> dx(x), dy(y), dg(g), dgc(gc), dloss(steps), dgx(n), dgy(n), dfull(steps);
  DeviceArray<double> dstats(stats.size());
  DeviceArray<char> dmask(mask_bytes);
  const bool* dm = c.masked ? reinterpret_cast<const bool*>(dmask.ptr) : nullptr;
  std::string report;
  bool ok = true;
  cudaError_t err = corrops::cuda::corr_loss_forward<T>(l, method, kEps, dx.ptr, dy.ptr, dm,
                                                        dloss.ptr, dstats.ptr, nullptr);
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  ok = ok && err == cudaSuccess && Close("loss", dloss.Host(), loss, Tolerance<T>(), &report);
  err = corrops::cuda::corr_loss_backward<T>(l, method, kEps, dg.ptr, dx.ptr, dy.ptr, dm,
                                             dstats.ptr, dgx.ptr, dgy.ptr, nullptr);
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  ok = ok && err == cudaSuccess && Close("grad_true", dgx.Host(), gx, Tolerance<T>(), &report) &&
       Close("grad_pred", dgy.Host(), gy, Tolerance<T>(), &report);
  err = corrops::cuda::broadcast_along_time<T>(l, dgc.ptr, dfull.ptr, nullptr);
  if (err == cudaSuccess)
    err = corrops::cuda::corr_loss_backward<T>(l, method, kEps, dfull.ptr, dx.ptr, dy.ptr, dm,
                                               dstats.ptr, dgx.ptr, dgy.ptr, nullptr);
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  ok = ok && err == cudaSuccess &&
       Close("grad_true (time-constant upstream)", dgx.Host(), gx_const, Tolerance<T>(), &report) &&
       Close("grad_pred (time-constant upstream)", dgy.Host(), gy_const, Tolerance<T>(), &report);
  if (err != cudaSuccess) report += std::string(" CUDA error: ") + cudaGetErrorString(err);
  std::printf("%-4s %-8s %-7s %s%s\n", ok ? "ok" : "FAIL", TypeName<T>(),
              method == Method::kCcc ? "ccc" : "pearson", c.name, report.c_str());
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
  const int failures = CheckType<float>(rng) + CheckType<double>(rng) + CheckType<__half>(rng) +
                       CheckType<__nv_bfloat16>(rng);
  std::printf("cuda_engine_check: %d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
