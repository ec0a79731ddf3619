// The "CUDA" handlers of the corrops custom calls (corr_loss_custom_call.h),
// as functions: check the buffers (custom_call_buffers.h), then launch
// csrc/cuda's kernels on XLA's stream; a launch failure becomes the call's
// error. The upstream gradient always arrives per step (the callers'
// lowerings broadcast a time-constant one). TF's XLA registers them
// (tf_xla/corr_loss_ffi_cuda.cc); the JAX binding exports them for jax.ffi
// (jax/corr_loss_ffi_jax_cuda.cc). Each build compiles them against its own
// framework's FFI headers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/corr_loss_cuda.h"
#include "xla_ffi/custom_call_buffers.h"

namespace corrops {

using CudaStream = ffi::PlatformStream<cudaStream_t>;

inline ffi::Error LaunchError(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return ffi::Error::Success();
  return ffi::Error::Internal(std::string("corrops ") + what +
                              " CUDA launch failed: " + cudaGetErrorString(err));
}

inline ffi::Error ForwardCuda(cudaStream_t stream, ffi::AnyBuffer y_true, ffi::AnyBuffer y_pred,
                              ffi::AnyBuffer mask, ffi::Result<ffi::AnyBuffer> loss,
                              ffi::Result<ffi::AnyBuffer> stats, int32_t method, double eps,
                              int32_t has_mask) {
  Layout l;
  const std::string message = CheckForward(y_true, y_pred, mask, *loss, *stats, has_mask, eps, &l);
  if (!message.empty()) return ffi::Error::InvalidArgument("corrops forward: " + message);
  const bool* m = has_mask ? static_cast<const bool*>(mask.untyped_data()) : nullptr;
  return ForElementType<__half, __nv_bfloat16>(y_pred.element_type(), [&](auto zero) {
    using T = decltype(zero);
    return LaunchError(
        cuda::corr_loss_forward<T>(
            l, static_cast<Method>(method), eps, static_cast<const T*>(y_true.untyped_data()),
            static_cast<const T*>(y_pred.untyped_data()), m, static_cast<T*>(loss->untyped_data()),
            static_cast<double*>(stats->untyped_data()), stream),
        "forward");
  });
}

inline ffi::Error BackwardCuda(cudaStream_t stream, ffi::AnyBuffer grad, ffi::AnyBuffer y_true,
                               ffi::AnyBuffer y_pred, ffi::AnyBuffer mask, ffi::AnyBuffer stats,
                               ffi::Result<ffi::AnyBuffer> grad_true,
                               ffi::Result<ffi::AnyBuffer> grad_pred, int32_t method, double eps,
                               int32_t has_mask) {
  Layout l;
  bool time_const = false, want_true = false, want_pred = false;
  std::string message = CheckBackward(grad, y_true, y_pred, mask, stats, *grad_true, *grad_pred,
                                      has_mask, eps, &l, &time_const, &want_true, &want_pred);
  if (message.empty() && time_const)
    message = "grad must be per step on the GPU (the lowering broadcasts it)";
  if (!message.empty()) return ffi::Error::InvalidArgument("corrops backward: " + message);
  if (!want_true && !want_pred) return ffi::Error::Success();
  const bool* m = has_mask ? static_cast<const bool*>(mask.untyped_data()) : nullptr;
  return ForElementType<__half, __nv_bfloat16>(y_pred.element_type(), [&](auto zero) {
    using T = decltype(zero);
    T* gx = want_true ? static_cast<T*>(grad_true->untyped_data()) : nullptr;
    T* gy = want_pred ? static_cast<T*>(grad_pred->untyped_data()) : nullptr;
    return LaunchError(cuda::corr_loss_backward<T>(l, static_cast<Method>(method), eps,
                                                   static_cast<const T*>(grad.untyped_data()),
                                                   static_cast<const T*>(y_true.untyped_data()),
                                                   static_cast<const T*>(y_pred.untyped_data()), m,
                                                   static_cast<const double*>(stats.untyped_data()),
                                                   gx, gy, stream),
                       "backward");
  });
}

}  // namespace corrops
