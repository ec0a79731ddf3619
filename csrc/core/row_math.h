// Per-row scalar math shared by every implementation (CPU engine, CUDA
// kernels). Framework-free; HOST_DEVICE so the CUDA kernels compile the very
// same formulas the CPU tests exercise. See shared/DESIGN.md for the math.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define CORROPS_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define CORROPS_HOST_DEVICE inline
#endif

namespace corrops {

enum class Method : int { kPearson = 0, kCcc = 1 };

// Per-row statistics saved by the forward op for the backward op, stored as
// doubles in this order (kStatsPerRow values per row).
enum StatIndex : int { kStatN = 0, kStatMx, kStatMy, kStatVx, kStatVy, kStatCxy };
constexpr int kStatsPerRow = 6;

// Accumulation type: float for half/bfloat16/float, double for double.
template <typename T>
struct Accumulator {
  using type = float;
};
template <>
struct Accumulator<double> {
  using type = double;
};

// Row statistics in the accumulation type.
template <typename A>
struct RowStats {
  A n, mx, my, vx, vy, cxy;
};

// sqrt(vx) * sqrt(vy) rather than sqrt(vx * vy): the product of two large
// variances overflows float long before either factor does.
template <typename A>
CORROPS_HOST_DEVICE A pearson_scale_q(A vx, A vy) {
  return sqrt(vx) * sqrt(vy);
}

// Denominator D of DESIGN.md for either method.
template <typename A>
CORROPS_HOST_DEVICE A denominator(Method method, const RowStats<A>& s, A eps) {
  if (method == Method::kPearson) return pearson_scale_q(s.vx, s.vy) + eps;
  const A dm = s.mx - s.my;
  return s.vx + s.vy + dm * dm + eps;
}

// Forward: L_t = 1 - scale * dx_t * dy_t (scale = 1/D for Pearson, 2/D for CCC).
template <typename A>
CORROPS_HOST_DEVICE A loss_scale(Method method, const RowStats<A>& s, A eps) {
  const A k = method == Method::kPearson ? A(1) : A(2);
  return k / denominator(method, s, eps);
}

// Backward, per valid step s, with dx = x_s - mx, dy = y_s - my and g the
// upstream gradient of that step:
//   dL/dy_s = a * g * dx + by + cy * dy
//   dL/dx_s = a * g * dy + bx + cx * dx
// which is DESIGN.md's gradient with the per-row sums folded into a, b, c.
template <typename A>
struct GradCoeffs {
  A a, bx, by, cx, cy;
};

template <typename A>
CORROPS_HOST_DEVICE GradCoeffs<A> grad_coeffs(Method method, const RowStats<A>& s, A eps,
                                              A s1 /* sum g*dx */, A s1p /* sum g*dy */,
                                              A s2 /* sum g*dx*dy */) {
  GradCoeffs<A> c{A(0), A(0), A(0), A(0), A(0)};
  if (!(s.n > A(0))) return c;  // fully masked row: zero gradient
  const A d = denominator(method, s, eps);
  const A inv_n = A(1) / s.n;
  if (method == Method::kPearson) {
    const A q = pearson_scale_q(s.vx, s.vy);
    c.a = -A(1) / d;
    c.by = s1 * inv_n / d;
    c.bx = s1p * inv_n / d;
    // The sqrt term is taken as 0 on a constant row (q == 0): no NaN/Inf.
    if (q > A(0)) {
      const A k = s2 / (d * d) * inv_n / q;
      c.cy = k * s.vx;
      c.cx = k * s.vy;
    }
  } else {
    const A e = A(4) * s2 * inv_n / (d * d);
    const A dm = s.mx - s.my;
    c.a = -A(2) / d;
    c.by = A(2) * s1 * inv_n / d - e * dm;
    c.bx = A(2) * s1p * inv_n / d + e * dm;
    c.cy = e;
    c.cx = e;
  }
  return c;
}

}  // namespace corrops
