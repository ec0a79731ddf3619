// The CUDA kernels of the PyTorch ops: corrops::corr_loss_forward and
// corrops::corr_loss_backward on CUDA tensors, launched by csrc/cuda's
// launchers on torch's current stream of the tensors' device, with scratch
// memory from torch's caching allocator. Only device-generic c10 headers are
// used (the current stream through c10's device guard interface), so this
// compiles against any torch build; it runs where torch has CUDA.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/library.h>

#include <cstdint>
#include <optional>
#include <string>

#include "cuda/corr_loss_cuda.h"
#include "torch/torch_checks.h"

namespace corrops {
namespace {

using torch_ops::BackwardCall;
using torch_ops::ForwardCall;
using torch_ops::PrepareBackward;
using torch_ops::PrepareForward;

cudaStream_t CurrentStream(const at::Device& device) {
  const c10::impl::VirtualGuardImpl guard(device.type());
  return static_cast<cudaStream_t>(guard.getStream(device).native_handle());
}

void Launched(cudaError_t err) {
  TORCH_CHECK(err == cudaSuccess, "corrops CUDA kernel failed: ", cudaGetErrorString(err));
}

// `bytes` of device scratch from torch's allocator (an empty tensor for 0).
at::Tensor Scratch(size_t bytes, const at::Tensor& like) {
  return at::empty({static_cast<int64_t>(bytes)}, like.options().dtype(at::kByte));
}

template <typename Fn>
void ByDtype(at::ScalarType dtype, Fn fn) {
  if (dtype == at::kDouble) return fn(double{});
  fn(float{});
}

std::tuple<at::Tensor, at::Tensor> Forward(const at::Tensor& y_true, const at::Tensor& y_pred,
                                           const std::optional<at::Tensor>& mask,
                                           c10::string_view method, double eps, bool sum_time) {
  const c10::DeviceGuard device_guard(y_pred.device());
  // sum_time: the statistics only, then the loss summed over time from them.
  ForwardCall c = PrepareForward(y_true, y_pred, mask, method, eps, sum_time);
  const cudaStream_t stream = CurrentStream(y_pred.device());
  ByDtype(y_pred.scalar_type(), [&](auto zero) {
    using T = decltype(zero);
    at::Tensor scratch = Scratch(cuda::forward_scratch_bytes<T>(c.layout), y_pred);
    T* loss = c.loss.mutable_data_ptr<T>();
    double* stats = c.stats.mutable_data_ptr<double>();
    Launched(cuda::corr_loss_forward<T>(
        c.layout, c.method, eps, y_true.const_data_ptr<T>(), y_pred.const_data_ptr<T>(), c.mask,
        sum_time ? nullptr : loss, stats, scratch.numel() ? scratch.mutable_data_ptr() : nullptr,
        stream));
    if (sum_time) Launched(cuda::corr_loss_totals<T>(c.layout, c.method, eps, stats, loss, stream));
  });
  return {c.loss, c.stats};
}

std::tuple<at::Tensor, at::Tensor> Backward(const at::Tensor& grad, const at::Tensor& y_true,
                                            const at::Tensor& y_pred,
                                            const std::optional<at::Tensor>& mask,
                                            const at::Tensor& stats, c10::string_view method,
                                            double eps, bool want_true, bool want_pred) {
  const c10::DeviceGuard device_guard(y_pred.device());
  BackwardCall c =
      PrepareBackward(grad, y_true, y_pred, mask, stats, method, eps, want_true, want_pred);
  ByDtype(y_pred.scalar_type(), [&](auto zero) {
    using T = decltype(zero);
    at::Tensor scratch = Scratch(cuda::backward_scratch_bytes<T>(c.layout, c.time_const), y_pred);
    Launched(cuda::corr_loss_backward<T>(
        c.layout, c.method, eps, grad.const_data_ptr<T>(), y_true.const_data_ptr<T>(),
        y_pred.const_data_ptr<T>(), c.mask, stats.const_data_ptr<double>(),
        c.grad_true.mutable_data_ptr<T>(), c.grad_pred.mutable_data_ptr<T>(), c.time_const,
        scratch.numel() ? scratch.mutable_data_ptr() : nullptr, CurrentStream(y_pred.device())));
  });
  return {c.grad_true, c.grad_pred};
}

}  // namespace
}  // namespace corrops

TORCH_LIBRARY_IMPL(corrops, CUDA, m) {
  m.impl("corr_loss_forward", &corrops::Forward);
  m.impl("corr_loss_backward", &corrops::Backward);
}
