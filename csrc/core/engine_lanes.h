// The CPU engine's building blocks: the lane count and block width, lane
// folds (pairwise sums and maxes), conversions, NaN-safe max |value|, and the
// mask helpers (valid steps, the one-run-of-valid-steps case).
// Part of cpu_engine.h, which includes it inside the engine's per-instruction-
// set namespace; not a header of its own.
#pragma once

namespace corrops {
namespace CORROPS_ENGINE_ISA {
namespace detail {

constexpr int kLanes = 16;
// Target number of columns handled by one strided work unit.
constexpr int64_t kBlockColumns = 64;

template <typename A, typename T>
inline A cvt(T v) {
  return static_cast<A>(v);
}

// The lanes' sum, pairwise (lane l + lane l + w, w halving): 4 dependent adds
// instead of a 16-add chain, which at one chunk per short row (or per 1024
// steps) was a visible share of the row's time; it also rounds less.
template <typename A>
inline A fold(const A* lanes) {
  static_assert(kLanes > 1 && (kLanes & (kLanes - 1)) == 0, "kLanes is a power of two");
  A t[kLanes / 2];
  for (int l = 0; l < kLanes / 2; ++l) t[l] = lanes[l] + lanes[l + kLanes / 2];
  for (int w = kLanes / 4; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) t[l] = t[l] + t[l + w];
  return t[0];
}

// The lanes' maximum, pairwise like fold: 4 dependent maxes instead of a
// 16-max chain (a few cycles each, once per chunk: a share of a short row's
// statistics; see row_inv_scale for the measured gain). Lanes hold maxima of
// |values|, never NaN (max_abs skips a NaN), and max is exact: the order
// changes no bit.
template <typename A>
inline A fold_max(const A* lanes) {
  A t[kLanes / 2];
  for (int l = 0; l < kLanes / 2; ++l)
    t[l] = lanes[l + kLanes / 2] > lanes[l] ? lanes[l + kLanes / 2] : lanes[l];
  for (int w = kLanes / 4; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) t[l] = t[l + w] > t[l] ? t[l + w] : t[l];
  return t[0];
}

// max(m, |a|, |b|); a NaN is skipped where it meets m, and may hide the
// other value of its pair: only the row's scale can change, and the row is
// NaN anyway (the sums carry the NaN). |a| and |b| meet first so that m, the
// loop-carried value, waits for one max per step instead of two: the sums
// pass was bound by that chain for rows in cache (docs/PERFORMANCE.md, "Short
// rows"). std::fabs is a sign-bit mask (a compare-and-negate compiles to a
// branch and blocks vectorisation).
template <typename A>
inline A max_abs(A m, A a, A b) {
  const A aa = std::fabs(a), ab = std::fabs(b);
  const A p = ab > aa ? ab : aa;
  return p > m ? p : m;
}

// `keep ? v : 0` as a bit mask. GCC if-converts a float select that feeds
// several products into branches, which stops vectorisation of the masked
// loops (5x slower); an integer AND vectorises. Masked-out NaN/Inf become 0.
template <typename A>
inline A keep_if(A v, bool keep) {
  using U = typename FloatBits<A>::Uint;
  U u;
  std::memcpy(&u, &v, sizeof u);
  u &= U(0) - static_cast<U>(keep);
  std::memcpy(&v, &u, sizeof u);
  return v;
}

// A mask entry read as a byte: bool is one byte holding 0 or 1, and a byte
// compare vectorises (into a lane select) where a bool load does not.
inline bool is_valid(const bool* CORROPS_RESTRICT m, int64_t i) {
  return reinterpret_cast<const unsigned char*>(m)[i] != 0;
}

// Index of the first valid step (len if none).
inline int64_t first_valid(const bool* CORROPS_RESTRICT m, int64_t len, int64_t stride) {
  for (int64_t t = 0; t < len; ++t)
    if (m[t * stride]) return t;
  return len;
}

inline int64_t count_valid(const bool* CORROPS_RESTRICT m, int64_t len, int64_t stride) {
  const unsigned char* CORROPS_RESTRICT b = reinterpret_cast<const unsigned char*>(m);
  int64_t n = 0;
  if (stride == 1) {
    for (int64_t t = 0; t < len; ++t) n += b[t] != 0;
  } else {
    for (int64_t t = 0; t < len; ++t) n += b[t * stride] != 0;
  }
  return n;
}

// Runs step(l, t, v) for every step t of a row of `len` steps, with l the
// lane that sums it and v whether it counts (the mask's entry, or true):
// windows of kLanes steps from step 0 (window(t) first, at the window's
// first step t), then, when len is no multiple of kLanes, one last window:
// the row's last kLanes steps, those a window took already marked not
// counting, or for a row shorter than kLanes its steps, step l in lane l.
// Every lane index is a constant, so the lanes stay in vector registers: a
// scalar tail loop that updated single lanes kept them on the stack, and
// reading them back as vectors stalled on store forwarding (a quarter of the
// statistics' samples at (20, 100, 1)). The lane of a step depends on
// (t, len) alone: every caller sums in one order.
template <bool kMasked, typename Window, typename Step>
inline void for_each_lane(const bool* CORROPS_RESTRICT m, int64_t len, const Window& window,
                          const Step& step) {
  const int64_t body = len - len % kLanes;
  for (int64_t t = 0; t < body; t += kLanes) {
    window(t);
    for (int l = 0; l < kLanes; ++l) step(l, t + l, kMasked ? is_valid(m, t + l) : true);
  }
  if (body == len) return;
  if (len >= kLanes) {
    const int64_t t0 = len - kLanes, taken = kLanes - (len - body);
    for (int l = 0; l < kLanes; ++l)
      step(l, t0 + l, (l >= taken) & (kMasked ? is_valid(m, t0 + l) : true));
  } else {
    for (int l = 0; l < kLanes; ++l)
      if (l < len) step(l, l, kMasked ? is_valid(m, l) : true);
  }
}

// The valid steps of a masked contiguous row, when they are one run
// [begin, end) (padding after and/or before a sequence: the usual mask). Such
// a row is computed as an unmasked row over the run, with zeros around it:
// the same values (the masked loops also shift by the first valid step and
// skip the rest) at the unmasked loops' speed. False for any other mask, and
// for a row with no valid step.
struct Run {
  int64_t begin = 0, end = 0;
};

inline bool valid_run(const bool* CORROPS_RESTRICT m, int64_t len, Run* run) {
  // Called for every masked row, so it must cost little next to the row's
  // arithmetic. Every scan runs forward, the order the hardware prefetcher
  // follows: the ends found by scanning the padding backwards stalled on DRAM
  // once per cache line where masks are not cache-resident (masked backward
  // 1.6x the unmasked one in TF). Valid steps are checked eight bytes at a
  // time (any nonzero byte is valid: non-0/1 bytes take the byte loop), the
  // rest with an OR reduction that vectorises.
  const unsigned char* CORROPS_RESTRICT b = reinterpret_cast<const unsigned char*>(m);
  auto word = [b](int64_t i) {
    uint64_t w;
    std::memcpy(&w, b + i, sizeof w);
    return w;
  };
  constexpr uint64_t kAllValid = 0x0101010101010101ull;
  int64_t a = 0;
  while (a + 8 <= len && word(a) == 0) a += 8;
  while (a < len && b[a] == 0) ++a;
  if (a == len) return false;  // no valid step
  int64_t e = a;
  while (e + 8 <= len && word(e) == kAllValid) e += 8;
  while (e < len && b[e] != 0) ++e;
  unsigned char after = 0;  // [a, e) is valid and b[e] is not: any valid step after e?
  for (int64_t t = e; t < len; ++t) after |= b[t];
  if (after != 0) return false;  // a gap inside: not one run
  *run = Run{a, e};
  return true;
}

}  // namespace detail
}  // namespace CORROPS_ENGINE_ISA
}  // namespace corrops
