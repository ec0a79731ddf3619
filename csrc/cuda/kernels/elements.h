// Element types of the CUDA kernels and their conversions to and from the
// accumulation type (row_math.h's Accumulator: float for the half types and
// float, double for double). In a CUDA build the half types are CUDA's
// __half and __nv_bfloat16; a host-only build (no CUDA toolkit) runs the
// kernels on HostHalf and HostBfloat16, the same IEEE binary16 and bfloat16
// bits with the same round-to-nearest-even conversions, so the host execution
// rounds exactly as the device does.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/row_math.h"
#include "cuda/kernels/exec.h"

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace corrops {
namespace cuda {

template <typename T>
using Acc = typename Accumulator<T>::type;

CORROPS_KERNEL_FN float to_acc(float v) { return v; }
CORROPS_KERNEL_FN double to_acc(double v) { return v; }

template <typename T>
struct Store;  // Store<T>::from(acc): the accumulation type rounded to T
template <>
struct Store<float> {
  static CORROPS_KERNEL_FN float from(float v) { return v; }
};
template <>
struct Store<double> {
  static CORROPS_KERNEL_FN double from(double v) { return v; }
};

#if defined(__CUDACC__)
CORROPS_KERNEL_FN float to_acc(__half v) { return __half2float(v); }
CORROPS_KERNEL_FN float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
struct Store<__half> {
  static CORROPS_KERNEL_FN __half from(float v) { return __float2half_rn(v); }
};
template <>
struct Store<__nv_bfloat16> {
  static CORROPS_KERNEL_FN __nv_bfloat16 from(float v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    // No bf16 hardware before sm_80: round to nearest even with bit
    // operations (the library routine there needs a stack frame, i.e. spills).
    const unsigned u = __float_as_uint(v);
    const unsigned short bits =
        (u & 0x7fffffffu) > 0x7f800000u
            ? static_cast<unsigned short>((u >> 16) | 0x40u)  // NaN stays a (quiet) NaN
            : static_cast<unsigned short>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    return __ushort_as_bfloat16(bits);
#else
    return __float2bfloat16_rn(v);
#endif
  }
};
#else
// IEEE binary16 and bfloat16 for host-only builds, as bits.
struct HostHalf {
  uint16_t bits;
};
struct HostBfloat16 {
  uint16_t bits;
};

inline float float_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float to_acc(HostHalf h) {
  const uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000u) << 16;
  const uint32_t exp = (h.bits >> 10) & 0x1fu, mant = h.bits & 0x3ffu;
  if (exp == 0x1f) return float_from_bits(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in float
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return float_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}
inline float to_acc(HostBfloat16 h) { return float_from_bits(static_cast<uint32_t>(h.bits) << 16); }

template <>
struct Store<HostHalf> {
  // Round to nearest even; overflow to Inf, NaN to a quiet NaN.
  static HostHalf from(float f) {
    uint32_t u = bits_of(f);
    const uint32_t sign = u & 0x80000000u;
    u ^= sign;
    uint16_t out;
    if (u >= 0x47800000u) {  // |f| >= 65536 (or Inf, NaN)
      out = u > 0x7f800000u ? 0x7e00u : 0x7c00u;
    } else if (u < 0x38800000u) {  // below 2^-14: subnormal or zero; the
      // float addition aligns the 10 mantissa bits and rounds to nearest even
      const float magic = float_from_bits(0x3f000000u);  // 0.5
      out = static_cast<uint16_t>(bits_of(float_from_bits(u) + magic) - 0x3f000000u);
    } else {
      const uint32_t odd = (u >> 13) & 1u;
      u += 0xc8000fffu + odd;  // rebias the exponent (-112 << 23) and round
      out = static_cast<uint16_t>(u >> 13);
    }
    return HostHalf{static_cast<uint16_t>(out | (sign >> 16))};
  }
};
template <>
struct Store<HostBfloat16> {
  static HostBfloat16 from(float f) {
    const uint32_t u = bits_of(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
      return HostBfloat16{static_cast<uint16_t>((u >> 16) | 0x40u)};
    return HostBfloat16{static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
  }
};
#endif

// The 16-bit element types of this build.
#if defined(__CUDACC__)
using Half = __half;
using Bfloat16 = __nv_bfloat16;
#else
using Half = HostHalf;
using Bfloat16 = HostBfloat16;
#endif

template <typename T, typename A>
CORROPS_KERNEL_FN T store(A v) {
  return Store<T>::from(v);
}

}  // namespace cuda
}  // namespace corrops
