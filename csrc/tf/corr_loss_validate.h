// Input validation shared by the CPU and GPU kernels: every bad input becomes
// an InvalidArgument naming the argument and the shapes, never a crash.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "core/cpu_dispatch.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace corrops {

struct OpAttrs {
  Method method = Method::kPearson;
  bool has_mask = false;
  // CorrLossGrad only: which gradients to compute.
  bool want_grad_true = true;
  bool want_grad_pred = true;
};

inline void ReadAttrs(::tensorflow::OpKernelConstruction* ctx, OpAttrs* attrs) {
  std::string method;
  OP_REQUIRES_OK(ctx, ctx->GetAttr("method", &method));
  OP_REQUIRES_OK(ctx, ctx->GetAttr("has_mask", &attrs->has_mask));
  attrs->method = method == "ccc" ? Method::kCcc : Method::kPearson;
  if (ctx->HasAttr("want_grad_true")) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("want_grad_true", &attrs->want_grad_true));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("want_grad_pred", &attrs->want_grad_pred));
  }
}

// eps is a host-memory float64 scalar input (TF attrs hold only float32).
inline ::tensorflow::Status ReadEps(const ::tensorflow::Tensor& eps, double* value) {
  using ::tensorflow::errors::InvalidArgument;
  if (eps.dims() != 0)
    return InvalidArgument("eps must be a scalar, got shape ", eps.shape().DebugString());
  *value = eps.scalar<double>()();
  if (!(std::isfinite(*value) && *value > 0.0))
    return InvalidArgument("eps must be finite and > 0, got ", *value);
  return ::tensorflow::OkStatus();
}

// The layouts the ops take: the canonical (outer, time, groups, channels),
// or, as a user passes them (no reshape needed), (outer, time, channels) and
// (outer, time), with one group (and one channel). The loss shape is the data
// shape without its channel axis: (outer, time, groups), or (outer, time).
inline ::tensorflow::TensorShape LossShape(const Layout& layout, int data_rank) {
  if (data_rank == 4) return ::tensorflow::TensorShape({layout.outer, layout.time, layout.groups});
  return ::tensorflow::TensorShape({layout.outer, layout.time});
}

// Checks y_true/y_pred/mask and fills the layout.
inline ::tensorflow::Status ValidateInputs(const ::tensorflow::Tensor& y_true,
                                           const ::tensorflow::Tensor& y_pred,
                                           const ::tensorflow::Tensor& mask, bool has_mask,
                                           Layout* layout) {
  using ::tensorflow::errors::InvalidArgument;
  const int rank = y_pred.dims();
  if (y_true.dims() != rank || rank < 2 || rank > 4)
    return InvalidArgument(
        "y_true and y_pred must have rank 4 (outer, time, groups, channels), 3 (outer, time, "
        "channels) or 2 (outer, time); got y_true ",
        y_true.shape().DebugString(), " and y_pred ", y_pred.shape().DebugString());
  if (y_true.shape() != y_pred.shape())
    return InvalidArgument("y_true and y_pred must have the same shape; got y_true ",
                           y_true.shape().DebugString(), " and y_pred ",
                           y_pred.shape().DebugString());
  layout->outer = y_pred.dim_size(0);
  layout->time = y_pred.dim_size(1);
  layout->groups = rank == 4 ? y_pred.dim_size(2) : 1;
  layout->channels = rank >= 3 ? y_pred.dim_size(rank - 1) : 1;
  if (has_mask) {
    const ::tensorflow::TensorShape want = LossShape(*layout, rank);
    if (mask.shape() != want)
      return InvalidArgument("mask must have shape ", want.DebugString(), " (the loss shape), got ",
                             mask.shape().DebugString());
  } else if (!(mask.dims() == 1 && mask.dim_size(0) == 0)) {
    return InvalidArgument("mask must have shape [0] when has_mask is false, got ",
                           mask.shape().DebugString());
  }
  return ::tensorflow::OkStatus();
}

// grad has the loss shape, or that shape with time 1 for an upstream
// gradient constant along time (*time_const is then true, unless time == 1,
// where the two shapes are the same thing).
inline ::tensorflow::Status ValidateGradInputs(const ::tensorflow::Tensor& grad,
                                               const ::tensorflow::Tensor& stats,
                                               const Layout& layout, int data_rank,
                                               bool* time_const) {
  using ::tensorflow::errors::InvalidArgument;
  const ::tensorflow::TensorShape want_grad = LossShape(layout, data_rank);
  ::tensorflow::TensorShape want_const = want_grad;
  want_const.set_dim(1, 1);
  *time_const = layout.time != 1 && grad.shape() == want_const;
  if (grad.shape() != want_grad && !*time_const)
    return InvalidArgument("grad must have the loss shape ", want_grad.DebugString(), " (or ",
                           want_const.DebugString(), " when constant along time), got ",
                           grad.shape().DebugString());
  const ::tensorflow::TensorShape want_stats({layout.outer, layout.inner(), kStatsPerRow});
  if (stats.shape() != want_stats)
    return InvalidArgument("stats must have shape ", want_stats.DebugString(), ", got ",
                           stats.shape().DebugString());
  return ::tensorflow::OkStatus();
}

// The gradient op's `loss` input: the forward's loss, or shape [0] (none).
inline ::tensorflow::Status ValidateLossDonor(const ::tensorflow::Tensor& loss,
                                              const Layout& layout, int data_rank) {
  const ::tensorflow::TensorShape want = LossShape(layout, data_rank);
  if (loss.shape() == want || loss.shape() == ::tensorflow::TensorShape({0}))
    return ::tensorflow::OkStatus();
  return ::tensorflow::errors::InvalidArgument("loss must be the forward's loss ",
                                               want.DebugString(), " or have shape [0], got ",
                                               loss.shape().DebugString());
}

// Validates the forward op's inputs and allocates its outputs (shared by the
// CPU and GPU kernels).
inline ::tensorflow::Status PrepareForward(::tensorflow::OpKernelContext* ctx, const OpAttrs& attrs,
                                           Layout* layout, double* eps, ::tensorflow::Tensor** loss,
                                           ::tensorflow::Tensor** stats) {
  TF_RETURN_IF_ERROR(
      ValidateInputs(ctx->input(0), ctx->input(1), ctx->input(2), attrs.has_mask, layout));
  TF_RETURN_IF_ERROR(ReadEps(ctx->input(3), eps));
  TF_RETURN_IF_ERROR(ctx->allocate_output(0, LossShape(*layout, ctx->input(1).dims()), loss));
  return ctx->allocate_output(1, {layout->outer, layout->inner(), kStatsPerRow}, stats);
}

// Validates the gradient op's inputs (grad, y_true, y_pred, mask, stats, eps,
// loss) and allocates the gradients asked for; one not asked for gets shape
// [0] and its pointer is set to null. *grad_time_const: see
// ValidateGradInputs. With `may_reuse_buffers` (CPU), a single wanted
// gradient takes over a buffer TF can forward to it (same element count,
// i.e. one channel, and no other reader): the per-step upstream gradient's,
// which the engine then reads just before overwriting each element, or else
// the forward's loss, whose values are never read. One loss-sized allocation
// fewer per step; on the CPU that also means no first-touch page faults when
// the allocator has handed the previous step's memory back to the kernel.
template <typename T>
::tensorflow::Status PrepareBackward(::tensorflow::OpKernelContext* ctx, const OpAttrs& attrs,
                                     bool may_reuse_buffers, Layout* layout, double* eps,
                                     bool* grad_time_const, T** grad_true, T** grad_pred) {
  TF_RETURN_IF_ERROR(
      ValidateInputs(ctx->input(1), ctx->input(2), ctx->input(3), attrs.has_mask, layout));
  const int data_rank = ctx->input(2).dims();
  TF_RETURN_IF_ERROR(
      ValidateGradInputs(ctx->input(0), ctx->input(4), *layout, data_rank, grad_time_const));
  TF_RETURN_IF_ERROR(ReadEps(ctx->input(5), eps));
  TF_RETURN_IF_ERROR(ValidateLossDonor(ctx->input(6), *layout, data_rank));
  // A time-constant g has no per-step buffer; then only the loss can lend one.
  const std::vector<int> donors = *grad_time_const ? std::vector<int>{6} : std::vector<int>{0, 6};
  const bool reuse = may_reuse_buffers && attrs.want_grad_true != attrs.want_grad_pred;
  const bool want[2] = {attrs.want_grad_true, attrs.want_grad_pred};
  T** out[2] = {grad_true, grad_pred};
  for (int i = 0; i < 2; ++i) {
    ::tensorflow::Tensor* t = nullptr;
    if (!want[i]) {
      TF_RETURN_IF_ERROR(ctx->allocate_output(i, ::tensorflow::TensorShape({0}), &t));
      *out[i] = nullptr;
      continue;
    }
    const ::tensorflow::TensorShape& shape = ctx->input(1 + i).shape();
    if (reuse)
      TF_RETURN_IF_ERROR(ctx->forward_input_or_allocate_output(donors, i, shape, &t));
    else
      TF_RETURN_IF_ERROR(ctx->allocate_output(i, shape, &t));
    *out[i] = t->flat<T>().data();
  }
  return ::tensorflow::OkStatus();
}

}  // namespace corrops
