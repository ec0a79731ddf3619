// The memory-pattern bound (benchmarks only): the loops that move exactly the
// bytes the fused forward and backward move, and compute nothing else. The
// bound ops (Corrops>MemoryPatternBound*) run them in place of the engine,
// with the same allocation, buffer reuse and thread pool, so a training step
// built on them is the fastest any kernel of this op structure can make
// TensorFlow's step; benchmarks/report.py and floor_check.py time it next to
// the fused step. Not a loss: they compute products of their inputs. Not
// strictly a bound either: these loops leave prefetching to the hardware, and
// the engine's statistics pass, which prefetches in software, has come out a
// little faster (floor ratio 0.69 against 0.68 at (256,4096,1), Xeon VM).
//
// The bound's forward is one read-2-write-1 pass, which no correct kernel can
// match: a row's loss needs the whole row's statistics, so a kernel reads
// each row before it writes the row's first loss. A bound taking that into
// account (memory_pattern_two_pass_rows: each row read, then re-read from the
// cache as its loss is written) was tried as the bound's forward and dropped:
// the engine, whose statistics pass prefetches in software, beat it in TF
// (floor ratio 0.70 against 0.66 in one process), so it bounds nothing.
// benchmarks/engine_passes still times it, as the forward's own pattern.
// Measured on a Xeon VM (2026-12-02, 2 threads, three runs of engine_passes):
// (256,4096,1) one pass 0.51-0.54 ms, two passes row by row 0.58-0.64,
// pipelined 0.59-0.62; (64,65536,1), the loss streamed, 1.41-1.46, 1.92-2.00
// and 1.82-2.04 ms.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/stream_store.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace corrops {

// out[t] = one(t) for t in [lo, hi), four at a time from vec(t) where out is
// 16-byte aligned: with streaming stores when `stream` (as the engine's
// forward and backward above stream_store_min_bytes()), else ordinary ones.
// Streamed stores are not fenced here.
template <typename Vec, typename One>
inline void memory_pattern_loop(float* out, int64_t lo, int64_t hi, bool stream, const Vec& vec,
                                const One& one) {
  int64_t t = lo;
#if defined(__SSE2__)
  if (stream) {  // the caller fences once after its last loop
    for (; t < hi && reinterpret_cast<uintptr_t>(out + t) % 16 != 0; ++t) out[t] = one(t);
    for (; t + 4 <= hi; t += 4) _mm_stream_ps(out + t, vec(t));
    for (; t < hi; ++t) out[t] = one(t);
    return;
  }
#else
  (void)stream;
  (void)vec;
#endif
  for (; t < hi; ++t) out[t] = one(t);
}

// out[t] = a[t] * b[t]: read two arrays, write one (streamed stores unfenced).
inline void memory_pattern_product(const float* a, const float* b, float* out, int64_t lo,
                                   int64_t hi, bool stream) {
  memory_pattern_loop(
      out, lo, hi, stream,
#if defined(__SSE2__)
      [&](int64_t t) { return _mm_mul_ps(_mm_loadu_ps(a + t), _mm_loadu_ps(b + t)); },
#else
      nullptr,
#endif
      [&](int64_t t) { return a[t] * b[t]; });
}

// out[t] = a[t] * b[t]: read two arrays, write one.
inline void memory_pattern_read2_write1(const float* a, const float* b, float* out, int64_t lo,
                                        int64_t hi, bool stream) {
  memory_pattern_product(a, b, out, lo, hi, stream);
  if (stream) stream_store_fence();
}

// Reads a[t] and b[t] over [lo, hi); the sum keeps the loads live.
inline float memory_pattern_read2(const float* a, const float* b, int64_t lo, int64_t hi) {
  int64_t t = lo;
  float s = 0.f;
#if defined(__SSE2__)
  // Two independent sums: bound by the loads, not by the adds' latency.
  __m128 p = _mm_setzero_ps(), q = _mm_setzero_ps();
  for (; t + 8 <= hi; t += 8) {
    p = _mm_add_ps(p, _mm_add_ps(_mm_loadu_ps(a + t), _mm_loadu_ps(b + t)));
    q = _mm_add_ps(q, _mm_add_ps(_mm_loadu_ps(a + t + 4), _mm_loadu_ps(b + t + 4)));
  }
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, _mm_add_ps(p, q));
  s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
#endif
  for (; t < hi; ++t) s += a[t] + b[t];
  return s;
}

// The forward's own pattern over rows [begin, end) of `len` steps (see the
// top; benchmarks/engine_passes): out = a * b, each row read before it is
// written, pipelined a chunk at a time (the engine's statistics chunk).
inline void memory_pattern_two_pass_rows(const float* a, const float* b, float* out, int64_t len,
                                         int64_t begin, int64_t end, bool stream) {
  if (begin >= end) return;
  constexpr int64_t kChunk = 1024;
  volatile float sink = memory_pattern_read2(a, b, begin * len, (begin + 1) * len);
  for (int64_t u = begin; u < end; ++u)
    for (int64_t c = 0; c < len; c += kChunk) {
      const int64_t lo = u * len + c, hi = u * len + std::min(len, c + kChunk);
      if (u + 1 < end) sink = memory_pattern_read2(a, b, lo + len, hi + len);
      memory_pattern_product(a, b, out, lo, hi, stream);
    }
  (void)sink;
  if (stream) stream_store_fence();
}

// out[t] = g[t] * a[t] + b[t]: the backward's pattern with a per-step g.
inline void memory_pattern_read3_write1(const float* g, const float* a, const float* b, float* out,
                                        int64_t lo, int64_t hi, bool stream) {
  memory_pattern_loop(
      out, lo, hi, stream,
#if defined(__SSE2__)
      [&](int64_t t) {
        return _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(g + t), _mm_loadu_ps(a + t)),
                          _mm_loadu_ps(b + t));
      },
#else
      nullptr,
#endif
      [&](int64_t t) { return g[t] * a[t] + b[t]; });
  if (stream) stream_store_fence();
}

}  // namespace corrops
