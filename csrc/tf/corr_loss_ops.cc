// Op definitions (no kernels): Corrops>CorrLoss and Corrops>CorrLossGrad.
// Data comes in the canonical layout (outer, time, groups, channels), to
// which the Python wrapper reshapes user tensors for free, or as
// (outer, time, channels) and (outer, time).
#include "tensorflow/core/framework/op.h"
#include "tf/corr_loss_shape_fns.h"

REGISTER_OP("Corrops>CorrLoss")
    .Input("y_true: T")
    .Input("y_pred: T")
    .Input("mask: bool")
    .Input("eps: double")
    .Output("loss: T")
    .Output("stats: double")
    .Attr("T: {half, bfloat16, float, double}")
    .Attr("method: {'pearson', 'ccc'} = 'pearson'")
    .Attr("has_mask: bool = false")
    .SetShapeFn(corrops::ForwardShapeFn)
    .Doc(R"doc(
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

REGISTER_OP("Corrops>CorrLossGrad")
    .Input("grad: T")
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
    .SetShapeFn(corrops::GradShapeFn)
    .Doc(R"doc(
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
