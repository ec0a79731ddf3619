// The CPU engine's public header: forward, backward and coefficients over a
// range of work units, the work-unit count and cost the thread pools use.
// The engine itself is in the parts included below (lanes, contiguous rows,
// strided blocks, flat tiles, work-unit drivers).
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

// The engine's parts, in dependency order (each uses the ones before it).
#include "core/engine_lanes.h"
// Contiguous rows.
#include "core/engine_rows.h"
// Strided blocks.
#include "core/engine_blocks.h"
// Flat tiles.
#include "core/engine_tiles.h"
// The work-unit drivers.
#include "core/engine_units.h"

namespace corrops {
namespace CORROPS_ENGINE_ISA {

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
// and the per-row statistics (rows, kStatsPerRow). `mask` may be null. A null
// `loss` computes the statistics alone (the same bits), for a loss reduced
// over time from them (corr_loss_totals).
template <typename T>
void corr_loss_forward(const Layout& l, Method method, double eps, const T* y_true, const T* y_pred,
                       const bool* mask, T* loss, double* stats, int64_t begin, int64_t end) {
  if (mask)
    detail::forward_units_impl</*kMasked=*/true>(l, method, eps, y_true, y_pred, mask, loss, stats,
                                                 begin, end);
  else
    detail::forward_units_impl</*kMasked=*/false>(l, method, eps, y_true, y_pred, mask, loss, stats,
                                                  begin, end);
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
    detail::backward_units_impl</*kMasked=*/true>(l, method, eps, grad, y_true, y_pred, mask, stats,
                                                  grad_true, grad_pred, begin, end,
                                                  grad_time_const);
  else
    detail::backward_units_impl</*kMasked=*/false>(l, method, eps, grad, y_true, y_pred, mask,
                                                   stats, grad_true, grad_pred, begin, end,
                                                   grad_time_const);
}

// The per-step loss summed over time, (outer, groups), from the forward's
// statistics, for outer indices [begin, end): each row's row_loss_total,
// averaged over its group's channels as the per-step loss is.
template <typename A>
void corr_loss_totals(const Layout& l, Method method, double eps, const double* stats, A* totals,
                      int64_t begin, int64_t end) {
  const int64_t channels = l.channels, groups = l.groups;
  for (int64_t o = begin; o < end; ++o) {
    for (int64_t g = 0; g < groups; ++g) {
      double sum = 0;
      for (int64_t c = 0; c < channels; ++c) {
        const double* row = stats + ((o * groups + g) * channels + c) * kStatsPerRow;
        sum += row_loss_total(method, detail::load_stats<double>(row), eps);
      }
      totals[o * groups + g] = channels > 0 ? static_cast<A>(sum / channels) : A(0);
    }
  }
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
