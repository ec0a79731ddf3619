// What the "Host" and "CUDA" custom-call handlers share: the FFI bindings of
// the two calls (corr_loss_custom_call.h: operands, results, attributes) and
// the checks of their buffers, which repeat the lowering's checks on what
// actually arrives before any pointer is used.
#pragma once

#include <string>
#include <type_traits>
#include <utility>

#include "core/validate.h"
#include "xla/ffi/api/c_api.h"
#include "xla/ffi/api/ffi.h"

namespace corrops {

namespace ffi = ::xla::ffi;

inline Dims DimsOf(const ffi::AnyBuffer& buffer) {
  const auto dims = buffer.dimensions();
  return Dims(dims.begin(), dims.end());
}

// The operands, results and attributes of the forward call, after the
// binding's contexts (a binding is passed on, never copied or moved).
template <typename Binding>
auto ForwardSignature(Binding&& b) {
  return std::move(b)
      .template Arg<ffi::AnyBuffer>()  // y_true
      .template Arg<ffi::AnyBuffer>()  // y_pred
      .template Arg<ffi::AnyBuffer>()  // mask
      .template Ret<ffi::AnyBuffer>()  // loss
      .template Ret<ffi::AnyBuffer>()  // stats
      .template Attr<int32_t>("method")
      .template Attr<double>("eps")
      .template Attr<int32_t>("has_mask");
}

template <typename Binding>
auto BackwardSignature(Binding&& b) {
  return std::move(b)
      .template Arg<ffi::AnyBuffer>()  // grad
      .template Arg<ffi::AnyBuffer>()  // y_true
      .template Arg<ffi::AnyBuffer>()  // y_pred
      .template Arg<ffi::AnyBuffer>()  // mask
      .template Arg<ffi::AnyBuffer>()  // stats
      .template Ret<ffi::AnyBuffer>()  // grad_true
      .template Ret<ffi::AnyBuffer>()  // grad_pred
      .template Attr<int32_t>("method")
      .template Attr<double>("eps")
      .template Attr<int32_t>("has_mask");
}

// The calls' bindings. Context: ffi::ThreadPool (Host) or
// ffi::PlatformStream<cudaStream_t> (CUDA); Extra, unless void, a second
// context (the CUDA handlers' ffi::ScratchAllocator).
template <typename Context, typename Extra = void>
auto ForwardBinding() {
  if constexpr (std::is_void_v<Extra>)
    return ForwardSignature(ffi::Ffi::Bind().template Ctx<Context>());
  else
    return ForwardSignature(ffi::Ffi::Bind().template Ctx<Context>().template Ctx<Extra>());
}

template <typename Context, typename Extra = void>
auto BackwardBinding() {
  if constexpr (std::is_void_v<Extra>)
    return BackwardSignature(ffi::Ffi::Bind().template Ctx<Context>());
  else
    return BackwardSignature(ffi::Ffi::Bind().template Ctx<Context>().template Ctx<Extra>());
}

// Runs fn(T()) with T the element type of the data: float, double, or the
// 16-bit types given (core/half_types.h's on the host, CUDA's on the GPU).
template <typename Half, typename BFloat16, typename Fn>
ffi::Error ForElementType(ffi::DataType type, Fn&& fn) {
  switch (type) {
    case ffi::DataType::F16:
      return fn(Half());
    case ffi::DataType::BF16:
      return fn(BFloat16());
    case ffi::DataType::F32:
      return fn(float());
    case ffi::DataType::F64:
      return fn(double());
    default:
      return ffi::Error::InvalidArgument("corrops: unsupported element type");
  }
}

// An empty string when `buffer` has `type` and `dims`, else a message naming it.
inline std::string CheckBuffer(const char* name, const ffi::AnyBuffer& buffer, ffi::DataType type,
                               const Dims& dims) {
  if (buffer.element_type() == type && DimsOf(buffer) == dims) return "";
  return std::string(name) + " does not match the op's shapes: got " + DimsString(DimsOf(buffer));
}

inline bool IsFloat(ffi::DataType t) {
  return t == ffi::DataType::F16 || t == ffi::DataType::BF16 || t == ffi::DataType::F32 ||
         t == ffi::DataType::F64;
}

// The stats buffer: (outer, groups * channels, 7) f64, or the same bytes as
// (outer, groups * channels, 14) u32 for callers without 64-bit arrays (JAX
// without x64).
inline std::string CheckStats(const ffi::AnyBuffer& stats, const Layout& l) {
  if (stats.element_type() == ffi::DataType::U32)
    return CheckBuffer("stats", stats, ffi::DataType::U32, {l.outer, l.inner(), 2 * kStatsPerRow});
  return CheckBuffer("stats", stats, ffi::DataType::F64, {l.outer, l.inner(), kStatsPerRow});
}

// y_true, y_pred, mask and eps; fills the layout.
inline std::string CheckInputs(const ffi::AnyBuffer& y_true, const ffi::AnyBuffer& y_pred,
                               const ffi::AnyBuffer& mask, bool has_mask, double eps,
                               Layout* layout) {
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

// Every buffer of the forward call.
inline std::string CheckForward(const ffi::AnyBuffer& y_true, const ffi::AnyBuffer& y_pred,
                                const ffi::AnyBuffer& mask, const ffi::AnyBuffer& loss,
                                const ffi::AnyBuffer& stats, bool has_mask, double eps, Layout* l) {
  std::string message = CheckInputs(y_true, y_pred, mask, has_mask, eps, l);
  if (message.empty())
    message =
        CheckBuffer("loss", loss, y_pred.element_type(), LossDims(*l, y_pred.dimensions().size()));
  if (message.empty()) message = CheckStats(stats, *l);
  return message;
}

// Every buffer of the backward call. A gradient not asked for has shape [0]
// (*want_true, *want_pred say which are); *time_const: see CheckGrad.
inline std::string CheckBackward(const ffi::AnyBuffer& grad, const ffi::AnyBuffer& y_true,
                                 const ffi::AnyBuffer& y_pred, const ffi::AnyBuffer& mask,
                                 const ffi::AnyBuffer& stats, const ffi::AnyBuffer& grad_true,
                                 const ffi::AnyBuffer& grad_pred, bool has_mask, double eps,
                                 Layout* l, bool* time_const, bool* want_true, bool* want_pred) {
  const Dims data = DimsOf(y_pred), none{0};
  *want_true = DimsOf(grad_true) != none;
  *want_pred = DimsOf(grad_pred) != none;
  std::string message = CheckInputs(y_true, y_pred, mask, has_mask, eps, l);
  if (message.empty()) message = CheckGrad(DimsOf(grad), *l, data.size(), time_const);
  if (message.empty() && grad.element_type() != y_pred.element_type())
    message = "grad must have y_pred's element type";
  if (message.empty()) message = CheckStats(stats, *l);
  if (message.empty())
    message = CheckBuffer("grad_true", grad_true, y_pred.element_type(), *want_true ? data : none);
  if (message.empty())
    message = CheckBuffer("grad_pred", grad_pred, y_pred.element_type(), *want_pred ? data : none);
  return message;
}

}  // namespace corrops
