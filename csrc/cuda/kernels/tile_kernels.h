// The CUDA kernels' bodies (exec.h's model: phases between barriers), for
// the device and for the host execution alike. Geometry: tile_plan.h. Math:
// core/row_math.h (docs/DESIGN.md). Every reduction has a fixed order: a
// thread's own steps in order, then a tree over the time lanes of a tile,
// then chunks in order: the same bits on every run and on the host.
#pragma once

#include <climits>
#include <cstdint>

#include "core/row_math.h"
#include "cuda/kernels/elements.h"
#include "cuda/kernels/exec.h"
#include "cuda/kernels/tile_plan.h"

#if defined(__CUDACC__)
#define CORROPS_UNROLL _Pragma("unroll")
#else
#define CORROPS_UNROLL
#endif

namespace corrops {
namespace cuda {

constexpr int kNoStep = INT_MAX;

// Steps a thread keeps in registers with accumulation type A.
template <typename A>
constexpr int kSteps = max_items(sizeof(A));

// The plan of a call with element type T.
template <typename T>
TilePlan plan_for(const Layout& l) {
  return make_tile_plan(l, max_items(sizeof(Acc<T>)));
}

// One thread's part of a tile reduction; the fields' meaning depends on the
// phase (count, largest |value|, first valid step; or up to three sums).
template <typename A>
struct Red {
  A a, b, c;
  int n, first;
};

// A (row, column)'s chunk results inside a tile.
template <typename A>
struct Head {
  A kx, ky, mx, my, is, scale;
  int n;
};

// A long row's statistics over one chunk: n, means, scale, moments of the
// chunk scaled by its own inv_s (merge_partial brings them to the row's).
template <typename A>
struct Partial {
  int64_t n;
  A mx, my, is, m2x, m2y, cxy;
};

// What the elementwise loss pass needs of a row.
template <typename A>
struct LossRow {
  A mx, my, is, scale;
};

// What the elementwise gradient pass needs of a row.
template <typename A>
struct GradRow {
  A mx, my, is;
  GradCoeffs<A> k;
};

template <typename A>
struct Sums3 {
  A s1, s1p, s2;
};

template <typename A>
CORROPS_KERNEL_FN A abs_max(A m, A a, A b) {
  const A aa = a < A(0) ? -a : a, ab = b < A(0) ? -b : b;
  m = aa > m ? aa : m;
  return ab > m ? ab : m;
}

CORROPS_KERNEL_FN void store_stats(double* out, double n, double mx, double my, double vx,
                                   double vy, double cxy, double is) {
  out[kStatN] = n;
  out[kStatMx] = mx;
  out[kStatMy] = my;
  out[kStatVx] = vx;
  out[kStatVy] = vy;
  out[kStatCxy] = cxy;
  out[kStatInvScale] = is;
}

template <typename A>
CORROPS_KERNEL_FN RowStats<A> load_stats(const double* in) {
  return RowStats<A>{static_cast<A>(in[kStatN]),       static_cast<A>(in[kStatMx]),
                     static_cast<A>(in[kStatMy]),      static_cast<A>(in[kStatVx]),
                     static_cast<A>(in[kStatVy]),      static_cast<A>(in[kStatCxy]),
                     static_cast<A>(in[kStatInvScale])};
}

// Tree reduction over the time lanes of each (row, column) of a tile, in
// sh.red; the result lands at lane 0. A fixed pairing: deterministic.
template <class B, class Red, class Op>
CORROPS_KERNEL_FN void reduce_lanes(B& b, const TilePlan& p, Red* red, Op op) {
  for (int s = p.lanes / 2; s > 0; s /= 2)
    b.each([&](int tid, typename B::Local&) {
      if ((tid / p.cols) % p.lanes < s) op(red[tid], red[tid + s * p.cols]);
    });
}

// The sums of a Red (a, b, c; unused ones stay 0), added.
struct AddSums {
  template <typename R>
  CORROPS_KERNEL_FN void operator()(R& x, const R& y) const {
    x.a += y.a;
    x.b += y.b;
    x.c += y.c;
  }
};

// num / den for powers of two num <= den: exact (0 where it underflows), and
// no division (on GPUs a division site is a subroutine call whose register
// saves spill).
template <typename A>
CORROPS_KERNEL_FN A pow2_ratio(A num, A den) {
  return ldexp(A(1), ilogb(num) - ilogb(den));
}

// Merges chunk partial b into a (Chan, Golub and LeVeque), at the smaller
// of the two scales; the ratios of scales are powers of two (exact).
template <typename A>
CORROPS_KERNEL_FN void merge_partial(Partial<A>& a, const Partial<A>& b) {
  if (b.n == 0) return;
  if (a.n == 0) {
    a = b;
    return;
  }
  const A is = a.is < b.is ? a.is : b.is;
  const A ra = pow2_ratio(is, a.is), rb = pow2_ratio(is, b.is);
  const int64_t n = a.n + b.n;
  const A fb = static_cast<A>(b.n) / static_cast<A>(n);
  const A w = static_cast<A>(a.n) * fb;  // na * nb / n
  const A dmx = b.mx - a.mx, dmy = b.my - a.my;
  const A dx = dmx * is, dy = dmy * is;
  a.m2x = a.m2x * ra * ra + b.m2x * rb * rb + dx * dx * w;
  a.m2y = a.m2y * ra * ra + b.m2y * rb * rb + dy * dy * w;
  a.cxy = a.cxy * ra * ra + b.cxy * rb * rb + dx * dy * w;
  a.mx = a.mx + dmx * fb;
  a.my = a.my + dmy * fb;
  a.n = n;
  a.is = is;
}

// ------------------------------------------------------------------ forward

// The registers of a thread of a tile: its steps of the chunk (step i is
// t0 + lane + i * lanes) and which of them are valid (inside the chunk and
// the layout, and not masked).
template <typename A>
struct ChunkRegs {
  A x[kSteps<A>], y[kSteps<A>];
  unsigned valid;
};

template <typename T, bool kMasked, typename A>
CORROPS_KERNEL_FN void load_chunk(const Layout& l, const TilePlan& p, const Tile& t, const Lane& q,
                                  const T* x, const T* y, const bool* m, ChunkRegs<A>& lo) {
  lo.valid = 0u;
  CORROPS_UNROLL
  for (int i = 0; i < kSteps<A>; ++i) {
    lo.x[i] = lo.y[i] = A(0);
    const int64_t s = t.t0 + q.lane + static_cast<int64_t>(i) * p.lanes;
    if (i >= p.items || !q.active || s >= t.t1) continue;
    const int64_t e = (q.o * l.time + s) * l.inner() + q.j;
    lo.x[i] = to_acc(x[e]);
    lo.y[i] = to_acc(y[e]);
    if (!kMasked || m[(q.o * l.time + s) * l.groups + q.grp]) lo.valid |= 1u << i;
  }
}

// The loss of a tile's chunk from the registers: 1 - scale * dx' * dy' at
// valid steps (0 elsewhere), averaged over each group's channels (adjacent
// columns) in channel order; `buf` is shared memory for kSteps<A> values per
// thread.
template <typename T, class B, typename A>
CORROPS_KERNEL_FN void write_loss(B& b, const Layout& l, const TilePlan& p, const Tile& t,
                                  const Head<A>* head, A* buf, T* loss) {
  auto value = [&](int tid, const ChunkRegs<A>& lo, int i) {
    const Lane q = lane_of(p, l, t, tid);
    const Head<A>& h = head[q.row * p.cols + q.col];
    return ((lo.valid >> i) & 1u)
               ? A(1) - h.scale * ((lo.x[i] - h.mx) * h.is) * ((lo.y[i] - h.my) * h.is)
               : A(0);
  };
  if (l.channels == 1) {  // no mean to take: straight from the registers
    b.each([&](int tid, ChunkRegs<A>& lo) {
      const Lane q = lane_of(p, l, t, tid);
      if (!q.active) return;
      CORROPS_UNROLL
      for (int i = 0; i < kSteps<A>; ++i) {
        const int64_t s = t.t0 + q.lane + static_cast<int64_t>(i) * p.lanes;
        if (i < p.items && s < t.t1)
          loss[(q.o * l.time + s) * l.groups + q.j] = store<T>(value(tid, lo, i));
      }
    });
    return;
  }
  // Every value to shared memory, then each group's first channel sums the
  // group's values of each step.
  const int n = p.threads();
  b.each([&](int tid, ChunkRegs<A>& lo) {
    CORROPS_UNROLL
    for (int i = 0; i < kSteps<A>; ++i)
      if (i < p.items) buf[i * n + tid] = value(tid, lo, i);
  });
  const A inv_c = A(1) / static_cast<A>(l.channels);
  b.each([&](int tid, ChunkRegs<A>& lo) {
    const Lane q = lane_of(p, l, t, tid);
    if (!q.active || q.chan != 0) return;
    CORROPS_UNROLL
    for (int i = 0; i < kSteps<A>; ++i) {
      const int64_t s = t.t0 + q.lane + static_cast<int64_t>(i) * p.lanes;
      if (i >= p.items || s >= t.t1) continue;
      A acc = A(0);
      for (int64_t c = 0; c < l.channels; ++c) acc += buf[i * n + tid + c];
      loss[(q.o * l.time + s) * l.groups + q.grp] =
          store<T>(((lo.valid >> i) & 1u) ? acc * inv_c : A(0));
    }
  });
}

// Per tile: each (row, column)'s chunk statistics from registers (shift by
// the first valid value, scale, means, centered moments). One chunk: the
// row's statistics, and the loss when the tile holds whole channel groups
// (else a LossRow for loss_pass). Several chunks: a Partial per chunk.
// A null `loss`: the statistics only.
template <typename T, bool kMasked>
struct ForwardTile {
  using A = Acc<T>;
  using Local = ChunkRegs<A>;
  struct Shared {
    union {  // the reductions, then the loss of each step
      Red<A> red[kBlockThreads];
      A loss[kBlockThreads * kSteps<A>];
    };
    Head<A> head[kBlockThreads];
  };
  Layout l;
  TilePlan p;
  Method method;
  double eps;
  const T* x;
  const T* y;
  const bool* m;
  T* loss;
  double* stats;
  Partial<A>* partials;  // chunks > 1
  LossRow<A>* rows;      // the loss not fused

  template <class B>
  CORROPS_KERNEL_FN void operator()(B& b) const {
    const Tile t = tile_of(p, l, b.block());
    Shared& sh = b.shared();
    const int64_t inner = l.inner();
    // 1. Load the lane's steps; count, largest |value|, first valid step.
    b.each([&](int tid, Local& lo) {
      const Lane q = lane_of(p, l, t, tid);
      load_chunk<T, kMasked>(l, p, t, q, x, y, m, lo);
      Red<A> r{A(0), A(0), A(0), 0, kNoStep};
      CORROPS_UNROLL
      for (int i = 0; i < kSteps<A>; ++i)
        if ((lo.valid >> i) & 1u) {
          ++r.n;
          r.a = abs_max(r.a, lo.x[i], lo.y[i]);
          if (r.first == kNoStep) r.first = q.lane + i * p.lanes;
        }
      sh.red[tid] = r;
    });
    reduce_lanes(b, p, sh.red, [](Red<A>& a, const Red<A>& c) {
      a.n += c.n;
      a.a = c.a > a.a ? c.a : a.a;
      a.first = c.first < a.first ? c.first : a.first;
    });
    // 2. Per (row, column): the shift (the first valid value) and the scale.
    b.each([&](int tid, Local&) {
      const Lane q = lane_of(p, l, t, tid);
      if (q.lane != 0) return;
      const Red<A> r = sh.red[tid];
      Head<A> h{A(0), A(0), A(0), A(0), row_inv_scale(r.a), A(0), r.n};
      if (r.n > 0) {
        const int64_t e = (q.o * l.time + t.t0 + r.first) * inner + q.j;
        h.kx = to_acc(x[e]);
        h.ky = to_acc(y[e]);
      }
      sh.head[q.row * p.cols + q.col] = h;
    });
    // 3. Means: the shift plus the mean deviation from it.
    b.each([&](int tid, Local& lo) {
      const Lane q = lane_of(p, l, t, tid);
      const Head<A>& h = sh.head[q.row * p.cols + q.col];
      Red<A> r{A(0), A(0), A(0), 0, 0};
      CORROPS_UNROLL
      for (int i = 0; i < kSteps<A>; ++i)
        if ((lo.valid >> i) & 1u) {
          r.a += lo.x[i] - h.kx;
          r.b += lo.y[i] - h.ky;
        }
      sh.red[tid] = r;
    });
    reduce_lanes(b, p, sh.red, AddSums());
    b.each([&](int tid, Local&) {
      const Lane q = lane_of(p, l, t, tid);
      if (q.lane != 0) return;
      Head<A>& h = sh.head[q.row * p.cols + q.col];
      const A inv = h.n > 0 ? A(1) / static_cast<A>(h.n) : A(0);
      h.mx = h.kx + sh.red[tid].a * inv;
      h.my = h.ky + sh.red[tid].b * inv;
    });
    // 4. Centered moments of the scaled chunk.
    b.each([&](int tid, Local& lo) {
      const Lane q = lane_of(p, l, t, tid);
      const Head<A>& h = sh.head[q.row * p.cols + q.col];
      Red<A> r{A(0), A(0), A(0), 0, 0};
      CORROPS_UNROLL
      for (int i = 0; i < kSteps<A>; ++i)
        if ((lo.valid >> i) & 1u) {
          const A dx = (lo.x[i] - h.mx) * h.is, dy = (lo.y[i] - h.my) * h.is;
          r.a += dx * dx;
          r.b += dy * dy;
          r.c += dx * dy;
        }
      sh.red[tid] = r;
    });
    reduce_lanes(b, p, sh.red, AddSums());
    // 5. The row's statistics (one chunk) or the chunk's partial.
    b.each([&](int tid, Local&) {
      const Lane q = lane_of(p, l, t, tid);
      if (q.lane != 0 || !q.active) return;
      Head<A>& h = sh.head[q.row * p.cols + q.col];
      const Red<A> r = sh.red[tid];
      const int64_t row = q.o * inner + q.j;
      if (p.one_pass()) {
        const A inv = h.n > 0 ? A(1) / static_cast<A>(h.n) : A(0);
        const RowStats<A> s{static_cast<A>(h.n), h.mx, h.my, r.a * inv, r.b * inv, r.c * inv, h.is};
        store_stats(stats + row * kStatsPerRow, s.n, s.mx, s.my, s.vx, s.vy, s.cxy, s.inv_s);
        h.scale = loss_scale(method, s, eps);
        if (!p.fused_loss()) rows[row] = LossRow<A>{h.mx, h.my, h.is, h.scale};
      } else {
        partials[row * p.chunks + t.chunk] = Partial<A>{h.n, h.mx, h.my, h.is, r.a, r.b, r.c};
      }
    });
    // 6. The loss from the registers.
    if (p.fused_loss() && loss != nullptr) write_loss<T>(b, l, p, t, sh.head, sh.loss, loss);
  }
};

// The loss of long rows (holding whole channel groups) after CombineStats:
// each tile's chunk read again, with each row's LossRow.
template <typename T, bool kMasked>
struct LossTile {
  using A = Acc<T>;
  using Local = ChunkRegs<A>;
  struct Shared {
    Head<A> head[kBlockThreads];
    A loss[kBlockThreads * kSteps<A>];
  };
  Layout l;
  TilePlan p;
  const T* x;
  const T* y;
  const bool* m;
  const LossRow<A>* rows;
  T* loss;

  template <class B>
  CORROPS_KERNEL_FN void operator()(B& b) const {
    const Tile t = tile_of(p, l, b.block());
    Shared& sh = b.shared();
    b.each([&](int tid, Local& lo) {
      const Lane q = lane_of(p, l, t, tid);
      load_chunk<T, kMasked>(l, p, t, q, x, y, m, lo);
      if (q.lane != 0 || !q.active) return;
      const LossRow<A> r = rows[q.o * l.inner() + q.j];
      sh.head[q.row * p.cols + q.col] = Head<A>{A(0), A(0), r.mx, r.my, r.is, r.scale, 0};
    });
    write_loss<T>(b, l, p, t, sh.head, sh.loss, loss);
  }
};

// One thread per row of the same layout with kBlockThreads threads a block.
struct RowThread {
  int64_t rows;
  CORROPS_KERNEL_FN int64_t row(int64_t block, int tid) const {
    return block * kBlockThreads + tid;
  }
};

// Long rows: merges each row's chunk partials in chunk order into its
// statistics (and its LossRow for loss_pass).
template <typename A>
struct CombineStats {
  struct Local {};
  struct Shared {};
  RowThread rt;
  int64_t chunks;
  Method method;
  double eps;
  const Partial<A>* partials;
  double* stats;
  LossRow<A>* rows;

  template <class B>
  CORROPS_KERNEL_FN void operator()(B& b) const {
    b.each([&](int tid, Local&) {
      const int64_t row = rt.row(b.block(), tid);
      if (row >= rt.rows) return;
      Partial<A> acc = partials[row * chunks];
      for (int64_t c = 1; c < chunks; ++c) merge_partial(acc, partials[row * chunks + c]);
      const A inv = acc.n > 0 ? A(1) / static_cast<A>(acc.n) : A(0);
      if (acc.n == 0) acc.is = A(1);
      const RowStats<A> s{static_cast<A>(acc.n), acc.mx,        acc.my, acc.m2x * inv,
                          acc.m2y * inv,         acc.cxy * inv, acc.is};
      store_stats(stats + row * kStatsPerRow, s.n, s.mx, s.my, s.vx, s.vy, s.cxy, s.inv_s);
      rows[row] = LossRow<A>{s.mx, s.my, s.inv_s, loss_scale(method, s, eps)};
    });
  }
};

// The loss where a channel group is wider than a tile: a warp's worth of
// threads per (outer, step, group), each summing channels w, w + 32, ...
// (adjacent threads read adjacent channels), then a tree over the 32 sums;
// the mean of 1 - scale * dx' * dy' over the group's channels.
constexpr int kLossPassWidth = 32;

template <typename T>
struct LossPass {
  using A = Acc<T>;
  struct Local {};
  struct Shared {
    A part[kBlockThreads];
  };
  Layout l;
  const T* x;
  const T* y;
  const bool* m;
  const LossRow<A>* rows;
  T* loss;

  CORROPS_KERNEL_FN int64_t entry(int64_t block, int tid) const {
    return block * (kBlockThreads / kLossPassWidth) + tid / kLossPassWidth;
  }
  CORROPS_KERNEL_FN bool valid(int64_t i) const {
    return i < l.loss_elements() && (m == nullptr || m[i]);
  }

  template <class B>
  CORROPS_KERNEL_FN void operator()(B& b) const {
    Shared& sh = b.shared();
    b.each([&](int tid, Local&) {
      const int64_t i = entry(b.block(), tid);
      A acc = A(0);
      if (valid(i)) {
        const int64_t g = i % l.groups, o = i / (l.time * l.groups);
        const int64_t e0 = (i / l.groups) * l.inner() + g * l.channels;
        const int64_t r0 = o * l.inner() + g * l.channels;
        for (int64_t c = tid % kLossPassWidth; c < l.channels; c += kLossPassWidth) {
          const LossRow<A> r = rows[r0 + c];
          acc += A(1) - r.scale * ((to_acc(x[e0 + c]) - r.mx) * r.is) *
                            ((to_acc(y[e0 + c]) - r.my) * r.is);
        }
      }
      sh.part[tid] = acc;
    });
    for (int s = kLossPassWidth / 2; s > 0; s /= 2)
      b.each([&](int tid, Local&) {
        if (tid % kLossPassWidth < s) sh.part[tid] += sh.part[tid + s];
      });
    b.each([&](int tid, Local&) {
      const int64_t i = entry(b.block(), tid);
      if (tid % kLossPassWidth != 0 || i >= l.loss_elements()) return;
      loss[i] = store<T>(valid(i) ? sh.part[tid] * (A(1) / static_cast<A>(l.channels)) : A(0));
    });
  }
};

// Zeros, one thread per element (the loss of zero channels).
template <typename T>
struct FillZero {
  struct Local {};
  struct Shared {};
  int64_t n;
  T* out;
  template <class B>
  CORROPS_KERNEL_FN void operator()(B& b) const {
    b.each([&](int tid, Local&) {
      const int64_t i = b.block() * kBlockThreads + tid;
      if (i < n) out[i] = store<T>(Acc<T>(0));
    });
  }
};

// The per-step loss summed over time, (outer, groups), one thread per
// (outer, group), from the statistics alone: the CPU engine's
// corr_loss_totals (each row's row_loss_total in double, averaged over the
// group's channels).
template <typename T>
struct LossTotals {
  struct Local {};
  struct Shared {};
  RowThread rt;  // outer * groups
  Layout l;
  Method method;
  double eps;
  const double* stats;
  T* totals;

  template <class B>
  CORROPS_KERNEL_FN void operator()(B& b) const {
    b.each([&](int tid, Local&) {
      const int64_t q = rt.row(b.block(), tid);
      if (q >= rt.rows) return;
      const double* row = stats + q * l.channels * kStatsPerRow;
      double sum = 0;
      for (int64_t c = 0; c < l.channels; ++c, row += kStatsPerRow)
        sum += row_loss_total(method, load_stats<double>(row), eps);
      totals[q] = store<T>(static_cast<Acc<T>>(l.channels > 0 ? sum / l.channels : 0.0));
    });
  }
};

// ------------------------------------------------------------------ backward

// Per tile, with a per-step upstream gradient: the sums S1 = sum g dx',
// S1' = sum g dy', S2 = sum g dx' dy' of each (row, column) over the chunk.
// One chunk: the gradient coefficients and both gradients from the
// registers. Several chunks: the chunk's sums, for CombineGrad.
template <typename T, bool kMasked>
struct BackwardTile {
  using A = Acc<T>;
  struct Local : ChunkRegs<A> {
    A g[kSteps<A>];
  };
  struct Shared {
    Red<A> red[kBlockThreads];
    GradRow<A> head[kBlockThreads];
  };
  Layout l;
  TilePlan p;
  Method method;
  double eps;
  const T* g;
  const T* x;
  const T* y;
  const bool* m;
  const double* stats;
  T* gx;  // null: not wanted
  T* gy;
  Sums3<A>* sums;  // chunks > 1

  template <class B>
  CORROPS_KERNEL_FN void operator()(B& b) const {
    const Tile t = tile_of(p, l, b.block());
    Shared& sh = b.shared();
    const int64_t inner = l.inner();
    const A inv_c = A(1) / static_cast<A>(l.channels);
    // 1. Load the chunk and the upstream gradient (divided among the
    // channels); each (row, column)'s means and scale.
    b.each([&](int tid, Local& lo) {
      const Lane q = lane_of(p, l, t, tid);
      load_chunk<T, kMasked>(l, p, t, q, x, y, m, lo);
      CORROPS_UNROLL
      for (int i = 0; i < kSteps<A>; ++i) {
        const int64_t s = t.t0 + q.lane + static_cast<int64_t>(i) * p.lanes;
        lo.g[i] = ((lo.valid >> i) & 1u) ? to_acc(g[(q.o * l.time + s) * l.groups + q.grp]) * inv_c
                                         : A(0);
      }
      if (q.lane != 0 || !q.active) return;
      const RowStats<A> st = load_stats<A>(stats + (q.o * inner + q.j) * kStatsPerRow);
      GradRow<A>& h = sh.head[q.row * p.cols + q.col];
      h.mx = st.mx;
      h.my = st.my;
      h.is = st.inv_s;
    });
    // 2. S1, S1', S2 over the chunk.
    b.each([&](int tid, Local& lo) {
      const Lane q = lane_of(p, l, t, tid);
      Red<A> r{A(0), A(0), A(0), 0, 0};
      if (q.active) {
        const GradRow<A>& h = sh.head[q.row * p.cols + q.col];
        CORROPS_UNROLL
        for (int i = 0; i < kSteps<A>; ++i)
          if ((lo.valid >> i) & 1u) {
            const A dx = (lo.x[i] - h.mx) * h.is, dy = (lo.y[i] - h.my) * h.is;
            r.a += lo.g[i] * dx;
            r.b += lo.g[i] * dy;
            r.c += lo.g[i] * dx * dy;
          }
      }
      sh.red[tid] = r;
    });
    reduce_lanes(b, p, sh.red, AddSums());
    // 3. The coefficients (one chunk) or the chunk's sums.
    b.each([&](int tid, Local&) {
      const Lane q = lane_of(p, l, t, tid);
      if (q.lane != 0 || !q.active) return;
      const int64_t row = q.o * inner + q.j;
      const Red<A> r = sh.red[tid];
      if (p.one_pass()) {
        const RowStats<A> st = load_stats<A>(stats + row * kStatsPerRow);
        sh.head[q.row * p.cols + q.col].k = grad_coeffs(method, st, eps, r.a, r.b, r.c);
      } else {
        sums[row * p.chunks + t.chunk] = Sums3<A>{r.a, r.b, r.c};
      }
    });
    if (!p.one_pass()) return;  // uniform: the plan is the block's
    // 4. Both gradients from the registers.
    b.each([&](int tid, Local& lo) {
      const Lane q = lane_of(p, l, t, tid);
      if (!q.active) return;
      const GradRow<A>& h = sh.head[q.row * p.cols + q.col];
      const GradCoeffs<A> k = h.k;
      CORROPS_UNROLL
      for (int i = 0; i < kSteps<A>; ++i) {
        const int64_t s = t.t0 + q.lane + static_cast<int64_t>(i) * p.lanes;
        if (i >= p.items || s >= t.t1) continue;
        const int64_t e = (q.o * l.time + s) * inner + q.j;
        const bool v = (lo.valid >> i) & 1u;
        const A dx = (lo.x[i] - h.mx) * h.is, dy = (lo.y[i] - h.my) * h.is;
        if (gx != nullptr) gx[e] = store<T>(v ? k.a * lo.g[i] * dy + k.bx + k.cx * dx : A(0));
        if (gy != nullptr) gy[e] = store<T>(v ? k.a * lo.g[i] * dx + k.by + k.cy * dy : A(0));
      }
    });
  }
};

// Long rows: each row's chunk sums added in chunk order, then its coefficients.
template <typename A>
struct CombineGrad {
  struct Local {};
  struct Shared {};
  RowThread rt;
  int64_t chunks;
  Method method;
  double eps;
  const Sums3<A>* sums;
  const double* stats;
  GradRow<A>* rows;

  template <class B>
  CORROPS_KERNEL_FN void operator()(B& b) const {
    b.each([&](int tid, Local&) {
      const int64_t row = rt.row(b.block(), tid);
      if (row >= rt.rows) return;
      Sums3<A> acc{A(0), A(0), A(0)};
      for (int64_t c = 0; c < chunks; ++c) {
        const Sums3<A> v = sums[row * chunks + c];
        acc.s1 += v.s1;
        acc.s1p += v.s1p;
        acc.s2 += v.s2;
      }
      const RowStats<A> s = load_stats<A>(stats + row * kStatsPerRow);
      rows[row] =
          GradRow<A>{s.mx, s.my, s.inv_s, grad_coeffs(method, s, eps, acc.s1, acc.s1p, acc.s2)};
    });
  }
};

// An upstream gradient constant along time, grad of shape (outer, 1,
// groups): each row's coefficients from its statistics alone
// (time_const_grad_coeffs), the gradient value folded in.
template <typename T>
struct TimeConstCoeffs {
  using A = Acc<T>;
  struct Local {};
  struct Shared {};
  RowThread rt;
  Layout l;
  Method method;
  double eps;
  const T* g;
  const double* stats;
  GradRow<A>* rows;

  template <class B>
  CORROPS_KERNEL_FN void operator()(B& b) const {
    b.each([&](int tid, Local&) {
      const int64_t row = rt.row(b.block(), tid);
      if (row >= rt.rows) return;
      const int64_t o = row / l.inner(), grp = (row % l.inner()) / l.channels;
      const A gc = to_acc(g[o * l.groups + grp]) * (A(1) / static_cast<A>(l.channels));
      const RowStats<A> s = load_stats<A>(stats + row * kStatsPerRow);
      rows[row] = GradRow<A>{s.mx, s.my, s.inv_s, time_const_grad_coeffs(method, s, eps, gc)};
    });
  }
};

// Both gradients, one thread per element, from each row's GradRow: with the
// per-step gradient g (null: constant along time, folded into k.a).
template <typename T>
struct GradPass {
  using A = Acc<T>;
  struct Local {};
  struct Shared {};
  Layout l;
  const T* g;
  const T* x;
  const T* y;
  const bool* m;
  const GradRow<A>* rows;
  T* gx;
  T* gy;

  template <class B>
  CORROPS_KERNEL_FN void operator()(B& b) const {
    b.each([&](int tid, Local&) {
      const int64_t e = b.block() * kBlockThreads + tid;
      if (e >= l.elements()) return;
      const int64_t inner = l.inner(), j = e % inner, ot = e / inner;
      const int64_t step = ot * l.groups + j / l.channels;
      A v = A(0), v2 = A(0);
      if (m == nullptr || m[step]) {
        const GradRow<A> r = rows[(ot / l.time) * inner + j];
        const A gv = g != nullptr ? to_acc(g[step]) * (A(1) / static_cast<A>(l.channels)) : A(1);
        const A dx = (to_acc(x[e]) - r.mx) * r.is, dy = (to_acc(y[e]) - r.my) * r.is;
        v = r.k.a * gv * dy + r.k.bx + r.k.cx * dx;
        v2 = r.k.a * gv * dx + r.k.by + r.k.cy * dy;
      }
      if (gx != nullptr) gx[e] = store<T>(v);
      if (gy != nullptr) gy[e] = store<T>(v2);
    });
  }
};

}  // namespace cuda
}  // namespace corrops
