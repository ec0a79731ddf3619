// The CPU engine on flat tiles: a block whose columns are a whole slab row
// of a few channels, run through the contiguous rows' 16-lane loops, compiled
// per channel count (1, 2, 4, 8, 16).
// Part of cpu_engine.h, which includes it inside the engine's per-instruction-
// set namespace; not a header of its own.
#pragma once

namespace corrops {
namespace CORROPS_ENGINE_ISA {
namespace detail {

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

// A flat tile, forward and backward, for kC channels: the tile loops are
// compiled per channel count (a divisor of kLanes) so per-group work unrolls.
template <bool kMasked, int kC, typename T, typename A>
void tile_forward(const Block& b, Method method, double eps, const T* x, const T* y, const bool* m,
                  BlockScratch<A>& sc, T* loss, double* stats) {
  tile_stats<kMasked, kC>(b, x, y, m, sc);
  finish_stats(b, method, eps, sc, stats);
  if (loss) tile_loss<kMasked, kC>(b, x, y, m, sc, loss);
}

template <bool kMasked, int kC, bool kUnitG, typename T, typename A>
void tile_grad_write_to(const Block& b, const T* gr, const T* x, const T* y, const bool* m,
                        BlockScratch<A>& sc, T* gx, T* gy) {
  if (gx && gy)
    tile_grad_write<kMasked, kC, /*kX=*/true, /*kY=*/true, kUnitG>(b, gr, x, y, m, sc, gx, gy);
  else if (gx)
    tile_grad_write<kMasked, kC, /*kX=*/true, /*kY=*/false, kUnitG>(b, gr, x, y, m, sc, gx, gy);
  else
    tile_grad_write<kMasked, kC, /*kX=*/false, /*kY=*/true, kUnitG>(b, gr, x, y, m, sc, gx, gy);
}

template <bool kMasked, int kC, typename T, typename A>
void tile_backward(const Block& b, Method method, double eps, bool time_const, const T* gr,
                   const T* x, const T* y, const bool* m, BlockScratch<A>& sc, T* gx, T* gy) {
  if (time_const) {  // one pass: coefficients from the statistics alone
    time_const_block_coeffs(b, method, eps, gr, sc);
    tile_grad_write_to<kMasked, kC, /*kUnitG=*/true>(b, gr, x, y, m, sc, gx, gy);
    return;
  }
  tile_grad_sums<kMasked, kC>(b, gr, x, y, m, sc);
  finish_grad_coeffs(b, method, eps, sc);
  tile_grad_write_to<kMasked, kC, /*kUnitG=*/false>(b, gr, x, y, m, sc, gx, gy);
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

}  // namespace detail
}  // namespace CORROPS_ENGINE_ISA
}  // namespace corrops
