// The "CUDA" handlers of the corrops custom calls (corr_loss_custom_call.h),
// as functions: check the buffers (custom_call_buffers.h), then launch
// csrc/cuda's kernels on XLA's stream, with scratch memory from XLA's
// allocator; a launch failure becomes the call's error. The upstream
// gradient arrives per step or constant along time. TF's XLA registers them
// (tf_xla/corr_loss_ffi_cuda.cc); the JAX binding exports them for jax.ffi
// (jax/corr_loss_ffi_jax_cuda.cc). Each build compiles them against its own
// framework's FFI headers.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "cuda/corr_loss_cuda.h"
#include "xla_ffi/custom_call_buffers.h"

namespace corrops {

using CudaStream = ffi::PlatformStream<cudaStream_t>;

// The CUDA handlers' bindings: XLA's stream, then its scratch allocator.
inline auto ForwardCudaBinding() { return ForwardBinding<CudaStream, ffi::ScratchAllocator>(); }
inline auto BackwardCudaBinding() { return BackwardBinding<CudaStream, ffi::ScratchAllocator>(); }

inline ffi::Error LaunchError(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return ffi::Error::Success();
  return ffi::Error::Internal(std::string("corrops ") + what +
                              " CUDA launch failed: " + cudaGetErrorString(err));
}

// Scratch memory of `bytes` (null when 0), or an error.
inline ffi::Error Scratch(ffi::ScratchAllocator& allocator, size_t bytes, void** out) {
  *out = nullptr;
  if (bytes == 0) return ffi::Error::Success();
  const std::optional<void*> p = allocator.Allocate(bytes, cuda::kScratchAlign);
  if (!p.has_value()) return ffi::Error::Internal("corrops: no device memory for scratch");
  *out = *p;
  return ffi::Error::Success();
}

inline ffi::Error ForwardCuda(cudaStream_t stream, ffi::ScratchAllocator scratch,
                              ffi::AnyBuffer y_true, ffi::AnyBuffer y_pred, ffi::AnyBuffer mask,
                              ffi::Result<ffi::AnyBuffer> loss, ffi::Result<ffi::AnyBuffer> stats,
                              int32_t method, double eps, int32_t has_mask) {
  Layout l;
  const std::string message = CheckForward(y_true, y_pred, mask, *loss, *stats, has_mask, eps, &l);
  if (!message.empty()) return ffi::Error::InvalidArgument("corrops forward: " + message);
  const bool* m = has_mask ? static_cast<const bool*>(mask.untyped_data()) : nullptr;
  return ForElementType<__half, __nv_bfloat16>(y_pred.element_type(), [&](auto zero) {
    using T = decltype(zero);
    void* ws = nullptr;
    if (ffi::Error e = Scratch(scratch, cuda::forward_scratch_bytes<T>(l), &ws); e.failure())
      return e;
    return LaunchError(
        cuda::corr_loss_forward<T>(
            l, static_cast<Method>(method), eps, static_cast<const T*>(y_true.untyped_data()),
            static_cast<const T*>(y_pred.untyped_data()), m, static_cast<T*>(loss->untyped_data()),
            static_cast<double*>(stats->untyped_data()), ws, stream),
        "forward");
  });
}

inline ffi::Error BackwardCuda(cudaStream_t stream, ffi::ScratchAllocator scratch,
                               ffi::AnyBuffer grad, ffi::AnyBuffer y_true, ffi::AnyBuffer y_pred,
                               ffi::AnyBuffer mask, ffi::AnyBuffer stats,
                               ffi::Result<ffi::AnyBuffer> grad_true,
                               ffi::Result<ffi::AnyBuffer> grad_pred, int32_t method, double eps,
                               int32_t has_mask) {
  Layout l;
  bool time_const = false, want_true = false, want_pred = false;
  std::string message = CheckBackward(grad, y_true, y_pred, mask, stats, *grad_true, *grad_pred,
                                      has_mask, eps, &l, &time_const, &want_true, &want_pred);
  if (!message.empty()) return ffi::Error::InvalidArgument("corrops backward: " + message);
  if (!want_true && !want_pred) return ffi::Error::Success();
  const bool* m = has_mask ? static_cast<const bool*>(mask.untyped_data()) : nullptr;
  return ForElementType<__half, __nv_bfloat16>(y_pred.element_type(), [&](auto zero) {
    using T = decltype(zero);
    T* gx = want_true ? static_cast<T*>(grad_true->untyped_data()) : nullptr;
    T* gy = want_pred ? static_cast<T*>(grad_pred->untyped_data()) : nullptr;
    void* ws = nullptr;
    if (ffi::Error e = Scratch(scratch, cuda::backward_scratch_bytes<T>(l, time_const), &ws);
        e.failure())
      return e;
    return LaunchError(cuda::corr_loss_backward<T>(l, static_cast<Method>(method), eps,
                                                   static_cast<const T*>(grad.untyped_data()),
                                                   static_cast<const T*>(y_true.untyped_data()),
                                                   static_cast<const T*>(y_pred.untyped_data()), m,
                                                   static_cast<const double*>(stats.untyped_data()),
                                                   gx, gy, time_const, ws, stream),
                       "backward");
  });
}

}  // namespace corrops
