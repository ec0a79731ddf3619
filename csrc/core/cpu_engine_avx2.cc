// The CPU engine compiled for AVX2 + FMA (x86-64 only; chosen at run time by
// cpu_dispatch). Everything this file shares with other translation units
// (the standard library, row_math.h) is included before the target pragma,
// so only the engine itself, in namespace corrops::avx2, uses AVX2: no
// AVX2 copy of a shared inline function can be picked by the linker for
// code that runs on an older CPU.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/row_math.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define CORROPS_ENGINE_ISA avx2
#include "core/cpu_engine.h"
#pragma GCC pop_options

namespace corrops {
namespace avx2 {

#define CORROPS_INSTANTIATE(T)                                                                     \
  template void corr_loss_forward<T>(const Layout&, Method, double, const T*, const T*,            \
                                     const bool*, T*, double*, int64_t, int64_t);                  \
  template void corr_loss_backward<T>(const Layout&, Method, double, const T*, const T*, const T*, \
                                      const bool*, const double*, T*, T*, int64_t, int64_t);
CORROPS_INSTANTIATE(float)
CORROPS_INSTANTIATE(double)
#undef CORROPS_INSTANTIATE

}  // namespace avx2
}  // namespace corrops
