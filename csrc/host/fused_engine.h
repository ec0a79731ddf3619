// The fused engine (csrc/core) as the kernels call it, per element type:
// float and double go to core's run-time dispatched engine; Eigen::half to
// core's IEEE binary16 entry points where they apply, else the generic
// engine; Eigen::bfloat16 to the generic engine. The TF CPU kernels
// (corr_loss_kernels.cc) and the XLA CPU custom calls (csrc/xla) both run
// it, so the two give the same bits.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "Eigen/Core"
#include "core/cpu_dispatch.h"

namespace corrops {

// Eigen::half as the IEEE binary16 bits the core's binary16 entry points take.
static_assert(sizeof(Eigen::half) == sizeof(uint16_t), "Eigen::half is binary16");
template <typename T>
const uint16_t* Binary16Bits(const T* p) {
  return reinterpret_cast<const uint16_t*>(p);
}
template <typename T>
uint16_t* Binary16Bits(T* p) {
  return reinterpret_cast<uint16_t*>(p);
}

struct FusedEngine {
  // Every layout the ops accept: no further condition (an empty message).
  static std::string Check(const Layout&) { return ""; }

  template <typename T>
  static void Forward(const Layout& l, Method method, double eps, const T* x, const T* y,
                      const bool* m, T* out, double* st, int64_t begin, int64_t end) {
    if constexpr (std::is_same_v<T, Eigen::half>)
      if (corr_loss_forward_binary16(l, method, eps, Binary16Bits(x), Binary16Bits(y), m,
                                     Binary16Bits(out), st, begin, end))
        return;
    corr_loss_forward<T>(l, method, eps, x, y, m, out, st, begin, end);
  }

  template <typename T>
  static void Backward(const Layout& l, Method method, double eps, const T* g, const T* x,
                       const T* y, const bool* m, const double* st, T* gx, T* gy, int64_t begin,
                       int64_t end, bool time_const) {
    if constexpr (std::is_same_v<T, Eigen::half>)
      if (corr_loss_backward_binary16(l, method, eps, Binary16Bits(g), Binary16Bits(x),
                                      Binary16Bits(y), m, st, Binary16Bits(gx), Binary16Bits(gy),
                                      begin, end, time_const))
        return;
    corr_loss_backward<T>(l, method, eps, g, x, y, m, st, gx, gy, begin, end, time_const);
  }
};

}  // namespace corrops
