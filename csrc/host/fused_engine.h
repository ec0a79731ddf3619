// The fused engine (csrc/core) as the kernels call it, per element type:
// float and double go to core's run-time dispatched engine; IEEE binary16 to
// core's binary16 entry points where they apply, else the generic engine;
// bfloat16 to the generic engine. The 16-bit types run as core's Binary16 and
// Bfloat16 (core/half_types.h); a binding whose framework has its own types
// with the same bits (TF's Eigen::half and Eigen::bfloat16) maps them with
// EngineElement. The TF CPU kernels (csrc/tf) and the custom-call handlers
// (csrc/xla_ffi, for TF's XLA and for JAX) all run it, so they give the
// same bits.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "core/cpu_dispatch.h"
#include "core/half_types.h"

namespace corrops {

// The engine's element type for a binding's element type T (the same bits).
template <typename T>
struct EngineElement {
  using type = T;
};

template <typename T>
using EngineElementT = typename EngineElement<T>::type;

struct FusedEngine {
  // Every layout the ops accept: no further condition (an empty message).
  static std::string Check(const Layout&) { return ""; }

  template <typename T>
  static void Forward(const Layout& l, Method method, double eps, const T* x, const T* y,
                      const bool* m, T* out, double* st, int64_t begin, int64_t end) {
    using E = EngineElementT<T>;
    static_assert(sizeof(E) == sizeof(T), "a binding's type and the engine's have the same bits");
    const E* xe = reinterpret_cast<const E*>(x);
    const E* ye = reinterpret_cast<const E*>(y);
    E* oe = reinterpret_cast<E*>(out);
    if constexpr (std::is_same_v<E, Binary16>)
      if (corr_loss_forward_binary16(l, method, eps, Bits(xe), Bits(ye), m, Bits(oe), st, begin,
                                     end))
        return;
    corr_loss_forward<E>(l, method, eps, xe, ye, m, oe, st, begin, end);
  }

  template <typename T>
  static void Backward(const Layout& l, Method method, double eps, const T* g, const T* x,
                       const T* y, const bool* m, const double* st, T* gx, T* gy, int64_t begin,
                       int64_t end, bool time_const) {
    using E = EngineElementT<T>;
    static_assert(sizeof(E) == sizeof(T), "a binding's type and the engine's have the same bits");
    const E* ge = reinterpret_cast<const E*>(g);
    const E* xe = reinterpret_cast<const E*>(x);
    const E* ye = reinterpret_cast<const E*>(y);
    E* gxe = reinterpret_cast<E*>(gx);
    E* gye = reinterpret_cast<E*>(gy);
    if constexpr (std::is_same_v<E, Binary16>)
      if (corr_loss_backward_binary16(l, method, eps, Bits(ge), Bits(xe), Bits(ye), m, st,
                                      Bits(gxe), Bits(gye), begin, end, time_const))
        return;
    corr_loss_backward<E>(l, method, eps, ge, xe, ye, m, st, gxe, gye, begin, end, time_const);
  }

 private:
  // Binary16 as the IEEE binary16 bits the core's binary16 entry points take.
  static const uint16_t* Bits(const Binary16* p) { return reinterpret_cast<const uint16_t*>(p); }
  static uint16_t* Bits(Binary16* p) { return reinterpret_cast<uint16_t*>(p); }
};

}  // namespace corrops
