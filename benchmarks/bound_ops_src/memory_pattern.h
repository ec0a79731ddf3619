// The memory-pattern bound's loops: they move exactly the bytes the fused
// forward and backward move, and compute nothing else. The bound ops
// (memory_pattern_bound_ops.cc, Corrops>MemoryPatternBound*) run them in
// place of the engine, with the same allocation, buffer reuse and thread
// pool, so a training step built on them is the fastest any kernel of this
// op structure can make TensorFlow's step; benchmarks/report.py and floor_check.py time it next to
// the fused step. Not a loss: they compute products of their inputs. Not
// strictly a bound either: these loops leave prefetching to the hardware, and
// the engine's statistics pass, which prefetches in software, can come out a
// few percent faster.
//
// The forward is one read-2-write-1 pass, which no correct kernel can match:
// a row's loss needs the whole row's statistics, so a kernel reads each row
// before it writes the row's first loss. A forward keeping that dependence
// (each row read, then re-read from the cache as its loss is written) would
// bound nothing: the fused step, which prefetches, is faster than it in TF.
// benchmarks/engine_passes times that pattern as the forward's own reference.
#pragma once

#include <cstdint>

#include "core/stream_store.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace corrops {

// out[t] = one(t) for t in [lo, hi), four at a time from vec(t) where out is
// 16-byte aligned: with streaming stores when `stream` (as the engine's
// forward and backward above stream_store_min_bytes()), else ordinary ones.
template <typename Vec, typename One>
inline void memory_pattern_loop(float* out, int64_t lo, int64_t hi, bool stream, const Vec& vec,
                                const One& one) {
  int64_t t = lo;
#if defined(__SSE2__)
  if (stream) {
    for (; t < hi && reinterpret_cast<uintptr_t>(out + t) % 16 != 0; ++t) out[t] = one(t);
    for (; t + 4 <= hi; t += 4) _mm_stream_ps(out + t, vec(t));
    for (; t < hi; ++t) out[t] = one(t);
    stream_store_fence();
    return;
  }
#else
  (void)stream;
  (void)vec;
#endif
  for (; t < hi; ++t) out[t] = one(t);
}

// out[t] = a[t] * b[t]: read two arrays, write one.
inline void memory_pattern_read2_write1(const float* a, const float* b, float* out, int64_t lo,
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
}

}  // namespace corrops
