// Run-time choice of the CPU engine's instruction set. The engine
// (cpu_engine.h) is compiled for the portable baseline and, on x86-64, twice
// more: for AVX2 + FMA + F16C (cpu_engine_avx2.cc) and for AVX-512 with
// 512-bit vectors (cpu_engine_avx512.cc). float and double use the widest
// copy the CPU has, bar small calls on AVX-512 CPUs (engine_isa below); IEEE
// binary16 (core/binary16.h) uses the AVX2 copy on any CPU with AVX2. No
// -march=native: one binary runs everywhere. Results are bitwise reproducible
// on one machine (the choice is fixed per process and layout); the two copies
// may differ in the last bits (FMA contraction).
#pragma once

#include <cstdint>
#include <type_traits>

#include "core/binary16.h"
#include "core/cpu_engine.h"

namespace corrops {

enum class CpuIsa { kGeneric, kAvx2, kAvx512 };

// The instruction set in use: the best the CPU supports, unless the
// environment variable CORROPS_CPU_ISA names a lesser one, "generic" or
// "avx2" (read once; a name the CPU cannot run, or "auto", means the best).
CpuIsa active_cpu_isa();
// Whether this build and this CPU can run `isa`.
bool cpu_isa_available(CpuIsa isa);
// Forces `isa` (tests and benchmarks); returns false, changing nothing, if
// it is not available.
bool set_cpu_isa(CpuIsa isa);
const char* cpu_isa_name(CpuIsa isa);

// Where AVX-512 is active, a call whose inputs (x and y) span fewer bytes
// than this runs the AVX2 copy instead: on small calls the engine's own time
// is the same with either copy, but with the AVX-512 copy the TF step around
// it measured slower; large calls keep AVX-512, which is faster there.
// Measured: docs/PERFORMANCE.md, "Instruction-set copies".
constexpr int64_t kAvx512MinInputBytes = int64_t{1} << 20;
// The threshold in use: kAvx512MinInputBytes unless CORROPS_AVX512_MIN_BYTES
// (read once) or the setter (tests: 0 runs every call on AVX-512) says otherwise.
int64_t avx512_min_input_bytes();
void set_avx512_min_input_bytes(int64_t bytes);
// The copy that runs a call over `l` with `item_bytes`-byte elements: the
// active one, or AVX2 for an AVX-512 call under the threshold. It depends on
// the whole layout, never on a work range, so every thread of a call runs the
// same copy (bitwise determinism for any thread count).
CpuIsa engine_isa(const Layout& l, int64_t item_bytes);

// One engine copy's entry points, declared in its namespace; each is defined
// (float and double instantiated) in its cpu_engine_<isa>.cc.
#define CORROPS_DECLARE_ENGINE()                                                                   \
  template <typename T>                                                                            \
  void corr_loss_forward(const Layout& l, Method method, double eps, const T* y_true,              \
                         const T* y_pred, const bool* mask, T* loss, double* stats, int64_t begin, \
                         int64_t end);                                                             \
  template <typename T>                                                                            \
  void corr_loss_backward(const Layout& l, Method method, double eps, const T* grad,               \
                          const T* y_true, const T* y_pred, const bool* mask, const double* stats, \
                          T* grad_true, T* grad_pred, int64_t begin, int64_t end,                  \
                          bool grad_time_const);

#if defined(CORROPS_HAVE_AVX2_ENGINE)
namespace avx2 {
CORROPS_DECLARE_ENGINE()
// binary16 slabs widened to float (see corr_loss_forward_binary16).
void corr_loss_forward_binary16_slabs(const Layout& l, Method method, double eps,
                                      const uint16_t* y_true, const uint16_t* y_pred,
                                      const bool* mask, uint16_t* loss, double* stats,
                                      int64_t begin, int64_t end);
void corr_loss_backward_binary16_slabs(const Layout& l, Method method, double eps,
                                       const uint16_t* grad, const uint16_t* y_true,
                                       const uint16_t* y_pred, const bool* mask,
                                       const double* stats, uint16_t* grad_true,
                                       uint16_t* grad_pred, int64_t begin, int64_t end,
                                       bool grad_time_const);
}  // namespace avx2
#endif
#if defined(CORROPS_HAVE_AVX512_ENGINE)
namespace avx512 {
CORROPS_DECLARE_ENGINE()
}  // namespace avx512
#endif
#undef CORROPS_DECLARE_ENGINE

// The types the SIMD copies (AVX2, AVX-512) are instantiated for.
template <typename T>
constexpr bool kHasSimdEngine = std::is_same_v<T, float> || std::is_same_v<T, double>;

using generic::corr_coefficients;
using generic::corr_loss_totals;
using generic::loss_is_all_zero;
using generic::num_work_units;
using generic::work_unit_cost;

// See generic::corr_loss_forward (cpu_engine.h) for the contract.
template <typename T>
void corr_loss_forward(const Layout& l, Method method, double eps, const T* y_true, const T* y_pred,
                       const bool* mask, T* loss, double* stats, int64_t begin, int64_t end) {
  [[maybe_unused]] const CpuIsa isa = engine_isa(l, sizeof(T));
#if defined(CORROPS_HAVE_AVX512_ENGINE)
  if constexpr (kHasSimdEngine<T>)
    if (isa == CpuIsa::kAvx512)
      return avx512::corr_loss_forward<T>(l, method, eps, y_true, y_pred, mask, loss, stats, begin,
                                          end);
#endif
#if defined(CORROPS_HAVE_AVX2_ENGINE)
  if constexpr (kHasSimdEngine<T>)
    if (isa == CpuIsa::kAvx2)
      return avx2::corr_loss_forward<T>(l, method, eps, y_true, y_pred, mask, loss, stats, begin,
                                        end);
#endif
  generic::corr_loss_forward<T>(l, method, eps, y_true, y_pred, mask, loss, stats, begin, end);
}

// See generic::corr_loss_backward (cpu_engine.h) for the contract.
template <typename T>
void corr_loss_backward(const Layout& l, Method method, double eps, const T* grad, const T* y_true,
                        const T* y_pred, const bool* mask, const double* stats, T* grad_true,
                        T* grad_pred, int64_t begin, int64_t end, bool grad_time_const = false) {
  [[maybe_unused]] const CpuIsa isa = engine_isa(l, sizeof(T));
#if defined(CORROPS_HAVE_AVX512_ENGINE)
  if constexpr (kHasSimdEngine<T>)
    if (isa == CpuIsa::kAvx512)
      return avx512::corr_loss_backward<T>(l, method, eps, grad, y_true, y_pred, mask, stats,
                                           grad_true, grad_pred, begin, end, grad_time_const);
#endif
#if defined(CORROPS_HAVE_AVX2_ENGINE)
  if constexpr (kHasSimdEngine<T>)
    if (isa == CpuIsa::kAvx2)
      return avx2::corr_loss_backward<T>(l, method, eps, grad, y_true, y_pred, mask, stats,
                                         grad_true, grad_pred, begin, end, grad_time_const);
#endif
  generic::corr_loss_backward<T>(l, method, eps, grad, y_true, y_pred, mask, stats, grad_true,
                                 grad_pred, begin, end, grad_time_const);
}

}  // namespace corrops
