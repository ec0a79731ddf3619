// The "Host" handlers of the corrops custom calls (corr_loss_custom_call.h),
// as functions: check the buffers (custom_call_buffers.h), then run the CPU
// engine (host/fused_engine.h, as the TF CPU kernels do) over its work units
// on XLA's intra-op thread pool. TF's XLA registers them at load
// (tf_xla/corr_loss_ffi_cpu.cc); the JAX binding exports them for jax.ffi
// (jax/corr_loss_ffi_jax.cc). Each build compiles them against its own
// framework's FFI headers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "host/fused_engine.h"
#include "xla_ffi/custom_call_buffers.h"
#include "xla_ffi/pool_parallel_for.h"

namespace corrops {

inline ffi::Error ForwardHost(ffi::ThreadPool pool, ffi::AnyBuffer y_true, ffi::AnyBuffer y_pred,
                              ffi::AnyBuffer mask, ffi::Result<ffi::AnyBuffer> loss,
                              ffi::Result<ffi::AnyBuffer> stats, int32_t method, double eps,
                              int32_t has_mask) {
  Layout l;
  const std::string message = CheckForward(y_true, y_pred, mask, *loss, *stats, has_mask, eps, &l);
  if (!message.empty()) return ffi::Error::InvalidArgument("corrops forward: " + message);
  const Method m = static_cast<Method>(method);
  const bool* mk = has_mask ? static_cast<const bool*>(mask.untyped_data()) : nullptr;
  return ForElementType<Binary16, Bfloat16>(y_pred.element_type(), [&](auto zero) {
    using T = decltype(zero);
    const T* x = static_cast<const T*>(y_true.untyped_data());
    const T* y = static_cast<const T*>(y_pred.untyped_data());
    T* out = static_cast<T*>(loss->untyped_data());
    double* st = static_cast<double*>(stats->untyped_data());
    if (loss_is_all_zero(l)) std::fill(out, out + l.loss_elements(), zero);
    ParallelForOnPool(pool, num_work_units(l), work_unit_cost(l), [&](int64_t b, int64_t e) {
      FusedEngine::Forward<T>(l, m, eps, x, y, mk, out, st, b, e);
    });
    return ffi::Error::Success();
  });
}

inline ffi::Error BackwardHost(ffi::ThreadPool pool, ffi::AnyBuffer grad, ffi::AnyBuffer y_true,
                               ffi::AnyBuffer y_pred, ffi::AnyBuffer mask, ffi::AnyBuffer stats,
                               ffi::Result<ffi::AnyBuffer> grad_true,
                               ffi::Result<ffi::AnyBuffer> grad_pred, int32_t method, double eps,
                               int32_t has_mask) {
  Layout l;
  bool time_const = false, want_true = false, want_pred = false;
  const std::string message =
      CheckBackward(grad, y_true, y_pred, mask, stats, *grad_true, *grad_pred, has_mask, eps, &l,
                    &time_const, &want_true, &want_pred);
  if (!message.empty()) return ffi::Error::InvalidArgument("corrops backward: " + message);
  const Method m = static_cast<Method>(method);
  const bool* mk = has_mask ? static_cast<const bool*>(mask.untyped_data()) : nullptr;
  return ForElementType<Binary16, Bfloat16>(y_pred.element_type(), [&](auto zero) {
    using T = decltype(zero);
    const T* g = static_cast<const T*>(grad.untyped_data());
    const T* x = static_cast<const T*>(y_true.untyped_data());
    const T* y = static_cast<const T*>(y_pred.untyped_data());
    const double* st = static_cast<const double*>(stats.untyped_data());
    T* gx = want_true ? static_cast<T*>(grad_true->untyped_data()) : nullptr;
    T* gy = want_pred ? static_cast<T*>(grad_pred->untyped_data()) : nullptr;
    ParallelForOnPool(pool, num_work_units(l), work_unit_cost(l), [&](int64_t b, int64_t e) {
      FusedEngine::Backward<T>(l, m, eps, g, x, y, mk, st, gx, gy, b, e, time_const);
    });
    return ffi::Error::Success();
  });
}

}  // namespace corrops
