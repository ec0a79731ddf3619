// CUDA kernels for Corrops>CorrLoss and Corrops>CorrLossGrad.
//
// Contiguous rows (inner == 1, the (B, T[, 1]) case): one block per row, block
// reductions with cub::BlockReduce in a fixed order (deterministic, no float
// atomics). Rows of up to kThreads * kItems steps are read from global memory
// once and kept in registers; longer rows are re-read per pass (two-pass
// statistics, served largely from L2).
// Strided layouts (channels, or time not on axis 1): forward one thread per
// (outer, group) (it averages the group's channels), backward one thread per
// column, looping over time; adjacent threads read adjacent memory.
// Accumulation: float for half types and float, double for double.
#include <cub/block/block_reduce.cuh>

#include "cuda/corr_loss_cuda.h"

namespace corrops {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kItems = 8;  // cached rows: up to 2048 steps

// Accumulation type from csrc/core: float for __half, __nv_bfloat16, float.
template <typename T>
using Acc = Accumulator<T>;

template <typename A, typename T>
__device__ __forceinline__ A cvt(T v) {
  return static_cast<A>(v);
}
template <>
__device__ __forceinline__ float cvt<float, __half>(__half v) {
  return __half2float(v);
}
template <>
__device__ __forceinline__ float cvt<float, __nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T, typename A>
__device__ __forceinline__ T store(A v) {
  return static_cast<T>(v);
}
template <>
__device__ __forceinline__ __half store<__half, float>(float v) {
  return __float2half(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 store<__nv_bfloat16, float>(float v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  // No bf16 hardware before sm_80: round to nearest even with bit operations
  // (the library routine there needs a stack frame, i.e. spills).
  const unsigned u = __float_as_uint(v);
  const unsigned short bits =
      (u & 0x7fffffffu) > 0x7f800000u
          ? static_cast<unsigned short>((u >> 16) | 0x40u)  // NaN stays a (quiet) NaN
          : static_cast<unsigned short>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  return __ushort_as_bfloat16(bits);
#else
  return __float2bfloat16(v);
#endif
}

template <typename A>
__device__ __forceinline__ A abs_max(A m, A a, A b) {
  const A aa = a < A(0) ? -a : a, ab = b < A(0) ? -b : b;
  m = aa > m ? aa : m;
  return ab > m ? ab : m;
}

// Pass-1 partials: shifted sums, max |value|, valid count.
template <typename A>
struct Pass1 {
  A sx, sy, top;
  long long n;
};
template <typename A>
struct Pass1Op {
  __device__ __forceinline__ Pass1<A> operator()(const Pass1<A>& a, const Pass1<A>& b) const {
    return Pass1<A>{a.sx + b.sx, a.sy + b.sy, a.top > b.top ? a.top : b.top, a.n + b.n};
  }
};
template <typename A>
struct Sum3 {
  A a, b, c;
};
template <typename A>
struct Sum3Op {
  __device__ __forceinline__ Sum3<A> operator()(const Sum3<A>& x, const Sum3<A>& y) const {
    return Sum3<A>{x.a + y.a, x.b + y.b, x.c + y.c};
  }
};
struct MinOp {
  __device__ __forceinline__ long long operator()(long long a, long long b) const {
    return b < a ? b : a;
  }
};

__device__ __forceinline__ void store_stats(double* out, const RowStats<double>& s) {
  out[kStatN] = s.n;
  out[kStatMx] = s.mx;
  out[kStatMy] = s.my;
  out[kStatVx] = s.vx;
  out[kStatVy] = s.vy;
  out[kStatCxy] = s.cxy;
  out[kStatInvScale] = s.inv_s;
}

template <typename A>
__device__ __forceinline__ RowStats<A> load_stats(const double* in) {
  return RowStats<A>{static_cast<A>(in[kStatN]),       static_cast<A>(in[kStatMx]),
                     static_cast<A>(in[kStatMy]),      static_cast<A>(in[kStatVx]),
                     static_cast<A>(in[kStatVy]),      static_cast<A>(in[kStatCxy]),
                     static_cast<A>(in[kStatInvScale])};
}

template <typename A>
__device__ __forceinline__ RowStats<double> widen(const RowStats<A>& s) {
  return RowStats<double>{s.n, s.mx, s.my, s.vx, s.vy, s.cxy, s.inv_s};
}

// Vectorised loads: 16 bytes per load instruction (float4, double2, eight
// halves) where a row's x and y both start 16-byte aligned. TF's buffers are
// 64-byte aligned, so that is every row when T * sizeof(element) is a
// multiple of 16 (and row 0 always); other rows take the scalar path. A
// chunk that runs past the end of the row is read element by element.
template <typename T>
constexpr int kVec = 16 / static_cast<int>(sizeof(T));
static_assert(kItems % kVec<double> == 0 && kItems % kVec<float> == 0 && kItems % kVec<__half> == 0,
              "a cached row holds whole vectors");

__device__ __forceinline__ bool aligned16(const void* p) {
  return (reinterpret_cast<unsigned long long>(p) & 15ull) == 0;
}

template <typename T>
__device__ __forceinline__ void load16(const T* __restrict__ p, T (&out)[kVec<T>]) {
  const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
  memcpy(out, &raw, sizeof raw);
}

// Iterates the steps of one contiguous row owned by this block: from
// registers when the row is cached, else from global memory. With `vec`,
// thread k owns chunks of kVec<T> adjacent steps (chunk k, k + kThreads, ...);
// otherwise steps k, k + kThreads, ... Either way a thread's steps increase
// with its item index, and the order is fixed by (len, alignment): outputs
// stay bitwise reproducible.
template <typename T, typename A, bool kMasked, bool kCached>
struct RowIter {
  const T* x;
  const T* y;
  const bool* m;
  int64_t len;
  bool vec;
  A xv[kCached ? kItems : 1], yv[kCached ? kItems : 1];
  bool vv[kCached ? kItems : 1];

  __device__ __forceinline__ int64_t step(int i) const {
    if (vec)
      return (threadIdx.x + static_cast<int64_t>(i / kVec<T>) * kThreads) * kVec<T> + i % kVec<T>;
    return threadIdx.x + static_cast<int64_t>(i) * kThreads;
  }

  __device__ void load() {
    if constexpr (kCached) {
      if (vec) {
#pragma unroll
        for (int j = 0; j < kItems / kVec<T>; ++j) {
          const int64_t base = (threadIdx.x + static_cast<int64_t>(j) * kThreads) * kVec<T>;
          if (base + kVec<T> <= len) {
            T xs[kVec<T>], ys[kVec<T>];
            load16(x + base, xs);
            load16(y + base, ys);
#pragma unroll
            for (int l = 0; l < kVec<T>; ++l) {
              xv[j * kVec<T> + l] = cvt<A>(xs[l]);
              yv[j * kVec<T> + l] = cvt<A>(ys[l]);
            }
          } else {
#pragma unroll
            for (int l = 0; l < kVec<T>; ++l) {
              const bool in = base + l < len;
              xv[j * kVec<T> + l] = in ? cvt<A>(x[base + l]) : A(0);
              yv[j * kVec<T> + l] = in ? cvt<A>(y[base + l]) : A(0);
            }
          }
        }
      } else {
#pragma unroll
        for (int i = 0; i < kItems; ++i) {
          const int64_t t = step(i);
          const bool in = t < len;
          xv[i] = in ? cvt<A>(x[t]) : A(0);
          yv[i] = in ? cvt<A>(y[t]) : A(0);
        }
      }
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const int64_t t = step(i);
        vv[i] = t < len && (!kMasked || m[t]);
      }
    }
  }
  // This thread's first valid step (len if none).
  __device__ __forceinline__ long long first_valid() const {
    if constexpr (kCached) {
#pragma unroll
      for (int i = 0; i < kItems; ++i)
        if (vv[i]) return step(i);
    } else {
      for (int64_t t = threadIdx.x; t < len; t += kThreads)
        if (!kMasked || m[t]) return t;
    }
    return len;
  }
  // f(t, valid, x, y)
  template <typename F>
  __device__ __forceinline__ void each(F f) const {
    if constexpr (kCached) {
#pragma unroll
      for (int i = 0; i < kItems; ++i) f(step(i), vv[i], xv[i], yv[i]);
    } else if (vec) {
      for (int64_t base = threadIdx.x * static_cast<int64_t>(kVec<T>); base < len;
           base += static_cast<int64_t>(kThreads) * kVec<T>) {
        if (base + kVec<T> <= len) {
          T xs[kVec<T>], ys[kVec<T>];
          load16(x + base, xs);
          load16(y + base, ys);
#pragma unroll
          for (int l = 0; l < kVec<T>; ++l)
            f(base + l, !kMasked || m[base + l], cvt<A>(xs[l]), cvt<A>(ys[l]));
        } else {
          for (int64_t t = base; t < len; ++t) f(t, !kMasked || m[t], cvt<A>(x[t]), cvt<A>(y[t]));
        }
      }
    } else {
      for (int64_t t = threadIdx.x; t < len; t += kThreads)
        f(t, !kMasked || m[t], cvt<A>(x[t]), cvt<A>(y[t]));
    }
  }
};

template <typename T, bool kMasked, bool kCached>
__global__ void __launch_bounds__(kThreads)
    row_forward(int64_t len, Method method, double eps, const T* __restrict__ x,
                const T* __restrict__ y, const bool* __restrict__ m, T* __restrict__ loss,
                double* __restrict__ stats) {
  using A = typename Acc<T>::type;
  const int64_t row = blockIdx.x;
  const int64_t off = row * len;
  RowIter<T, A, kMasked, kCached> it{x + off, y + off, kMasked ? m + off : nullptr, len,
                                     aligned16(x + off) && aligned16(y + off)};
  it.load();
  using R1 = cub::BlockReduce<Pass1<A>, kThreads>;
  using R3 = cub::BlockReduce<Sum3<A>, kThreads>;
  using RI = cub::BlockReduce<long long, kThreads>;
  __shared__ union {
    typename R1::TempStorage r1;
    typename R3::TempStorage r3;
    typename RI::TempStorage ri;
  } tmp;
  __shared__ RowStats<A> sh;
  __shared__ long long first_sh;
  __shared__ A scale_sh;

  // Shift: the first valid value (exact means on constant rows).
  long long first = 0;
  if constexpr (kMasked) {
    const long long f = RI(tmp.ri).Reduce(it.first_valid(), MinOp());
    if (threadIdx.x == 0) first_sh = f;
    __syncthreads();
    first = first_sh;
  }
  const A kx = first < len ? cvt<A>(x[off + first]) : A(0);
  const A ky = first < len ? cvt<A>(y[off + first]) : A(0);

  Pass1<A> p{A(0), A(0), A(0), 0};
  it.each([&](int64_t, bool v, A xv, A yv) {
    if (v) {
      p.sx += xv - kx;
      p.sy += yv - ky;
      p.top = abs_max(p.top, xv, yv);
      p.n += 1;
    }
  });
  p = R1(tmp.r1).Reduce(p, Pass1Op<A>());
  if (threadIdx.x == 0) {
    const A inv = p.n > 0 ? A(1) / static_cast<A>(p.n) : A(0);
    sh.n = static_cast<A>(p.n);
    sh.mx = kx + p.sx * inv;
    sh.my = ky + p.sy * inv;
    sh.inv_s = row_inv_scale(p.top);
  }
  __syncthreads();
  const A mx = sh.mx, my = sh.my, is = sh.inv_s;
  Sum3<A> q{A(0), A(0), A(0)};
  it.each([&](int64_t, bool v, A xv, A yv) {
    if (v) {
      const A dx = (xv - mx) * is, dy = (yv - my) * is;
      q.a += dx * dx;
      q.b += dy * dy;
      q.c += dx * dy;
    }
  });
  q = R3(tmp.r3).Reduce(q, Sum3Op<A>());
  if (threadIdx.x == 0) {
    const A inv = sh.n > A(0) ? A(1) / sh.n : A(0);
    sh.vx = q.a * inv;
    sh.vy = q.b * inv;
    sh.cxy = q.c * inv;
    store_stats(stats + row * kStatsPerRow, widen(sh));
    scale_sh = loss_scale(method, sh, eps);
  }
  __syncthreads();
  const A scale = scale_sh;
  it.each([&](int64_t t, bool v, A xv, A yv) {
    if (t < len)
      loss[off + t] = store<T>(v ? A(1) - scale * ((xv - mx) * is) * ((yv - my) * is) : A(0));
  });
}

template <typename T, bool kMasked, bool kCached>
__global__ void __launch_bounds__(kThreads)
    row_backward(int64_t len, Method method, double eps, const T* __restrict__ g,
                 const T* __restrict__ x, const T* __restrict__ y, const bool* __restrict__ m,
                 const double* __restrict__ stats, T* __restrict__ gx, T* __restrict__ gy) {
  using A = typename Acc<T>::type;
  const int64_t row = blockIdx.x;
  const int64_t off = row * len;
  RowIter<T, A, kMasked, kCached> it{x + off, y + off, kMasked ? m + off : nullptr, len,
                                     aligned16(x + off) && aligned16(y + off)};
  it.load();
  using R3 = cub::BlockReduce<Sum3<A>, kThreads>;
  __shared__ typename R3::TempStorage tmp;
  __shared__ GradCoeffs<A> k_sh;
  const RowStats<A> s = load_stats<A>(stats + row * kStatsPerRow);
  const A mx = s.mx, my = s.my, is = s.inv_s;
  const T* gr = g + off;
  Sum3<A> q{A(0), A(0), A(0)};
  it.each([&](int64_t t, bool v, A xv, A yv) {
    if (v) {
      const A gv = cvt<A>(gr[t]);
      const A dx = (xv - mx) * is, dy = (yv - my) * is;
      q.a += gv * dx;
      q.b += gv * dy;
      q.c += gv * dx * dy;
    }
  });
  q = R3(tmp).Reduce(q, Sum3Op<A>());
  if (threadIdx.x == 0) k_sh = grad_coeffs(method, s, eps, q.a, q.b, q.c);
  __syncthreads();
  const GradCoeffs<A> k = k_sh;
  it.each([&](int64_t t, bool v, A xv, A yv) {
    if (t < len) {
      const A gv = cvt<A>(gr[t]);
      const A dx = (xv - mx) * is, dy = (yv - my) * is;
      // gx / gy are null when that gradient is not wanted (uniform branch).
      if (gx != nullptr) gx[off + t] = store<T>(v ? k.a * gv * dy + k.bx + k.cx * dx : A(0));
      if (gy != nullptr) gy[off + t] = store<T>(v ? k.a * gv * dx + k.by + k.cy * dy : A(0));
    }
  });
}

// Strided layouts: thread per (outer, group); C channels handled in turn.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    group_forward(Layout l, Method method, double eps, const T* __restrict__ x,
                  const T* __restrict__ y, const bool* __restrict__ m, T* __restrict__ loss,
                  double* __restrict__ stats) {
  using A = typename Acc<T>::type;
  const int64_t gi = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x;
  if (gi >= l.outer * l.groups) return;
  const int64_t o = gi / l.groups, g = gi % l.groups, I = l.inner(), C = l.channels;
  const int64_t out0 = o * l.time * l.groups + g;  // loss/mask entry of step 0
  for (int64_t c = 0; c < C; ++c) {
    const int64_t j = g * C + c;
    const int64_t e0 = o * l.time * I + j;  // element of step 0
    int64_t first = 0;
    while (first < l.time && m != nullptr && !m[out0 + first * l.groups]) ++first;
    const A kx = first < l.time ? cvt<A>(x[e0 + first * I]) : A(0);
    const A ky = first < l.time ? cvt<A>(y[e0 + first * I]) : A(0);
    A sx = A(0), sy = A(0), top = A(0);
    int64_t n = 0;
    for (int64_t t = 0, e = e0, out = out0; t < l.time; ++t, e += I, out += l.groups)
      if (m == nullptr || m[out]) {
        const A xv = cvt<A>(x[e]), yv = cvt<A>(y[e]);
        sx += xv - kx;
        sy += yv - ky;
        top = abs_max(top, xv, yv);
        ++n;
      }
    RowStats<A> s{};
    s.n = static_cast<A>(n);
    const A inv = n > 0 ? A(1) / s.n : A(0);
    s.mx = kx + sx * inv;
    s.my = ky + sy * inv;
    s.inv_s = row_inv_scale(top);
    A vx = A(0), vy = A(0), cxy = A(0);
    for (int64_t t = 0, e = e0, out = out0; t < l.time; ++t, e += I, out += l.groups)
      if (m == nullptr || m[out]) {
        const A dx = (cvt<A>(x[e]) - s.mx) * s.inv_s, dy = (cvt<A>(y[e]) - s.my) * s.inv_s;
        vx += dx * dx;
        vy += dy * dy;
        cxy += dx * dy;
      }
    s.vx = vx * inv;
    s.vy = vy * inv;
    s.cxy = cxy * inv;
    store_stats(stats + (o * I + j) * kStatsPerRow, widen(s));
  }
  // Loss: mean over channels, from the stats just written (this thread's own).
  const A inv_c = A(1) / static_cast<A>(C);
  for (int64_t t = 0, out = out0; t < l.time; ++t, out += l.groups) {
    A acc = A(0);
    for (int64_t c = 0; c < C; ++c) {
      const int64_t j = g * C + c;
      const RowStats<A> s = load_stats<A>(stats + (o * I + j) * kStatsPerRow);
      const int64_t e = (o * l.time + t) * I + j;
      acc += A(1) - loss_scale(method, s, eps) * ((cvt<A>(x[e]) - s.mx) * s.inv_s) *
                        ((cvt<A>(y[e]) - s.my) * s.inv_s);
    }
    loss[out] = store<T>((m == nullptr || m[out]) ? acc * inv_c : A(0));
  }
}

// Backward for strided layouts: one thread per column (no cross-channel
// reduction is needed here); adjacent threads read adjacent elements.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    column_backward(Layout l, Method method, double eps, const T* __restrict__ gr,
                    const T* __restrict__ x, const T* __restrict__ y, const bool* __restrict__ m,
                    const double* __restrict__ stats, T* __restrict__ gx, T* __restrict__ gy) {
  using A = typename Acc<T>::type;
  const int64_t I = l.inner();
  const int64_t ci = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x;
  if (ci >= l.outer * I) return;
  const int64_t o = ci / I, j = ci % I;
  const A inv_c = A(1) / static_cast<A>(l.channels);
  const RowStats<A> s = load_stats<A>(stats + ci * kStatsPerRow);
  const int64_t out0 = o * l.time * l.groups + j / l.channels, e0 = o * l.time * I + j;
  A s1 = A(0), s1p = A(0), s2 = A(0);
  for (int64_t t = 0, out = out0, e = e0; t < l.time; ++t, out += l.groups, e += I) {
    if (m != nullptr && !m[out]) continue;
    const A gv = cvt<A>(gr[out]) * inv_c;
    const A dx = (cvt<A>(x[e]) - s.mx) * s.inv_s, dy = (cvt<A>(y[e]) - s.my) * s.inv_s;
    s1 += gv * dx;
    s1p += gv * dy;
    s2 += gv * dx * dy;
  }
  const GradCoeffs<A> k = grad_coeffs(method, s, eps, s1, s1p, s2);
  for (int64_t t = 0, out = out0, e = e0; t < l.time; ++t, out += l.groups, e += I) {
    const bool v = m == nullptr || m[out];
    const A gv = cvt<A>(gr[out]) * inv_c;
    const A dx = (cvt<A>(x[e]) - s.mx) * s.inv_s, dy = (cvt<A>(y[e]) - s.my) * s.inv_s;
    if (gx != nullptr) gx[e] = store<T>(v ? k.a * gv * dy + k.bx + k.cx * dx : A(0));
    if (gy != nullptr) gy[e] = store<T>(v ? k.a * gv * dx + k.by + k.cy * dy : A(0));
  }
}

template <typename T>
__global__ void fill_zero(T* p, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = store<T>(typename Acc<T>::type(0));
}

// out (outer, time, groups) = g (outer, 1, groups) broadcast along time.
template <typename T>
__global__ void broadcast_time(int64_t time, int64_t groups, int64_t n, const T* __restrict__ g,
                               T* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = g[(i / (time * groups)) * groups + i % groups];
}

constexpr int64_t kMaxGrid = 2147483647;

int64_t blocks_for(int64_t threads) { return (threads + kThreads - 1) / kThreads; }

}  // namespace

template <typename T>
cudaError_t corr_loss_forward(const Layout& l, Method method, double eps, const T* x, const T* y,
                              const bool* m, T* loss, double* stats, cudaStream_t stream) {
  if (l.channels == 0) {  // mean over no channel: all zeros (as the CPU engine)
    if (l.loss_elements() > 0)
      fill_zero<T><<<std::min<int64_t>(blocks_for(l.loss_elements()), 4096), kThreads, 0, stream>>>(
          loss, l.loss_elements());
    return cudaGetLastError();
  }
  if (l.rows() == 0) return cudaSuccess;
  if (l.inner() == 1) {
    if (l.outer > kMaxGrid) return cudaErrorInvalidConfiguration;
    const bool cached = l.time <= static_cast<int64_t>(kThreads) * kItems;
    const dim3 grid(static_cast<unsigned>(l.outer));
    if (m && cached)
      row_forward<T, true, true>
          <<<grid, kThreads, 0, stream>>>(l.time, method, eps, x, y, m, loss, stats);
    else if (m)
      row_forward<T, true, false>
          <<<grid, kThreads, 0, stream>>>(l.time, method, eps, x, y, m, loss, stats);
    else if (cached)
      row_forward<T, false, true>
          <<<grid, kThreads, 0, stream>>>(l.time, method, eps, x, y, m, loss, stats);
    else
      row_forward<T, false, false>
          <<<grid, kThreads, 0, stream>>>(l.time, method, eps, x, y, m, loss, stats);
  } else {
    const int64_t blocks = blocks_for(l.outer * l.groups);
    if (blocks > kMaxGrid) return cudaErrorInvalidConfiguration;
    group_forward<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(l, method, eps, x, y,
                                                                             m, loss, stats);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t corr_loss_backward(const Layout& l, Method method, double eps, const T* g, const T* x,
                               const T* y, const bool* m, const double* stats, T* gx, T* gy,
                               cudaStream_t stream) {
  if (l.rows() == 0 || l.time == 0) return cudaSuccess;
  if (l.inner() == 1) {
    if (l.outer > kMaxGrid) return cudaErrorInvalidConfiguration;
    const bool cached = l.time <= static_cast<int64_t>(kThreads) * kItems;
    const dim3 grid(static_cast<unsigned>(l.outer));
    if (m && cached)
      row_backward<T, true, true>
          <<<grid, kThreads, 0, stream>>>(l.time, method, eps, g, x, y, m, stats, gx, gy);
    else if (m)
      row_backward<T, true, false>
          <<<grid, kThreads, 0, stream>>>(l.time, method, eps, g, x, y, m, stats, gx, gy);
    else if (cached)
      row_backward<T, false, true>
          <<<grid, kThreads, 0, stream>>>(l.time, method, eps, g, x, y, m, stats, gx, gy);
    else
      row_backward<T, false, false>
          <<<grid, kThreads, 0, stream>>>(l.time, method, eps, g, x, y, m, stats, gx, gy);
  } else {
    const int64_t blocks = blocks_for(l.outer * l.inner());
    if (blocks > kMaxGrid) return cudaErrorInvalidConfiguration;
    column_backward<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(l, method, eps, g, x,
                                                                               y, m, stats, gx, gy);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t broadcast_along_time(const Layout& l, const T* g, T* out, cudaStream_t stream) {
  const int64_t n = l.loss_elements();
  if (n == 0) return cudaSuccess;
  broadcast_time<T><<<std::min<int64_t>(blocks_for(n), 4096), kThreads, 0, stream>>>(
      l.time, l.groups, n, g, out);
  return cudaGetLastError();
}

#define CORROPS_INSTANTIATE(T)                                                                  \
  template cudaError_t broadcast_along_time<T>(const Layout&, const T*, T*, cudaStream_t);      \
  template cudaError_t corr_loss_forward<T>(const Layout&, Method, double, const T*, const T*,  \
                                            const bool*, T*, double*, cudaStream_t);            \
  template cudaError_t corr_loss_backward<T>(const Layout&, Method, double, const T*, const T*, \
                                             const T*, const bool*, const double*, T*, T*,      \
                                             cudaStream_t);
CORROPS_INSTANTIATE(float)
CORROPS_INSTANTIATE(double)
CORROPS_INSTANTIATE(__half)
CORROPS_INSTANTIATE(__nv_bfloat16)
#undef CORROPS_INSTANTIATE

}  // namespace cuda
}  // namespace corrops
