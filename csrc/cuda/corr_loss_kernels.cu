// The device launchers of corr_loss_cuda.h: kernels/launch_sequence.h's
// sequence with each kernel launched as run_kernel<K> (kernels/exec.h's
// DeviceLaunch) on the caller's stream. Built with -fmad=false, so that the device rounds every
// operation as the host execution does (tests compare them bitwise).
#include "cuda/corr_loss_cuda.h"
#include "cuda/kernels/exec.h"
#include "cuda/kernels/launch_sequence.h"

namespace corrops {
namespace cuda {
namespace {

cudaError_t to_cuda_error(LaunchStatus s, const DeviceLaunch& launch) {
  switch (s) {
    case LaunchStatus::kOk:
      return cudaSuccess;
    case LaunchStatus::kTooLarge:
      return cudaErrorInvalidConfiguration;
    default:
      return launch.err;
  }
}

}  // namespace

template <typename T>
cudaError_t corr_loss_forward(const Layout& l, Method method, double eps, const T* x, const T* y,
                              const bool* m, T* loss, double* stats, void* scratch,
                              cudaStream_t stream) {
  DeviceLaunch launch{stream};
  return to_cuda_error(run_forward<T>(launch, l, method, eps, x, y, m, loss, stats, scratch),
                       launch);
}

template <typename T>
cudaError_t corr_loss_totals(const Layout& l, Method method, double eps, const double* stats,
                             T* totals, cudaStream_t stream) {
  DeviceLaunch launch{stream};
  return to_cuda_error(run_totals<T>(launch, l, method, eps, stats, totals), launch);
}

template <typename T>
cudaError_t corr_loss_backward(const Layout& l, Method method, double eps, const T* g, const T* x,
                               const T* y, const bool* m, const double* stats, T* gx, T* gy,
                               bool grad_time_const, void* scratch, cudaStream_t stream) {
  DeviceLaunch launch{stream};
  return to_cuda_error(
      run_backward<T>(launch, l, method, eps, g, x, y, m, stats, gx, gy, grad_time_const, scratch),
      launch);
}

#define CORROPS_INSTANTIATE(T)                                                                   \
  template cudaError_t corr_loss_forward<T>(const Layout&, Method, double, const T*, const T*,   \
                                            const bool*, T*, double*, void*, cudaStream_t);      \
  template cudaError_t corr_loss_totals<T>(const Layout&, Method, double, const double*, T*,     \
                                           cudaStream_t);                                        \
  template cudaError_t corr_loss_backward<T>(const Layout&, Method, double, const T*, const T*,  \
                                             const T*, const bool*, const double*, T*, T*, bool, \
                                             void*, cudaStream_t);
CORROPS_INSTANTIATE(float)
CORROPS_INSTANTIATE(double)
CORROPS_INSTANTIATE(__half)
CORROPS_INSTANTIATE(__nv_bfloat16)
#undef CORROPS_INSTANTIATE

}  // namespace cuda
}  // namespace corrops
