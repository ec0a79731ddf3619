// CPU kernels: validate, allocate, and run csrc/core's engine over work units
// on TF's intra-op thread pool (so TF's thread settings are respected).
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/cpu_dispatch.h"
#include "core/memory_pattern.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/register_types.h"
#include "tf/corr_loss_validate.h"

namespace corrops {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Status;
using ::tensorflow::Tensor;

// Eigen::half as the IEEE binary16 bits the core's binary16 entry points take.
static_assert(sizeof(Eigen::half) == sizeof(uint16_t), "Eigen::half is binary16");
template <typename T>
const uint16_t* Bits(const T* p) {
  return reinterpret_cast<const uint16_t*>(p);
}
template <typename T>
uint16_t* Bits(T* p) {
  return reinterpret_cast<uint16_t*>(p);
}

void RunOnWorkers(OpKernelContext* ctx, const Layout& layout,
                  const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t units = num_work_units(layout);
  if (units == 0) return;
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  workers->ParallelFor(units, work_unit_cost(layout), fn);
}

// What the kernels below run over each range of work units: the fused
// engine (csrc/core), or the memory-pattern bound (core/memory_pattern.h;
// benchmarks only), which moves the engine's bytes and computes x * y. Both
// share the ops' validation, allocation, buffer reuse and thread pool.
struct FusedEngine {
  static Status Check(const Layout&) { return ::tensorflow::OkStatus(); }

  template <typename T>
  static void Forward(const Layout& l, Method method, double eps, const T* x, const T* y,
                      const bool* m, T* out, double* st, int64_t begin, int64_t end) {
    if constexpr (std::is_same_v<T, Eigen::half>)
      if (corr_loss_forward_binary16(l, method, eps, Bits(x), Bits(y), m, Bits(out), st, begin,
                                     end))
        return;
    corr_loss_forward<T>(l, method, eps, x, y, m, out, st, begin, end);
  }

  template <typename T>
  static void Backward(const Layout& l, Method method, double eps, const T* g, const T* x,
                       const T* y, const bool* m, const double* st, T* gx, T* gy, int64_t begin,
                       int64_t end, bool time_const) {
    if constexpr (std::is_same_v<T, Eigen::half>)
      if (corr_loss_backward_binary16(l, method, eps, Bits(g), Bits(x), Bits(y), m, st, Bits(gx),
                                      Bits(gy), begin, end, time_const))
        return;
    corr_loss_backward<T>(l, method, eps, g, x, y, m, st, gx, gy, begin, end, time_const);
  }
};

// One channel and one group only (the floor targets' shapes: the loss and the
// data are the same size), float32 only (the kernels are registered so).
struct MemoryPatternEngine {
  static Status Check(const Layout& l) {
    if (l.channels == 1 && l.groups == 1) return ::tensorflow::OkStatus();
    return ::tensorflow::errors::InvalidArgument(
        "MemoryPatternBound supports one channel and one group, got groups=", l.groups,
        " channels=", l.channels);
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

template <typename T, typename Engine = FusedEngine>
class CorrLossOp : public OpKernel {
 public:
  explicit CorrLossOp(OpKernelConstruction* ctx) : OpKernel(ctx) { ReadAttrs(ctx, &attrs_); }

  void Compute(OpKernelContext* ctx) override {
    Layout layout;
    double eps = 0;
    Tensor* loss = nullptr;
    Tensor* stats = nullptr;
    OP_REQUIRES_OK(ctx, PrepareForward(ctx, attrs_, &layout, &eps, &loss, &stats));
    OP_REQUIRES_OK(ctx, Engine::Check(layout));
    const Tensor& y_true = ctx->input(0);
    const Tensor& y_pred = ctx->input(1);
    const Tensor& mask = ctx->input(2);
    const T* x = y_true.flat<T>().data();
    const T* y = y_pred.flat<T>().data();
    const bool* m = attrs_.has_mask ? mask.flat<bool>().data() : nullptr;
    T* out = loss->flat<T>().data();
    double* st = stats->flat<double>().data();
    if (loss_is_all_zero(layout)) std::fill(out, out + layout.loss_elements(), T(0));
    const OpAttrs a = attrs_;
    RunOnWorkers(ctx, layout, [&](int64_t begin, int64_t end) {
      Engine::Forward(layout, a.method, eps, x, y, m, out, st, begin, end);
    });
  }

 private:
  OpAttrs attrs_;
};

template <typename T, typename Engine = FusedEngine>
class CorrLossGradOp : public OpKernel {
 public:
  explicit CorrLossGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) { ReadAttrs(ctx, &attrs_); }

  void Compute(OpKernelContext* ctx) override {
    Layout layout;
    double eps = 0;
    T* gx = nullptr;
    T* gy = nullptr;
    bool time_const = false;
    OP_REQUIRES_OK(ctx, PrepareBackward<T>(ctx, attrs_, /*may_reuse_buffers=*/true, &layout, &eps,
                                           &time_const, &gx, &gy));
    OP_REQUIRES_OK(ctx, Engine::Check(layout));
    const Tensor& grad = ctx->input(0);
    const Tensor& y_true = ctx->input(1);
    const Tensor& y_pred = ctx->input(2);
    const Tensor& mask = ctx->input(3);
    const Tensor& stats = ctx->input(4);
    const T* g = grad.flat<T>().data();
    const T* x = y_true.flat<T>().data();
    const T* y = y_pred.flat<T>().data();
    const bool* m = attrs_.has_mask ? mask.flat<bool>().data() : nullptr;
    const double* st = stats.flat<double>().data();
    const OpAttrs a = attrs_;
    RunOnWorkers(ctx, layout, [&](int64_t begin, int64_t end) {
      Engine::Backward(layout, a.method, eps, g, x, y, m, st, gx, gy, begin, end, time_const);
    });
  }

 private:
  OpAttrs attrs_;
};

REGISTER_KERNEL_BUILDER(
    Name("Corrops>MemoryPatternBound").Device(::tensorflow::DEVICE_CPU).TypeConstraint<float>("T"),
    (CorrLossOp<float, MemoryPatternEngine>));
REGISTER_KERNEL_BUILDER(Name("Corrops>MemoryPatternBoundGrad")
                            .Device(::tensorflow::DEVICE_CPU)
                            .TypeConstraint<float>("T"),
                        (CorrLossGradOp<float, MemoryPatternEngine>));

#define CORROPS_REGISTER_CPU(T)                                                             \
  REGISTER_KERNEL_BUILDER(                                                                  \
      Name("Corrops>CorrLoss").Device(::tensorflow::DEVICE_CPU).TypeConstraint<T>("T"),     \
      CorrLossOp<T>);                                                                       \
  REGISTER_KERNEL_BUILDER(                                                                  \
      Name("Corrops>CorrLossGrad").Device(::tensorflow::DEVICE_CPU).TypeConstraint<T>("T"), \
      CorrLossGradOp<T>);

CORROPS_REGISTER_CPU(Eigen::half)
CORROPS_REGISTER_CPU(Eigen::bfloat16)
CORROPS_REGISTER_CPU(float)
CORROPS_REGISTER_CPU(double)
#undef CORROPS_REGISTER_CPU

}  // namespace
}  // namespace corrops
