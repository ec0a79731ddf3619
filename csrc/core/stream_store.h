// Non-temporal ("streaming") stores for outputs too large to stay in cache.
// An ordinary store first reads the destination line into the cache (read
// for ownership), so writing an output that will not be re-read from cache
// costs a read and a write of memory; a streaming store writes the line
// without reading it. On this project's 2-core EPYC VM a read-2-write-1 loop
// over 64 MiB arrays ran 1.24x (2 threads) and 1.5x (1 thread) faster with
// them, and the backward at (64, 65536, 1) 1.27x (2 threads); for data that
// fits in the caches they are slower (1.07x-1.5x at (256, 4096, 1)).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace corrops {

// Process-wide threshold: a pass whose inputs and outputs together take more
// than this many bytes (default 32 MiB, a typical server L3: the data cannot
// all stay in cache for the next op) writes its outputs with streaming
// stores. Setting it (tests, benchmarks' A/B) changes no value computed, only
// how the bytes reach memory. Defined in cpu_dispatch.cc.
int64_t stream_store_min_bytes();
void set_stream_store_min_bytes(int64_t bytes);

inline bool streams_outputs(int64_t bytes_touched) {
  return bytes_touched > stream_store_min_bytes();
}

// Stores kBytes (a multiple of 16) from `src` (a cache-resident scratch) to
// the 16-byte aligned `dst` with streaming stores. The caller issues
// stream_store_fence() before the data is handed to another thread.
template <int64_t kBytes>
inline void stream_store_aligned(void* dst, const void* src) {
  static_assert(kBytes % 16 == 0, "whole 16-byte stores");
#if defined(__SSE2__)
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  for (int64_t i = 0; i < kBytes; i += 16)
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
#else
  std::memcpy(dst, src, static_cast<size_t>(kBytes));
#endif
}

// Streaming stores are weakly ordered: fence them before the thread pool
// signals that a work unit is done.
inline void stream_store_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

}  // namespace corrops
