// The CPU OpKernels of the corrops op interface, templated on the engine they
// run over each range of work units: they validate (corr_loss_validate.h),
// allocate, lend buffers, and run Engine::Forward/Backward on TF's intra-op
// thread pool (so TF's thread settings are respected). The fused ops use the
// csrc/core engine (corr_loss_kernels.cc); the benchmarks' memory-pattern
// bound ops use loops that only move its bytes.
//
// An Engine provides
//   static Status Check(const Layout&);
//   static void Forward(layout, method, eps, x, y, mask, loss, stats, begin, end);
//   static void Backward(layout, method, eps, g, x, y, mask, stats, gx, gy, begin, end,
//                        time_const);
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>

#include "core/cpu_dispatch.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tf/corr_loss_validate.h"

namespace corrops {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

inline void RunOnWorkers(OpKernelContext* ctx, const Layout& layout,
                         const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t units = num_work_units(layout);
  if (units == 0) return;
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  workers->ParallelFor(units, work_unit_cost(layout), fn);
}

template <typename T, typename Engine>
class CorrLossOp : public OpKernel {
 public:
  explicit CorrLossOp(OpKernelConstruction* ctx) : OpKernel(ctx) { ReadAttrs(ctx, &attrs_); }

  void Compute(OpKernelContext* ctx) override {
    Layout layout;
    double eps = 0;
    Tensor* loss = nullptr;
    Tensor* stats = nullptr;
    OP_REQUIRES_OK(ctx, PrepareForward(ctx, attrs_, &layout, &eps, &loss, &stats));
    const std::string unsupported = Engine::Check(layout);
    OP_REQUIRES(ctx, unsupported.empty(), ::tensorflow::errors::InvalidArgument(unsupported));
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

template <typename T, typename Engine>
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
    const std::string unsupported = Engine::Check(layout);
    OP_REQUIRES(ctx, unsupported.empty(), ::tensorflow::errors::InvalidArgument(unsupported));
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

}  // namespace corrops
