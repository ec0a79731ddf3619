// The memory-pattern bound ops, for the benchmarks only (not part of the
// installed library): Corrops>MemoryPatternBound and ...BoundGrad have the
// fused ops' interface, shape functions, validation, allocation, buffer
// reuse and thread pool, and run memory_pattern.h's loops in place of the
// engine, so a training step built on them is the fastest any kernel of the
// fused op's structure can make it. benchmarks/bound_ops.py builds this
// library, loads it and registers the gradient.
#include <algorithm>
#include <cstdint>
#include <string>

#include "bound_ops_src/memory_pattern.h"
#include "core/cpu_dispatch.h"
#include "tensorflow/core/framework/op.h"
#include "tf/corr_loss_cpu_kernels.h"
#include "tf/corr_loss_shape_fns.h"

REGISTER_OP("Corrops>MemoryPatternBound")
    .Input("y_true: T")
    .Input("y_pred: T")
    .Input("mask: bool")
    .Input("eps: double")
    .Output("loss: T")
    .Output("stats: double")
    .Attr("T: {float}")
    .Attr("method: {'pearson', 'ccc'} = 'pearson'")
    .Attr("has_mask: bool = false")
    .SetShapeFn(corrops::ForwardShapeFn)
    .Doc(R"doc(
Corrops>CorrLoss's interface, computing loss = y_true * y_pred (one channel
and group). Moves the fused forward's bytes and nothing else; stats are 0.
)doc");

REGISTER_OP("Corrops>MemoryPatternBoundGrad")
    .Input("grad: T")
    .Input("y_true: T")
    .Input("y_pred: T")
    .Input("mask: bool")
    .Input("stats: double")
    .Input("eps: double")
    .Input("loss: T")
    .Output("grad_true: T")
    .Output("grad_pred: T")
    .Attr("T: {float}")
    .Attr("method: {'pearson', 'ccc'} = 'pearson'")
    .Attr("has_mask: bool = false")
    .Attr("want_grad_true: bool = true")
    .Attr("want_grad_pred: bool = true")
    .SetShapeFn(corrops::GradShapeFn)
    .Doc(R"doc(
Corrops>CorrLossGrad's interface, computing each wanted gradient as
y_true * y_pred (grad constant along time) or grad * y_true + y_pred. Moves
the fused backward's bytes and nothing else.
)doc");

namespace corrops {
namespace {

// One channel and one group only (the floor targets' shapes: the loss and the
// data are the same size), float32 only (the kernels are registered so).
struct MemoryPatternEngine {
  static std::string Check(const Layout& l) {
    if (l.channels == 1 && l.groups == 1) return "";
    return "MemoryPatternBound supports one channel and one group, got groups=" +
           std::to_string(l.groups) + " channels=" + std::to_string(l.channels);
  }

  static void Forward(const Layout& l, Method, double, const float* x, const float* y, const bool*,
                      float* out, double* st, int64_t begin, int64_t end) {
    std::fill(st + begin * kStatsPerRow, st + end * kStatsPerRow, 0.0);
    // As the engine's forward: the loss streamed when x, y and it exceed the threshold.
    const bool stream = streams_outputs(3 * l.elements() * int64_t{sizeof(float)});
    memory_pattern_read2_write1(x, y, out, begin * l.time, end * l.time, stream);
  }

  static void Backward(const Layout& l, Method, double, const float* g, const float* x,
                       const float* y, const bool*, const double*, float* gx, float* gy,
                       int64_t begin, int64_t end, bool time_const) {
    // As the engine's backward: x, y, a per-step g unless constant along time
    // (then one value per row, not read per step), and the wanted gradients.
    const int64_t arrays = 2 + (time_const ? 0 : 1) + (gx ? 1 : 0) + (gy ? 1 : 0);
    const bool stream = streams_outputs(arrays * l.elements() * int64_t{sizeof(float)});
    for (float* out : {gx, gy}) {
      if (!out) continue;
      if (time_const)
        memory_pattern_read2_write1(x, y, out, begin * l.time, end * l.time, stream);
      else
        memory_pattern_read3_write1(g, x, y, out, begin * l.time, end * l.time, stream);
    }
  }
};

REGISTER_KERNEL_BUILDER(
    Name("Corrops>MemoryPatternBound").Device(::tensorflow::DEVICE_CPU).TypeConstraint<float>("T"),
    (CorrLossOp<float, MemoryPatternEngine>));
REGISTER_KERNEL_BUILDER(Name("Corrops>MemoryPatternBoundGrad")
                            .Device(::tensorflow::DEVICE_CPU)
                            .TypeConstraint<float>("T"),
                        (CorrLossGradOp<float, MemoryPatternEngine>));

}  // namespace
}  // namespace corrops
