// What the two checks of the CUDA kernels share: the cases (each layout
// class of tile_plan.h and the edge cases of docs/DESIGN.md), their inputs,
// the CPU engine's float64 results on the same rounded inputs, one call of
// every launcher through a Launch (host execution or the device), and the
// comparisons. cuda_kernels_on_host.cc runs the kernels on the CPU;
// cuda_engine_check.cu on a GPU, and compares the two bitwise.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/kernels/elements.h"
#include "cuda/kernels/exec.h"
#include "cuda/kernels/launch_sequence.h"
#include "cuda/tests/cpu_reference.h"

namespace corrops::check {

using corrops::Layout;
using corrops::Method;
using cuda::LaunchStatus;

enum class Data { kNormal, kConstantRows, kNanInf, kTiny, kHuge, kMaskEdges };

struct Case {
  const char* name;
  Layout layout;  // outer, time, groups, channels
  bool masked;
  Data data;
};

// eps of a case: the default, scaled with the values (the same function of
// the scaled data); 16-bit constant rows take 1e-3 (docs/DESIGN.md: their
// gradient is about dx/eps).
template <typename T>
double EpsFor(Data d) {
  if (d == Data::kTiny) return 1e-7 * 1e-60;
  if (d == Data::kHuge) return 1e-7 * 1e60;
  if (d == Data::kConstantRows && sizeof(T) == 2) return 1e-3;
  return 1e-7;
}

inline const Case kCases[] = {
    {"short rows, packed", {6, 17, 1, 1}, false, Data::kNormal},
    {"short rows, packed, masked", {33, 50, 1, 1}, true, Data::kNormal},
    {"rows of one chunk", {3, 4096, 1, 1}, false, Data::kNormal},
    {"long rows, two chunks", {2, 5000, 1, 1}, false, Data::kNormal},
    {"long rows, three chunks, masked", {1, 9000, 1, 1}, true, Data::kNormal},
    {"channels", {3, 40, 1, 5}, false, Data::kNormal},
    {"channels and groups, masked", {2, 33, 2, 3}, true, Data::kNormal},
    {"groups", {2, 11, 3, 2}, false, Data::kNormal},
    {"groups, masked", {3, 40, 4, 1}, true, Data::kNormal},
    {"channels, long rows", {2, 3000, 1, 4}, true, Data::kNormal},
    {"wider than a block, whole groups", {2, 20, 100, 3}, false, Data::kNormal},
    {"a group wider than a block", {2, 10, 1, 300}, true, Data::kNormal},
    {"one step", {4, 1, 2, 1}, false, Data::kNormal},
    {"empty time", {2, 0, 1, 1}, false, Data::kNormal},
    {"empty batch", {0, 8, 1, 1}, false, Data::kNormal},
    {"zero channels", {3, 5, 2, 0}, false, Data::kNormal},
    {"constant rows", {4, 300, 1, 1}, false, Data::kConstantRows},
    {"constant rows, long", {3, 5000, 1, 1}, false, Data::kConstantRows},
    {"constant rows, channels", {3, 40, 1, 5}, false, Data::kConstantRows},
    {"NaN and Inf confined to their rows", {4, 300, 1, 1}, true, Data::kNanInf},
    {"NaN and Inf, long rows", {3, 5000, 1, 1}, true, Data::kNanInf},
    {"NaN and Inf, channels", {3, 40, 2, 2}, true, Data::kNanInf},
    {"values near 1e-30", {4, 300, 1, 1}, false, Data::kTiny},
    {"values near 1e30", {3, 5000, 1, 1}, false, Data::kHuge},
    {"values near 1e30, channels", {3, 40, 1, 5}, false, Data::kHuge},
    {"fully masked row, one valid step", {4, 300, 1, 1}, true, Data::kMaskEdges},
    {"fully masked row, one valid step, long", {3, 5000, 1, 1}, true, Data::kMaskEdges},
    {"fully masked row, one valid step, channels", {3, 40, 1, 5}, true, Data::kMaskEdges},
};

template <typename T>
double ToDouble(T v) {
  return static_cast<double>(cuda::to_acc(v));
}
template <typename T>
T FromDouble(double v) {
  if constexpr (std::is_same_v<T, double>) return v;
  return cuda::store<T>(static_cast<float>(v));
}

template <typename T>
const char* TypeName() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  if constexpr (std::is_same_v<T, double>) return "float64";
  if constexpr (std::is_same_v<T, cuda::Half>) return "float16";
  return "bfloat16";
}

// Relative tolerance of each element type against the float64 engine.
template <typename T>
double Tolerance() {
  if constexpr (std::is_same_v<T, double>) return 1e-9;
  if constexpr (std::is_same_v<T, float>) return 2e-4;
  if constexpr (std::is_same_v<T, cuda::Half>) return 2e-2;
  return 5e-2;
}

// float16 cannot hold values near 1e+-30.
template <typename T>
bool Applies(const Case& c) {
  return !(std::is_same_v<T, cuda::Half> && (c.data == Data::kTiny || c.data == Data::kHuge));
}

template <typename T>
uint64_t Bits(T v) {
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof v);
  return u;
}

// Largest |got - want| over the largest finite |want| (at least `floor`);
// NaN and Inf must be where the reference has them.
template <typename T>
bool Close(const char* what, const std::vector<T>& got, const std::vector<double>& want, double tol,
           double floor, std::string* report) {
  double scale = floor, worst = 0.0;
  for (double w : want)
    if (std::isfinite(w)) scale = std::max(scale, std::abs(w));
  if (scale == 0.0) scale = 1.0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = ToDouble(got[i]);
    if (std::isnan(g) != std::isnan(want[i]) || std::isinf(g) != std::isinf(want[i])) {
      *report += std::string(" ") + what + " NaN/Inf at " + std::to_string(i) + ": " +
                 std::to_string(g) + " vs " + std::to_string(want[i]);
      return false;
    }
    if (std::isfinite(g)) worst = std::max(worst, std::abs(g - want[i]) / scale);
  }
  if (worst <= tol) return true;
  *report += std::string(" ") + what + " off by " + std::to_string(worst);
  return false;
}

// The same bits, but for NaN payloads (a GPU makes canonical NaNs, a CPU
// propagates an operand's).
template <typename T>
bool SameBits(const char* what, const std::vector<T>& a, const std::vector<T>& b,
              std::string* report) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(ToDouble(a[i])) && std::isnan(ToDouble(b[i]))) continue;
    if (Bits(a[i]) != Bits(b[i])) {
      *report += std::string(" ") + what + " bits differ at " + std::to_string(i);
      return false;
    }
  }
  return true;
}

struct Inputs {
  std::vector<double> x, y, g, gc;
  std::vector<char> mask;
};

// Test data of kind d in the layout, unrounded.
inline Inputs MakeInputs(const Case& c, std::mt19937_64& rng) {
  const Layout l = c.layout;
  const int64_t n = l.elements(), steps = l.loss_elements(), inner = l.inner();
  std::normal_distribution<double> normal;
  Inputs in;
  in.x.resize(n);
  in.y.resize(n);
  in.g.resize(steps);
  in.gc.resize(l.outer * l.groups);
  for (int64_t i = 0; i < n; ++i) {
    in.x[i] = normal(rng);
    in.y[i] = 0.5 * in.x[i] + normal(rng);
  }
  for (auto& v : in.g) v = normal(rng);
  for (auto& v : in.gc) v = normal(rng);
  in.mask.assign(c.masked ? steps : 0, 1);
  for (auto& m : in.mask) m = std::uniform_real_distribution<double>()(rng) < 0.75;
  auto e = [&](int64_t o, int64_t t, int64_t j) { return (o * l.time + t) * inner + j; };
  auto step = [&](int64_t o, int64_t t, int64_t grp) { return (o * l.time + t) * l.groups + grp; };
  switch (c.data) {
    case Data::kNormal:
      break;
    case Data::kConstantRows:  // outer 0: x constant; outer 1: both constant
      for (int64_t t = 0; t < l.time; ++t)
        for (int64_t j = 0; j < inner; ++j) {
          in.x[e(0, t, j)] = 1.5;
          in.x[e(1, t, j)] = -3.0;
          in.y[e(1, t, j)] = 0.25;
        }
      break;
    case Data::kNanInf:  // outer 0: a NaN; outer 1: an Inf; outer 2: NaN at masked steps
      in.mask[step(0, 3, 0)] = in.mask[step(1, 5, 0)] = 1;
      in.y[e(0, 3, 0)] = NAN;
      in.x[e(1, 5, 0)] = INFINITY;
      for (int64_t t = 0; t < l.time; t += 7) {
        in.mask[step(2, t, 0)] = 0;
        in.x[e(2, t, 0)] = NAN;
      }
      break;
    case Data::kTiny:
    case Data::kHuge: {
      const double s = c.data == Data::kTiny ? 1e-30 : 1e30;
      for (int64_t i = 0; i < n; ++i) {
        in.x[i] *= s;
        in.y[i] *= s;
      }
      break;
    }
    case Data::kMaskEdges:  // outer 0: no valid step; outer 1: one
      for (int64_t t = 0; t < l.time; ++t)
        for (int64_t grp = 0; grp < l.groups; ++grp) {
          in.mask[step(0, t, grp)] = 0;
          in.mask[step(1, t, grp)] = t == l.time / 2;
        }
      break;
  }
  return in;
}

template <typename T>
struct Rounded {
  std::vector<T> x, y, g, gc;
  std::vector<double> xd, yd, gd, gcd;
};

template <typename T>
void Round(const std::vector<double>& in, std::vector<T>* out, std::vector<double>* back) {
  out->resize(in.size());
  back->resize(in.size());
  for (size_t i = 0; i < in.size(); ++i) (*back)[i] = ToDouble((*out)[i] = FromDouble<T>(in[i]));
}

template <typename T>
Rounded<T> RoundAll(const Inputs& in) {
  Rounded<T> r;
  Round(in.x, &r.x, &r.xd);
  Round(in.y, &r.y, &r.yd);
  Round(in.g, &r.g, &r.gd);
  Round(in.gc, &r.gc, &r.gcd);
  return r;
}

template <typename T>
struct Outputs {
  std::vector<T> loss, totals, gx, gy, gx_const, gy_const;
  std::vector<double> stats, stats_only;  // stats_only: of the forward without a loss
  LaunchStatus status = LaunchStatus::kOk;
};

// Every launcher once, with buffers from `mem` (host vectors, or device
// memory with copies) that start as 0xA5 bytes, as uninitialised device
// memory: forward, the forward without a loss and the loss summed over
// time, backward per step, backward constant along time.
template <typename T, class Mem, class Launch>
Outputs<T> RunKernels(Mem& mem, Launch& launch, const Layout& l, Method method, double eps,
                      const Rounded<T>& r, const std::vector<char>& mask_bytes) {
  const int64_t n = l.elements(), steps = l.loss_elements();
  const T* x = mem.in(r.x);
  const T* y = mem.in(r.y);
  const T* g = mem.in(r.g);
  const T* gc = mem.in(r.gc);
  const bool* mask =
      mask_bytes.empty() ? nullptr : reinterpret_cast<const bool*>(mem.in(mask_bytes));
  T* loss = mem.template out<T>(steps);
  double* stats = mem.template out<double>(l.rows() * kStatsPerRow);
  double* stats_only = mem.template out<double>(l.rows() * kStatsPerRow);
  T* totals = mem.template out<T>(l.outer * l.groups);
  T* gx = mem.template out<T>(n);
  T* gy = mem.template out<T>(n);
  T* gx_const = mem.template out<T>(n);
  T* gy_const = mem.template out<T>(n);
  void* scratch = mem.template out<unsigned char>(cuda::ForwardScratch<T>(l).bytes);
  Outputs<T> out;
  out.status = cuda::run_forward<T>(launch, l, method, eps, x, y, mask, loss, stats, scratch);
  if (out.status == LaunchStatus::kOk)
    out.status =
        cuda::run_forward<T>(launch, l, method, eps, x, y, mask, nullptr, stats_only, scratch);
  if (out.status == LaunchStatus::kOk)
    out.status = cuda::run_totals<T>(launch, l, method, eps, stats_only, totals);
  if (out.status == LaunchStatus::kOk)
    out.status = cuda::run_backward<T>(
        launch, l, method, eps, g, x, y, mask, stats, gx, gy, false,
        mem.template out<unsigned char>(cuda::BackwardScratch<T>(l, false).bytes));
  if (out.status == LaunchStatus::kOk)
    out.status = cuda::run_backward<T>(
        launch, l, method, eps, gc, x, y, mask, stats, gx_const, gy_const, true,
        mem.template out<unsigned char>(cuda::BackwardScratch<T>(l, true).bytes));
  mem.sync();
  out.loss = mem.back(loss, steps);
  out.stats = mem.back(stats, l.rows() * kStatsPerRow);
  out.stats_only = mem.back(stats_only, l.rows() * kStatsPerRow);
  out.totals = mem.back(totals, l.outer * l.groups);
  out.gx = mem.back(gx, n);
  out.gy = mem.back(gy, n);
  out.gx_const = mem.back(gx_const, n);
  out.gy_const = mem.back(gy_const, n);
  return out;
}

// Host vectors as the kernels' memory (the host execution).
struct HostMem {
  std::vector<std::vector<unsigned char>> blocks;
  template <typename V>
  const V* in(const std::vector<V>& v) {
    return v.data();
  }
  template <typename V>
  V* out(int64_t count) {
    blocks.emplace_back(std::max<size_t>(1, sizeof(V) * count), 0xA5);
    return reinterpret_cast<V*>(blocks.back().data());
  }
  void sync() {}
  template <typename V>
  std::vector<V> back(const V* p, int64_t count) {
    return std::vector<V>(p, p + count);
  }
};

// The CPU engine's float64 results on the rounded inputs.
struct Reference {
  std::vector<double> loss, totals, stats, gx, gy, gx_const, gy_const;
};

template <typename T>
Reference ReferenceFor(const Layout& l, Method method, double eps, const Rounded<T>& r,
                       const std::vector<char>& mask_bytes) {
  const int64_t n = l.elements();
  const bool* mask =
      mask_bytes.empty() ? nullptr : reinterpret_cast<const bool*>(mask_bytes.data());
  Reference want;
  want.loss.assign(l.loss_elements(), 0.0);
  want.stats.resize(l.rows() * kStatsPerRow);
  want.gx.resize(n);
  want.gy.resize(n);
  want.gx_const.resize(n);
  want.gy_const.resize(n);
  cpu_forward(l, method, eps, r.xd.data(), r.yd.data(), mask, want.loss.data(), want.stats.data());
  want.totals.resize(l.outer * l.groups);
  cpu_totals(l, method, eps, want.stats.data(), want.totals.data());
  cpu_backward(l, method, eps, r.gd.data(), r.xd.data(), r.yd.data(), mask, want.stats.data(),
               want.gx.data(), want.gy.data(), false);
  cpu_backward(l, method, eps, r.gcd.data(), r.xd.data(), r.yd.data(), mask, want.stats.data(),
               want.gx_const.data(), want.gy_const.data(), true);
  return want;
}

template <typename T>
bool MatchesReference(const Layout& l, const Outputs<T>& got, const Reference& want,
                      std::string* report) {
  const double tol = Tolerance<T>();
  if (got.status != LaunchStatus::kOk) {
    *report += " launch status not ok";
    return false;
  }
  std::vector<double> n_got, n_want;
  if (l.channels > 0)
    for (int64_t row = 0; row < l.rows(); ++row) {
      n_got.push_back(got.stats[row * kStatsPerRow + kStatN]);
      n_want.push_back(want.stats[row * kStatsPerRow + kStatN]);
    }
  return Close("loss", got.loss, want.loss, tol, 1.0, report) &&
         SameBits("stats of the forward without a loss", got.stats_only, got.stats, report) &&
         Close("loss summed over time", got.totals, want.totals, tol, 1.0, report) &&
         Close("stats n", n_got, n_want, 0.0, 0.0, report) &&
         Close("grad_true", got.gx, want.gx, tol, 0.0, report) &&
         Close("grad_pred", got.gy, want.gy, tol, 0.0, report) &&
         Close("grad_true (time-constant upstream)", got.gx_const, want.gx_const, tol, 0.0,
               report) &&
         Close("grad_pred (time-constant upstream)", got.gy_const, want.gy_const, tol, 0.0, report);
}

template <typename T>
bool SameOutputs(const char* what, const Outputs<T>& a, const Outputs<T>& b, std::string* report) {
  const std::string w = what;
  return SameBits((w + ": loss").c_str(), a.loss, b.loss, report) &&
         SameBits((w + ": loss summed over time").c_str(), a.totals, b.totals, report) &&
         SameBits((w + ": stats").c_str(), a.stats, b.stats, report) &&
         SameBits((w + ": grad_true").c_str(), a.gx, b.gx, report) &&
         SameBits((w + ": grad_pred").c_str(), a.gy, b.gy, report) &&
         SameBits((w + ": grad_true (time-constant)").c_str(), a.gx_const, b.gx_const, report) &&
         SameBits((w + ": grad_pred (time-constant)").c_str(), a.gy_const, b.gy_const, report);
}

// One result line: status, type, method, case, launch geometry, report.
template <typename T>
void PrintResult(bool ok, const Case& c, Method method, const std::string& report) {
  const Layout l = c.layout;
  const cuda::TilePlan p = l.rows() > 0 ? cuda::plan_for<T>(l) : cuda::TilePlan{};
  std::printf("%-4s %-8s %-7s %s [%lld blocks x %d threads, %lld chunk(s)]%s\n", ok ? "ok" : "FAIL",
              TypeName<T>(), method == Method::kCcc ? "ccc" : "pearson", c.name,
              static_cast<long long>(l.rows() > 0 ? p.blocks() : 0), l.rows() > 0 ? p.threads() : 0,
              static_cast<long long>(p.chunks), report.c_str());
}

}  // namespace corrops::check
