// PyTorch ops over csrc/core (TORCH_LIBRARY): the schemas of
// corrops::corr_loss_forward and corrops::corr_loss_backward, and their CPU
// kernels on tensors in the canonical layout. The kernels validate, allocate
// and spread the engine's work units over torch's intra-op threads; no math
// here. The CUDA kernels are in corr_loss_torch_cuda.cc; corrops/torch/
// registers the fake kernels and autograd, and reshapes user tensors.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>

#include "core/cpu_dispatch.h"
#include "torch/torch_checks.h"

namespace corrops {
namespace {

using torch_ops::BackwardCall;
using torch_ops::ForwardCall;
using torch_ops::PrepareBackward;
using torch_ops::PrepareForward;

// The fewest elements one thread takes on: a smaller chunk costs more to
// hand to a thread than to compute.
constexpr int64_t kMinChunkElements = int64_t{1} << 14;

// fn(begin, end) over [0, units) on torch's intra-op threads, in chunks of at
// least kMinChunkElements. Each unit is computed by one thread alone, so
// results do not depend on the thread count.
template <typename Fn>
void ParallelUnits(const Layout& l, Fn fn) {
  const int64_t units = num_work_units(l);
  if (units <= 0) return;
  const int64_t elements = std::max<int64_t>(1, l.elements());
  const int64_t grain = std::max<int64_t>(1, units * kMinChunkElements / elements);
  at::parallel_for(0, units, grain, fn);
}

// The fewest outer indices one thread sums the loss over time for (a few
// rows' statistics each).
constexpr int64_t kMinTotalsGrain = 4096;

// sum_time: the loss summed over time (outer, 1, groups), from the
// statistics alone; the per-step loss is never written.
std::tuple<at::Tensor, at::Tensor> Forward(const at::Tensor& y_true, const at::Tensor& y_pred,
                                           const std::optional<at::Tensor>& mask,
                                           c10::string_view method, double eps, bool sum_time) {
  ForwardCall c = PrepareForward(y_true, y_pred, mask, method, eps, sum_time);
  const Layout& l = c.layout;
  double* st = c.stats.mutable_data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(y_pred.scalar_type(), "corr_loss_forward", [&] {
    const scalar_t* x = y_true.const_data_ptr<scalar_t>();
    const scalar_t* y = y_pred.const_data_ptr<scalar_t>();
    scalar_t* out = c.loss.mutable_data_ptr<scalar_t>();
    if (loss_is_all_zero(l)) c.loss.zero_();
    ParallelUnits(l, [&](int64_t b, int64_t e) {
      corr_loss_forward<scalar_t>(l, c.method, eps, x, y, c.mask, sum_time ? nullptr : out, st, b,
                                  e);
    });
    if (sum_time)
      at::parallel_for(0, l.outer, kMinTotalsGrain, [&](int64_t b, int64_t e) {
        corr_loss_totals<scalar_t>(l, c.method, eps, st, out, b, e);
      });
  });
  return {c.loss, c.stats};
}

// A per-step gradient whose every row is one value along time (the gradient
// of a mean, which torch's autograd materialises) as its compact
// (outer, 1, groups) form, found by comparing bits; nullopt otherwise. The
// check stops at the first differing step, and for a constant gradient
// costs one read of it: the engine's compact path then reads no per-step
// gradient and is the faster one (docs/PERFORMANCE.md, "PyTorch").
template <typename T>
std::optional<at::Tensor> CompactGrad(const at::Tensor& grad, const Layout& l) {
  if (grad.size(1) != l.time || l.time < 2) return std::nullopt;
  using Bits = std::conditional_t<sizeof(T) == 8, uint64_t, uint32_t>;
  static_assert(sizeof(Bits) == sizeof(T), "float32 or float64");
  const T* g = grad.const_data_ptr<T>();
  const int64_t groups = l.groups, row = l.time * groups;
  auto bits = [](const T* p) {
    Bits b;
    std::memcpy(&b, p, sizeof(b));
    return b;
  };
  for (int64_t o = 0; o < l.outer; ++o) {  // per outer index: stops at a differing one
    const T* block = g + o * row;
    Bits diff = 0;
    if (groups == 1) {
      const Bits first = bits(block);
      for (int64_t t = 1; t < l.time; ++t) diff |= bits(block + t) ^ first;
    } else {
      for (int64_t t = 1; t < l.time; ++t)
        for (int64_t k = 0; k < groups; ++k) diff |= bits(block + t * groups + k) ^ bits(block + k);
    }
    if (diff != 0) return std::nullopt;
  }
  return grad.narrow(1, 0, 1).contiguous();
}

std::tuple<at::Tensor, at::Tensor> Backward(const at::Tensor& grad, const at::Tensor& y_true,
                                            const at::Tensor& y_pred,
                                            const std::optional<at::Tensor>& mask,
                                            const at::Tensor& stats, c10::string_view method,
                                            double eps, bool want_true, bool want_pred) {
  BackwardCall c =
      PrepareBackward(grad, y_true, y_pred, mask, stats, method, eps, want_true, want_pred);
  const Layout& l = c.layout;
  bool time_const = c.time_const;
  const double* st = stats.const_data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(y_pred.scalar_type(), "corr_loss_backward", [&] {
    at::Tensor upstream = grad;
    if (!time_const) {
      if (auto compact = CompactGrad<scalar_t>(grad, l)) {
        upstream = *compact;
        time_const = true;
      }
    }
    const scalar_t* g = upstream.const_data_ptr<scalar_t>();
    const scalar_t* x = y_true.const_data_ptr<scalar_t>();
    const scalar_t* y = y_pred.const_data_ptr<scalar_t>();
    scalar_t* gx = want_true ? c.grad_true.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* gy = want_pred ? c.grad_pred.mutable_data_ptr<scalar_t>() : nullptr;
    ParallelUnits(l, [&](int64_t b, int64_t e) {
      corr_loss_backward<scalar_t>(l, c.method, eps, g, x, y, c.mask, st, gx, gy, b, e, time_const);
    });
  });
  return {c.grad_true, c.grad_pred};
}

}  // namespace
}  // namespace corrops

// Data: (outer, time, groups, channels); mask and loss: (outer, time, groups),
// the loss with sum_time (outer, 1, groups), its sum over time;
// stats: (outer, groups * channels, 7) float64; grad: the loss shape, or
// time 1 when constant along time. A gradient not wanted is returned empty
// (shape [0]) and not computed.
TORCH_LIBRARY(corrops, m) {
  m.def(
      "corr_loss_forward(Tensor y_true, Tensor y_pred, Tensor? mask, str method, float eps, "
      "bool sum_time=False) -> (Tensor, Tensor)");
  m.def(
      "corr_loss_backward(Tensor grad, Tensor y_true, Tensor y_pred, Tensor? mask, Tensor stats, "
      "str method, float eps, bool want_true=True, bool want_pred=True) -> (Tensor, Tensor)");
  // corr_loss_backward where its own derivatives are recorded (its autograd
  // kernel calls it then): the same kernels, with the formula's autograd.
  m.def(
      "corr_loss_backward_differentiable(Tensor grad, Tensor y_true, Tensor y_pred, Tensor? mask, "
      "Tensor stats, str method, float eps, bool want_true=True, bool want_pred=True) -> (Tensor, "
      "Tensor)");
}

TORCH_LIBRARY_IMPL(corrops, CPU, m) {
  m.impl("corr_loss_forward", &corrops::Forward);
  m.impl("corr_loss_backward", &corrops::Backward);
}
