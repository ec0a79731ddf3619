// The CPU engine on strided blocks: `w` adjacent columns of one outer slab
// processed step by step (statistics, loss, backward), the block geometry of
// a layout, and storing / loading per-row statistics.
// Part of cpu_engine.h, which includes it inside the engine's per-instruction-
// set namespace; not a header of its own.
#pragma once

namespace corrops {
namespace CORROPS_ENGINE_ISA {
namespace detail {

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
    block_grad_write<kMasked, /*kX=*/true, /*kY=*/true, kUnitG>(b, gr, x, y, m, sc, gx, gy);
  else if (gx)
    block_grad_write<kMasked, /*kX=*/true, /*kY=*/false, kUnitG>(b, gr, x, y, m, sc, gx, gy);
  else if (gy)
    block_grad_write<kMasked, /*kX=*/false, /*kY=*/true, kUnitG>(b, gr, x, y, m, sc, gx, gy);
}

}  // namespace detail
}  // namespace CORROPS_ENGINE_ISA
}  // namespace corrops
