// Op definitions (no kernels): Corrops>CorrLoss and Corrops>CorrLossGrad.
// Inputs are in the canonical layout (outer, time, groups, channels); the
// Python wrapper reshapes user tensors to it for free.
#include "core/row_math.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace corrops {
namespace {

using ::tensorflow::Status;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

// Merges y_true and y_pred and, with a mask, the mask (the loss shape) into
// `data` and `loss` shapes. The data is (outer, time, groups, channels), or
// (outer, time, channels) or (outer, time) with one group; the loss is the
// data shape without its channel axis. Dimensions may be unknown (Keras
// traces with None), the rank may not.
Status DataAndLossShapes(InferenceContext* c, int first_data_input, ShapeHandle* data,
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
ShapeHandle StatsShape(InferenceContext* c, ShapeHandle data) {
  const int rank = c->Rank(data);
  DimensionHandle inner = c->MakeDim(1);
  if (rank == 4 && !c->Multiply(c->Dim(data, 2), c->Dim(data, 3), &inner).ok())
    inner = c->UnknownDim();
  if (rank == 3) inner = c->Dim(data, 2);
  return c->MakeShape({c->Dim(data, 0), inner, c->MakeDim(kStatsPerRow)});
}

using ::tensorflow::register_op::OpDefBuilderWrapper;

// The forward's and the gradient's interface, shared by the fused ops and
// their memory-pattern bound (benchmarks only; csrc/core/memory_pattern.h),
// so that a step built on either has the same graph.
OpDefBuilderWrapper& ForwardSpec(OpDefBuilderWrapper&& w) {
  return w.Input("y_true: T")
      .Input("y_pred: T")
      .Input("mask: bool")
      .Input("eps: double")
      .Output("loss: T")
      .Output("stats: double")
      .Attr("T: {half, bfloat16, float, double}")
      .Attr("method: {'pearson', 'ccc'} = 'pearson'")
      .Attr("has_mask: bool = false")
      .SetShapeFn([](InferenceContext* c) -> Status {
        ShapeHandle data, loss, eps;
        TF_RETURN_IF_ERROR(DataAndLossShapes(c, 0, &data, &loss));
        TF_RETURN_IF_ERROR(c->WithRank(c->input(3), 0, &eps));
        c->set_output(0, loss);
        c->set_output(1, StatsShape(c, data));
        return ::tensorflow::OkStatus();
      });
}

OpDefBuilderWrapper& GradSpec(OpDefBuilderWrapper&& w) {
  return w.Input("grad: T")
      .Input("y_true: T")
      .Input("y_pred: T")
      .Input("mask: bool")
      .Input("stats: double")
      .Input("eps: double")
      .Input("loss: T")
      .Output("grad_true: T")
      .Output("grad_pred: T")
      .Attr("T: {half, bfloat16, float, double}")
      .Attr("method: {'pearson', 'ccc'} = 'pearson'")
      .Attr("has_mask: bool = false")
      .Attr("want_grad_true: bool = true")
      .Attr("want_grad_pred: bool = true")
      .SetShapeFn([](InferenceContext* c) -> Status {
        ShapeHandle data, loss, g;
        TF_RETURN_IF_ERROR(DataAndLossShapes(c, 1, &data, &loss));
        // grad: the loss shape, or that shape with time 1 when constant along time.
        ShapeHandle g_const;
        const bool ok =
            c->WithRank(c->input(0), c->Rank(loss), &g).ok() &&
            (c->Merge(g, loss, &g).ok() || (c->ReplaceDim(loss, 1, c->MakeDim(1), &g_const).ok() &&
                                            c->Merge(g, g_const, &g).ok()));
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
          return ::tensorflow::errors::InvalidArgument(
              "loss must be the forward's loss ", c->DebugString(loss), " or have shape [0], got ",
              c->DebugString(c->input(6)));
        bool want_true = true, want_pred = true;
        TF_RETURN_IF_ERROR(c->GetAttr("want_grad_true", &want_true));
        TF_RETURN_IF_ERROR(c->GetAttr("want_grad_pred", &want_pred));
        c->set_output(0, want_true ? data : c->Vector(0));
        c->set_output(1, want_pred ? data : c->Vector(0));
        return ::tensorflow::OkStatus();
      });
}

}  // namespace

// REGISTER_OP's expansion, with the interface from the functions above.
#define CORROPS_REGISTER_OP(id, spec, name)                               \
  static const ::tensorflow::InitOnStartupMarker id TF_ATTRIBUTE_UNUSED = \
      ::tensorflow::InitOnStartupMarker{} << spec(OpDefBuilderWrapper(name))

CORROPS_REGISTER_OP(kCorrLoss, ForwardSpec, "Corrops>CorrLoss").Doc(R"doc(
Per-time-step correlation loss (Pearson or concordance), fused.

y_true, y_pred: (outer, time, groups, channels); one row is one
  (outer, group, channel) sequence along time. (outer, time, channels) and
  (outer, time) are taken as one group (and one channel).
mask: the loss shape, bool, when has_mask, else a tensor of shape [0].
eps: scalar float64 > 0 added to the denominator.
loss: (outer, time, groups), or (outer, time) for rank-3 and rank-2 data:
  the per-step loss averaged over channels; 0 at masked steps.
stats: (outer, groups*channels, 7) float64 per-row n, mx, my, and scaled vx, vy, cxy, inv_scale,
  consumed by CorrLossGrad.
)doc");

CORROPS_REGISTER_OP(kCorrLossGrad, GradSpec, "Corrops>CorrLossGrad").Doc(R"doc(
Gradient of Corrops>CorrLoss with respect to y_true and y_pred, fused.
grad is the upstream gradient of `loss`, or, with the loss shape's time
dimension 1, its value at every step when it is constant along time (the gradient of a
mean or sum of the loss, possibly times per-sequence weights): the CPU kernel
then makes one pass that reads no per-step gradient. stats is the forward's
`stats`. loss is the forward's `loss` (its values are not read), or a tensor
of shape [0]: when it has the gradient's element count (one channel) and no
other op still needs it, the CPU kernel writes the one wanted gradient into
its buffer (TF's input forwarding), so a training step allocates one
loss-sized buffer instead of two.
A gradient whose want_grad_* attr is false is not computed and is returned
with shape [0]. The Python gradient function sets these attrs from the
inputs the tape skips (a training step needs only the y_pred gradient).
)doc");

CORROPS_REGISTER_OP(kMemoryPatternBound, ForwardSpec, "Corrops>MemoryPatternBound").Doc(R"doc(
Benchmarks only: Corrops>CorrLoss's interface, computing loss = y_true * y_pred
(float32, one channel and group). Moves the fused forward's bytes and nothing else.
)doc");

CORROPS_REGISTER_OP(kMemoryPatternBoundGrad, GradSpec, "Corrops>MemoryPatternBoundGrad").Doc(R"doc(
Benchmarks only: Corrops>CorrLossGrad's interface, computing each wanted
gradient as y_true * y_pred (grad constant along time) or grad * y_true +
y_pred (float32, one channel and group). Moves the fused backward's bytes and
nothing else.
)doc");

}  // namespace corrops
