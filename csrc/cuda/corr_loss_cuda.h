// CUDA launchers: raw device pointers, scratch memory and a stream in, a
// cudaError_t out (the callers turn a failure into an op error). The kernels
// and their launch sequence live in csrc/cuda/kernels (one source for the
// device and the host execution); the row math is csrc/core's row_math.h.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstddef>

#include "core/row_math.h"
#include "cuda/kernels/launch_sequence.h"

namespace corrops {
namespace cuda {

// Scratch memory, in bytes, that corr_loss_forward needs for layout l (0 when
// the tile kernel does everything); the caller allocates it on the device.
template <typename T>
size_t forward_scratch_bytes(const Layout& l) {
  return ForwardScratch<T>(l).bytes;
}
// The same for corr_loss_backward.
template <typename T>
size_t backward_scratch_bytes(const Layout& l, bool grad_time_const) {
  return BackwardScratch<T>(l, grad_time_const).bytes;
}

// T: float, double, __half, __nv_bfloat16. `mask` may be null. Writes the loss
// (outer, time, groups) and stats (rows, kStatsPerRow), as the CPU engine.
// `scratch` holds forward_scratch_bytes<T>(l) bytes (may be null when 0). A
// null `loss`: the statistics only, for corr_loss_totals.
template <typename T>
cudaError_t corr_loss_forward(const Layout& l, Method method, double eps, const T* y_true,
                              const T* y_pred, const bool* mask, T* loss, double* stats,
                              void* scratch, cudaStream_t stream);

// The per-step loss summed over time, (outer, groups), from the forward's
// stats, as the CPU engine's corr_loss_totals.
template <typename T>
cudaError_t corr_loss_totals(const Layout& l, Method method, double eps, const double* stats,
                             T* totals, cudaStream_t stream);

// Writes dL/dy_true and dL/dy_pred (either may be null: not wanted) from the
// upstream gradient and the stats. `grad` is per step (outer, time, groups),
// or (outer, 1, groups) when grad_time_const (the gradient of a mean or of
// per-sequence weights: read once per row). `scratch` holds
// backward_scratch_bytes<T>(l, grad_time_const) bytes.
template <typename T>
cudaError_t corr_loss_backward(const Layout& l, Method method, double eps, const T* grad,
                               const T* y_true, const T* y_pred, const bool* mask,
                               const double* stats, T* grad_true, T* grad_pred,
                               bool grad_time_const, void* scratch, cudaStream_t stream);

}  // namespace cuda
}  // namespace corrops
