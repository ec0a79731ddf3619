// The 16-bit element types the engine runs on in bindings whose framework
// hands over raw buffers (the XLA custom calls of TF and JAX, the CUDA
// kernels' host execution): IEEE binary16 (Binary16) and bfloat16 (Bfloat16),
// held as their bits. Conversions to float are exact; conversions from float
// round to nearest even, as Eigen's portable conversions do (NaN becomes a
// canonical quiet NaN), so the engine gives the TF kernels' bits (which run
// on Eigen::half and Eigen::bfloat16) without needing Eigen's headers.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace corrops {

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

inline float binary16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) return float_from_bits(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in float
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return float_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

// Round to nearest even; overflow to Inf, NaN to the quiet NaN 0x7e00.
inline uint16_t float_to_binary16(float f) {
  uint32_t u = bits_of(f);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  uint16_t out;
  if (u >= 0x47800000u) {  // |f| >= 65536 (or Inf, NaN)
    out = u > 0x7f800000u ? 0x7e00u : 0x7c00u;
  } else if (u < 0x38800000u) {  // below 2^-14: subnormal or zero; the float
    // addition aligns the 10 mantissa bits and rounds to nearest even
    const float magic = float_from_bits(0x3f000000u);  // 0.5
    out = static_cast<uint16_t>(bits_of(float_from_bits(u) + magic) - 0x3f000000u);
  } else {
    const uint32_t odd = (u >> 13) & 1u;
    u += 0xc8000fffu + odd;  // rebias the exponent (-112 << 23) and round
    out = static_cast<uint16_t>(u >> 13);
  }
  return static_cast<uint16_t>(out | (sign >> 16));
}

inline float bfloat16_to_float(uint16_t h) {
  return float_from_bits(static_cast<uint32_t>(h) << 16);
}

// Round to nearest even of a finite or infinite value (no NaN check).
inline uint16_t bfloat16_rounded(uint32_t u) {
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Round to nearest even; NaN to the quiet NaN 0x7fc0 with f's sign.
inline uint16_t float_to_bfloat16(float f) {
  const uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u & 0x80000000u) ? 0xffc0u : 0x7fc0u;
  return bfloat16_rounded(u);
}

// A 16-bit float as its bits: explicit conversions from any arithmetic type
// (through float, as Eigen's) and to float.
template <float (*kToFloat)(uint16_t), uint16_t (*kFromFloat)(float)>
struct Bits16 {
  uint16_t bits;

  Bits16() = default;
  template <typename U, typename = std::enable_if_t<std::is_arithmetic_v<U>>>
  explicit Bits16(U v) : bits(kFromFloat(static_cast<float>(v))) {}
  static Bits16 from_bits(uint16_t b) {
    Bits16 h;
    h.bits = b;
    return h;
  }
  explicit operator float() const { return kToFloat(bits); }
};

using Binary16 = Bits16<binary16_to_float, float_to_binary16>;
using Bfloat16 = Bits16<bfloat16_to_float, float_to_bfloat16>;
static_assert(sizeof(Binary16) == 2 && std::is_trivially_copyable_v<Binary16>, "binary16 bits");
static_assert(sizeof(Bfloat16) == 2 && std::is_trivially_copyable_v<Bfloat16>, "bfloat16 bits");

}  // namespace corrops
