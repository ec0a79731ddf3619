// PyTorch ops over csrc/core (TORCH_LIBRARY): corrops::corr_loss_forward and
// corrops::corr_loss_backward on CPU tensors in the canonical layout. They
// validate, allocate and spread the engine's work units over torch's
// intra-op threads; no math here. corrops/torch/ registers their fake
// kernels and autograd, and reshapes user tensors to this layout.
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
#include "core/validate.h"

namespace corrops {
namespace {

// Below this many elements a call runs on the calling thread only (thread
// start-up costs more than the work).
constexpr int64_t kParallelThreshold = 1 << 16;

// core/validate.h's message as a ValueError in Python.
void Require(const std::string& message) { TORCH_CHECK_VALUE(message.empty(), message); }

Dims DimsOf(const at::Tensor& t) { return Dims(t.sizes().begin(), t.sizes().end()); }

Method MethodOf(const std::string& name) {
  Method method = Method::kPearson;
  Require(ParseMethod(name, &method));
  return method;
}

void RequireDense(const at::Tensor& t, const char* name, at::ScalarType dtype) {
  TORCH_CHECK_VALUE(t.device().is_cpu(), name, " must be a CPU tensor, got ", t.device());
  TORCH_CHECK_TYPE(t.scalar_type() == dtype, name, " must have dtype ", dtype, ", got ",
                   t.scalar_type());
  TORCH_CHECK_VALUE(t.is_contiguous(), name, " must be contiguous");
}

Layout CheckInputs(const at::Tensor& x, const at::Tensor& y,
                   const std::optional<at::Tensor>& mask) {
  TORCH_CHECK_TYPE(y.scalar_type() == at::kFloat || y.scalar_type() == at::kDouble,
                   "y_pred must be float32 or float64, got ", y.scalar_type());
  RequireDense(x, "y_true", y.scalar_type());
  RequireDense(y, "y_pred", y.scalar_type());
  Layout l;
  Require(CheckData(DimsOf(x), DimsOf(y), &l));
  if (mask) {
    RequireDense(*mask, "mask", at::kBool);
    Require(CheckMask(DimsOf(*mask), /*has_mask=*/true, l, y.dim()));
  }
  return l;
}

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
  RequireDense(grad, "grad", y_pred.scalar_type());
  bool time_const = false;
  Require(CheckGrad(DimsOf(grad), l, y_pred.dim(), &time_const));
  RequireDense(stats, "stats", at::kDouble);
  Require(CheckStats(DimsOf(stats), l));
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
