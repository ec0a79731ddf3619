// Non-temporal ("streaming") stores for outputs too large to stay in cache.
// An ordinary store first reads the destination line into the cache (read
// for ownership), so writing an output that will not be re-read from cache
// costs a read and a write of memory; a streaming store writes the line
// without reading it: for data larger than the caches a read-2-write-1 pass
// moves a third less, and for data that fits in them the plain store is
// faster (the next op reads the output from cache). Measured:
// docs/PERFORMANCE.md, "Non-temporal stores above a cache-sized threshold".
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace corrops {

// Process-wide threshold: a pass whose inputs and outputs together take more
// than this many bytes (the data cannot all stay in cache for the next op)
// writes its outputs with streaming stores. Default: 32 MiB, a typical
// server L3, or the machine's largest cache where the kernel lists a smaller
// one (default_stream_store_min_bytes). Setting it (tests, benchmarks' A/B,
// CORROPS_STREAM_STORE_MIN_BYTES) changes no value computed, only how the
// bytes reach memory. Defined in cpu_dispatch.cc.
//
// The smaller default where the cache is smaller: a pass over data between
// that cache's size and 32 MiB no longer stays in cache, so it streams too
// (docs/PERFORMANCE.md has the floor ratios with either threshold on an
// 8 MiB L3). Machines whose kernel lists 32 MiB or more keep 32 MiB.
int64_t stream_store_min_bytes();
void set_stream_store_min_bytes(int64_t bytes);
// The default for a machine whose largest cache is `largest_cache` bytes
// (0: unknown); a size as Linux's sysfs writes it ("8192K"), 0 if malformed.
int64_t default_stream_store_min_bytes(int64_t largest_cache);
int64_t parse_cache_size(const char* text);

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
