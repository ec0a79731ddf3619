// Which kernels run, in which order and geometry, for a forward or backward
// call, and the scratch memory they share: one sequence for the device
// launchers (corr_loss_kernels.cu) and the host execution. `launch(k,
// blocks, threads)` runs kernel k (DeviceLaunch or HostLaunch) and returns
// false on a launch failure.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/row_math.h"
#include "cuda/kernels/tile_kernels.h"
#include "cuda/kernels/tile_plan.h"

namespace corrops {
namespace cuda {

enum class LaunchStatus { kOk, kTooLarge, kFailed };

inline int64_t blocks_for(int64_t threads) { return (threads + kBlockThreads - 1) / kBlockThreads; }

// Sections of the scratch memory: byte offsets and total size.
template <typename T>
struct ForwardScratch {
  using A = Acc<T>;
  size_t partials = 0, rows = 0, bytes = 0;
  explicit ForwardScratch(const Layout& l) {
    if (l.channels == 0 || l.rows() == 0) return;
    const TilePlan p = plan_for<T>(l);
    if (!p.one_pass()) bytes += align_up(sizeof(Partial<A>) * l.rows() * p.chunks);
    rows = bytes;
    if (!p.fused_loss()) bytes += align_up(sizeof(LossRow<A>) * l.rows());
  }
};

template <typename T>
struct BackwardScratch {
  using A = Acc<T>;
  size_t sums = 0, rows = 0, bytes = 0;
  BackwardScratch(const Layout& l, bool grad_time_const) {
    if (l.rows() == 0 || l.time == 0) return;
    const TilePlan p = plan_for<T>(l);
    if (!grad_time_const && p.one_pass()) return;  // all in the tile kernel
    if (!grad_time_const) bytes += align_up(sizeof(Sums3<A>) * l.rows() * p.chunks);
    rows = bytes;
    bytes += align_up(sizeof(GradRow<A>) * l.rows());
  }
};

template <typename P>
P* section(void* scratch, size_t offset) {
  return reinterpret_cast<P*>(static_cast<char*>(scratch) + offset);
}

// Writes the loss (outer, time, groups) and the statistics (rows, 7); a null
// `loss`: the statistics only (the same bits), for run_totals.
template <typename T, class Launch>
LaunchStatus run_forward(Launch& launch, const Layout& l, Method method, double eps, const T* x,
                         const T* y, const bool* m, T* loss, double* stats, void* scratch) {
  using A = Acc<T>;
  if (l.channels == 0) {  // mean over no channel: zeros (as the CPU engine)
    const int64_t n = loss != nullptr ? l.loss_elements() : 0;
    if (n > 0 && !launch(FillZero<T>{n, loss}, blocks_for(n), kBlockThreads))
      return LaunchStatus::kFailed;
    return LaunchStatus::kOk;
  }
  if (l.rows() == 0) return LaunchStatus::kOk;
  if (!plan_fits(l)) return LaunchStatus::kTooLarge;
  const TilePlan p = plan_for<T>(l);
  if (p.blocks() > kMaxBlocks || blocks_for(l.loss_elements() * kLossPassWidth) > kMaxBlocks)
    return LaunchStatus::kTooLarge;
  const ForwardScratch<T> ws(l);
  Partial<A>* partials = section<Partial<A>>(scratch, ws.partials);
  LossRow<A>* rows = section<LossRow<A>>(scratch, ws.rows);
  const bool ok =
      m != nullptr
          ? launch(ForwardTile<T, true>{l, p, method, eps, x, y, m, loss, stats, partials, rows},
                   p.blocks(), p.threads())
          : launch(ForwardTile<T, false>{l, p, method, eps, x, y, m, loss, stats, partials, rows},
                   p.blocks(), p.threads());
  if (!ok) return LaunchStatus::kFailed;
  if (!p.one_pass() &&
      !launch(CombineStats<A>{{l.rows()}, p.chunks, method, eps, partials, stats, rows},
              blocks_for(l.rows()), kBlockThreads))
    return LaunchStatus::kFailed;
  if (p.fused_loss() || l.loss_elements() == 0 || loss == nullptr) return LaunchStatus::kOk;
  if (!p.whole_groups)
    return launch(LossPass<T>{l, x, y, m, rows, loss},
                  blocks_for(l.loss_elements() * kLossPassWidth), kBlockThreads)
               ? LaunchStatus::kOk
               : LaunchStatus::kFailed;
  const bool loss_ok =
      m != nullptr ? launch(LossTile<T, true>{l, p, x, y, m, rows, loss}, p.blocks(), p.threads())
                   : launch(LossTile<T, false>{l, p, x, y, m, rows, loss}, p.blocks(), p.threads());
  return loss_ok ? LaunchStatus::kOk : LaunchStatus::kFailed;
}

// Writes the per-step loss summed over time, (outer, groups), from run_forward's
// statistics, without the per-step loss.
template <typename T, class Launch>
LaunchStatus run_totals(Launch& launch, const Layout& l, Method method, double eps,
                        const double* stats, T* totals) {
  const int64_t n = l.outer * l.groups;
  if (n == 0) return LaunchStatus::kOk;
  if (blocks_for(n) > kMaxBlocks) return LaunchStatus::kTooLarge;
  return launch(LossTotals<T>{{n}, l, method, eps, stats, totals}, blocks_for(n), kBlockThreads)
             ? LaunchStatus::kOk
             : LaunchStatus::kFailed;
}

// Writes dL/dy_true (gx) and dL/dy_pred (gy), either may be null. grad is
// per step (outer, time, groups), or (outer, 1, groups) constant along time
// when grad_time_const.
template <typename T, class Launch>
LaunchStatus run_backward(Launch& launch, const Layout& l, Method method, double eps, const T* g,
                          const T* x, const T* y, const bool* m, const double* stats, T* gx, T* gy,
                          bool grad_time_const, void* scratch) {
  using A = Acc<T>;
  if (l.rows() == 0 || l.time == 0 || (gx == nullptr && gy == nullptr)) return LaunchStatus::kOk;
  if (!plan_fits(l)) return LaunchStatus::kTooLarge;
  const TilePlan p = plan_for<T>(l);
  if (p.blocks() > kMaxBlocks || blocks_for(l.elements()) > kMaxBlocks)
    return LaunchStatus::kTooLarge;
  const BackwardScratch<T> ws(l, grad_time_const);
  Sums3<A>* sums = section<Sums3<A>>(scratch, ws.sums);
  GradRow<A>* rows = section<GradRow<A>>(scratch, ws.rows);
  const RowThread rt{l.rows()};
  if (grad_time_const) {
    if (!launch(TimeConstCoeffs<T>{rt, l, method, eps, g, stats, rows}, blocks_for(l.rows()),
                kBlockThreads))
      return LaunchStatus::kFailed;
  } else {
    const bool ok =
        m != nullptr
            ? launch(BackwardTile<T, true>{l, p, method, eps, g, x, y, m, stats, gx, gy, sums},
                     p.blocks(), p.threads())
            : launch(BackwardTile<T, false>{l, p, method, eps, g, x, y, m, stats, gx, gy, sums},
                     p.blocks(), p.threads());
    if (!ok) return LaunchStatus::kFailed;
    if (p.one_pass()) return LaunchStatus::kOk;
    if (!launch(CombineGrad<A>{rt, p.chunks, method, eps, sums, stats, rows}, blocks_for(l.rows()),
                kBlockThreads))
      return LaunchStatus::kFailed;
  }
  if (!launch(GradPass<T>{l, grad_time_const ? nullptr : g, x, y, m, rows, gx, gy},
              blocks_for(l.elements()), kBlockThreads))
    return LaunchStatus::kFailed;
  return LaunchStatus::kOk;
}

}  // namespace cuda
}  // namespace corrops
