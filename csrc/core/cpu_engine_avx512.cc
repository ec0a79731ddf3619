// The CPU engine compiled for AVX-512 (F, VL, BW, DQ) with 512-bit vectors
// (x86-64 only; chosen at run time by cpu_dispatch on CPUs that have it).
// The engine's 16-lane loops fill one zmm register per accumulator where the
// AVX2 copy needs two ymm: half the instructions for the same lane order, so
// the forward's statistics pass stops competing with memory for time.
// As in cpu_engine_avx2.cc, everything shared with other translation units is
// included before the target pragma, so only namespace corrops::avx512 uses
// AVX-512.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/row_math.h"
#include "core/stream_store.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,prefer-vector-width=512")
#define CORROPS_ENGINE_ISA avx512
#include "core/cpu_engine.h"
#pragma GCC pop_options

#include "core/engine_instantiate.h"

namespace corrops {
namespace avx512 {
CORROPS_INSTANTIATE_ENGINE(float)
CORROPS_INSTANTIATE_ENGINE(double)
}  // namespace avx512
}  // namespace corrops
