// Argument checks and outputs of the PyTorch ops, shared by their CPU and
// CUDA kernels: core/validate.h's checks on torch tensors, each failure a
// ValueError or TypeError in Python naming the operand, then the outputs
// allocated like the inputs (PrepareForward, PrepareBackward).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <optional>
#include <string>

#include "core/row_math.h"
#include "core/validate.h"

namespace corrops {
namespace torch_ops {

inline void Require(const std::string& message) { TORCH_CHECK_VALUE(message.empty(), message); }

inline Dims DimsOf(const at::Tensor& t) { return Dims(t.sizes().begin(), t.sizes().end()); }

inline Method MethodOf(c10::string_view view) {
  const std::string name(view);
  Method method = Method::kPearson;
  Require(ParseMethod(name, &method));
  return method;
}

// A dense operand of `dtype` on `device`.
inline void RequireDense(const at::Tensor& t, const char* name, at::ScalarType dtype,
                         const at::Device& device) {
  TORCH_CHECK_VALUE(t.device() == device, name, " must be on ", device, ", got ", t.device());
  TORCH_CHECK_TYPE(t.scalar_type() == dtype, name, " must have dtype ", dtype, ", got ",
                   t.scalar_type());
  TORCH_CHECK_VALUE(t.is_contiguous(), name, " must be contiguous");
}

// The data (float32 or float64, y_pred's device) and the mask; the layout.
inline Layout CheckInputs(const at::Tensor& x, const at::Tensor& y,
                          const std::optional<at::Tensor>& mask) {
  TORCH_CHECK_TYPE(y.scalar_type() == at::kFloat || y.scalar_type() == at::kDouble,
                   "y_pred must be float32 or float64, got ", y.scalar_type());
  RequireDense(x, "y_true", y.scalar_type(), y.device());
  RequireDense(y, "y_pred", y.scalar_type(), y.device());
  Layout l;
  Require(CheckData(DimsOf(x), DimsOf(y), &l));
  if (mask) {
    RequireDense(*mask, "mask", at::kBool, y.device());
    Require(CheckMask(DimsOf(*mask), /*has_mask=*/true, l, y.dim()));
  }
  return l;
}

// The backward's upstream gradient and stats; returns whether the gradient
// is constant along time (the compact form).
inline bool CheckBackward(const at::Tensor& grad, const at::Tensor& stats, const Layout& l,
                          const at::Tensor& y) {
  RequireDense(grad, "grad", y.scalar_type(), y.device());
  bool time_const = false;
  Require(CheckGrad(DimsOf(grad), l, y.dim(), &time_const));
  RequireDense(stats, "stats", at::kDouble, y.device());
  Require(CheckStats(DimsOf(stats), l));
  return time_const;
}

// A backward output: like `input`, or empty (shape [0]) when not wanted.
inline at::Tensor GradOutput(const at::Tensor& input, bool wanted) {
  return at::empty(wanted ? input.sizes() : at::IntArrayRef{0}, input.options());
}

inline const bool* MaskData(const std::optional<at::Tensor>& mask) {
  return mask ? mask->const_data_ptr<bool>() : nullptr;
}

// A checked forward call: its method, layout, mask and outputs.
struct ForwardCall {
  Method method;
  Layout layout;
  const bool* mask;
  at::Tensor loss, stats;
};

// `loss` is per step (outer, time, groups), or with sum_time its sum over
// time (outer, 1, groups).
inline ForwardCall PrepareForward(const at::Tensor& y_true, const at::Tensor& y_pred,
                                  const std::optional<at::Tensor>& mask, c10::string_view method,
                                  double eps, bool sum_time) {
  const Method m = MethodOf(method);
  Require(CheckEps(eps));
  const Layout l = CheckInputs(y_true, y_pred, mask);
  Dims loss_dims = LossDims(l, y_pred.dim());
  if (sum_time) loss_dims[1] = 1;
  return {m, l, MaskData(mask), at::empty(loss_dims, y_pred.options()),
          at::empty({l.outer, l.inner(), kStatsPerRow}, y_pred.options().dtype(at::kDouble))};
}

// A checked backward call: its method, layout, mask, whether the upstream
// gradient is in the compact form, and the gradients (empty when not wanted).
struct BackwardCall {
  Method method;
  Layout layout;
  const bool* mask;
  bool time_const;
  at::Tensor grad_true, grad_pred;
};

inline BackwardCall PrepareBackward(const at::Tensor& grad, const at::Tensor& y_true,
                                    const at::Tensor& y_pred, const std::optional<at::Tensor>& mask,
                                    const at::Tensor& stats, c10::string_view method, double eps,
                                    bool want_true, bool want_pred) {
  const Method m = MethodOf(method);
  Require(CheckEps(eps));
  const Layout l = CheckInputs(y_true, y_pred, mask);
  const bool time_const = CheckBackward(grad, stats, l, y_pred);
  return {m,
          l,
          MaskData(mask),
          time_const,
          GradOutput(y_true, want_true),
          GradOutput(y_pred, want_pred)};
}

}  // namespace torch_ops
}  // namespace corrops
