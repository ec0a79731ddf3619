// The CPU engine's passes against plain memory loops over the same arrays,
// outside TensorFlow, every pass reading its inputs from memory (not cache):
//
//   engine_passes B T [rounds] [threads]
//
// Prints, per pass, the minimum time over the rounds: the forward and the
// backward (time-constant upstream gradient, as a mean's), the forward's two
// halves alone (the statistics pass; the loss pass, given the statistics), and
// three loops that move the same bytes with nothing else to do: read x and y;
// read x, y and write one array with ordinary stores; the same with streaming
// stores. Then the forward's own pattern with nothing to compute (each row
// read before its loss is written, as the loss's data dependence demands),
// row by row and pipelined (two_pass_rows; both stream the loss where the
// engine does). The ratios say how far each pass is from its own
// memory pattern, which TF's timings (allocator, executor, the mean) cannot
// separate.
//
// Then the floor for the shape (the ideal fused forward + backward's
// 7 arrays at a copy's bandwidth, measured here as benchmarks/report.py
// does: memcpy over 512 MiB) against two times: the plain streaming loops
// that move exactly the floor's bytes (read x, y and write one; read x, y, g
// and write one), i.e. what the memory system allows, and the engine's
// forward + backward. Neither includes TF's share (the mean, the executor).
//
// Float32, one channel: the floor targets' case. The engine is compiled here
// for AVX2+FMA like csrc/core/cpu_engine_avx2.cc, in its own namespace. Rows
// are split between threads in halves (std::thread; TF's pool splits the
// same rows adaptively). Built with the core tests (CMake option
// CORROPS_BUILD_CORE_TESTS); CI runs it once on a tiny shape so it cannot rot.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "core/binary16.h"
#include "core/row_math.h"
#include "core/stream_store.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#define CORROPS_ENGINE_ISA passes_avx2
#include "core/cpu_engine.h"

namespace {

using namespace corrops;
using namespace corrops::passes_avx2;

// Plain memory loops, compiled with the same instruction set as the engine.
float read2(const float* x, const float* y, size_t lo, size_t hi) {
  __m256 a = _mm256_setzero_ps(), c = _mm256_setzero_ps();
  size_t t = lo;
  for (; t + 16 <= hi; t += 16) {  // two independent sums: not latency-bound
    a = _mm256_add_ps(a, _mm256_add_ps(_mm256_loadu_ps(x + t), _mm256_loadu_ps(y + t)));
    c = _mm256_add_ps(c, _mm256_add_ps(_mm256_loadu_ps(x + t + 8), _mm256_loadu_ps(y + t + 8)));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(a, c));
  float s = 0.f;
  for (float v : lanes) s += v;
  for (; t < hi; ++t) s += x[t] + y[t];
  return s;
}

void read2_write1(const float* x, const float* y, float* out, size_t lo, size_t hi) {
  for (size_t t = lo; t < hi; ++t) out[t] = x[t] * y[t];
}

// out[t] = f(t) over [lo, hi) with streaming stores where out is 32-byte
// aligned (vec: 8 steps at t; one: step t), plain ones for the head and tail;
// fenced unless the caller fences after its last call.
template <typename Vec, typename One>
void stream_loop(float* out, size_t lo, size_t hi, const Vec& vec, const One& one,
                 bool fence = true) {
  size_t t = lo;
  for (; t < hi && reinterpret_cast<uintptr_t>(out + t) % 32 != 0; ++t) out[t] = one(t);
  for (; t + 8 <= hi; t += 8) _mm256_stream_ps(out + t, vec(t));
  for (; t < hi; ++t) out[t] = one(t);
  if (fence) _mm_sfence();
}

void read2_stream1(const float* x, const float* y, float* out, size_t lo, size_t hi,
                   bool fence = true) {
  stream_loop(
      out, lo, hi,
      [&](size_t t) { return _mm256_mul_ps(_mm256_loadu_ps(x + t), _mm256_loadu_ps(y + t)); },
      [&](size_t t) { return x[t] * y[t]; }, fence);
}

// The forward's own pattern over rows [r0, r1) of t steps, with nothing to
// compute: each row read before its loss is written (the loss needs the
// row's statistics), then re-read from the cache as out = x * y is written,
// streamed when `stream`. Pipelined: row u's writes a chunk (the engine's
// statistics chunk) at a time between the reads of row u + 1's chunks.
// Returns the reads' sum, which keeps them live.
float two_pass_rows(const float* x, const float* y, float* out, size_t t, size_t r0, size_t r1,
                    bool stream, bool pipelined) {
  const size_t chunk = pipelined ? static_cast<size_t>(detail::kStatsChunk) : t;
  float sink = r0 < r1 ? read2(x, y, r0 * t, (r0 + 1) * t) : 0.f;
  for (size_t u = r0; u < r1; ++u)
    for (size_t c = 0; c < t; c += chunk) {
      const size_t lo = u * t + c, hi = u * t + std::min(t, c + chunk);
      if (u + 1 < r1) sink += read2(x, y, lo + t, hi + t);
      if (stream)
        read2_stream1(x, y, out, lo, hi, /*fence=*/false);
      else
        read2_write1(x, y, out, lo, hi);
    }
  if (stream) _mm_sfence();
  return sink;
}

// float -> IEEE binary16 bits, round to nearest even (the inputs of the
// float16 passes).
void to_binary16(const float* in, size_t n, uint16_t* out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) out[i] = _cvtss_sh(in[i], _MM_FROUND_TO_NEAREST_INT);
}

// The floor's backward: read x, y and a per-step g, stream the gradient.
void read3_stream1(const float* x, const float* y, const float* g, float* out, size_t lo,
                   size_t hi) {
  stream_loop(
      out, lo, hi,
      [&](size_t t) {
        return _mm256_fmadd_ps(_mm256_loadu_ps(g + t), _mm256_loadu_ps(x + t),
                               _mm256_loadu_ps(y + t));
      },
      [&](size_t t) { return g[t] * x[t] + y[t]; });
}

}  // namespace
#pragma GCC pop_options

namespace {

using Clock = std::chrono::steady_clock;

// Runs fn(begin_row, end_row) on `threads` threads (rows in equal parts) and
// returns the wall time.
template <typename F>
double timed_split(int threads, int64_t rows, const F& fn) {
  const auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i)
    pool.emplace_back([&, i] { fn(rows * i / threads, rows * (i + 1) / threads); });
  fn(0, rows / threads);
  for (auto& t : pool) t.join();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Aligned {
  explicit Aligned(size_t n)
      : p(static_cast<float*>(std::aligned_alloc(64, ((n * 4 + 63) / 64) * 64))) {}
  ~Aligned() { std::free(p); }
  Aligned(const Aligned&) = delete;
  Aligned& operator=(const Aligned&) = delete;
  float* p;
};

[[noreturn]] void no_binary16() {
  std::fprintf(stderr, "engine_passes: the float16 passes need the AVX2 engine copy\n");
  std::exit(1);
}

int usage() {
  std::fprintf(stderr, "usage: engine_passes B T [rounds >= 1] [threads 1..64]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 5) return usage();
  const long b = std::atol(argv[1]), t = std::atol(argv[2]);
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 10;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  if (b < 1 || t < 1 || rounds < 1 || threads < 1 || threads > 64 || b * t > (1L << 30))
    return usage();
  Layout l;
  l.outer = b, l.time = t, l.groups = 1, l.channels = 1;
  const size_t n = static_cast<size_t>(b) * static_cast<size_t>(t);
  // Enough input sets (8 to 64) that the sets hold >= 512 MiB: a pass then
  // reads a set that 16 times a typical server's L3 (32 MiB) has passed
  // through since it was last touched. (Tiny shapes stay in cache anyway.)
  const size_t bytes_per_set = n * 3 * sizeof(float);
  const int sets =
      static_cast<int>(std::clamp<size_t>((size_t{512} << 20) / bytes_per_set + 1, 8, 64));
  std::vector<std::unique_ptr<Aligned>> xs, ys, outs;
  // The same inputs as IEEE binary16 (the float16 passes), with their output.
  std::vector<std::vector<uint16_t>> xs16, ys16, outs16;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (int s = 0; s < sets; ++s) {
    xs.push_back(std::make_unique<Aligned>(n));
    ys.push_back(std::make_unique<Aligned>(n));
    outs.push_back(std::make_unique<Aligned>(n));
    for (size_t i = 0; i < n; ++i) xs[s]->p[i] = normal(rng), ys[s]->p[i] = normal(rng);
    std::fill(outs[s]->p, outs[s]->p + n, 0.f);  // touched: no page faults when timed
    xs16.emplace_back(n), ys16.emplace_back(n), outs16.emplace_back(n);
    to_binary16(xs[s]->p, n, xs16[s].data());
    to_binary16(ys[s]->p, n, ys16[s].data());
  }
  std::vector<double> stats(static_cast<size_t>(b) * kStatsPerRow);
  std::vector<RowStats<float>> row(static_cast<size_t>(b));
  // A mean's upstream gradient in the compact, time-constant form: one value
  // per sequence.
  const std::vector<float> g(static_cast<size_t>(b), 1.0f / static_cast<float>(n));
  std::vector<uint16_t> g16(g.size());
  to_binary16(g.data(), g.size(), g16.data());
  std::vector<float> sinks(static_cast<size_t>(b));  // keeps the read loop's result live

  // The floor's bandwidth, as benchmarks/report.py measures it: a copy
  // (glibc's memcpy: streaming stores at this size) split over the threads,
  // bytes read + bytes written, over buffers well past the L3 (tiny shapes
  // keep them small: only the smoke run uses those).
  const size_t copy_n = std::clamp<size_t>(n * 128, size_t{1} << 18, size_t{128} << 20);
  Aligned copy_src(copy_n), copy_dst(copy_n);
  std::fill(copy_src.p, copy_src.p + copy_n, 1.f);
  std::fill(copy_dst.p, copy_dst.p + copy_n, 0.f);

  enum Pass : int {
    kForward,
    kBackward,
    kForward16,
    kBackward16,
    kStatsPass,
    kLossPass,
    kRead2,
    kRead2Write1,
    kRead2Stream1,
    kRead3Stream1,
    kTwoPassRows,
    kTwoPassPipelined,
    kCopy,
    kPasses
  };
  const char* names[kPasses] = {"forward",
                                "backward (time-constant g)",
                                "forward, float16",
                                "backward (time-constant g), float16",
                                "statistics pass",
                                "loss pass (given statistics)",
                                "read x, y",
                                "read x, y; write 1 (ordinary stores)",
                                "read x, y; write 1 (streaming stores)",
                                "read x, y, g; write 1 (streaming stores)",
                                "two passes per row: read x, y; re-read, write 1",
                                "the same, pipelined",
                                "copy (memcpy)"};
  // The loss is streamed where the engine's forward streams it.
  const bool stream_loss = streams_outputs(3 * static_cast<int64_t>(n) * int64_t{sizeof(float)});
  std::vector<double> best(kPasses, 1e30);
  int next = 0;
  for (int r = 0; r < rounds; ++r)
    for (int pass = 0; pass < kPasses; ++pass) {
      const int s = next++ % sets;
      const float* x = xs[s]->p;
      const float* y = ys[s]->p;
      float* out = outs[s]->p;
      if (pass == kCopy) {  // its own buffers, split over the threads like the rest
        const double secs = timed_split(threads, 64, [&](int64_t r0, int64_t r1) {
          const size_t lo = copy_n * r0 / 64, hi = copy_n * r1 / 64;
          std::memcpy(copy_dst.p + lo, copy_src.p + lo, (hi - lo) * sizeof(float));
        });
        best[pass] = std::min(best[pass], secs);
        continue;
      }
      const double secs = timed_split(threads, b, [&](int64_t r0, int64_t r1) {
        const size_t lo = static_cast<size_t>(r0) * t, hi = static_cast<size_t>(r1) * t;
        switch (pass) {
          case kForward:
            corr_loss_forward<float>(l, Method::kPearson, 1e-7, x, y, nullptr, out, stats.data(),
                                     r0, r1);
            break;
          case kBackward:  // stats: whatever the last forward left; only the time matters here
            corr_loss_backward<float>(l, Method::kPearson, 1e-7, g.data(), x, y, nullptr,
                                      stats.data(), nullptr, out, r0, r1, true);
            break;
          case kForward16:  // false: no SIMD copy active (CORROPS_CPU_ISA=generic)
            if (!corr_loss_forward_binary16(l, Method::kPearson, 1e-7, xs16[s].data(),
                                            ys16[s].data(), nullptr, outs16[s].data(), stats.data(),
                                            r0, r1))
              no_binary16();
            break;
          case kBackward16:
            if (!corr_loss_backward_binary16(l, Method::kPearson, 1e-7, g16.data(), xs16[s].data(),
                                             ys16[s].data(), nullptr, stats.data(), nullptr,
                                             outs16[s].data(), r0, r1, true))
              no_binary16();
            break;
          case kStatsPass:
            for (int64_t u = r0; u < r1; ++u)
              row[u] =
                  detail::contiguous_stats<false, float, float>(x + u * t, y + u * t, nullptr, t);
            break;
          case kLossPass:
            for (int64_t u = r0; u < r1; ++u)
              detail::contiguous_loss<false>(
                  x + u * t, y + u * t, static_cast<const bool*>(nullptr), static_cast<int64_t>(t),
                  row[u].mx, row[u].my, row[u].inv_s, 0.5f, out + u * t);
            break;
          case kRead2:
            sinks[r0] += read2(x, y, lo, hi);
            break;
          case kRead2Write1:
            read2_write1(x, y, out, lo, hi);
            break;
          case kRead2Stream1:
            read2_stream1(x, y, out, lo, hi);
            break;
          case kTwoPassRows:
          case kTwoPassPipelined:
            sinks[r0] +=
                two_pass_rows(x, y, out, t, r0, r1, stream_loss, pass == kTwoPassPipelined);
            break;
          default:  // g: the next set's output, as long untouched as x and y (finite values)
            read3_stream1(x, y, outs[(s + 1) % sets]->p, out, lo, hi);
        }
      });
      best[pass] = std::min(best[pass], secs);
    }
  std::printf(
      "engine_passes (%ld, %ld, 1) float32 (float16 where named), %d thread(s), %d rounds, %d "
      "input sets:\n",
      b, t, threads, rounds, sets);
  // Each engine pass against the loop that moves its bytes: the statistics
  // pass reads x, y; the others also write one array with ordinary stores.
  // The forward also against its own pattern (pipelined two passes).
  // The float16 passes against the float32 ones (half the bytes, the same math).
  const int against[kPasses] = {kRead2Write1, kRead2Write1, kForward, kBackward, kRead2,
                                kRead2Write1, -1,           -1,       -1,        -1,
                                -1,           -1,           -1};
  for (int pass = 0; pass < kPasses; ++pass) {
    std::printf("  %-48s %9.3f ms %6.3f ns/element", names[pass], best[pass] * 1e3,
                best[pass] * 1e9 / static_cast<double>(n));
    if (against[pass] >= 0)
      std::printf("  %.2fx \"%s\"", best[pass] / best[against[pass]], names[against[pass]]);
    if (pass == kForward)
      std::printf("; %.2fx \"%s\"", best[pass] / best[kTwoPassPipelined], names[kTwoPassPipelined]);
    std::printf("\n");
  }
  // The floor: the ideal fused forward + backward's bytes (read x,
  // y; write the loss; read x, y, g; write the gradient: 7 arrays) at the
  // copy bandwidth. Against it, the plain loops that move exactly those
  // bytes (a streaming forward and backward), and the engine's forward +
  // backward (whose backward reads no per-step g: one array fewer).
  const double copy_bw = 2.0 * static_cast<double>(copy_n) * sizeof(float) / best[kCopy];
  const double floor_s = 7.0 * static_cast<double>(n) * sizeof(float) / copy_bw;
  const double loops = best[kRead2Stream1] + best[kRead3Stream1];
  const double engine = best[kForward] + best[kBackward];
  std::printf("  copy bandwidth %.1f GB/s; floor (7 arrays) %.3f ms; floor time / time:\n",
              copy_bw / 1e9, floor_s * 1e3);
  std::printf("    plain loops moving the floor's bytes (streaming)  %.3f ms  %.2f\n", loops * 1e3,
              floor_s / loops);
  std::printf("    the engine's forward + backward                   %.3f ms  %.2f\n", engine * 1e3,
              floor_s / engine);
  return 0;
}
