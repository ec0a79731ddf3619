// The CPU engine's work-unit drivers: the forward and backward over a range
// of work units (contiguous rows or blocks), masked or not, with the
// pipelined forward of streamed rows.
// Part of cpu_engine.h, which includes it inside the engine's per-instruction-
// set namespace; not a header of its own.
#pragma once

namespace corrops {
namespace CORROPS_ENGINE_ISA {
namespace detail {

// The forward over unmasked contiguous rows [begin, end) whose loss is
// streamed, pipelined: row u's loss is computed and streamed a statistics
// chunk at a time between the chunks of row u + 1's statistics pass, so
// that memory reads row u + 1 while row u is written (row by row, memory
// reads nothing during each loss pass). Row u's x and y are re-read from the
// cache, which must hold two rows' (kPipelineMaxBytes). The same bits as row
// by row: the same out-of-line statistics chunks, the same loss chunks.
// Rows whose loss is not streamed gain nothing from it (measured:
// docs/PERFORMANCE.md, "The pipelined streamed forward").
constexpr int64_t kPipelineMaxBytes = int64_t{1} << 20;

template <typename T, typename A>
void pipelined_forward_rows(Method method, double eps, int64_t len, const T* x, const T* y, T* loss,
                            double* stats, int64_t begin, int64_t end) {
  ContiguousStatsBuilder</*kMasked=*/false, T, A> cur(x + begin * len, y + begin * len, nullptr,
                                                      len);
  for (int64_t c0 = 0; c0 < len; c0 += kStatsChunk) cur.add_chunk(c0);
  for (int64_t u = begin; u < end; ++u) {
    const int64_t off = u * len;
    const RowStats<A> s = cur.finish();
    store_stats(s, stats + u * kStatsPerRow);
    const A scale = loss_scale(method, s, eps);
    const bool more = u + 1 < end;  // the last row has no next row to read
    ContiguousStatsBuilder</*kMasked=*/false, T, A> next(x + off + len, y + off + len, nullptr,
                                                         more ? len : 0);
    for (int64_t c0 = 0; c0 < len; c0 += kStatsChunk) {
      if (more) next.add_chunk(c0);
      contiguous_loss_out</*kMasked=*/false>(true, x + off + c0, y + off + c0, nullptr,
                                             std::min(kStatsChunk, len - c0), s.mx, s.my, s.inv_s,
                                             scale, loss + off + c0);
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
    const bool stream = loss && streams_outputs(3 * l.elements() * static_cast<int64_t>(sizeof(T)));
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
        const RowStats<A> s =
            contiguous_stats</*kMasked=*/false, T, A>(x + off + a, y + off + a, nullptr, n);
        store_stats(s, stats + u * kStatsPerRow);
        if (!loss) continue;
        std::fill(loss + off, loss + off + a, T(0));
        contiguous_loss_out</*kMasked=*/false>(stream, x + off + a, y + off + a, nullptr, n, s.mx,
                                               s.my, s.inv_s, loss_scale(method, s, eps),
                                               loss + off + a);
        std::fill(loss + off + run.end, loss + off + len, T(0));
        continue;
      }
      const RowStats<A> s = contiguous_stats<kMasked, T, A>(x + off, y + off, mu, len);
      store_stats(s, stats + u * kStatsPerRow);
      if (!loss) continue;
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
      if (loss) block_loss<kMasked>(b, x, y, m, sc, loss);
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
        contiguous_row_backward</*kMasked=*/false>(
            method, eps, s, time_const, stream, time_const ? gu : gu + a, x + off + a, y + off + a,
            nullptr, n, gx ? gx + off + a : nullptr, gy ? gy + off + a : nullptr);
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
      block_grad_write_to<kMasked, /*kUnitG=*/true>(b, gr, x, y, m, sc, gx, gy);
    } else {
      block_grad_sums<kMasked>(b, gr, x, y, m, sc);
      finish_grad_coeffs(b, method, eps, sc);
      block_grad_write_to<kMasked, /*kUnitG=*/false>(b, gr, x, y, m, sc, gx, gy);
    }
  }
}

}  // namespace detail
}  // namespace CORROPS_ENGINE_ISA
}  // namespace corrops
