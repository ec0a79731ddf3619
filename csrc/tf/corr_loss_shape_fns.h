// Shape functions of the corrops ops: the fused ops (corr_loss_ops.cc) and
// the benchmarks' memory-pattern bound ops, which share their interface.
#pragma once

#include "core/row_math.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace corrops {

using ::tensorflow::Status;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

// Merges y_true and y_pred and, with a mask, the mask (the loss shape) into
// `data` and `loss` shapes. The data is (outer, time, groups, channels), or
// (outer, time, channels) or (outer, time) with one group; the loss is the
// data shape without its channel axis. Dimensions may be unknown (Keras
// traces with None), the rank may not.
inline Status DataAndLossShapes(InferenceContext* c, int first_data_input, ShapeHandle* data,
                                ShapeHandle* loss) {
  using ::tensorflow::errors::InvalidArgument;
  const ShapeHandle in_true = c->input(first_data_input);
  const ShapeHandle in_pred = c->input(first_data_input + 1);
  const int rank = c->Rank(in_pred);
  if (!c->RankKnown(in_true) || !c->RankKnown(in_pred) || c->Rank(in_true) != rank || rank < 2 ||
      rank > 4)
    return InvalidArgument(
        "y_true and y_pred must have rank 4 (outer, time, groups, channels), 3 (outer, time, "
        "channels) or 2 (outer, time); got y_true ",
        c->DebugString(in_true), " and y_pred ", c->DebugString(in_pred));
  if (!c->Merge(in_true, in_pred, data).ok())
    return InvalidArgument("y_true and y_pred must have the same shape; got y_true ",
                           c->DebugString(in_true), " and y_pred ", c->DebugString(in_pred));
  const int loss_rank = rank == 4 ? 3 : 2;
  ShapeHandle prefix;
  TF_RETURN_IF_ERROR(c->Subshape(*data, 0, loss_rank, &prefix));
  bool has_mask = false;
  TF_RETURN_IF_ERROR(c->GetAttr("has_mask", &has_mask));
  if (has_mask) {
    ShapeHandle m = c->input(first_data_input + 2);
    if (!c->WithRank(m, loss_rank, &m).ok() || !c->Merge(prefix, m, &prefix).ok())
      return InvalidArgument("mask must have the loss shape ", c->DebugString(prefix), ", got ",
                             c->DebugString(c->input(first_data_input + 2)));
    // Feed the merged dims back into the data shape.
    ShapeHandle rest;
    TF_RETURN_IF_ERROR(c->Subshape(*data, loss_rank, &rest));
    TF_RETURN_IF_ERROR(c->Concatenate(prefix, rest, data));
  }
  *loss = prefix;
  return ::tensorflow::OkStatus();
}

// (outer, groups * channels, kStatsPerRow): one row of statistics per sequence.
inline ShapeHandle StatsShape(InferenceContext* c, ShapeHandle data) {
  const int rank = c->Rank(data);
  DimensionHandle inner = c->MakeDim(1);
  if (rank == 4 && !c->Multiply(c->Dim(data, 2), c->Dim(data, 3), &inner).ok())
    inner = c->UnknownDim();
  if (rank == 3) inner = c->Dim(data, 2);
  return c->MakeShape({c->Dim(data, 0), inner, c->MakeDim(kStatsPerRow)});
}

// Forward (y_true, y_pred, mask, eps) -> (loss, stats).
inline Status ForwardShapeFn(InferenceContext* c) {
  ShapeHandle data, loss, eps;
  TF_RETURN_IF_ERROR(DataAndLossShapes(c, 0, &data, &loss));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(3), 0, &eps));
  c->set_output(0, loss);
  c->set_output(1, StatsShape(c, data));
  return ::tensorflow::OkStatus();
}

// Gradient (grad, y_true, y_pred, mask, stats, eps, loss) -> (grad_true, grad_pred).
inline Status GradShapeFn(InferenceContext* c) {
  ShapeHandle data, loss, g;
  TF_RETURN_IF_ERROR(DataAndLossShapes(c, 1, &data, &loss));
  // grad: the loss shape, or that shape with time 1 when constant along time.
  ShapeHandle g_const;
  const bool ok =
      c->WithRank(c->input(0), c->Rank(loss), &g).ok() &&
      (c->Merge(g, loss, &g).ok() ||
       (c->ReplaceDim(loss, 1, c->MakeDim(1), &g_const).ok() && c->Merge(g, g_const, &g).ok()));
  if (!ok)
    return ::tensorflow::errors::InvalidArgument(
        "grad must have the loss shape ", c->DebugString(loss),
        " (or time dimension 1 when constant along time), got ", c->DebugString(c->input(0)));
  ShapeHandle st;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(4), 3, &st));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(5), 0, &st));
  ShapeHandle donor;
  if (!c->Merge(c->input(6), c->Vector(0), &donor).ok() &&
      !c->Merge(c->input(6), loss, &donor).ok())
    return ::tensorflow::errors::InvalidArgument("loss must be the forward's loss ",
                                                 c->DebugString(loss), " or have shape [0], got ",
                                                 c->DebugString(c->input(6)));
  bool want_true = true, want_pred = true;
  TF_RETURN_IF_ERROR(c->GetAttr("want_grad_true", &want_true));
  TF_RETURN_IF_ERROR(c->GetAttr("want_grad_pred", &want_pred));
  c->set_output(0, want_true ? data : c->Vector(0));
  c->set_output(1, want_pred ? data : c->Vector(0));
  return ::tensorflow::OkStatus();
}

}  // namespace corrops
