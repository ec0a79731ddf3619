// The CPU engine on contiguous rows (time on the last data axis, one
// column): chunked one-pass statistics, the loss pass, the backward's sums
// and elementwise pass, and their streamed (non-temporal store) variants.
// Part of cpu_engine.h, which includes it inside the engine's per-instruction-
// set namespace; not a header of its own.
#pragma once

namespace corrops {
namespace CORROPS_ENGINE_ISA {
namespace detail {

// ----------------------------------------------------------- contiguous rows

// Statistics of a contiguous row, in one pass over memory. The row is taken
// kStatsChunk steps at a time (8 KiB of float x and y: L1-resident): the
// chunk's shifted sums and max |.|, then its centred (co)moments about the
// chunk's own mean, both while it is in L1, merged into the row's by Chan,
// Golub and LeVeque's pairwise update (M2 = M2a + M2b + d^2 na nb / n): still
// centred, never E[x^2] - E[x]^2. Both passes prefetch the next chunk, the
// sums pass its first half and the moments pass its second, a line every
// other iteration, so memory streams while the core computes (a whole-row
// two-pass re-reads every row from L2/L3 with the memory idle). Measured
// effect: docs/PERFORMANCE.md, "Row statistics in one pass over memory".
// Moments are kept at the scale of the largest |value| seen so far (a power
// of two, row_inv_scale) and rescaled, exactly, when a chunk raises it.
constexpr int64_t kStatsChunk = 1024;

// Prefetches kLanes values from base[offset].
template <typename T>
inline void prefetch_span(const T* base, int64_t offset) {
#if defined(__GNUC__)
  // A prefetch never faults: past the row it warms the next row, past the
  // array it is dropped. The address is formed as an integer (no pointer
  // arithmetic beyond the array).
  const uintptr_t a =
      reinterpret_cast<uintptr_t>(base) + static_cast<uintptr_t>(offset) * sizeof(T);
  for (uintptr_t b = 0; b < kLanes * sizeof(T); b += 64)
    __builtin_prefetch(reinterpret_cast<const void*>(a + b));
#else
  (void)base;
  (void)offset;
#endif
}

// Called at step t (a multiple of kLanes) of a pass over a chunk: every
// other call prefetches the next kLanes values of x and y from `from` on,
// so a pass of n steps prefetches n / 2 of them.
template <typename T>
inline void prefetch_half_rate(const T* x, const T* y, int64_t t, int64_t from) {
  if ((t / kLanes) % 2 != 0) return;
  prefetch_span(x, from + t / 2);
  prefetch_span(y, from + t / 2);
}

template <typename A>
struct ChunkSums {
  A sx, sy, top;  // sums of x - kx, y - ky over valid steps; max |x|, |y|
};

// Shifted sums of a chunk; prefetches the first half of the chunk `ahead`
// steps further on.
template <bool kMasked, typename T, typename A>
ChunkSums<A> chunk_sums(const T* CORROPS_RESTRICT x, const T* CORROPS_RESTRICT y,
                        const bool* CORROPS_RESTRICT m, int64_t len, A kx, A ky, int64_t ahead) {
  A sx[kLanes] = {}, sy[kLanes] = {}, mab[kLanes] = {};
  for_each_lane<kMasked>(
      m, len, [&](int64_t t) { prefetch_half_rate(x, y, t, ahead); },
      [&](int l, int64_t t, bool v) {
        // Unconditional loads, then selects: branch-free, so it vectorises.
        const A xr = cvt<A>(x[t]), yr = cvt<A>(y[t]);
        sx[l] += keep_if<A>(xr - kx, v);
        sy[l] += keep_if<A>(yr - ky, v);
        mab[l] = max_abs(mab[l], keep_if<A>(xr, v), keep_if<A>(yr, v));
      });
  return ChunkSums<A>{fold(sx), fold(sy), fold_max(mab)};
}

template <typename A>
struct Moments {
  A vx, vy, cxy;  // sums of dx'^2, dy'^2, dx' dy' (not divided by n)
};

// Centred moments of a chunk about (mx, my), scaled by `is`; prefetches the
// second half of the chunk `ahead` steps further on.
template <bool kMasked, typename T, typename A>
Moments<A> chunk_moments(const T* CORROPS_RESTRICT x, const T* CORROPS_RESTRICT y,
                         const bool* CORROPS_RESTRICT m, int64_t len, A mx, A my, A is,
                         int64_t ahead) {
  A vx[kLanes] = {}, vy[kLanes] = {}, cxy[kLanes] = {};
  for_each_lane<kMasked>(
      m, len, [&](int64_t t) { prefetch_half_rate(x, y, t, ahead + kStatsChunk / 2); },
      [&](int l, int64_t t, bool v) {
        const A dx = keep_if<A>((cvt<A>(x[t]) - mx) * is, v);
        const A dy = keep_if<A>((cvt<A>(y[t]) - my) * is, v);
        vx[l] += dx * dx;
        vy[l] += dy * dy;
        cxy[l] += dx * dy;
      });
  return Moments<A>{fold(vx), fold(vy), fold(cxy)};
}

// A contiguous row's statistics, one kStatsChunk-step chunk at a time
// (contiguous_stats; the pipelined forward interleaves the chunks of one row
// with another row's loss). add_chunk is kept out of line so that both
// callers run the same machine code and get the same bits.
template <bool kMasked, typename T, typename A>
struct ContiguousStatsBuilder {
  const T* x;
  const T* y;
  const bool* m;
  int64_t len;
  A kx, ky, n, sx, sy, top, is;
  Moments<A> row;

  ContiguousStatsBuilder(const T* x_, const T* y_, const bool* m_, int64_t len_)
      : x(x_), y(y_), m(m_), len(len_) {
    // Sums are taken of x - kx with kx the first valid value: a constant row
    // then has a mean of exactly kx and deviations of exactly 0 (and shifted
    // sums lose less precision than raw ones).
    const int64_t first = kMasked ? first_valid(m, len, 1) : 0;
    kx = first < len ? cvt<A>(x[first]) : A(0);
    ky = first < len ? cvt<A>(y[first]) : A(0);
    n = sx = sy = top = A(0);
    is = A(1);
    row = Moments<A>{A(0), A(0), A(0)};
  }

  // Merges the chunk of steps [c0, c0 + kStatsChunk) (or to the row's end).
  __attribute__((noinline)) void add_chunk(int64_t c0) {
    const int64_t cl = std::min(kStatsChunk, len - c0);
    const bool* mc = kMasked ? m + c0 : nullptr;
    const A nc = static_cast<A>(kMasked ? count_valid(mc, cl, 1) : cl);
    const ChunkSums<A> cs = chunk_sums<kMasked>(x + c0, y + c0, mc, cl, kx, ky, kStatsChunk);
    if (!(nc > A(0))) return;  // no valid step: nothing to merge
    top = cs.top > top ? cs.top : top;
    const A cis = row_inv_scale(top);
    if (cis != is) {  // a power of two: exact, bar underflow of what is then negligible
      const A f = cis / is;
      row.vx = row.vx * f * f;
      row.vy = row.vy * f * f;
      row.cxy = row.cxy * f * f;
      is = cis;
    }
    const A cmx = cs.sx / nc, cmy = cs.sy / nc;  // chunk means, shifted by kx, ky
    const Moments<A> c =
        chunk_moments<kMasked>(x + c0, y + c0, mc, cl, kx + cmx, ky + cmy, is, kStatsChunk);
    // Chan et al.: deltas of the means (scaled), weighted n_row n_chunk / n.
    const A dmx = n > A(0) ? (cmx - sx / n) * is : A(0);
    const A dmy = n > A(0) ? (cmy - sy / n) * is : A(0);
    const A w = n * nc / (n + nc);
    row.vx += c.vx + dmx * dmx * w;
    row.vy += c.vy + dmy * dmy * w;
    row.cxy += c.cxy + dmx * dmy * w;
    sx += cs.sx;
    sy += cs.sy;
    n += nc;
  }

  RowStats<A> finish() const {
    RowStats<A> s{};
    s.n = n;
    const A inv = n > A(0) ? A(1) / n : A(0);
    s.mx = kx + sx * inv;
    s.my = ky + sy * inv;
    s.inv_s = is;  // row_inv_scale of the row's max |.|, as every chunk's merge used
    s.vx = row.vx * inv;
    s.vy = row.vy * inv;
    s.cxy = row.cxy * inv;
    return s;
  }
};

template <bool kMasked, typename T, typename A>
RowStats<A> contiguous_stats(const T* CORROPS_RESTRICT x, const T* CORROPS_RESTRICT y,
                             const bool* CORROPS_RESTRICT m, int64_t len) {
  ContiguousStatsBuilder<kMasked, T, A> b(x, y, m, len);
  for (int64_t c0 = 0; c0 < len; c0 += kStatsChunk) b.add_chunk(c0);
  return b.finish();
}

template <bool kMasked, typename T, typename A>
void contiguous_loss(const T* CORROPS_RESTRICT x, const T* CORROPS_RESTRICT y,
                     const bool* CORROPS_RESTRICT m, int64_t len, A mx, A my, A is, A scale,
                     T* CORROPS_RESTRICT loss) {
  for (int64_t t = 0; t < len; ++t) {
    const A l = A(1) - scale * ((cvt<A>(x[t]) - mx) * is) * ((cvt<A>(y[t]) - my) * is);
    loss[t] = static_cast<T>(kMasked ? keep_if<A>(l, is_valid(m, t)) : l);
  }
}

template <bool kMasked, typename T, typename A>
void contiguous_grad_sums(const T* CORROPS_RESTRICT g, const T* CORROPS_RESTRICT x,
                          const T* CORROPS_RESTRICT y, const bool* CORROPS_RESTRICT m, int64_t len,
                          A mx, A my, A is, A* s1_out, A* s1p_out, A* s2_out) {
  A s1[kLanes] = {}, s1p[kLanes] = {}, s2[kLanes] = {};
  for_each_lane<kMasked>(
      m, len, [](int64_t) {},
      [&](int l, int64_t t, bool v) {
        const A gv = keep_if<A>(cvt<A>(g[t]), v);
        const A dx = keep_if<A>((cvt<A>(x[t]) - mx) * is, v);
        const A dy = keep_if<A>((cvt<A>(y[t]) - my) * is, v);
        s1[l] += gv * dx;
        s1p[l] += gv * dy;
        s2[l] += gv * dx * dy;
      });
  *s1_out = fold(s1);
  *s1p_out = fold(s1p);
  *s2_out = fold(s2);
}

// Backward pass 2 over a row: the elementwise gradients. kX / kY say which
// of dL/dy_true (gx) and dL/dy_pred (gy) are stored (the other may be null).
// kGInPlace: the one stored gradient shares its buffer with the upstream
// gradient g (TF forwarded g's buffer); g[t] is then read from that buffer
// just before the same element is overwritten, and `g` itself is unused.
// kUnitG: g is 1 at every step (a time-constant g folded into k.a, see
// time_const_grad_coeffs); `g` is unused.
template <bool kMasked, bool kX, bool kY, bool kGInPlace, bool kUnitG, typename T, typename A>
void contiguous_grads(const T* CORROPS_RESTRICT g, const T* CORROPS_RESTRICT x,
                      const T* CORROPS_RESTRICT y, const bool* CORROPS_RESTRICT m, int64_t len,
                      A mx, A my, A is, const GradCoeffs<A>& k, T* CORROPS_RESTRICT gx,
                      T* CORROPS_RESTRICT gy) {
  static_assert(!kGInPlace || kX != kY, "in place needs exactly one stored gradient");
  static_assert(!(kGInPlace && kUnitG), "no upstream gradient buffer to share");
  const A a = k.a, bx = k.bx, by = k.by, cx = k.cx, cy = k.cy;
  for (int64_t t = 0; t < len; ++t) {
    const bool v = kMasked ? is_valid(m, t) : true;
    const A gv = kUnitG ? A(1) : cvt<A>(kGInPlace ? (kX ? gx[t] : gy[t]) : g[t]);
    const A dx = (cvt<A>(x[t]) - mx) * is;
    const A dy = (cvt<A>(y[t]) - my) * is;
    if constexpr (kX) gx[t] = static_cast<T>(keep_if<A>(a * gv * dy + bx + cx * dx, v));
    if constexpr (kY) gy[t] = static_cast<T>(keep_if<A>(a * gv * dx + by + cy * dy, v));
  }
}

// Picks the contiguous_grads instantiation for the outputs asked for.
template <bool kMasked, bool kUnitG, typename T, typename A>
void contiguous_grads_to(const T* g, const T* x, const T* y, const bool* m, int64_t len, A mx, A my,
                         A is, const GradCoeffs<A>& k, T* gx, T* gy) {
  if (gx && gy)
    return contiguous_grads<kMasked, /*kX=*/true, /*kY=*/true, /*kGInPlace=*/false, kUnitG, T, A>(
        g, x, y, m, len, mx, my, is, k, gx, gy);
  if constexpr (!kUnitG) {  // only a per-step g has a buffer the output may share
    if (gx && gx == g)
      return contiguous_grads<kMasked, /*kX=*/true, /*kY=*/false, /*kGInPlace=*/true, false, T, A>(
          nullptr, x, y, m, len, mx, my, is, k, gx, nullptr);
    if (gy && gy == g)
      return contiguous_grads<kMasked, /*kX=*/false, /*kY=*/true, /*kGInPlace=*/true, false, T, A>(
          nullptr, x, y, m, len, mx, my, is, k, nullptr, gy);
  }
  if (gx)
    contiguous_grads<kMasked, /*kX=*/true, /*kY=*/false, /*kGInPlace=*/false, kUnitG, T, A>(
        g, x, y, m, len, mx, my, is, k, gx, nullptr);
  else if (gy)
    contiguous_grads<kMasked, /*kX=*/false, /*kY=*/true, /*kGInPlace=*/false, kUnitG, T, A>(
        g, x, y, m, len, mx, my, is, k, nullptr, gy);
}

// Stores steps [0, len) of one or two outputs, `a` and `b` (b may be null),
// with streaming stores (stream_store.h): steps(t0, n, da, db) computes steps
// [t0, t0 + n) into da[0, n) (and db). The steps up to a's first 16-byte
// boundary and the tail are computed straight into the outputs; the rest
// kLanes steps at a time into a scratch of kLanes values (registers or L1),
// each then streamed out. The same loops compute every value, so the bits
// are those of the unstreamed pass. Two outputs whose alignments differ keep
// ordinary stores (rare: both gradients asked for, rows not 16-byte sized).
// A kLanes scratch keeps the values in registers or L1 on their way out
// (a larger scratch copied out per chunk measured 1.3-1.5x slower:
// docs/PERFORMANCE.md, "Non-temporal stores").
template <typename T, typename Steps>
inline void streamed_steps(T* a, T* b, int64_t len, const Steps& steps) {
  constexpr int64_t kItem = static_cast<int64_t>(sizeof(T));
  const auto mis = static_cast<int64_t>(reinterpret_cast<uintptr_t>(a) % 16);
  if (mis % kItem != 0 || (b && reinterpret_cast<uintptr_t>(b) % 16 != static_cast<uintptr_t>(mis)))
    return steps(0, len, a, b);
  int64_t t = std::min(len, (16 - mis) % 16 / kItem);
  if (t > 0) steps(0, t, a, b);
  alignas(64) T ba[kLanes];
  alignas(64) T bb[kLanes];
  for (; t + kLanes <= len; t += kLanes) {
    steps(t, kLanes, ba, b ? bb : nullptr);
    stream_store_aligned<kLanes * kItem>(a + t, ba);
    if (b) stream_store_aligned<kLanes * kItem>(b + t, bb);
  }
  if (t < len) steps(t, len - t, a + t, b ? b + t : nullptr);
}

// A streamed backward prefetches the inputs kGradPrefetchAhead steps ahead
// of each kLanes block it computes: the pass reads memory with little to
// compute, and the hardware prefetcher stops at every 4 KiB page (128 to
// 1024 steps ahead all measured faster at (64,65536,1); 256 the most).
// Unstreamed rows (passes below the stream threshold) keep one call with no
// prefetch.
constexpr int64_t kGradPrefetchAhead = 256;

// contiguous_grads_to, with the outputs streamed when `stream`.
template <bool kMasked, bool kUnitG, typename T, typename A>
void contiguous_grads_out(bool stream, const T* g, const T* x, const T* y, const bool* m,
                          int64_t len, A mx, A my, A is, const GradCoeffs<A>& k, T* gx, T* gy) {
  if (!stream) return contiguous_grads_to<kMasked, kUnitG>(g, x, y, m, len, mx, my, is, k, gx, gy);
  // The first output asked for leads the alignment; `steps` puts them back.
  T* first = gx ? gx : gy;
  T* second = gx ? gy : nullptr;
  streamed_steps(first, second, len, [&](int64_t t, int64_t n, T* d1, T* d2) {
    prefetch_span(x, t + kGradPrefetchAhead);
    prefetch_span(y, t + kGradPrefetchAhead);
    if constexpr (!kUnitG) prefetch_span(g, t + kGradPrefetchAhead);
    contiguous_grads_to<kMasked, kUnitG>(kUnitG ? g : g + t, x + t, y + t,
                                         kMasked ? m + t : nullptr, n, mx, my, is, k,
                                         gx ? d1 : nullptr, gx ? d2 : d1);
  });
}

// contiguous_loss, with the loss streamed when `stream` (bitwise the plain
// loop's values). The streamed loss skips the read-for-ownership of its
// lines, and the mean that reads it next finds it in memory instead of the
// cache (docs/PERFORMANCE.md, "Non-temporal stores"). Below the threshold,
// where the arrays stay in cache, it is off.
template <bool kMasked, typename T, typename A>
void contiguous_loss_out(bool stream, const T* x, const T* y, const bool* m, int64_t len, A mx,
                         A my, A is, A scale, T* loss) {
  if (!stream) return contiguous_loss<kMasked>(x, y, m, len, mx, my, is, scale, loss);
  streamed_steps(loss, static_cast<T*>(nullptr), len, [&](int64_t t, int64_t n, T* d, T*) {
    contiguous_loss<kMasked>(x + t, y + t, kMasked ? m + t : nullptr, n, mx, my, is, scale, d);
  });
}

// Backward over one contiguous row of `len` steps. `g` is the row's upstream
// gradient, or with time_const a pointer to its one value.
template <bool kMasked, typename T, typename A>
void contiguous_row_backward(Method method, double eps, const RowStats<A>& s, bool time_const,
                             bool stream, const T* g, const T* x, const T* y, const bool* m,
                             int64_t len, T* gx, T* gy) {
  if (time_const) {
    const GradCoeffs<A> k = time_const_grad_coeffs(method, s, eps, cvt<A>(*g));
    contiguous_grads_out<kMasked, /*kUnitG=*/true>(stream, g, x, y, m, len, s.mx, s.my, s.inv_s, k,
                                                   gx, gy);
    return;
  }
  A s1, s1p, s2;
  contiguous_grad_sums<kMasked>(g, x, y, m, len, s.mx, s.my, s.inv_s, &s1, &s1p, &s2);
  const GradCoeffs<A> k = grad_coeffs(method, s, eps, s1, s1p, s2);
  contiguous_grads_out<kMasked, /*kUnitG=*/false>(stream, g, x, y, m, len, s.mx, s.my, s.inv_s, k,
                                                  gx, gy);
}

}  // namespace detail
}  // namespace CORROPS_ENGINE_ISA
}  // namespace corrops
