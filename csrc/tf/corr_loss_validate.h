// Input validation of the CPU and GPU kernels: core/validate.h's checks
// (shared with the NumPy module), each failure an InvalidArgument naming the
// argument and the shapes, never a crash; attrs, eps and allocation.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "core/cpu_dispatch.h"
#include "core/validate.h"
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
  OP_REQUIRES(ctx, ParseMethod(method, &attrs->method).empty(),
              ::tensorflow::errors::InvalidArgument("unknown method ", method));
  if (ctx->HasAttr("want_grad_true")) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("want_grad_true", &attrs->want_grad_true));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("want_grad_pred", &attrs->want_grad_pred));
  }
}

inline Dims DimsOf(const ::tensorflow::TensorShape& shape) {
  const auto sizes = shape.dim_sizes();
  return Dims(sizes.begin(), sizes.end());
}

// A message from core/validate.h as the op's error.
inline ::tensorflow::Status AsStatus(const std::string& message) {
  if (message.empty()) return ::tensorflow::OkStatus();
  return ::tensorflow::errors::InvalidArgument(message);
}

// eps is a host-memory float64 scalar input (TF attrs hold only float32).
inline ::tensorflow::Status ReadEps(const ::tensorflow::Tensor& eps, double* value) {
  if (eps.dims() != 0)
    return ::tensorflow::errors::InvalidArgument("eps must be a scalar, got shape ",
                                                 eps.shape().DebugString());
  *value = eps.scalar<double>()();
  return AsStatus(CheckEps(*value));
}

// The loss shape of `layout`'s data (core/validate.h: LossDims).
inline ::tensorflow::TensorShape LossShape(const Layout& layout, int data_rank) {
  ::tensorflow::TensorShape shape;
  for (const int64_t d : LossDims(layout, static_cast<size_t>(data_rank))) shape.AddDim(d);
  return shape;
}

// Checks y_true/y_pred/mask shapes and fills the layout (the TF kernels and
// the XLA lowerings, which see shapes only).
inline ::tensorflow::Status ValidateInputs(const ::tensorflow::TensorShape& y_true,
                                           const ::tensorflow::TensorShape& y_pred,
                                           const ::tensorflow::TensorShape& mask, bool has_mask,
                                           Layout* layout) {
  TF_RETURN_IF_ERROR(AsStatus(CheckData(DimsOf(y_true), DimsOf(y_pred), layout)));
  return AsStatus(CheckMask(DimsOf(mask), has_mask, *layout, y_pred.dims()));
}

// The gradient op's grad (see core/validate.h: CheckGrad), stats and loss.
inline ::tensorflow::Status ValidateGradInputs(const ::tensorflow::TensorShape& grad,
                                               const ::tensorflow::TensorShape& stats,
                                               const ::tensorflow::TensorShape& loss,
                                               const Layout& layout, int data_rank,
                                               bool* time_const) {
  TF_RETURN_IF_ERROR(AsStatus(CheckGrad(DimsOf(grad), layout, data_rank, time_const)));
  TF_RETURN_IF_ERROR(AsStatus(CheckStats(DimsOf(stats), layout)));
  return AsStatus(CheckLossDonor(DimsOf(loss), layout, data_rank));
}

// Validates the forward op's inputs and allocates its outputs (shared by the
// CPU and GPU kernels).
inline ::tensorflow::Status PrepareForward(::tensorflow::OpKernelContext* ctx, const OpAttrs& attrs,
                                           Layout* layout, double* eps, ::tensorflow::Tensor** loss,
                                           ::tensorflow::Tensor** stats) {
  TF_RETURN_IF_ERROR(ValidateInputs(ctx->input(0).shape(), ctx->input(1).shape(),
                                    ctx->input(2).shape(), attrs.has_mask, layout));
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
  TF_RETURN_IF_ERROR(ValidateInputs(ctx->input(1).shape(), ctx->input(2).shape(),
                                    ctx->input(3).shape(), attrs.has_mask, layout));
  const int data_rank = ctx->input(2).dims();
  TF_RETURN_IF_ERROR(ValidateGradInputs(ctx->input(0).shape(), ctx->input(4).shape(),
                                        ctx->input(6).shape(), *layout, data_rank,
                                        grad_time_const));
  TF_RETURN_IF_ERROR(ReadEps(ctx->input(5), eps));
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
