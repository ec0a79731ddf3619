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

#include "core/half_types.h"
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
// Host-only builds: core's 16-bit types (the same bits and round-to-nearest-
// even conversions as the device's). bfloat16 NaNs keep their payload, as
// __float2bfloat16_rn does (core's conversion makes them canonical, as
// Eigen's).
using HostHalf = ::corrops::Binary16;
using HostBfloat16 = ::corrops::Bfloat16;

inline float to_acc(HostHalf h) { return static_cast<float>(h); }
inline float to_acc(HostBfloat16 h) { return static_cast<float>(h); }

template <>
struct Store<HostHalf> {
  static HostHalf from(float f) { return HostHalf(f); }
};
template <>
struct Store<HostBfloat16> {
  static HostBfloat16 from(float f) {
    const uint32_t u = bits_of(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
      return HostBfloat16::from_bits(static_cast<uint16_t>((u >> 16) | 0x40u));
    return HostBfloat16::from_bits(bfloat16_rounded(u));
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
