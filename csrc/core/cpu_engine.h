// CPU reference engine: forward and backward over a canonical layout.
//
// Canonical layout (all implementations): data of shape (outer, time, groups,
// channels), row-major. One *row* is one (outer, group, channel) sequence along
// time. The loss/mask/upstream-gradient tensors have shape (outer, time,
// groups): the loss is averaged over channels. Per-row statistics are stored
// as doubles, kStatsPerRow per row, rows ordered (outer, group*channels).
//
// Work is split into independent units (a contiguous row, or a block of
// adjacent columns of one outer slab); a unit is always processed by one
// thread in a fixed order, so results are bitwise identical for any thread
// count. Statistics use the centered two-pass method (never E[x^2]-E[x]^2).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/row_math.h"

namespace corrops {

struct Layout {
  int64_t outer = 0, time = 0, groups = 0, channels = 0;
  int64_t inner() const { return groups * channels; }
  int64_t rows() const { return outer * inner(); }
  int64_t elements() const { return outer * time * inner(); }
  int64_t loss_elements() const { return outer * time * groups; }
};

namespace detail {

// Independent partial sums across a contiguous row: vectorisable without
// reassociation and a smaller rounding error than one running sum.
constexpr int64_t kLanes = 16;
// Target number of columns handled by one strided work unit.
constexpr int64_t kBlockColumns = 64;

// A 2-D tile: `steps` steps at stride `ld` elements, `groups * channels`
// columns; mask / loss / upstream-gradient entries are one per group, at
// stride `out_ld` per step. A contiguous row is viewed as a tile of kLanes
// single-channel columns (plus a tail tile), a strided slab block as itself.
struct Tile {
  int64_t data, ld, out, out_ld, steps, groups, channels;
  int64_t width() const { return groups * channels; }
};

template <typename T, typename A>
inline A ld(const T* p, int64_t i) {
  return static_cast<A>(p[i]);
}

// Pass 1: masked sums of x and y per column, and the valid count per group.
template <bool kMasked, typename T, typename A>
void tile_sums(const Tile& t, const T* x, const T* y, const bool* m, A* sx, A* sy, int64_t* cnt) {
  for (int64_t s = 0; s < t.steps; ++s) {
    const T* xs = x + t.data + s * t.ld;
    const T* ys = y + t.data + s * t.ld;
    for (int64_t g = 0; g < t.groups; ++g) {
      const bool v = kMasked ? m[t.out + s * t.out_ld + g] : true;
      cnt[g] += v ? 1 : 0;
      for (int64_t c = 0; c < t.channels; ++c) {
        const int64_t j = g * t.channels + c;
        sx[j] += v ? ld<T, A>(xs, j) : A(0);
        sy[j] += v ? ld<T, A>(ys, j) : A(0);
      }
    }
  }
}

// Pass 2: centered second moments per column around per-column means.
template <bool kMasked, typename T, typename A>
void tile_moments(const Tile& t, const T* x, const T* y, const bool* m, const A* mx, const A* my,
                  A* vx, A* vy, A* cxy) {
  for (int64_t s = 0; s < t.steps; ++s) {
    const T* xs = x + t.data + s * t.ld;
    const T* ys = y + t.data + s * t.ld;
    for (int64_t g = 0; g < t.groups; ++g) {
      const bool v = kMasked ? m[t.out + s * t.out_ld + g] : true;
      for (int64_t c = 0; c < t.channels; ++c) {
        const int64_t j = g * t.channels + c;
        const A dx = v ? ld<T, A>(xs, j) - mx[j] : A(0);
        const A dy = v ? ld<T, A>(ys, j) - my[j] : A(0);
        vx[j] += dx * dx;
        vy[j] += dy * dy;
        cxy[j] += dx * dy;
      }
    }
  }
}

// Forward output: loss = mean over channels of (1 - scale * dx * dy), 0 if masked.
template <bool kMasked, typename T, typename A>
void tile_loss(const Tile& t, const T* x, const T* y, const bool* m, const A* mx, const A* my,
               const A* scale, T* loss) {
  const A inv_c = A(1) / static_cast<A>(t.channels);
  for (int64_t s = 0; s < t.steps; ++s) {
    const T* xs = x + t.data + s * t.ld;
    const T* ys = y + t.data + s * t.ld;
    for (int64_t g = 0; g < t.groups; ++g) {
      const int64_t o = t.out + s * t.out_ld + g;
      const bool v = kMasked ? m[o] : true;
      A acc = A(0);
      for (int64_t c = 0; c < t.channels; ++c) {
        const int64_t j = g * t.channels + c;
        const A dx = ld<T, A>(xs, j) - mx[j];
        const A dy = ld<T, A>(ys, j) - my[j];
        acc += A(1) - scale[j] * dx * dy;
      }
      loss[o] = static_cast<T>(v ? acc * inv_c : A(0));
    }
  }
}

// Backward pass 1: S1 = sum g*dx, S1' = sum g*dy, S2 = sum g*dx*dy per column.
template <bool kMasked, typename T, typename A>
void tile_grad_sums(const Tile& t, const T* gr, const T* x, const T* y, const bool* m,
                    const A* mx, const A* my, A* s1, A* s1p, A* s2) {
  const A inv_c = A(1) / static_cast<A>(t.channels);
  for (int64_t s = 0; s < t.steps; ++s) {
    const T* xs = x + t.data + s * t.ld;
    const T* ys = y + t.data + s * t.ld;
    for (int64_t g = 0; g < t.groups; ++g) {
      const int64_t o = t.out + s * t.out_ld + g;
      const bool v = kMasked ? m[o] : true;
      const A gv = v ? ld<T, A>(gr, o) * inv_c : A(0);
      for (int64_t c = 0; c < t.channels; ++c) {
        const int64_t j = g * t.channels + c;
        const A dx = v ? ld<T, A>(xs, j) - mx[j] : A(0);
        const A dy = v ? ld<T, A>(ys, j) - my[j] : A(0);
        s1[j] += gv * dx;
        s1p[j] += gv * dy;
        s2[j] += gv * dx * dy;
      }
    }
  }
}

// Backward pass 2: elementwise gradients from the per-column coefficients.
template <bool kMasked, typename T, typename A>
void tile_grads(const Tile& t, const T* gr, const T* x, const T* y, const bool* m, const A* mx,
                const A* my, const GradCoeffs<A>* k, T* gx, T* gy) {
  const A inv_c = A(1) / static_cast<A>(t.channels);
  for (int64_t s = 0; s < t.steps; ++s) {
    const int64_t base = t.data + s * t.ld;
    for (int64_t g = 0; g < t.groups; ++g) {
      const int64_t o = t.out + s * t.out_ld + g;
      const bool v = kMasked ? m[o] : true;
      const A gv = ld<T, A>(gr, o) * inv_c;
      for (int64_t c = 0; c < t.channels; ++c) {
        const int64_t j = g * t.channels + c;
        const A dx = ld<T, A>(x, base + j) - mx[j];
        const A dy = ld<T, A>(y, base + j) - my[j];
        const GradCoeffs<A>& kj = k[j];
        gx[base + j] = static_cast<T>(v ? kj.a * gv * dy + kj.bx + kj.cx * dx : A(0));
        gy[base + j] = static_cast<T>(v ? kj.a * gv * dx + kj.by + kj.cy * dy : A(0));
      }
    }
  }
}

// Scratch for one work unit: per-column accumulators.
template <typename A>
struct Scratch {
  explicit Scratch(int64_t w)
      : a(w), b(w), c(w), d(w), e(w), mx(w), my(w), k(w), cnt(w), stats(w) {}
  std::vector<A> a, b, c, d, e, mx, my;
  std::vector<GradCoeffs<A>> k;
  std::vector<int64_t> cnt;
  std::vector<RowStats<A>> stats;
  void zero() {
    for (auto* v : {&a, &b, &c, &d, &e}) std::fill(v->begin(), v->end(), A(0));
    std::fill(cnt.begin(), cnt.end(), 0);
  }
};

template <typename A>
A fold(const std::vector<A>& v) {
  A s = A(0);
  for (const A& e : v) s += e;
  return s;
}

// A work unit resolved to tiles: either one contiguous row (tiles: body of
// kLanes columns, tail) whose columns fold into one row, or one block of
// columns of an outer slab where each column is its own row.
struct Unit {
  Tile tiles[2];
  int num_tiles;
  bool lanes;         // contiguous row viewed as kLanes columns
  int64_t first_row;  // index of the first row (for stats)
  int64_t num_rows;
};

inline int64_t groups_per_block(const Layout& l) {
  return std::max<int64_t>(1, kBlockColumns / std::max<int64_t>(1, l.channels));
}

}  // namespace detail

// Number of independent work units and a per-unit cost estimate (element
// visits) for the thread pool.
// With zero channels there is no row: the (non-empty) loss is all zeros, see
// loss_is_all_zero().
inline int64_t num_work_units(const Layout& l) {
  if (l.channels == 0 || l.groups == 0) return 0;
  if (l.inner() == 1) return l.outer;
  const int64_t gpb = detail::groups_per_block(l);
  return l.outer * ((l.groups + gpb - 1) / gpb);
}

// Zero channels: every per-step loss is a mean over no channel, defined as 0.
inline bool loss_is_all_zero(const Layout& l) { return l.channels == 0; }

inline int64_t work_unit_cost(const Layout& l) {
  if (l.inner() == 1) return std::max<int64_t>(1, l.time) * 8;
  const int64_t gpb = std::min(detail::groups_per_block(l), std::max<int64_t>(1, l.groups));
  return std::max<int64_t>(1, l.time) * gpb * l.channels * 8;
}

namespace detail {

inline Unit make_unit(const Layout& l, int64_t u) {
  Unit un{};
  if (l.inner() == 1) {
    const int64_t T = l.time, body = T - T % kLanes;
    un.lanes = true;
    un.first_row = u;
    un.num_rows = 1;
    un.tiles[0] = Tile{u * T, kLanes, u * T, kLanes, body / kLanes, kLanes, 1};
    un.tiles[1] = Tile{u * T + body, kLanes, u * T + body, kLanes, T > body ? 1 : 0, T - body, 1};
    un.num_tiles = 2;
    return un;
  }
  const int64_t gpb = groups_per_block(l);
  const int64_t blocks = (l.groups + gpb - 1) / gpb;
  const int64_t o = u / blocks, g0 = (u % blocks) * gpb;
  const int64_t ng = std::min(gpb, l.groups - g0);
  un.lanes = false;
  un.first_row = o * l.inner() + g0 * l.channels;
  un.num_rows = ng * l.channels;
  un.tiles[0] = Tile{o * l.time * l.inner() + g0 * l.channels, l.inner(), o * l.time * l.groups + g0,
                     l.groups, l.time, ng, l.channels};
  un.num_tiles = 1;
  return un;
}

inline int64_t unit_width(const Layout& l) {
  return l.inner() == 1 ? kLanes : std::min(groups_per_block(l), l.groups) * l.channels;
}

// Computes the per-row statistics of one unit into scr.stats / scr.mx / scr.my
// (per column: for lanes, every column carries the row's mean).
template <bool kMasked, typename T, typename A>
void unit_stats(const Unit& un, const T* x, const T* y, const bool* m, Scratch<A>& scr) {
  const int64_t w = static_cast<int64_t>(scr.a.size());
  scr.zero();
  for (int i = 0; i < un.num_tiles; ++i)
    tile_sums<kMasked>(un.tiles[i], x, y, m, scr.a.data(), scr.b.data(), scr.cnt.data());
  if (un.lanes) {
    int64_t n = 0;
    for (int64_t j = 0; j < w; ++j) n += scr.cnt[j];
    const A inv = n > 0 ? A(1) / static_cast<A>(n) : A(0);
    const A mx = fold(scr.a) * inv, my = fold(scr.b) * inv;
    std::fill(scr.mx.begin(), scr.mx.end(), mx);
    std::fill(scr.my.begin(), scr.my.end(), my);
    scr.stats[0].n = static_cast<A>(n);
  } else {
    const int64_t C = un.tiles[0].channels;
    for (int64_t j = 0; j < un.num_rows; ++j) {
      const int64_t n = scr.cnt[j / C];
      const A inv = n > 0 ? A(1) / static_cast<A>(n) : A(0);
      scr.mx[j] = scr.a[j] * inv;
      scr.my[j] = scr.b[j] * inv;
      scr.stats[j].n = static_cast<A>(n);
    }
  }
  std::fill(scr.a.begin(), scr.a.end(), A(0));
  std::fill(scr.b.begin(), scr.b.end(), A(0));
  for (int i = 0; i < un.num_tiles; ++i)
    tile_moments<kMasked>(un.tiles[i], x, y, m, scr.mx.data(), scr.my.data(), scr.a.data(),
                          scr.b.data(), scr.c.data());
  if (un.lanes) {
    RowStats<A>& s = scr.stats[0];
    const A inv = s.n > A(0) ? A(1) / s.n : A(0);
    s.mx = scr.mx[0];
    s.my = scr.my[0];
    s.vx = fold(scr.a) * inv;
    s.vy = fold(scr.b) * inv;
    s.cxy = fold(scr.c) * inv;
  } else {
    for (int64_t j = 0; j < un.num_rows; ++j) {
      RowStats<A>& s = scr.stats[j];
      const A inv = s.n > A(0) ? A(1) / s.n : A(0);
      s.mx = scr.mx[j];
      s.my = scr.my[j];
      s.vx = scr.a[j] * inv;
      s.vy = scr.b[j] * inv;
      s.cxy = scr.c[j] * inv;
    }
  }
}

template <typename A>
void store_stats(const RowStats<A>& s, double* out) {
  out[kStatN] = static_cast<double>(s.n);
  out[kStatMx] = static_cast<double>(s.mx);
  out[kStatMy] = static_cast<double>(s.my);
  out[kStatVx] = static_cast<double>(s.vx);
  out[kStatVy] = static_cast<double>(s.vy);
  out[kStatCxy] = static_cast<double>(s.cxy);
}

template <typename A>
RowStats<A> load_stats(const double* in) {
  return RowStats<A>{static_cast<A>(in[kStatN]),  static_cast<A>(in[kStatMx]),
                     static_cast<A>(in[kStatMy]), static_cast<A>(in[kStatVx]),
                     static_cast<A>(in[kStatVy]), static_cast<A>(in[kStatCxy])};
}

template <bool kMasked, typename T>
void forward_units_impl(const Layout& l, Method method, double eps, const T* x, const T* y,
                        const bool* m, T* loss, double* stats, int64_t begin, int64_t end) {
  using A = typename Accumulator<T>::type;
  Scratch<A> scr(unit_width(l));
  for (int64_t u = begin; u < end; ++u) {
    const Unit un = make_unit(l, u);
    unit_stats<kMasked>(un, x, y, m, scr);
    for (int64_t r = 0; r < un.num_rows; ++r)
      store_stats(scr.stats[r], stats + (un.first_row + r) * kStatsPerRow);
    const int64_t w = static_cast<int64_t>(scr.a.size());
    for (int64_t j = 0; j < w; ++j)
      scr.e[j] = loss_scale(method, scr.stats[un.lanes ? 0 : std::min(j, un.num_rows - 1)],
                            static_cast<A>(eps));
    for (int i = 0; i < un.num_tiles; ++i)
      tile_loss<kMasked>(un.tiles[i], x, y, m, scr.mx.data(), scr.my.data(), scr.e.data(), loss);
  }
}

template <bool kMasked, typename T>
void backward_units_impl(const Layout& l, Method method, double eps, const T* gr, const T* x,
                         const T* y, const bool* m, const double* stats, T* gx, T* gy,
                         int64_t begin, int64_t end) {
  using A = typename Accumulator<T>::type;
  Scratch<A> scr(unit_width(l));
  const int64_t w = static_cast<int64_t>(scr.a.size());
  for (int64_t u = begin; u < end; ++u) {
    const Unit un = make_unit(l, u);
    for (int64_t r = 0; r < un.num_rows; ++r) {
      scr.stats[r] = load_stats<A>(stats + (un.first_row + r) * kStatsPerRow);
    }
    for (int64_t j = 0; j < w; ++j) {
      const RowStats<A>& s = scr.stats[un.lanes ? 0 : std::min(j, un.num_rows - 1)];
      scr.mx[j] = s.mx;
      scr.my[j] = s.my;
    }
    scr.zero();
    for (int i = 0; i < un.num_tiles; ++i)
      tile_grad_sums<kMasked>(un.tiles[i], gr, x, y, m, scr.mx.data(), scr.my.data(),
                              scr.a.data(), scr.b.data(), scr.c.data());
    const A e = static_cast<A>(eps);
    if (un.lanes) {
      const GradCoeffs<A> k =
          grad_coeffs(method, scr.stats[0], e, fold(scr.a), fold(scr.b), fold(scr.c));
      std::fill(scr.k.begin(), scr.k.end(), k);
    } else {
      for (int64_t j = 0; j < un.num_rows; ++j)
        scr.k[j] = grad_coeffs(method, scr.stats[j], e, scr.a[j], scr.b[j], scr.c[j]);
    }
    for (int i = 0; i < un.num_tiles; ++i)
      tile_grads<kMasked>(un.tiles[i], gr, x, y, m, scr.mx.data(), scr.my.data(), scr.k.data(),
                          gx, gy);
  }
}

}  // namespace detail

// Forward over work units [begin, end): writes the loss (outer, time, groups)
// and the per-row statistics (rows, kStatsPerRow). `mask` may be null.
template <typename T>
void corr_loss_forward(const Layout& l, Method method, double eps, const T* y_true,
                       const T* y_pred, const bool* mask, T* loss, double* stats, int64_t begin,
                       int64_t end) {
  if (mask)
    detail::forward_units_impl<true>(l, method, eps, y_true, y_pred, mask, loss, stats, begin, end);
  else
    detail::forward_units_impl<false>(l, method, eps, y_true, y_pred, mask, loss, stats, begin,
                                      end);
}

// Backward over work units [begin, end): from the upstream gradient of the
// loss (outer, time, groups) and the forward's statistics, writes dL/dy_true
// and dL/dy_pred (same shape as the inputs). `mask` may be null.
template <typename T>
void corr_loss_backward(const Layout& l, Method method, double eps, const T* grad,
                        const T* y_true, const T* y_pred, const bool* mask, const double* stats,
                        T* grad_true, T* grad_pred, int64_t begin, int64_t end) {
  if (mask)
    detail::backward_units_impl<true>(l, method, eps, grad, y_true, y_pred, mask, stats, grad_true,
                                      grad_pred, begin, end);
  else
    detail::backward_units_impl<false>(l, method, eps, grad, y_true, y_pred, mask, stats,
                                       grad_true, grad_pred, begin, end);
}

}  // namespace corrops
