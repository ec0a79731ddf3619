// The CPU engine compiled for AVX2 + FMA + F16C (x86-64 only; chosen at run
// time by cpu_dispatch). Everything this file shares with other translation units
// (the standard library, row_math.h) is included before the target pragma,
// so only the engine itself, in namespace corrops::avx2, uses AVX2: no
// AVX2 copy of a shared inline function can be picked by the linker for
// code that runs on an older CPU.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/row_math.h"
#include "core/stream_store.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#define CORROPS_ENGINE_ISA avx2
#include "core/cpu_engine.h"
#pragma GCC pop_options

#include "core/engine_instantiate.h"

namespace corrops {
namespace avx2 {

CORROPS_INSTANTIATE_ENGINE(float)
CORROPS_INSTANTIATE_ENGINE(double)

// ----------------------------------------------------------- binary16 slabs
// IEEE binary16 (Eigen::half's bits), one outer slab (time x groups x
// channels) per work unit: the slab is widened to float in a scratch buffer
// with F16C (8 values per instruction), run through the float engine above as
// a one-slab layout, and its outputs narrowed back
// (round-to-nearest-even, as a C++ float -> half cast). The float engine does
// the same float arithmetic as a half instantiation would, at vector speed.
// One case skips the slab copies: see binary16_unit_g_row.

namespace {

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
void widen(const uint16_t* in, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  for (; i < n; ++i) out[i] = _cvtsh_ss(in[i]);
}

void narrow(const float* in, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) out[i] = _cvtss_sh(in[i], _MM_FROUND_TO_NEAREST_INT);
}

// The time-constant gradient (a mean's or a sum's) of unmasked contiguous
// rows, straight from and to binary16: 8 steps at a time are widened into a
// register-sized buffer, run through the float engine's own elementwise loop
// (the slab path's float arithmetic, bit for bit: core tests) and narrowed
// back; the slab path instead stores and re-reads float copies of x, y and
// the gradient (measured: docs/PERFORMANCE.md, "float16 and bfloat16").
void binary16_unit_g_row(const uint16_t* x, const uint16_t* y, int64_t len, float mx, float my,
                         float is, const GradCoeffs<float>& k, uint16_t* gx, uint16_t* gy) {
  alignas(32) float xf[8], yf[8], gxf[8], gyf[8];
  int64_t t = 0;
  for (; t + 8 <= len; t += 8) {
    widen(x + t, 8, xf);
    widen(y + t, 8, yf);
    detail::contiguous_grads_to</*kMasked=*/false, /*kUnitG=*/true, float, float>(
        nullptr, xf, yf, nullptr, 8, mx, my, is, k, gx ? gxf : nullptr, gy ? gyf : nullptr);
    if (gx) narrow(gxf, 8, gx + t);
    if (gy) narrow(gyf, 8, gy + t);
  }
  if (t == len) return;
  const int64_t n = len - t;
  widen(x + t, n, xf);
  widen(y + t, n, yf);
  detail::contiguous_grads_to</*kMasked=*/false, /*kUnitG=*/true, float, float>(
      nullptr, xf, yf, nullptr, n, mx, my, is, k, gx ? gxf : nullptr, gy ? gyf : nullptr);
  if (gx) narrow(gxf, n, gx + t);
  if (gy) narrow(gyf, n, gy + t);
}

// Rows [begin, end) of `len` steps; g holds one value per row.
void binary16_unit_g_rows(int64_t len, Method method, double eps, const uint16_t* g,
                          const uint16_t* x, const uint16_t* y, const double* stats, uint16_t* gx,
                          uint16_t* gy, int64_t begin, int64_t end) {
  for (int64_t u = begin; u < end; ++u) {
    const RowStats<float> s = detail::load_stats<float>(stats + u * kStatsPerRow);
    // g is read before the row's outputs are written (one may share its buffer).
    const GradCoeffs<float> k = time_const_grad_coeffs(method, s, eps, _cvtsh_ss(g[u]));
    const int64_t off = u * len;
    binary16_unit_g_row(x + off, y + off, len, s.mx, s.my, s.inv_s, k, gx ? gx + off : nullptr,
                        gy ? gy + off : nullptr);
  }
}
#pragma GCC pop_options

}  // namespace

void corr_loss_forward_binary16_slabs(const Layout& l, Method method, double eps,
                                      const uint16_t* y_true, const uint16_t* y_pred,
                                      const bool* mask, uint16_t* loss, double* stats,
                                      int64_t begin, int64_t end) {
  const int64_t n = l.time * l.inner(), n_loss = l.time * l.groups;
  const Layout slab{1, l.time, l.groups, l.channels};
  std::vector<float> scratch(2 * n + n_loss);
  float *x = scratch.data(), *y = x + n, *out = y + n;
  for (int64_t u = begin; u < end; ++u) {
    widen(y_true + u * n, n, x);
    widen(y_pred + u * n, n, y);
    corr_loss_forward<float>(slab, method, eps, x, y, mask ? mask + u * n_loss : nullptr, out,
                             stats + u * l.inner() * kStatsPerRow, 0, num_work_units(slab));
    narrow(out, n_loss, loss + u * n_loss);
  }
}

void corr_loss_backward_binary16_slabs(const Layout& l, Method method, double eps,
                                       const uint16_t* grad, const uint16_t* y_true,
                                       const uint16_t* y_pred, const bool* mask,
                                       const double* stats, uint16_t* grad_true,
                                       uint16_t* grad_pred, int64_t begin, int64_t end,
                                       bool grad_time_const) {
  if (l.inner() == 1 && grad_time_const && !mask)  // one row per slab, g one value per row
    return binary16_unit_g_rows(l.time, method, eps, grad, y_true, y_pred, stats, grad_true,
                                grad_pred, begin, end);
  const int64_t n = l.time * l.inner();
  const int64_t n_loss = l.time * l.groups;
  const int64_t n_grad = grad_time_const ? l.groups : n_loss;  // (outer, 1, groups) if constant
  const Layout slab{1, l.time, l.groups, l.channels};
  std::vector<float> scratch(4 * n + n_grad);
  float *g = scratch.data(), *x = g + n_grad, *y = x + n, *gx = y + n, *gy = gx + n;
  for (int64_t u = begin; u < end; ++u) {
    widen(grad + u * n_grad, n_grad, g);  // before any output: one may be grad's buffer
    widen(y_true + u * n, n, x);
    widen(y_pred + u * n, n, y);
    corr_loss_backward<float>(slab, method, eps, g, x, y, mask ? mask + u * n_loss : nullptr,
                              stats + u * l.inner() * kStatsPerRow, grad_true ? gx : nullptr,
                              grad_pred ? gy : nullptr, 0, num_work_units(slab), grad_time_const);
    if (grad_true) narrow(gx, n, grad_true + u * n);
    if (grad_pred) narrow(gy, n, grad_pred + u * n);
  }
}

}  // namespace avx2

}  // namespace corrops
