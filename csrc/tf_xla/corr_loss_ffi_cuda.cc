// The "CUDA" handlers of the corrops custom calls (corr_loss_custom_call.h):
// check the buffers, then launch csrc/cuda's kernels on XLA's stream; a
// launch failure becomes the call's error. The upstream gradient always
// arrives per step (the lowering broadcasts a time-constant one). Compiled
// only when CMake finds CUDA (GOOGLE_CUDA=1).
#if GOOGLE_CUDA
#include <cstdint>
#include <string>

#include "core/validate.h"
#include "cuda/corr_loss_cuda.h"
#include "tf_xla/corr_loss_custom_call.h"
#include "xla/ffi/api/c_api.h"
#include "xla/ffi/api/ffi.h"

namespace corrops {
namespace {

namespace ffi = ::xla::ffi;

Dims DimsOf(const ffi::AnyBuffer& buffer) {
  const auto dims = buffer.dimensions();
  return Dims(dims.begin(), dims.end());
}

ffi::Error LaunchError(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return ffi::Error::Success();
  return ffi::Error::Internal(std::string("corrops ") + what +
                              " CUDA launch failed: " + cudaGetErrorString(err));
}

// The shapes and types the lowering emitted, checked again before any
// pointer is used; an empty string when they hold.
std::string CheckShapes(const ffi::AnyBuffer& y_true, const ffi::AnyBuffer& y_pred,
                        const ffi::AnyBuffer& mask, bool has_mask, double eps, Layout* l) {
  std::string message = CheckData(DimsOf(y_true), DimsOf(y_pred), l);
  if (message.empty() && (y_true.element_type() != y_pred.element_type() ||
                          mask.element_type() != ffi::DataType::PRED))
    message = "y_true and y_pred must have one element type, mask bool";
  if (message.empty()) message = CheckMask(DimsOf(mask), has_mask, *l, y_pred.dimensions().size());
  if (message.empty()) message = CheckEps(eps);
  return message;
}

// Runs fn(T()) with T the CUDA type of the data's element type.
template <typename Fn>
ffi::Error ForCudaType(ffi::DataType type, Fn&& fn) {
  switch (type) {
    case ffi::DataType::F16:
      return fn(__half());
    case ffi::DataType::BF16:
      return fn(__nv_bfloat16());
    case ffi::DataType::F32:
      return fn(float());
    case ffi::DataType::F64:
      return fn(double());
    default:
      return ffi::Error::InvalidArgument("corrops: unsupported element type");
  }
}

ffi::Error ForwardCuda(cudaStream_t stream, ffi::AnyBuffer y_true, ffi::AnyBuffer y_pred,
                       ffi::AnyBuffer mask, ffi::Result<ffi::AnyBuffer> loss,
                       ffi::Result<ffi::AnyBuffer> stats, int32_t method, double eps,
                       int32_t has_mask) {
  Layout l;
  std::string message = CheckShapes(y_true, y_pred, mask, has_mask != 0, eps, &l);
  if (message.empty() && (DimsOf(*loss) != LossDims(l, y_pred.dimensions().size()) ||
                          DimsOf(*stats) != Dims{l.outer, l.inner(), kStatsPerRow}))
    message = "loss or stats does not match the op's shapes";
  if (!message.empty()) return ffi::Error::InvalidArgument("corrops forward: " + message);
  const bool* m = has_mask ? static_cast<const bool*>(mask.untyped_data()) : nullptr;
  return ForCudaType(y_pred.element_type(), [&](auto zero) {
    using T = decltype(zero);
    return LaunchError(
        cuda::corr_loss_forward<T>(
            l, static_cast<Method>(method), eps, static_cast<const T*>(y_true.untyped_data()),
            static_cast<const T*>(y_pred.untyped_data()), m, static_cast<T*>(loss->untyped_data()),
            static_cast<double*>(stats->untyped_data()), stream),
        "forward");
  });
}

ffi::Error BackwardCuda(cudaStream_t stream, ffi::AnyBuffer grad, ffi::AnyBuffer y_true,
                        ffi::AnyBuffer y_pred, ffi::AnyBuffer mask, ffi::AnyBuffer stats,
                        ffi::Result<ffi::AnyBuffer> grad_true,
                        ffi::Result<ffi::AnyBuffer> grad_pred, int32_t method, double eps,
                        int32_t has_mask) {
  Layout l;
  const size_t rank = y_pred.dimensions().size();
  std::string message = CheckShapes(y_true, y_pred, mask, has_mask != 0, eps, &l);
  const Dims data = DimsOf(y_pred);
  const bool want_true = DimsOf(*grad_true) != Dims{0};
  const bool want_pred = DimsOf(*grad_pred) != Dims{0};
  if (message.empty() &&
      (DimsOf(grad) != LossDims(l, rank) || grad.element_type() != y_pred.element_type() ||
       DimsOf(stats) != Dims{l.outer, l.inner(), kStatsPerRow} ||
       (want_true && DimsOf(*grad_true) != data) || (want_pred && DimsOf(*grad_pred) != data)))
    message = "grad, stats or a gradient does not match the op's shapes";
  if (!message.empty()) return ffi::Error::InvalidArgument("corrops backward: " + message);
  if (!want_true && !want_pred) return ffi::Error::Success();
  const bool* m = has_mask ? static_cast<const bool*>(mask.untyped_data()) : nullptr;
  return ForCudaType(y_pred.element_type(), [&](auto zero) {
    using T = decltype(zero);
    T* gx = want_true ? static_cast<T*>(grad_true->untyped_data()) : nullptr;
    T* gy = want_pred ? static_cast<T*>(grad_pred->untyped_data()) : nullptr;
    return LaunchError(cuda::corr_loss_backward<T>(l, static_cast<Method>(method), eps,
                                                   static_cast<const T*>(grad.untyped_data()),
                                                   static_cast<const T*>(y_true.untyped_data()),
                                                   static_cast<const T*>(y_pred.untyped_data()), m,
                                                   static_cast<const double*>(stats.untyped_data()),
                                                   gx, gy, stream),
                       "backward");
  });
}

XLA_FFI_DEFINE_HANDLER(kForwardCuda, ForwardCuda,
                       ffi::Ffi::Bind()
                           .Ctx<ffi::PlatformStream<cudaStream_t>>()
                           .Arg<ffi::AnyBuffer>()  // y_true
                           .Arg<ffi::AnyBuffer>()  // y_pred
                           .Arg<ffi::AnyBuffer>()  // mask
                           .Ret<ffi::AnyBuffer>()  // loss
                           .Ret<ffi::AnyBuffer>()  // stats
                           .Attr<int32_t>("method")
                           .Attr<double>("eps")
                           .Attr<int32_t>("has_mask"));

XLA_FFI_DEFINE_HANDLER(kBackwardCuda, BackwardCuda,
                       ffi::Ffi::Bind()
                           .Ctx<ffi::PlatformStream<cudaStream_t>>()
                           .Arg<ffi::AnyBuffer>()  // grad, per step
                           .Arg<ffi::AnyBuffer>()  // y_true
                           .Arg<ffi::AnyBuffer>()  // y_pred
                           .Arg<ffi::AnyBuffer>()  // mask
                           .Arg<ffi::AnyBuffer>()  // stats
                           .Ret<ffi::AnyBuffer>()  // grad_true
                           .Ret<ffi::AnyBuffer>()  // grad_pred
                           .Attr<int32_t>("method")
                           .Attr<double>("eps")
                           .Attr<int32_t>("has_mask"));

XLA_FFI_REGISTER_HANDLER(XLA_FFI_GetApi(), kForwardTarget, "CUDA", kForwardCuda);
XLA_FFI_REGISTER_HANDLER(XLA_FFI_GetApi(), kBackwardTarget, "CUDA", kBackwardCuda);

}  // namespace
}  // namespace corrops
#endif  // GOOGLE_CUDA
