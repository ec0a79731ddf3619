// CPU reference engine: forward and backward over a canonical layout.
//
// Canonical layout (all implementations): data of shape (outer, time, groups,
// channels), row-major. One *row* is one (outer, group, channel) sequence along
// time. The loss/mask/upstream-gradient tensors have shape (outer, time,
// groups): the loss is averaged over channels. Per-row statistics are stored
// as doubles, kStatsPerRow per row, rows ordered (outer, group*channels).
//
// Work is split into independent units: one contiguous row when there is a
// single column (inner == 1), else a block of adjacent columns of one outer
// slab. A unit is always processed by one thread in a fixed order, so results
// are bitwise identical for any thread count. Statistics are centred (never
// E[x^2]-E[x]^2: per chunk two passes while it is in L1, merged pairwise on
// contiguous rows, see contiguous_stats); contiguous rows sum in kLanes
// independent partial sums, which vectorises and rounds less than one chain.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/row_math.h"
#include "core/stream_store.h"

#if defined(__GNUC__)
#define CORROPS_RESTRICT __restrict__
#else
#define CORROPS_RESTRICT
#endif

// The engine is compiled once per instruction set, each copy in its own
// namespace so the copies never merge at link time: `generic` (the baseline
// x86-64 / any target) here, `avx2` from cpu_engine_avx2.cc and `avx512` from
// cpu_engine_avx512.cc. Callers use
// core/cpu_dispatch.h, which picks one at run time.
#ifndef CORROPS_ENGINE_ISA
#define CORROPS_ENGINE_ISA generic
#endif

namespace corrops {
namespace CORROPS_ENGINE_ISA {

namespace detail {

constexpr int kLanes = 16;
// Target number of columns handled by one strided work unit.
constexpr int64_t kBlockColumns = 64;

template <typename A, typename T>
inline A cvt(T v) {
  return static_cast<A>(v);
}

// The lanes' sum, pairwise (lane l + lane l + w, w halving): 4 dependent adds
// instead of a 16-add chain, which at one chunk per short row (or per 1024
// steps) was a visible share of the row's time; it also rounds less.
template <typename A>
inline A fold(const A* lanes) {
  static_assert(kLanes > 1 && (kLanes & (kLanes - 1)) == 0, "kLanes is a power of two");
  A t[kLanes / 2];
  for (int l = 0; l < kLanes / 2; ++l) t[l] = lanes[l] + lanes[l + kLanes / 2];
  for (int w = kLanes / 4; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) t[l] = t[l] + t[l + w];
  return t[0];
}

// The lanes' maximum, pairwise like fold: 4 dependent maxes instead of a
// 16-max chain (a few cycles each, once per chunk: a share of a short row's
// statistics; see row_inv_scale for the measured gain). Lanes hold maxima of
// |values|, never NaN (max_abs skips a NaN), and max is exact: the order
// changes no bit.
template <typename A>
inline A fold_max(const A* lanes) {
  A t[kLanes / 2];
  for (int l = 0; l < kLanes / 2; ++l)
    t[l] = lanes[l + kLanes / 2] > lanes[l] ? lanes[l + kLanes / 2] : lanes[l];
  for (int w = kLanes / 4; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) t[l] = t[l + w] > t[l] ? t[l + w] : t[l];
  return t[0];
}

// max(m, |a|, |b|); a NaN is skipped where it meets m, and may hide the
// other value of its pair: only the row's scale can change, and the row is
// NaN anyway (the sums carry the NaN). |a| and |b| meet first so that m, the
// loop-carried value, waits for one max per step instead of two: the sums
// pass was bound by that chain (AVX-512 copy, one core, a row in L2: the
// statistics pass 0.25 -> 0.20 ns/element, the forward 0.36 -> 0.30; from
// memory on 2 threads, unchanged). std::fabs is a sign-bit mask (a
// compare-and-negate compiles to a branch and blocks vectorisation).
template <typename A>
inline A max_abs(A m, A a, A b) {
  const A aa = std::fabs(a), ab = std::fabs(b);
  const A p = ab > aa ? ab : aa;
  return p > m ? p : m;
}

// `keep ? v : 0` as a bit mask. GCC if-converts a float select that feeds
// several products into branches, which stops vectorisation of the masked
// loops (5x slower); an integer AND vectorises. Masked-out NaN/Inf become 0.
template <typename A>
inline A keep_if(A v, bool keep) {
  using U = typename FloatBits<A>::Uint;
  U u;
  std::memcpy(&u, &v, sizeof u);
  u &= U(0) - static_cast<U>(keep);
  std::memcpy(&v, &u, sizeof u);
  return v;
}

// A mask entry read as a byte: bool is one byte holding 0 or 1, and a byte
// compare vectorises (into a lane select) where a bool load does not.
inline bool is_valid(const bool* CORROPS_RESTRICT m, int64_t i) {
  return reinterpret_cast<const unsigned char*>(m)[i] != 0;
}

// Index of the first valid step (len if none).
inline int64_t first_valid(const bool* CORROPS_RESTRICT m, int64_t len, int64_t stride) {
  for (int64_t t = 0; t < len; ++t)
    if (m[t * stride]) return t;
  return len;
}

inline int64_t count_valid(const bool* CORROPS_RESTRICT m, int64_t len, int64_t stride) {
  const unsigned char* CORROPS_RESTRICT b = reinterpret_cast<const unsigned char*>(m);
  int64_t n = 0;
  if (stride == 1) {
    for (int64_t t = 0; t < len; ++t) n += b[t] != 0;
  } else {
    for (int64_t t = 0; t < len; ++t) n += b[t * stride] != 0;
  }
  return n;
}

// The valid steps of a masked contiguous row, when they are one run
// [begin, end) (padding after and/or before a sequence: the usual mask). Such
// a row is computed as an unmasked row over the run, with zeros around it:
// the same values (the masked loops also shift by the first valid step and
// skip the rest) at the unmasked loops' speed. False for any other mask, and
// for a row with no valid step.
struct Run {
  int64_t begin = 0, end = 0;
};

inline bool valid_run(const bool* CORROPS_RESTRICT m, int64_t len, Run* run) {
  // Called for every masked row, so it must cost little next to the row's
  // arithmetic. Every scan runs forward, the order the hardware prefetcher
  // follows: the ends found by scanning the padding backwards stalled on DRAM
  // once per cache line where masks are not cache-resident (masked backward
  // 1.6x the unmasked one in TF). Valid steps are checked eight bytes at a
  // time (any nonzero byte is valid: non-0/1 bytes take the byte loop), the
  // rest with an OR reduction that vectorises.
  const unsigned char* CORROPS_RESTRICT b = reinterpret_cast<const unsigned char*>(m);
  auto word = [b](int64_t i) {
    uint64_t w;
    std::memcpy(&w, b + i, sizeof w);
    return w;
  };
  constexpr uint64_t kAllValid = 0x0101010101010101ull;
  int64_t a = 0;
  while (a + 8 <= len && word(a) == 0) a += 8;
  while (a < len && b[a] == 0) ++a;
  if (a == len) return false;  // no valid step
  int64_t e = a;
  while (e + 8 <= len && word(e) == kAllValid) e += 8;
  while (e < len && b[e] != 0) ++e;
  unsigned char after = 0;  // [a, e) is valid and b[e] is not: any valid step after e?
  for (int64_t t = e; t < len; ++t) after |= b[t];
  if (after != 0) return false;  // a gap inside: not one run
  *run = Run{a, e};
  return true;
}

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
  const int64_t body = len - len % kLanes;
  A sx[kLanes] = {}, sy[kLanes] = {}, mab[kLanes] = {};
  for (int64_t t = 0; t < body; t += kLanes) {
    prefetch_half_rate(x, y, t, ahead);
    for (int l = 0; l < kLanes; ++l) {
      // Unconditional loads, then selects: branch-free, so it vectorises.
      const bool v = kMasked ? is_valid(m, t + l) : true;
      const A xr = cvt<A>(x[t + l]), yr = cvt<A>(y[t + l]);
      sx[l] += keep_if<A>(xr - kx, v);
      sy[l] += keep_if<A>(yr - ky, v);
      mab[l] = max_abs(mab[l], keep_if<A>(xr, v), keep_if<A>(yr, v));
    }
  }
  for (int64_t t = body; t < len; ++t) {
    const bool v = kMasked ? is_valid(m, t) : true;
    const A xr = cvt<A>(x[t]), yr = cvt<A>(y[t]);
    sx[t - body] += keep_if<A>(xr - kx, v);
    sy[t - body] += keep_if<A>(yr - ky, v);
    mab[t - body] = max_abs(mab[t - body], keep_if<A>(xr, v), keep_if<A>(yr, v));
  }
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
  const int64_t body = len - len % kLanes;
  A vx[kLanes] = {}, vy[kLanes] = {}, cxy[kLanes] = {};
  for (int64_t t = 0; t < body; t += kLanes) {
    prefetch_half_rate(x, y, t, ahead + kStatsChunk / 2);
    for (int l = 0; l < kLanes; ++l) {
      const bool v = kMasked ? is_valid(m, t + l) : true;
      const A dx = keep_if<A>((cvt<A>(x[t + l]) - mx) * is, v);
      const A dy = keep_if<A>((cvt<A>(y[t + l]) - my) * is, v);
      vx[l] += dx * dx;
      vy[l] += dy * dy;
      cxy[l] += dx * dy;
    }
  }
  for (int64_t t = body; t < len; ++t) {
    const bool v = kMasked ? is_valid(m, t) : true;
    const A dx = keep_if<A>((cvt<A>(x[t]) - mx) * is, v);
    const A dy = keep_if<A>((cvt<A>(y[t]) - my) * is, v);
    vx[t - body] += dx * dx;
    vy[t - body] += dy * dy;
    cxy[t - body] += dx * dy;
  }
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
  const int64_t body = len - len % kLanes;
  A s1[kLanes] = {}, s1p[kLanes] = {}, s2[kLanes] = {};
  for (int64_t t = 0; t < body; t += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const bool v = kMasked ? is_valid(m, t + l) : true;
      const A gr = cvt<A>(g[t + l]);
      const A dxr = (cvt<A>(x[t + l]) - mx) * is, dyr = (cvt<A>(y[t + l]) - my) * is;
      const A gv = keep_if<A>(gr, v);
      const A dx = keep_if<A>(dxr, v);
      const A dy = keep_if<A>(dyr, v);
      s1[l] += gv * dx;
      s1p[l] += gv * dy;
      s2[l] += gv * dx * dy;
    }
  for (int64_t t = body; t < len; ++t) {
    const bool v = kMasked ? is_valid(m, t) : true;
    const A gr = cvt<A>(g[t]);
    const A dxr = (cvt<A>(x[t]) - mx) * is, dyr = (cvt<A>(y[t]) - my) * is;
    const A gv = keep_if<A>(gr, v);
    const A dx = keep_if<A>(dxr, v);
    const A dy = keep_if<A>(dyr, v);
    s1[t - body] += gv * dx;
    s1p[t - body] += gv * dy;
    s2[t - body] += gv * dx * dy;
  }
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
    return contiguous_grads<kMasked, true, true, false, kUnitG, T, A>(g, x, y, m, len, mx, my, is,
                                                                      k, gx, gy);
  if constexpr (!kUnitG) {  // only a per-step g has a buffer the output may share
    if (gx && gx == g)
      return contiguous_grads<kMasked, true, false, true, false, T, A>(nullptr, x, y, m, len, mx,
                                                                       my, is, k, gx, nullptr);
    if (gy && gy == g)
      return contiguous_grads<kMasked, false, true, true, false, T, A>(nullptr, x, y, m, len, mx,
                                                                       my, is, k, nullptr, gy);
  }
  if (gx)
    contiguous_grads<kMasked, true, false, false, kUnitG, T, A>(g, x, y, m, len, mx, my, is, k, gx,
                                                                nullptr);
  else if (gy)
    contiguous_grads<kMasked, false, true, false, kUnitG, T, A>(g, x, y, m, len, mx, my, is, k,
                                                                nullptr, gy);
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
// cache. At (64,65536,1), where the pass touches 48 MiB, the bare forward
// measured 1.99-2.13 against 2.41-2.48 ms with plain stores. Below the
// threshold, where the arrays stay in cache, it is off.
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
    contiguous_grads_out<kMasked, true>(stream, g, x, y, m, len, s.mx, s.my, s.inv_s, k, gx, gy);
    return;
  }
  A s1, s1p, s2;
  contiguous_grad_sums<kMasked>(g, x, y, m, len, s.mx, s.my, s.inv_s, &s1, &s1p, &s2);
  const GradCoeffs<A> k = grad_coeffs(method, s, eps, s1, s1p, s2);
  contiguous_grads_out<kMasked, false>(stream, g, x, y, m, len, s.mx, s.my, s.inv_s, k, gx, gy);
}

// ------------------------------------------------------------ strided blocks
// A block of `w` adjacent columns of one outer slab: element (t, j) at
// data[t * ld + j]; its mask / loss / upstream-gradient entry is at
// [t * out_ld + j / channels]. Per-step loops run over j with no aliasing, so
// they vectorise; the per-group mask is expanded once per step.

template <typename A>
struct BlockScratch {
  explicit BlockScratch(int64_t w)
      : p(w), q(w), r(w), mx(w), my(w), is(w), scale(w), valid(w), vals(w), k(w), stats(w) {}
  std::vector<A> p, q, r, mx, my, is, scale;
  std::vector<char> valid;
  std::vector<A> vals;
  std::vector<GradCoeffs<A>> k;
  std::vector<RowStats<A>> stats;
  void zero_sums() {
    std::fill(p.begin(), p.end(), A(0));
    std::fill(q.begin(), q.end(), A(0));
    std::fill(r.begin(), r.end(), A(0));
  }
};

struct Block {
  int64_t data, ld, out, out_ld, steps, w, channels, first_row;
};

template <bool kMasked, typename A>
void expand_mask(const Block& b, const bool* m, int64_t s, char* CORROPS_RESTRICT valid) {
  if (!kMasked) return;
  const bool* ms = m + b.out + s * b.out_ld;
  for (int64_t g = 0, j = 0; g < b.w / b.channels; ++g)
    for (int64_t c = 0; c < b.channels; ++c, ++j) valid[j] = ms[g] ? 1 : 0;
}

template <bool kMasked, typename T, typename A>
void block_stats(const Block& b, const T* x, const T* y, const bool* m, BlockScratch<A>& sc) {
  const int64_t w = b.w;
  sc.zero_sums();
  A* CORROPS_RESTRICT sx = sc.p.data();
  A* CORROPS_RESTRICT sy = sc.q.data();
  A* CORROPS_RESTRICT mab = sc.r.data();
  A* CORROPS_RESTRICT kx = sc.mx.data();  // shifts: first valid value per column
  A* CORROPS_RESTRICT ky = sc.my.data();
  char* CORROPS_RESTRICT valid = sc.valid.data();
  for (int64_t j = 0; j < w; ++j) {
    const int64_t first = kMasked ? first_valid(m + b.out + j / b.channels, b.steps, b.out_ld) : 0;
    kx[j] = first < b.steps ? cvt<A>(x[b.data + first * b.ld + j]) : A(0);
    ky[j] = first < b.steps ? cvt<A>(y[b.data + first * b.ld + j]) : A(0);
  }
  for (int64_t s = 0; s < b.steps; ++s) {
    const T* CORROPS_RESTRICT xs = x + b.data + s * b.ld;
    const T* CORROPS_RESTRICT ys = y + b.data + s * b.ld;
    expand_mask<kMasked, A>(b, m, s, valid);
    for (int64_t j = 0; j < w; ++j) {
      // Unconditional loads, then selects: branch-free, so it vectorises.
      const bool v = !kMasked || valid[j];
      const A xr = cvt<A>(xs[j]), yr = cvt<A>(ys[j]);
      const A xv = keep_if<A>(xr, v);
      const A yv = keep_if<A>(yr, v);
      sx[j] += keep_if<A>(xr - kx[j], v);
      sy[j] += keep_if<A>(yr - ky[j], v);
      mab[j] = max_abs(mab[j], xv, yv);
    }
  }
  for (int64_t j = 0; j < w; ++j) {
    const int64_t n =
        kMasked ? count_valid(m + b.out + j / b.channels, b.steps, b.out_ld) : b.steps;
    RowStats<A>& st = sc.stats[j];
    st.n = static_cast<A>(n);
    const A inv = n > 0 ? A(1) / st.n : A(0);
    sc.mx[j] = st.mx = kx[j] + sx[j] * inv;
    sc.my[j] = st.my = ky[j] + sy[j] * inv;
    sc.is[j] = st.inv_s = row_inv_scale(mab[j]);
  }
  sc.zero_sums();
  A* CORROPS_RESTRICT vx = sc.p.data();
  A* CORROPS_RESTRICT vy = sc.q.data();
  A* CORROPS_RESTRICT cxy = sc.r.data();
  const A* CORROPS_RESTRICT mx = sc.mx.data();
  const A* CORROPS_RESTRICT my = sc.my.data();
  const A* CORROPS_RESTRICT is = sc.is.data();
  for (int64_t s = 0; s < b.steps; ++s) {
    const T* CORROPS_RESTRICT xs = x + b.data + s * b.ld;
    const T* CORROPS_RESTRICT ys = y + b.data + s * b.ld;
    expand_mask<kMasked, A>(b, m, s, valid);
    for (int64_t j = 0; j < w; ++j) {
      const bool v = !kMasked || valid[j];
      const A dxr = (cvt<A>(xs[j]) - mx[j]) * is[j], dyr = (cvt<A>(ys[j]) - my[j]) * is[j];
      const A dx = keep_if<A>(dxr, v);
      const A dy = keep_if<A>(dyr, v);
      vx[j] += dx * dx;
      vy[j] += dy * dy;
      cxy[j] += dx * dy;
    }
  }
  for (int64_t j = 0; j < w; ++j) {
    RowStats<A>& st = sc.stats[j];
    const A inv = st.n > A(0) ? A(1) / st.n : A(0);
    st.vx = vx[j] * inv;
    st.vy = vy[j] * inv;
    st.cxy = cxy[j] * inv;
  }
}

template <bool kMasked, typename T, typename A>
void block_loss(const Block& b, const T* x, const T* y, const bool* m, BlockScratch<A>& sc,
                T* loss) {
  const int64_t w = b.w, C = b.channels;
  const A inv_c = A(1) / static_cast<A>(C);
  const A* CORROPS_RESTRICT mx = sc.mx.data();
  const A* CORROPS_RESTRICT my = sc.my.data();
  const A* CORROPS_RESTRICT is = sc.is.data();
  const A* CORROPS_RESTRICT scale = sc.scale.data();
  A* CORROPS_RESTRICT vals = sc.vals.data();
  for (int64_t s = 0; s < b.steps; ++s) {
    const T* CORROPS_RESTRICT xs = x + b.data + s * b.ld;
    const T* CORROPS_RESTRICT ys = y + b.data + s * b.ld;
    for (int64_t j = 0; j < w; ++j)
      vals[j] =
          A(1) - scale[j] * ((cvt<A>(xs[j]) - mx[j]) * is[j]) * ((cvt<A>(ys[j]) - my[j]) * is[j]);
    const int64_t o = b.out + s * b.out_ld;
    for (int64_t g = 0; g < w / C; ++g) {
      A acc = A(0);
      for (int64_t c = 0; c < C; ++c) acc += vals[g * C + c];
      loss[o + g] = static_cast<T>((!kMasked || is_valid(m, o + g)) ? acc * inv_c : A(0));
    }
  }
}

// Backward pass 1 over a block: S1, S1', S2 per column into sc.p, sc.q, sc.r.
template <bool kMasked, typename T, typename A>
void block_grad_sums(const Block& b, const T* gr, const T* x, const T* y, const bool* m,
                     BlockScratch<A>& sc) {
  const int64_t w = b.w, C = b.channels;
  const A inv_c = A(1) / static_cast<A>(C);
  const A* CORROPS_RESTRICT mx = sc.mx.data();
  const A* CORROPS_RESTRICT my = sc.my.data();
  const A* CORROPS_RESTRICT is = sc.is.data();
  char* CORROPS_RESTRICT valid = sc.valid.data();
  A* CORROPS_RESTRICT gvals = sc.vals.data();
  sc.zero_sums();
  A* CORROPS_RESTRICT s1 = sc.p.data();
  A* CORROPS_RESTRICT s1p = sc.q.data();
  A* CORROPS_RESTRICT s2 = sc.r.data();
  for (int64_t s = 0; s < b.steps; ++s) {
    const T* CORROPS_RESTRICT xs = x + b.data + s * b.ld;
    const T* CORROPS_RESTRICT ys = y + b.data + s * b.ld;
    const T* gs = gr + b.out + s * b.out_ld;
    expand_mask<kMasked, A>(b, m, s, valid);
    for (int64_t g = 0, j = 0; g < w / C; ++g) {
      const A gv = cvt<A>(gs[g]) * inv_c;
      for (int64_t c = 0; c < C; ++c, ++j) gvals[j] = gv;
    }
    for (int64_t j = 0; j < w; ++j) {
      const bool v = !kMasked || valid[j];
      const A dxr = (cvt<A>(xs[j]) - mx[j]) * is[j], dyr = (cvt<A>(ys[j]) - my[j]) * is[j];
      const A gv = keep_if<A>(gvals[j], v);
      const A dx = keep_if<A>(dxr, v);
      const A dy = keep_if<A>(dyr, v);
      s1[j] += gv * dx;
      s1p[j] += gv * dy;
      s2[j] += gv * dx * dy;
    }
  }
}

// Backward pass 2 over a block: the elementwise gradients (kX: store gx, kY:
// store gy). Step s of g is copied to `gvals` before step s is written, so a
// stored gradient may share g's buffer (possible when channels == 1).
// kUnitG: g is 1 (folded into the coefficients) and is not read.
template <bool kMasked, bool kX, bool kY, bool kUnitG, typename T, typename A>
void block_grad_write(const Block& b, const T* gr, const T* x, const T* y, const bool* m,
                      BlockScratch<A>& sc, T* gx, T* gy) {
  const int64_t w = b.w, C = b.channels;
  const A inv_c = A(1) / static_cast<A>(C);
  const A* CORROPS_RESTRICT mx = sc.mx.data();
  const A* CORROPS_RESTRICT my = sc.my.data();
  const A* CORROPS_RESTRICT is = sc.is.data();
  const GradCoeffs<A>* CORROPS_RESTRICT k = sc.k.data();
  char* CORROPS_RESTRICT valid = sc.valid.data();
  A* CORROPS_RESTRICT gvals = sc.vals.data();
  for (int64_t s = 0; s < b.steps; ++s) {
    const int64_t base = b.data + s * b.ld;
    expand_mask<kMasked, A>(b, m, s, valid);
    if constexpr (!kUnitG) {
      const T* gs = gr + b.out + s * b.out_ld;
      for (int64_t g = 0, j = 0; g < w / C; ++g) {
        const A gv = cvt<A>(gs[g]) * inv_c;
        for (int64_t c = 0; c < C; ++c, ++j) gvals[j] = gv;
      }
    }
    const T* CORROPS_RESTRICT xs = x + base;
    const T* CORROPS_RESTRICT ys = y + base;
    T* CORROPS_RESTRICT gxs = kX ? gx + base : nullptr;
    T* CORROPS_RESTRICT gys = kY ? gy + base : nullptr;
    for (int64_t j = 0; j < w; ++j) {
      const bool v = !kMasked || valid[j];
      const A gv = kUnitG ? A(1) : gvals[j];
      const A dx = (cvt<A>(xs[j]) - mx[j]) * is[j];
      const A dy = (cvt<A>(ys[j]) - my[j]) * is[j];
      if constexpr (kX)
        gxs[j] = static_cast<T>(keep_if<A>(k[j].a * gv * dy + k[j].bx + k[j].cx * dx, v));
      if constexpr (kY)
        gys[j] = static_cast<T>(keep_if<A>(k[j].a * gv * dx + k[j].by + k[j].cy * dy, v));
    }
  }
}

// --------------------------------------------------------------- flat tiles
// A block whose columns are a whole slab row (ld == w) is one contiguous
// (steps x w) tile. When w divides kLanes, lane l of a kLanes-wide chunk is
// always column l % w, so the tile runs through the same vectorised lane
// loops as a contiguous row (per-step loops over a few columns do not
// vectorise well). Per-column values are folded from their lanes at the end.
// Lane l of the chunk at element e0 is step e0 / w + l / w, group
// (l % w) / channels. A ragged last chunk (fewer than kLanes elements) is
// done element by element with the same per-lane formulas.

inline bool is_flat_tile(const Block& b) { return b.ld == b.w && kLanes % b.w == 0; }

struct TileLanes {
  // Lane l's loss/mask/grad offset from its chunk's first step: int32 (it is
  // < kLanes * groups <= 16 * 16), so gathers through it vectorise (AVX2).
  int32_t out[kLanes];
  int col[kLanes];  // column of lane l
  explicit TileLanes(const Block& b) {
    for (int l = 0; l < kLanes; ++l) {
      col[l] = static_cast<int>(l % b.w);
      out[l] = static_cast<int32_t>((l / b.w) * b.out_ld + col[l] / b.channels);
    }
  }
};

// Loss-shaped offset (mask, loss, upstream gradient) of the chunk at e0.
inline int64_t chunk_out(const Block& b, int64_t e0) { return b.out + (e0 / b.w) * b.out_ld; }

// Mask of the lanes of the whole chunk at e0. Lanes [k*kC, (k+1)*kC) are
// the channels of one group of one step and share one mask entry and one
// upstream-gradient entry: one load per group, broadcast to its lanes (a
// per-lane gather compiles to 16 scalar inserts).
template <int kC>
inline void tile_mask(const Block& b, const TileLanes& tl, const bool* m, int64_t e0,
                      unsigned char* CORROPS_RESTRICT v) {
  const int64_t o = chunk_out(b, e0);
  for (int k = 0; k < kLanes / kC; ++k) {
    const unsigned char vk = is_valid(m, o + tl.out[k * kC]);
    for (int c = 0; c < kC; ++c) v[k * kC + c] = vk;
  }
}

// Upstream gradient / channels of the lanes of the whole chunk at e0.
template <int kC, typename T, typename A>
void tile_grad(const Block& b, const TileLanes& tl, const T* gr, int64_t e0, A inv_c,
               A* CORROPS_RESTRICT out) {
  const int64_t o = chunk_out(b, e0);
  for (int k = 0; k < kLanes / kC; ++k) {
    const A gk = cvt<A>(gr[o + tl.out[k * kC]]) * inv_c;
    for (int c = 0; c < kC; ++c) out[k * kC + c] = gk;
  }
}

// The same for the first `count` lanes of the ragged last chunk at e0.
template <typename T, typename A>
void tile_grad_tail(const Block& b, const TileLanes& tl, const T* gr, int64_t e0, int count,
                    A inv_c, A* CORROPS_RESTRICT out) {
  const int64_t o = chunk_out(b, e0);
  for (int l = 0; l < count; ++l) out[l] = cvt<A>(gr[o + tl.out[l]]) * inv_c;
}

template <typename A>
void fold_lanes(const A* lanes, int64_t w, A* CORROPS_RESTRICT cols) {
  for (int64_t j = 0; j < w; ++j) cols[j] = A(0);
  for (int l = 0; l < kLanes; ++l) cols[l % w] += lanes[l];
}

template <bool kMasked, int kC, typename T, typename A>
void tile_stats(const Block& b, const T* x, const T* y, const bool* m, BlockScratch<A>& sc) {
  const int64_t w = b.w, n_el = b.steps * w, whole = n_el - n_el % kLanes;
  const T* CORROPS_RESTRICT xt = x + b.data;
  const T* CORROPS_RESTRICT yt = y + b.data;
  const TileLanes tl(b);
  A kx[kLanes], ky[kLanes];  // shifts: first valid value of the lane's column
  for (int l = 0; l < kLanes; ++l) {
    const int64_t j = tl.col[l];
    const int64_t first = kMasked ? first_valid(m + b.out + j / b.channels, b.steps, b.out_ld) : 0;
    kx[l] = first < b.steps ? cvt<A>(xt[first * w + j]) : A(0);
    ky[l] = first < b.steps ? cvt<A>(yt[first * w + j]) : A(0);
  }
  A sx[kLanes] = {}, sy[kLanes] = {}, mab[kLanes] = {};
  unsigned char vb[kLanes];
  for (int64_t e0 = 0; e0 < whole; e0 += kLanes) {
    // Gathers (mask, upstream gradient) go to lane arrays first: a gather
    // inside the arithmetic loop stops it from vectorising.
    if (kMasked) tile_mask<kC>(b, tl, m, e0, vb);
    for (int l = 0; l < kLanes; ++l) {
      const bool v = kMasked ? vb[l] != 0 : true;
      const A xr = cvt<A>(xt[e0 + l]), yr = cvt<A>(yt[e0 + l]);
      sx[l] += keep_if<A>(xr - kx[l], v);
      sy[l] += keep_if<A>(yr - ky[l], v);
      mab[l] = max_abs(mab[l], keep_if<A>(xr, v), keep_if<A>(yr, v));
    }
  }
  for (int64_t e = whole; e < n_el; ++e) {
    const int l = static_cast<int>(e - whole);
    const bool v = kMasked ? is_valid(m, chunk_out(b, whole) + tl.out[l]) : true;
    const A xr = cvt<A>(xt[e]), yr = cvt<A>(yt[e]);
    sx[l] += keep_if<A>(xr - kx[l], v);
    sy[l] += keep_if<A>(yr - ky[l], v);
    mab[l] = max_abs(mab[l], keep_if<A>(xr, v), keep_if<A>(yr, v));
  }
  A csx[kLanes], csy[kLanes], top[kLanes];
  fold_lanes(sx, w, csx);
  fold_lanes(sy, w, csy);
  for (int64_t j = 0; j < w; ++j) top[j] = A(0);
  for (int l = 0; l < kLanes; ++l) top[tl.col[l]] = max_abs(top[tl.col[l]], mab[l], A(0));
  for (int64_t j = 0; j < w; ++j) {
    const int64_t n =
        kMasked ? count_valid(m + b.out + j / b.channels, b.steps, b.out_ld) : b.steps;
    RowStats<A>& st = sc.stats[j];
    st.n = static_cast<A>(n);
    const A inv = n > 0 ? A(1) / st.n : A(0);
    sc.mx[j] = st.mx = kx[j] + csx[j] * inv;  // lane j < w holds column j
    sc.my[j] = st.my = ky[j] + csy[j] * inv;
    sc.is[j] = st.inv_s = row_inv_scale(top[j]);
  }
  A mxl[kLanes], myl[kLanes], isl[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    mxl[l] = sc.mx[tl.col[l]];
    myl[l] = sc.my[tl.col[l]];
    isl[l] = sc.is[tl.col[l]];
  }
  A vx[kLanes] = {}, vy[kLanes] = {}, cxy[kLanes] = {};
  for (int64_t e0 = 0; e0 < whole; e0 += kLanes) {
    if (kMasked) tile_mask<kC>(b, tl, m, e0, vb);
    for (int l = 0; l < kLanes; ++l) {
      const bool v = kMasked ? vb[l] != 0 : true;
      const A dx = keep_if<A>((cvt<A>(xt[e0 + l]) - mxl[l]) * isl[l], v);
      const A dy = keep_if<A>((cvt<A>(yt[e0 + l]) - myl[l]) * isl[l], v);
      vx[l] += dx * dx;
      vy[l] += dy * dy;
      cxy[l] += dx * dy;
    }
  }
  for (int64_t e = whole; e < n_el; ++e) {
    const int l = static_cast<int>(e - whole);
    const bool v = kMasked ? is_valid(m, chunk_out(b, whole) + tl.out[l]) : true;
    const A dx = keep_if<A>((cvt<A>(xt[e]) - mxl[l]) * isl[l], v);
    const A dy = keep_if<A>((cvt<A>(yt[e]) - myl[l]) * isl[l], v);
    vx[l] += dx * dx;
    vy[l] += dy * dy;
    cxy[l] += dx * dy;
  }
  A cvx[kLanes], cvy[kLanes], ccxy[kLanes];
  fold_lanes(vx, w, cvx);
  fold_lanes(vy, w, cvy);
  fold_lanes(cxy, w, ccxy);
  for (int64_t j = 0; j < w; ++j) {
    RowStats<A>& st = sc.stats[j];
    const A inv = st.n > A(0) ? A(1) / st.n : A(0);
    st.vx = cvx[j] * inv;
    st.vy = cvy[j] * inv;
    st.cxy = ccxy[j] * inv;
  }
}

// Per-step losses of a flat tile: each is the mean over the kC lanes of one
// group of one step. The tile is done in "super-chunks" of kC chunks, i.e.
// kLanes groups: the lane values first (vectorised), then the kLanes group
// sums side by side, each in channel order (sums one group at a time form a
// dependent add chain, which was half the forward's time for kC = 8). kC
// divides kLanes and is a template parameter so the sums unroll.
template <bool kMasked, int kC, typename T, typename A>
void tile_loss(const Block& b, const T* x, const T* y, const bool* m, BlockScratch<A>& sc,
               T* loss) {
  constexpr int kSuper = kC * kLanes;
  const int64_t w = b.w, n_el = b.steps * w, whole = n_el - n_el % kSuper;
  const T* CORROPS_RESTRICT xt = x + b.data;
  const T* CORROPS_RESTRICT yt = y + b.data;
  const TileLanes tl(b);
  const A inv_c = A(1) / static_cast<A>(kC);
  A mxl[kLanes], myl[kLanes], isl[kLanes], scl[kLanes], vals[kSuper], sums[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    mxl[l] = sc.mx[tl.col[l]];
    myl[l] = sc.my[tl.col[l]];
    isl[l] = sc.is[tl.col[l]];
    scl[l] = sc.scale[tl.col[l]];
  }
  for (int64_t e0 = 0; e0 < whole; e0 += kSuper) {
    for (int q = 0; q < kC; ++q)
      for (int l = 0; l < kLanes; ++l)
        vals[q * kLanes + l] = A(1) - scl[l] *
                                          ((cvt<A>(xt[e0 + q * kLanes + l]) - mxl[l]) * isl[l]) *
                                          ((cvt<A>(yt[e0 + q * kLanes + l]) - myl[l]) * isl[l]);
    for (int i = 0; i < kLanes; ++i) {
      A acc = vals[i * kC];
      for (int c = 1; c < kC; ++c) acc += vals[i * kC + c];
      sums[i] = acc * inv_c;
    }
    // Group i is in chunk i / (kLanes / kC), at lane (i % (kLanes / kC)) * kC.
    for (int i = 0; i < kLanes; ++i) {
      const int q = i / (kLanes / kC), l = (i % (kLanes / kC)) * kC;
      const int64_t at = chunk_out(b, e0 + q * kLanes) + tl.out[l];
      loss[at] = static_cast<T>(kMasked ? keep_if<A>(sums[i], is_valid(m, at)) : sums[i]);
    }
  }
  // The rest, group by group (w, a multiple of kC, divides n_el).
  for (int64_t e = whole; e < n_el; e += kC) {
    const int l0 = static_cast<int>(e % kLanes);
    A acc = A(0);
    for (int c = 0; c < kC; ++c) {
      const int l = l0 + c;
      const A v = A(1) - scl[l] * ((cvt<A>(xt[e + c]) - mxl[l]) * isl[l]) *
                             ((cvt<A>(yt[e + c]) - myl[l]) * isl[l]);
      acc = c == 0 ? v : acc + v;
    }
    const int64_t at = chunk_out(b, e - l0) + tl.out[l0];
    const A lv = acc * inv_c;
    loss[at] = static_cast<T>(kMasked ? keep_if<A>(lv, is_valid(m, at)) : lv);
  }
}

template <bool kMasked, int kC, typename T, typename A>
void tile_grad_sums(const Block& b, const T* gr, const T* x, const T* y, const bool* m,
                    BlockScratch<A>& sc) {
  const int64_t w = b.w, n_el = b.steps * w, whole = n_el - n_el % kLanes;
  const T* CORROPS_RESTRICT xt = x + b.data;
  const T* CORROPS_RESTRICT yt = y + b.data;
  const TileLanes tl(b);
  const A inv_c = A(1) / static_cast<A>(kC);
  A mxl[kLanes], myl[kLanes], isl[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    mxl[l] = sc.mx[tl.col[l]];
    myl[l] = sc.my[tl.col[l]];
    isl[l] = sc.is[tl.col[l]];
  }
  A s1[kLanes] = {}, s1p[kLanes] = {}, s2[kLanes] = {}, gl[kLanes];
  unsigned char vb[kLanes];
  for (int64_t e0 = 0; e0 < whole; e0 += kLanes) {
    if (kMasked) tile_mask<kC>(b, tl, m, e0, vb);
    tile_grad<kC>(b, tl, gr, e0, inv_c, gl);
    for (int l = 0; l < kLanes; ++l) {
      const bool v = kMasked ? vb[l] != 0 : true;
      const A gv = keep_if<A>(gl[l], v);
      const A dx = keep_if<A>((cvt<A>(xt[e0 + l]) - mxl[l]) * isl[l], v);
      const A dy = keep_if<A>((cvt<A>(yt[e0 + l]) - myl[l]) * isl[l], v);
      s1[l] += gv * dx;
      s1p[l] += gv * dy;
      s2[l] += gv * dx * dy;
    }
  }
  for (int64_t e = whole; e < n_el; ++e) {
    const int l = static_cast<int>(e - whole);
    const int64_t o = chunk_out(b, whole) + tl.out[l];
    const bool v = kMasked ? is_valid(m, o) : true;
    const A gv = keep_if<A>(cvt<A>(gr[o]) * inv_c, v);
    const A dx = keep_if<A>((cvt<A>(xt[e]) - mxl[l]) * isl[l], v);
    const A dy = keep_if<A>((cvt<A>(yt[e]) - myl[l]) * isl[l], v);
    s1[l] += gv * dx;
    s1p[l] += gv * dy;
    s2[l] += gv * dx * dy;
  }
  fold_lanes(s1, w, sc.p.data());
  fold_lanes(s1p, w, sc.q.data());
  fold_lanes(s2, w, sc.r.data());
}

// The upstream gradient of a chunk is read into lanes before any element of
// the chunk is written, so a stored gradient may share g's buffer (C == 1).
// kUnitG: g is 1 (folded into the coefficients) and is not read.
template <bool kMasked, int kC, bool kX, bool kY, bool kUnitG, typename T, typename A>
void tile_grad_write(const Block& b, const T* gr, const T* x, const T* y, const bool* m,
                     BlockScratch<A>& sc, T* gx, T* gy) {
  const int64_t w = b.w, n_el = b.steps * w;
  const T* CORROPS_RESTRICT xt = x + b.data;
  const T* CORROPS_RESTRICT yt = y + b.data;
  T* gxt = kX ? gx + b.data : nullptr;
  T* gyt = kY ? gy + b.data : nullptr;
  const TileLanes tl(b);
  const A inv_c = A(1) / static_cast<A>(kC);
  A mxl[kLanes], myl[kLanes], isl[kLanes], gl[kLanes];
  unsigned char vb[kLanes];
  A ka[kLanes], kbx[kLanes], kby[kLanes], kcx[kLanes], kcy[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const int j = tl.col[l];
    mxl[l] = sc.mx[j];
    myl[l] = sc.my[j];
    isl[l] = sc.is[j];
    ka[l] = sc.k[j].a;
    kbx[l] = sc.k[j].bx;
    kby[l] = sc.k[j].by;
    kcx[l] = sc.k[j].cx;
    kcy[l] = sc.k[j].cy;
  }
  const int64_t whole = n_el - n_el % kLanes;
  // Whole chunks store straight from the lane loop (staging them in lane
  // arrays and copying with a run-time count compiled to a scalar copy).
  if constexpr (kUnitG) std::fill(gl, gl + kLanes, A(1));
  for (int64_t e0 = 0; e0 < whole; e0 += kLanes) {
    if constexpr (!kUnitG) tile_grad<kC>(b, tl, gr, e0, inv_c, gl);
    if (kMasked) tile_mask<kC>(b, tl, m, e0, vb);
    for (int l = 0; l < kLanes; ++l) {
      const bool v = kMasked ? vb[l] != 0 : true;
      const A dx = (cvt<A>(xt[e0 + l]) - mxl[l]) * isl[l];
      const A dy = (cvt<A>(yt[e0 + l]) - myl[l]) * isl[l];
      if constexpr (kX)
        gxt[e0 + l] = static_cast<T>(keep_if<A>(ka[l] * gl[l] * dy + kbx[l] + kcx[l] * dx, v));
      if constexpr (kY)
        gyt[e0 + l] = static_cast<T>(keep_if<A>(ka[l] * gl[l] * dx + kby[l] + kcy[l] * dy, v));
    }
  }
  const int count = static_cast<int>(n_el - whole);
  if constexpr (!kUnitG) tile_grad_tail(b, tl, gr, whole, count, inv_c, gl);
  for (int l = 0; l < count; ++l) {
    const int64_t e = whole + l;
    const bool v = kMasked ? is_valid(m, chunk_out(b, whole) + tl.out[l]) : true;
    const A dx = (cvt<A>(xt[e]) - mxl[l]) * isl[l];
    const A dy = (cvt<A>(yt[e]) - myl[l]) * isl[l];
    if constexpr (kX)
      gxt[e] = static_cast<T>(keep_if<A>(ka[l] * gl[l] * dy + kbx[l] + kcx[l] * dx, v));
    if constexpr (kY)
      gyt[e] = static_cast<T>(keep_if<A>(ka[l] * gl[l] * dx + kby[l] + kcy[l] * dy, v));
  }
}

inline int64_t groups_per_block(const Layout& l) {
  return std::max<int64_t>(1, kBlockColumns / std::max<int64_t>(1, l.channels));
}

inline int64_t blocks_per_slab(const Layout& l) {
  const int64_t gpb = groups_per_block(l);
  return (l.groups + gpb - 1) / gpb;
}

inline Block make_block(const Layout& l, int64_t u) {
  const int64_t gpb = groups_per_block(l), blocks = blocks_per_slab(l);
  const int64_t o = u / blocks, g0 = (u % blocks) * gpb;
  const int64_t ng = std::min(gpb, l.groups - g0);
  return Block{o * l.time * l.inner() + g0 * l.channels,
               l.inner(),
               o * l.time * l.groups + g0,
               l.groups,
               l.time,
               ng * l.channels,
               l.channels,
               o * l.inner() + g0 * l.channels};
}

inline int64_t block_width(const Layout& l) {
  return std::min(groups_per_block(l), l.groups) * l.channels;
}

template <typename A>
void store_stats(const RowStats<A>& s, double* out) {
  out[kStatN] = static_cast<double>(s.n);
  out[kStatMx] = static_cast<double>(s.mx);
  out[kStatMy] = static_cast<double>(s.my);
  out[kStatVx] = static_cast<double>(s.vx);
  out[kStatVy] = static_cast<double>(s.vy);
  out[kStatCxy] = static_cast<double>(s.cxy);
  out[kStatInvScale] = static_cast<double>(s.inv_s);
}

template <typename A>
RowStats<A> load_stats(const double* in) {
  return RowStats<A>{static_cast<A>(in[kStatN]),       static_cast<A>(in[kStatMx]),
                     static_cast<A>(in[kStatMy]),      static_cast<A>(in[kStatVx]),
                     static_cast<A>(in[kStatVy]),      static_cast<A>(in[kStatCxy]),
                     static_cast<A>(in[kStatInvScale])};
}

// Stores a block's row statistics and sets the per-column loss scales.
template <typename A>
void finish_stats(const Block& b, Method method, double eps, BlockScratch<A>& sc, double* stats) {
  for (int64_t j = 0; j < b.w; ++j) {
    store_stats(sc.stats[j], stats + (b.first_row + j) * kStatsPerRow);
    sc.scale[j] = loss_scale(method, sc.stats[j], eps);
  }
}

// Per-column gradient coefficients from the backward's first-pass sums.
template <typename A>
void finish_grad_coeffs(const Block& b, Method method, double eps, BlockScratch<A>& sc) {
  for (int64_t j = 0; j < b.w; ++j)
    sc.k[j] = grad_coeffs(method, sc.stats[j], eps, sc.p[j], sc.q[j], sc.r[j]);
}

// Per-column coefficients for an upstream gradient constant along time: `gr`
// has shape (outer, 1, groups), so column j's value is its group's entry,
// (first_row + j) / channels, shared by the group's channels (hence / C).
template <typename T, typename A>
void time_const_block_coeffs(const Block& b, Method method, double eps, const T* gr,
                             BlockScratch<A>& sc) {
  const A inv_c = A(1) / static_cast<A>(b.channels);
  for (int64_t j = 0; j < b.w; ++j) {
    const A gc = cvt<A>(gr[(b.first_row + j) / b.channels]) * inv_c;
    sc.k[j] = time_const_grad_coeffs(method, sc.stats[j], eps, gc);
  }
}

// Picks the block_grad_write instantiation for the outputs asked for.
template <bool kMasked, bool kUnitG, typename T, typename A>
void block_grad_write_to(const Block& b, const T* gr, const T* x, const T* y, const bool* m,
                         BlockScratch<A>& sc, T* gx, T* gy) {
  if (gx && gy)
    block_grad_write<kMasked, true, true, kUnitG>(b, gr, x, y, m, sc, gx, gy);
  else if (gx)
    block_grad_write<kMasked, true, false, kUnitG>(b, gr, x, y, m, sc, gx, gy);
  else if (gy)
    block_grad_write<kMasked, false, true, kUnitG>(b, gr, x, y, m, sc, gx, gy);
}

// A flat tile, forward and backward, for kC channels: the tile loops are
// compiled per channel count (a divisor of kLanes) so per-group work unrolls.
template <bool kMasked, int kC, typename T, typename A>
void tile_forward(const Block& b, Method method, double eps, const T* x, const T* y, const bool* m,
                  BlockScratch<A>& sc, T* loss, double* stats) {
  tile_stats<kMasked, kC>(b, x, y, m, sc);
  finish_stats(b, method, eps, sc, stats);
  tile_loss<kMasked, kC>(b, x, y, m, sc, loss);
}

template <bool kMasked, int kC, bool kUnitG, typename T, typename A>
void tile_grad_write_to(const Block& b, const T* gr, const T* x, const T* y, const bool* m,
                        BlockScratch<A>& sc, T* gx, T* gy) {
  if (gx && gy)
    tile_grad_write<kMasked, kC, true, true, kUnitG>(b, gr, x, y, m, sc, gx, gy);
  else if (gx)
    tile_grad_write<kMasked, kC, true, false, kUnitG>(b, gr, x, y, m, sc, gx, gy);
  else
    tile_grad_write<kMasked, kC, false, true, kUnitG>(b, gr, x, y, m, sc, gx, gy);
}

template <bool kMasked, int kC, typename T, typename A>
void tile_backward(const Block& b, Method method, double eps, bool time_const, const T* gr,
                   const T* x, const T* y, const bool* m, BlockScratch<A>& sc, T* gx, T* gy) {
  if (time_const) {  // one pass: coefficients from the statistics alone
    time_const_block_coeffs(b, method, eps, gr, sc);
    tile_grad_write_to<kMasked, kC, true>(b, gr, x, y, m, sc, gx, gy);
    return;
  }
  tile_grad_sums<kMasked, kC>(b, gr, x, y, m, sc);
  finish_grad_coeffs(b, method, eps, sc);
  tile_grad_write_to<kMasked, kC, false>(b, gr, x, y, m, sc, gx, gy);
}

// Calls tile_forward / tile_backward for the tile's channel count.
template <bool kMasked, typename T, typename A, typename... Args>
void tile_forward_any(const Block& b, Args... args) {
  switch (b.channels) {
    case 1:
      return tile_forward<kMasked, 1, T, A>(b, args...);
    case 2:
      return tile_forward<kMasked, 2, T, A>(b, args...);
    case 4:
      return tile_forward<kMasked, 4, T, A>(b, args...);
    case 8:
      return tile_forward<kMasked, 8, T, A>(b, args...);
    default:
      return tile_forward<kMasked, 16, T, A>(b, args...);
  }
}

template <bool kMasked, typename T, typename A, typename... Args>
void tile_backward_any(const Block& b, Args... args) {
  switch (b.channels) {
    case 1:
      return tile_backward<kMasked, 1, T, A>(b, args...);
    case 2:
      return tile_backward<kMasked, 2, T, A>(b, args...);
    case 4:
      return tile_backward<kMasked, 4, T, A>(b, args...);
    case 8:
      return tile_backward<kMasked, 8, T, A>(b, args...);
    default:
      return tile_backward<kMasked, 16, T, A>(b, args...);
  }
}

// The forward over unmasked contiguous rows [begin, end) whose loss is
// streamed, pipelined: row u's loss is computed and streamed a statistics
// chunk at a time between the chunks of row u + 1's statistics pass, so
// that memory reads row u + 1 while row u is written (row by row, memory
// reads nothing during each loss pass). Row u's x and y are re-read from the
// cache, which must hold two rows' (kPipelineMaxBytes). The same bits as row
// by row: the same out-of-line statistics chunks, the same loss chunks.
// In TF the floor ratio at (64,65536,1) measured 0.65-0.66 against 0.62-0.63
// row by row; rows whose loss is not streamed gain nothing from it
// (docs/PERFORMANCE.md, "The pipelined streamed forward").
constexpr int64_t kPipelineMaxBytes = int64_t{1} << 20;

template <typename T, typename A>
void pipelined_forward_rows(Method method, double eps, int64_t len, const T* x, const T* y, T* loss,
                            double* stats, int64_t begin, int64_t end) {
  ContiguousStatsBuilder<false, T, A> cur(x + begin * len, y + begin * len, nullptr, len);
  for (int64_t c0 = 0; c0 < len; c0 += kStatsChunk) cur.add_chunk(c0);
  for (int64_t u = begin; u < end; ++u) {
    const int64_t off = u * len;
    const RowStats<A> s = cur.finish();
    store_stats(s, stats + u * kStatsPerRow);
    const A scale = loss_scale(method, s, eps);
    const bool more = u + 1 < end;  // the last row has no next row to read
    ContiguousStatsBuilder<false, T, A> next(x + off + len, y + off + len, nullptr, more ? len : 0);
    for (int64_t c0 = 0; c0 < len; c0 += kStatsChunk) {
      if (more) next.add_chunk(c0);
      contiguous_loss_out<false>(true, x + off + c0, y + off + c0, nullptr,
                                 std::min(kStatsChunk, len - c0), s.mx, s.my, s.inv_s, scale,
                                 loss + off + c0);
    }
    cur = next;
  }
}

template <bool kMasked, typename T>
void forward_units_impl(const Layout& l, Method method, double eps, const T* x, const T* y,
                        const bool* m, T* loss, double* stats, int64_t begin, int64_t end) {
  using A = typename Accumulator<T>::type;
  if (l.inner() == 1) {
    const int64_t len = l.time;
    // x, y and the loss: above stream_store_min_bytes the loss is streamed
    // (see contiguous_loss_out), as the backward streams its gradients.
    const bool stream = streams_outputs(3 * l.elements() * static_cast<int64_t>(sizeof(T)));
    if (!kMasked && stream && 4 * len * static_cast<int64_t>(sizeof(T)) <= kPipelineMaxBytes) {
      pipelined_forward_rows<T, A>(method, eps, len, x, y, loss, stats, begin, end);
      stream_store_fence();
      return;
    }
    for (int64_t u = begin; u < end; ++u) {
      const int64_t off = u * len;
      const bool* mu = kMasked ? m + off : nullptr;
      Run run;
      if (kMasked && valid_run(mu, len, &run)) {
        // One run of valid steps: an unmasked row over the run, zeros around.
        const int64_t a = run.begin, n = run.end - run.begin;
        const RowStats<A> s = contiguous_stats<false, T, A>(x + off + a, y + off + a, nullptr, n);
        store_stats(s, stats + u * kStatsPerRow);
        std::fill(loss + off, loss + off + a, T(0));
        contiguous_loss_out<false>(stream, x + off + a, y + off + a, nullptr, n, s.mx, s.my,
                                   s.inv_s, loss_scale(method, s, eps), loss + off + a);
        std::fill(loss + off + run.end, loss + off + len, T(0));
        continue;
      }
      const RowStats<A> s = contiguous_stats<kMasked, T, A>(x + off, y + off, mu, len);
      store_stats(s, stats + u * kStatsPerRow);
      contiguous_loss_out<kMasked>(stream, x + off, y + off, mu, len, s.mx, s.my, s.inv_s,
                                   loss_scale(method, s, eps), loss + off);
    }
    if (stream) stream_store_fence();
    return;
  }
  BlockScratch<A> sc(block_width(l));
  for (int64_t u = begin; u < end; ++u) {
    const Block b = make_block(l, u);
    if (is_flat_tile(b)) {
      tile_forward_any<kMasked, T, A>(b, method, eps, x, y, m, sc, loss, stats);
    } else {
      block_stats<kMasked>(b, x, y, m, sc);
      finish_stats(b, method, eps, sc, stats);
      block_loss<kMasked>(b, x, y, m, sc, loss);
    }
  }
}

template <bool kMasked, typename T>
void backward_units_impl(const Layout& l, Method method, double eps, const T* gr, const T* x,
                         const T* y, const bool* m, const double* stats, T* gx, T* gy,
                         int64_t begin, int64_t end, bool time_const) {
  using A = typename Accumulator<T>::type;
  if (!gx && !gy) return;
  if (l.inner() == 1) {
    const int64_t len = l.time;
    // x, y, the per-step g if any, and the gradients asked for.
    const int64_t arrays = 2 + (time_const ? 0 : 1) + (gx ? 1 : 0) + (gy ? 1 : 0);
    const bool stream = streams_outputs(arrays * l.elements() * static_cast<int64_t>(sizeof(T)));
    for (int64_t u = begin; u < end; ++u) {
      const int64_t off = u * len;
      const bool* mu = kMasked ? m + off : nullptr;
      const RowStats<A> s = load_stats<A>(stats + u * kStatsPerRow);
      const T* gu = time_const ? gr + u : gr + off;  // g is (outer, 1, 1) or (outer, time, 1)
      Run run;
      if (kMasked && valid_run(mu, len, &run)) {  // as in the forward
        const int64_t a = run.begin, n = run.end - run.begin;
        for (T* gd : {gx, gy}) {
          if (!gd) continue;
          std::fill(gd + off, gd + off + a, T(0));
          std::fill(gd + off + run.end, gd + off + len, T(0));
        }
        contiguous_row_backward<false>(method, eps, s, time_const, stream, time_const ? gu : gu + a,
                                       x + off + a, y + off + a, nullptr, n,
                                       gx ? gx + off + a : nullptr, gy ? gy + off + a : nullptr);
        continue;
      }
      contiguous_row_backward<kMasked>(method, eps, s, time_const, stream, gu, x + off, y + off, mu,
                                       len, gx ? gx + off : nullptr, gy ? gy + off : nullptr);
    }
    if (stream) stream_store_fence();
    return;
  }
  BlockScratch<A> sc(block_width(l));
  for (int64_t u = begin; u < end; ++u) {
    const Block b = make_block(l, u);
    for (int64_t j = 0; j < b.w; ++j) {
      sc.stats[j] = load_stats<A>(stats + (b.first_row + j) * kStatsPerRow);
      sc.mx[j] = sc.stats[j].mx;
      sc.my[j] = sc.stats[j].my;
      sc.is[j] = sc.stats[j].inv_s;
    }
    if (is_flat_tile(b)) {
      tile_backward_any<kMasked, T, A>(b, method, eps, time_const, gr, x, y, m, sc, gx, gy);
    } else if (time_const) {  // one pass: coefficients from the statistics alone
      time_const_block_coeffs(b, method, eps, gr, sc);
      block_grad_write_to<kMasked, true>(b, gr, x, y, m, sc, gx, gy);
    } else {
      block_grad_sums<kMasked>(b, gr, x, y, m, sc);
      finish_grad_coeffs(b, method, eps, sc);
      block_grad_write_to<kMasked, false>(b, gr, x, y, m, sc, gx, gy);
    }
  }
}

}  // namespace detail

// Number of independent work units; with zero channels there is no row (the
// non-empty loss is then all zeros, see loss_is_all_zero()).
inline int64_t num_work_units(const Layout& l) {
  if (l.channels == 0 || l.groups == 0) return 0;
  if (l.inner() == 1) return l.outer;
  return l.outer * detail::blocks_per_slab(l);
}

// Zero channels: every per-step loss is a mean over no channel, defined as 0.
inline bool loss_is_all_zero(const Layout& l) { return l.channels == 0; }

// Per-unit cost for the thread pool, in CPU cycles, as Eigen's cost model
// wants them (it runs a ParallelFor inline below ~1e5 cycles in all, and
// wakes one more thread per ~1e5). Measured: forward or backward takes ~1.3
// cycles per element (AVX2, L2-resident rows), so 2 per element. An
// overestimate (it was 4) split (64, 1000, 1) over two threads, and the
// wake-up cost more than the work (fused fwd+bwd 15 -> 59 us).
inline int64_t work_unit_cost(const Layout& l) {
  const int64_t steps = std::max<int64_t>(1, l.time);
  if (l.inner() == 1) return steps * 2;
  return steps * std::max<int64_t>(1, detail::block_width(l)) * 2;
}

// Forward over work units [begin, end): writes the loss (outer, time, groups)
// and the per-row statistics (rows, kStatsPerRow). `mask` may be null.
template <typename T>
void corr_loss_forward(const Layout& l, Method method, double eps, const T* y_true, const T* y_pred,
                       const bool* mask, T* loss, double* stats, int64_t begin, int64_t end) {
  if (mask)
    detail::forward_units_impl<true>(l, method, eps, y_true, y_pred, mask, loss, stats, begin, end);
  else
    detail::forward_units_impl<false>(l, method, eps, y_true, y_pred, mask, loss, stats, begin,
                                      end);
}

// Backward over work units [begin, end): from the upstream gradient of the
// loss (outer, time, groups) and the forward's statistics, writes dL/dy_true
// and dL/dy_pred (same shape as the inputs). `mask` may be null. Either
// gradient may be null (not computed). When only one is computed and
// channels == 1, it may be `grad` itself (computed in place).
// grad_time_const: `grad` has shape (outer, 1, groups) and stands for its
// broadcast along time (the gradient of a mean or sum of the loss, possibly
// times per-sequence weights). The backward is then one pass that never
// reads a per-step gradient (see time_const_grad_coeffs).
template <typename T>
void corr_loss_backward(const Layout& l, Method method, double eps, const T* grad, const T* y_true,
                        const T* y_pred, const bool* mask, const double* stats, T* grad_true,
                        T* grad_pred, int64_t begin, int64_t end, bool grad_time_const = false) {
  if (mask)
    detail::backward_units_impl<true>(l, method, eps, grad, y_true, y_pred, mask, stats, grad_true,
                                      grad_pred, begin, end, grad_time_const);
  else
    detail::backward_units_impl<false>(l, method, eps, grad, y_true, y_pred, mask, stats, grad_true,
                                       grad_pred, begin, end, grad_time_const);
}

// Per-row coefficients (Pearson r or CCC, up to eps) from the forward's
// statistics: rows [begin, end) of `stats` into `coef`.
template <typename A>
void corr_coefficients(Method method, double eps, const double* stats, A* coef, int64_t begin,
                       int64_t end) {
  for (int64_t r = begin; r < end; ++r)
    coef[r] = row_coefficient(method, detail::load_stats<A>(stats + r * kStatsPerRow), eps);
}

}  // namespace CORROPS_ENGINE_ISA
}  // namespace corrops
