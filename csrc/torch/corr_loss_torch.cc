// PyTorch ops over csrc/core (TORCH_LIBRARY): the schemas of
// corrops::corr_loss_forward and corrops::corr_loss_backward, and their CPU
// kernels on tensors in the canonical layout. The kernels validate, allocate
// and spread the engine's work units over torch's intra-op threads; no math
// here. The CUDA kernels are in corr_loss_torch_cuda.cc; corrops/torch/
// registers the fake kernels and autograd, and reshapes user tensors.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cstdint>
#include <optional>
#include <string>

#include "core/cpu_dispatch.h"
#include "torch/torch_checks.h"

namespace corrops {
namespace {

using torch_ops::CheckBackward;
using torch_ops::CheckInputs;
using torch_ops::MethodOf;
using torch_ops::Require;

// Below this many elements a call runs on the calling thread only (thread
// start-up costs more than the work).
constexpr int64_t kParallelThreshold = 1 << 16;

// fn(begin, end) over [0, units) on torch's intra-op threads. Each unit is
// computed by one thread alone, so results do not depend on the thread count.
template <typename Fn>
void ParallelUnits(const Layout& l, Fn fn) {
  const int64_t units = num_work_units(l);
  if (units <= 0) return;
  const int64_t grain = l.elements() < kParallelThreshold ? units : 1;
  at::parallel_for(0, units, grain, fn);
}

std::tuple<at::Tensor, at::Tensor> Forward(const at::Tensor& y_true, const at::Tensor& y_pred,
                                           const std::optional<at::Tensor>& mask,
                                           const std::string& method, double eps) {
  const Method m = MethodOf(method);
  Require(CheckEps(eps));
  const Layout l = CheckInputs(y_true, y_pred, mask);
  at::Tensor loss = at::empty(LossDims(l, y_pred.dim()), y_pred.options());
  at::Tensor stats =
      at::empty({l.outer, l.inner(), kStatsPerRow}, y_pred.options().dtype(at::kDouble));
  const bool* mk = mask ? mask->const_data_ptr<bool>() : nullptr;
  double* st = stats.mutable_data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(y_pred.scalar_type(), "corr_loss_forward", [&] {
    const scalar_t* x = y_true.const_data_ptr<scalar_t>();
    const scalar_t* y = y_pred.const_data_ptr<scalar_t>();
    scalar_t* out = loss.mutable_data_ptr<scalar_t>();
    if (loss_is_all_zero(l)) loss.zero_();
    ParallelUnits(l, [&](int64_t b, int64_t e) {
      corr_loss_forward<scalar_t>(l, m, eps, x, y, mk, out, st, b, e);
    });
  });
  return {loss, stats};
}

std::tuple<at::Tensor, at::Tensor> Backward(const at::Tensor& grad, const at::Tensor& y_true,
                                            const at::Tensor& y_pred,
                                            const std::optional<at::Tensor>& mask,
                                            const at::Tensor& stats, const std::string& method,
                                            double eps) {
  const Method m = MethodOf(method);
  Require(CheckEps(eps));
  const Layout l = CheckInputs(y_true, y_pred, mask);
  const bool time_const = CheckBackward(grad, stats, l, y_pred);
  at::Tensor grad_true = at::empty(y_true.sizes(), y_true.options());
  at::Tensor grad_pred = at::empty(y_pred.sizes(), y_pred.options());
  const bool* mk = mask ? mask->const_data_ptr<bool>() : nullptr;
  const double* st = stats.const_data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(y_pred.scalar_type(), "corr_loss_backward", [&] {
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    const scalar_t* x = y_true.const_data_ptr<scalar_t>();
    const scalar_t* y = y_pred.const_data_ptr<scalar_t>();
    scalar_t* gx = grad_true.mutable_data_ptr<scalar_t>();
    scalar_t* gy = grad_pred.mutable_data_ptr<scalar_t>();
    ParallelUnits(l, [&](int64_t b, int64_t e) {
      corr_loss_backward<scalar_t>(l, m, eps, g, x, y, mk, st, gx, gy, b, e, time_const);
    });
  });
  return {grad_true, grad_pred};
}

}  // namespace
}  // namespace corrops

// Data: (outer, time, groups, channels); mask and loss: (outer, time, groups);
// stats: (outer, groups * channels, 7) float64; grad: the loss shape, or
// time 1 when constant along time.
TORCH_LIBRARY(corrops, m) {
  m.def(
      "corr_loss_forward(Tensor y_true, Tensor y_pred, Tensor? mask, str method, float eps) "
      "-> (Tensor, Tensor)");
  m.def(
      "corr_loss_backward(Tensor grad, Tensor y_true, Tensor y_pred, Tensor? mask, Tensor stats, "
      "str method, float eps) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(corrops, CPU, m) {
  m.impl("corr_loss_forward", &corrops::Forward);
  m.impl("corr_loss_backward", &corrops::Backward);
}
