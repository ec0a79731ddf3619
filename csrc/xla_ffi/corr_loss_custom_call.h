// The contract between the XLA lowering of the corrops ops
// (corr_loss_xla_kernels.cc) and the custom-call handlers that run them
// (corr_loss_ffi_cpu.cc, corr_loss_ffi_cuda.cc): target names, operands,
// results and attributes of XLA's typed FFI (custom-call API version 4).
//
// Forward  "corrops_corr_loss_forward":
//   operands y_true, y_pred (data), mask (the loss shape, or [0] without one)
//   results  loss (the loss shape), stats (outer, groups * channels, 7) f64
// Backward "corrops_corr_loss_backward":
//   operands grad (the loss shape, or time 1 when constant along time),
//            y_true, y_pred, mask, stats
//   results  grad_true, grad_pred (the data shape, or [0] when not asked for)
// Attributes: method (i32: core's Method), eps (f64), has_mask (i32 0/1).
// Every array is dense row-major; shapes are checked when the op is lowered,
// and the handlers check them again before any pointer is used.
#pragma once

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/row_math.h"

namespace corrops {

inline constexpr char kForwardTarget[] = "corrops_corr_loss_forward";
inline constexpr char kBackwardTarget[] = "corrops_corr_loss_backward";

// The attributes as the backend config of a typed-FFI custom call: an MLIR
// dictionary. eps travels as its IEEE bits (a hexadecimal f64 literal), so
// the handler gets the exact double the op was given.
inline std::string CustomCallAttributes(Method method, double eps, bool has_mask) {
  uint64_t bits = 0;
  std::memcpy(&bits, &eps, sizeof bits);
  char text[128];
  std::snprintf(text, sizeof text,
                "{eps = 0x%016" PRIX64 " : f64, has_mask = %d : i32, method = %d : i32}", bits,
                has_mask ? 1 : 0, static_cast<int>(method));
  return text;
}

}  // namespace corrops
