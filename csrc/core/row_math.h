// Per-row scalar math shared by every implementation (CPU engine, CUDA
// kernels). Framework-free; HOST_DEVICE so the CUDA kernels compile the very
// same formulas the CPU tests exercise. docs/DESIGN.md states the math.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define CORROPS_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define CORROPS_HOST_DEVICE inline
#endif

namespace corrops {

#if !defined(__CUDA_ARCH__)
using std::ilogb;
using std::isfinite;
using std::ldexp;
using std::sqrt;
#endif

enum class Method : int { kPearson = 0, kCcc = 1 };

// Canonical layout shared by every implementation: data of shape (outer,
// time, groups, channels), row-major; one row is one (outer, group, channel)
// sequence along time; loss/mask/upstream gradient have shape (outer, time,
// groups).
struct Layout {
  int64_t outer = 0, time = 0, groups = 0, channels = 0;
  CORROPS_HOST_DEVICE int64_t inner() const { return groups * channels; }
  CORROPS_HOST_DEVICE int64_t rows() const { return outer * inner(); }
  CORROPS_HOST_DEVICE int64_t elements() const { return outer * time * inner(); }
  CORROPS_HOST_DEVICE int64_t loss_elements() const { return outer * time * groups; }
};

// Per-row statistics saved by the forward op for the backward op, stored as
// doubles in this order (kStatsPerRow values per row). The second moments are
// those of the row scaled by inv_scale (see row_inv_scale()).
enum StatIndex : int { kStatN = 0, kStatMx, kStatMy, kStatVx, kStatVy, kStatCxy, kStatInvScale };
constexpr int kStatsPerRow = 7;

// Accumulation type: float for half/bfloat16/float, double for double.
template <typename T>
struct Accumulator {
  using type = float;
};
template <>
struct Accumulator<double> {
  using type = double;
};

// Row statistics in the accumulation type: n, the means, and the population
// (co)variances of the row scaled by inv_s (a power of two).
template <typename A>
struct RowStats {
  A n, mx, my, vx, vy, cxy, inv_s;
};

// Correlation is scale-invariant, so moments are taken on the row scaled by
// 2^-e, with 2^(e-1) <= max|x|,|y| < 2^e (e clamped to +-100), and eps scaled
// by the same factor squared: exact in real arithmetic, and squares of values
// from 1e-30 to 1e30 neither overflow nor underflow in float.
constexpr int kMaxScaleExponent = 100;

// The unsigned integer of a float's width and its IEEE layout (bit tricks on
// the CPU: row_inv_scale here, the engine's masked selects).
template <typename A>
struct FloatBits;
template <>
struct FloatBits<float> {
  using Uint = uint32_t;
  static constexpr int kMantissaBits = 23, kBias = 127;
};
template <>
struct FloatBits<double> {
  using Uint = uint64_t;
  static constexpr int kMantissaBits = 52, kBias = 1023;
};

template <typename A>
CORROPS_HOST_DEVICE A row_inv_scale(A max_abs) {
  if (!(max_abs > A(0)) || !isfinite(max_abs)) return A(1);
#if defined(__CUDA_ARCH__)
  int e = ilogb(max_abs) + 1;  // as frexp's exponent; no pointer (no stack on GPUs)
  e = e > kMaxScaleExponent ? kMaxScaleExponent : (e < -kMaxScaleExponent ? -kMaxScaleExponent : e);
  return ldexp(A(1), -e);
#else
  // The same value from the bits. ilogb and ldexp are library calls, made
  // with a vzeroupper and a dozen register spills once per statistics chunk,
  // a share of a short row's time (docs/PERFORMANCE.md, "Short rows"). For
  // a normal positive value ilogb is
  // the biased exponent minus the bias; a subnormal's field is 0, which lands
  // below -100 and is clamped like ilogb's result; 2^-e for |e| <= 100 is a
  // normal number. core_tests checks it against the libm form.
  using B = FloatBits<A>;
  typename B::Uint u;
  std::memcpy(&u, &max_abs, sizeof u);
  int e = static_cast<int>(u >> B::kMantissaBits) - B::kBias + 1;
  e = e > kMaxScaleExponent ? kMaxScaleExponent : (e < -kMaxScaleExponent ? -kMaxScaleExponent : e);
  const typename B::Uint r = static_cast<typename B::Uint>(B::kBias - e) << B::kMantissaBits;
  A out;
  std::memcpy(&out, &r, sizeof out);
  return out;
#endif
}

// eps in the scaled space, computed in double (it may underflow in float).
template <typename A>
CORROPS_HOST_DEVICE A scaled_eps(double eps, A inv_s) {
  const double i = static_cast<double>(inv_s);
  return static_cast<A>(eps * i * i);
}

template <typename A>
CORROPS_HOST_DEVICE A smallest_normal();
template <>
CORROPS_HOST_DEVICE float smallest_normal<float>() {
  return 1.17549435e-38f;
}
template <>
CORROPS_HOST_DEVICE double smallest_normal<double>() {
  return 2.2250738585072014e-308;
}

// Denominator D (scaled) of docs/DESIGN.md for either method. D can only fall
// below the smallest normal number (0, or subnormal where the CPU does not
// flush them) when the scaled eps underflowed on a constant row, where every
// dx*dy is 0 anyway: it is then raised to the smallest normal number so that
// 1/D stays finite and nothing becomes NaN.
template <typename A>
CORROPS_HOST_DEVICE A denominator(Method method, const RowStats<A>& s, A eps_s) {
  A d;
  if (method == Method::kPearson) {
    d = sqrt(s.vx) * sqrt(s.vy) + eps_s;  // not sqrt(vx*vy): no overflow
  } else {
    const A dm = (s.mx - s.my) * s.inv_s;
    d = s.vx + s.vy + dm * dm + eps_s;
  }
  return d >= smallest_normal<A>() || d != d ? d : smallest_normal<A>();
}

// Forward: L_t = 1 - scale * dx'_t * dy'_t with dx' = (x - mx) * inv_s
// (scale = 1/D for Pearson, 2/D for CCC, D scaled).
template <typename A>
CORROPS_HOST_DEVICE A loss_scale(Method method, const RowStats<A>& s, double eps) {
  const A k = method == Method::kPearson ? A(1) : A(2);
  return k / denominator(method, s, scaled_eps(eps, s.inv_s));
}

// Coefficient k * cxy / D of the row (Pearson r or CCC, up to eps); 0 for an
// empty row.
template <typename A>
CORROPS_HOST_DEVICE A row_coefficient(Method method, const RowStats<A>& s, double eps) {
  if (!(s.n > A(0))) return A(0);
  return loss_scale(method, s, eps) * s.cxy;
}

// The row's per-step loss summed over its valid steps: n * (1 - coefficient)
// (docs/DESIGN.md), the sum of the loss without writing it.
template <typename A>
CORROPS_HOST_DEVICE A row_loss_total(Method method, const RowStats<A>& s, double eps) {
  return s.n * (A(1) - row_coefficient(method, s, eps));
}

// Backward, per valid step, with dx' = (x_s - mx) * inv_s, dy' likewise and g
// the upstream gradient of that step:
//   dL/dy_s = a * g * dx' + by + cy * dy'
//   dL/dx_s = a * g * dy' + bx + cx * dx'
// which is docs/DESIGN.md's gradient with the per-row sums (taken over dx', dy')
// folded into a, b, c, and the 1/scale of the chain rule folded in too.
template <typename A>
struct GradCoeffs {
  A a, bx, by, cx, cy;
};

template <typename A>
CORROPS_HOST_DEVICE GradCoeffs<A> grad_coeffs(Method method, const RowStats<A>& s, double eps,
                                              A s1 /* sum g*dx' */, A s1p /* sum g*dy' */,
                                              A s2 /* sum g*dx'*dy' */) {
  GradCoeffs<A> c{A(0), A(0), A(0), A(0), A(0)};
  if (!(s.n > A(0))) return c;  // fully masked row: zero gradient
  // Three reciprocals, then products: few divisions (on GPUs each IEEE
  // division site is a subroutine call whose register saves would spill).
  const A inv_d = A(1) / denominator(method, s, scaled_eps(eps, s.inv_s));
  const A inv_n = A(1) / s.n;
  const A is = s.inv_s;
  if (method == Method::kPearson) {
    const A q = sqrt(s.vx) * sqrt(s.vy);
    c.a = -is * inv_d;
    c.by = is * s1 * inv_n * inv_d;
    c.bx = is * s1p * inv_n * inv_d;
    // The sqrt term is taken as 0 on a constant row (q == 0): no NaN/Inf.
    if (q > A(0)) {
      const A k = is * (s2 * inv_d) * (inv_n * inv_d) * (A(1) / q);
      c.cy = k * s.vx;
      c.cx = k * s.vy;
    }
  } else {
    const A e = A(4) * (s2 * inv_d) * (inv_n * inv_d);
    const A dm = (s.mx - s.my) * s.inv_s;
    c.a = -A(2) * is * inv_d;
    c.by = is * (A(2) * s1 * inv_n * inv_d - e * dm);
    c.bx = is * (A(2) * s1p * inv_n * inv_d + e * dm);
    c.cy = is * e;
    c.cx = is * e;
  }
  return c;
}

// Coefficients of a row whose upstream gradient is the same value gc at every
// step (already divided by the channel count): the gradient of a mean or sum
// of the loss, or of per-sequence weights. The per-row sums are then known
// from the forward's statistics, S1 = gc * sum dx' = 0 (exactly, in real
// arithmetic), S1' = 0 and S2 = gc * n * cxy, and gc is folded into `a`, so
// the elementwise pass runs with g = 1 and never reads an upstream gradient.
template <typename A>
CORROPS_HOST_DEVICE GradCoeffs<A> time_const_grad_coeffs(Method method, const RowStats<A>& s,
                                                         double eps, A gc) {
  GradCoeffs<A> c = grad_coeffs(method, s, eps, A(0), A(0), gc * s.n * s.cxy);
  c.a *= gc;
  return c;
}

}  // namespace corrops
