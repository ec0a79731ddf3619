// CUDA launchers: raw device pointers and a stream in, a cudaError_t out (the
// TF kernel turns a failure into an op error). The row math is csrc/core's
// (row_math.h, HOST_DEVICE); this layer only maps rows onto threads.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "core/row_math.h"

namespace corrops {
namespace cuda {

// T: float, double, __half, __nv_bfloat16. `mask` may be null. Writes the loss
// (outer, time, groups) and stats (rows, kStatsPerRow), as the CPU engine.
template <typename T>
cudaError_t corr_loss_forward(const Layout& l, Method method, double eps, const T* y_true,
                              const T* y_pred, const bool* mask, T* loss, double* stats,
                              cudaStream_t stream);

// Writes dL/dy_true and dL/dy_pred from the upstream gradient and the stats.
template <typename T>
cudaError_t corr_loss_backward(const Layout& l, Method method, double eps, const T* grad,
                               const T* y_true, const T* y_pred, const bool* mask,
                               const double* stats, T* grad_true, T* grad_pred,
                               cudaStream_t stream);

// Broadcasts an upstream gradient that is constant along time, `grad` of
// shape (outer, 1, groups), into `out` of the loss shape (outer, time,
// groups), for corr_loss_backward (the GPU kernels take per-step gradients).
template <typename T>
cudaError_t broadcast_along_time(const Layout& l, const T* grad, T* out, cudaStream_t stream);

}  // namespace cuda
}  // namespace corrops
