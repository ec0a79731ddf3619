// The "Host" handlers of the corrops custom calls (corr_loss_custom_call.h):
// check the buffers, then run the CPU engine (tf/fused_engine.h, as the TF
// CPU kernels do) over its work units on XLA's intra-op thread pool.
// Registered with XLA's FFI registry when the library loads.
#include <algorithm>
#include <cstdint>
#include <string>

#include "core/validate.h"
#include "tf/fused_engine.h"
#include "tf_xla/corr_loss_custom_call.h"
#include "tf_xla/pool_parallel_for.h"
#include "xla/ffi/api/c_api.h"
#include "xla/ffi/api/ffi.h"

namespace corrops {
namespace {

namespace ffi = ::xla::ffi;

Dims DimsOf(const ffi::AnyBuffer& buffer) {
  const auto dims = buffer.dimensions();
  return Dims(dims.begin(), dims.end());
}

// An empty string when `buffer` has `type` and `dims`, else a message naming it.
std::string CheckBuffer(const char* name, const ffi::AnyBuffer& buffer, ffi::DataType type,
                        const Dims& dims) {
  if (buffer.element_type() == type && DimsOf(buffer) == dims) return "";
  return std::string(name) + " does not match the op's shapes: got " + DimsString(DimsOf(buffer));
}

bool IsFloat(ffi::DataType t) {
  return t == ffi::DataType::F16 || t == ffi::DataType::BF16 || t == ffi::DataType::F32 ||
         t == ffi::DataType::F64;
}

// The layout of y_true/y_pred/mask and eps, checked as the op's lowering did.
std::string CheckInputs(const ffi::AnyBuffer& y_true, const ffi::AnyBuffer& y_pred,
                        const ffi::AnyBuffer& mask, bool has_mask, double eps, Layout* layout) {
  std::string message = CheckData(DimsOf(y_true), DimsOf(y_pred), layout);
  if (message.empty() &&
      (y_true.element_type() != y_pred.element_type() || !IsFloat(y_pred.element_type()) ||
       mask.element_type() != ffi::DataType::PRED))
    message = "y_true, y_pred and mask must be float arrays of one type and a bool array";
  if (message.empty())
    message = CheckMask(DimsOf(mask), has_mask, *layout, y_pred.dimensions().size());
  if (message.empty()) message = CheckEps(eps);
  return message;
}

// Runs fn<T>() for the element type of the data.
template <typename Fn>
ffi::Error ForElementType(ffi::DataType type, Fn&& fn) {
  switch (type) {
    case ffi::DataType::F16:
      return fn(Eigen::half());
    case ffi::DataType::BF16:
      return fn(Eigen::bfloat16());
    case ffi::DataType::F32:
      return fn(float());
    case ffi::DataType::F64:
      return fn(double());
    default:
      return ffi::Error::InvalidArgument("corrops: unsupported element type");
  }
}

ffi::Error ForwardHost(ffi::ThreadPool pool, ffi::AnyBuffer y_true, ffi::AnyBuffer y_pred,
                       ffi::AnyBuffer mask, ffi::Result<ffi::AnyBuffer> loss,
                       ffi::Result<ffi::AnyBuffer> stats, int32_t method, double eps,
                       int32_t has_mask) {
  Layout l;
  const size_t rank = y_pred.dimensions().size();
  std::string message = CheckInputs(y_true, y_pred, mask, has_mask != 0, eps, &l);
  if (message.empty())
    message = CheckBuffer("loss", *loss, y_pred.element_type(), LossDims(l, rank));
  if (message.empty())
    message = CheckBuffer("stats", *stats, ffi::DataType::F64, {l.outer, l.inner(), kStatsPerRow});
  if (!message.empty()) return ffi::Error::InvalidArgument("corrops forward: " + message);
  const Method m = static_cast<Method>(method);
  const bool* mk = has_mask ? static_cast<const bool*>(mask.untyped_data()) : nullptr;
  return ForElementType(y_pred.element_type(), [&](auto zero) {
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

ffi::Error BackwardHost(ffi::ThreadPool pool, ffi::AnyBuffer grad, ffi::AnyBuffer y_true,
                        ffi::AnyBuffer y_pred, ffi::AnyBuffer mask, ffi::AnyBuffer stats,
                        ffi::Result<ffi::AnyBuffer> grad_true,
                        ffi::Result<ffi::AnyBuffer> grad_pred, int32_t method, double eps,
                        int32_t has_mask) {
  Layout l;
  const size_t rank = y_pred.dimensions().size();
  bool time_const = false;
  std::string message = CheckInputs(y_true, y_pred, mask, has_mask != 0, eps, &l);
  if (message.empty()) message = CheckGrad(DimsOf(grad), l, rank, &time_const);
  if (message.empty() && grad.element_type() != y_pred.element_type())
    message = "grad must have y_pred's element type";
  if (message.empty())
    message = CheckBuffer("stats", stats, ffi::DataType::F64, {l.outer, l.inner(), kStatsPerRow});
  // A gradient not asked for has shape [0].
  const Dims data = DimsOf(y_pred);
  const bool want_true = DimsOf(*grad_true) != Dims{0};
  const bool want_pred = DimsOf(*grad_pred) != Dims{0};
  if (message.empty())
    message =
        CheckBuffer("grad_true", *grad_true, y_pred.element_type(), want_true ? data : Dims{0});
  if (message.empty())
    message =
        CheckBuffer("grad_pred", *grad_pred, y_pred.element_type(), want_pred ? data : Dims{0});
  if (!message.empty()) return ffi::Error::InvalidArgument("corrops backward: " + message);
  const Method m = static_cast<Method>(method);
  const bool* mk = has_mask ? static_cast<const bool*>(mask.untyped_data()) : nullptr;
  return ForElementType(y_pred.element_type(), [&](auto zero) {
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

XLA_FFI_DEFINE_HANDLER(kForwardHost, ForwardHost,
                       ffi::Ffi::Bind()
                           .Ctx<ffi::ThreadPool>()
                           .Arg<ffi::AnyBuffer>()  // y_true
                           .Arg<ffi::AnyBuffer>()  // y_pred
                           .Arg<ffi::AnyBuffer>()  // mask
                           .Ret<ffi::AnyBuffer>()  // loss
                           .Ret<ffi::AnyBuffer>()  // stats
                           .Attr<int32_t>("method")
                           .Attr<double>("eps")
                           .Attr<int32_t>("has_mask"));

XLA_FFI_DEFINE_HANDLER(kBackwardHost, BackwardHost,
                       ffi::Ffi::Bind()
                           .Ctx<ffi::ThreadPool>()
                           .Arg<ffi::AnyBuffer>()  // grad
                           .Arg<ffi::AnyBuffer>()  // y_true
                           .Arg<ffi::AnyBuffer>()  // y_pred
                           .Arg<ffi::AnyBuffer>()  // mask
                           .Arg<ffi::AnyBuffer>()  // stats
                           .Ret<ffi::AnyBuffer>()  // grad_true
                           .Ret<ffi::AnyBuffer>()  // grad_pred
                           .Attr<int32_t>("method")
                           .Attr<double>("eps")
                           .Attr<int32_t>("has_mask"));

XLA_FFI_REGISTER_HANDLER(XLA_FFI_GetApi(), kForwardTarget, "Host", kForwardHost);
XLA_FFI_REGISTER_HANDLER(XLA_FFI_GetApi(), kBackwardTarget, "Host", kBackwardHost);

}  // namespace
}  // namespace corrops
