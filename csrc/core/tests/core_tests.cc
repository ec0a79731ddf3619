// Framework-free tests of csrc/core, built with and without sanitizers
// (CMake option CORROPS_SANITIZE). Compares the engine against a naive
// double-precision transcription of docs/DESIGN.md, checks the edge-case table and
// that results do not depend on how work units are split.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/cpu_dispatch.h"

namespace {

int failures = 0;
int checks = 0;

#define EXPECT(cond, ...)                              \
  do {                                                 \
    ++checks;                                          \
    if (!(cond)) {                                     \
      ++failures;                                      \
      std::printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      std::printf(__VA_ARGS__);                        \
      std::printf("\n");                               \
    }                                                  \
  } while (0)

using corrops::Layout;
using corrops::Method;

struct Naive {
  std::vector<double> loss, gx, gy;
};

// docs/DESIGN.md, literally: per row (o, g, c), over valid steps.
Naive NaiveCorr(const Layout& l, Method method, double eps, const std::vector<double>& x,
                const std::vector<double>& y, const std::vector<bool>* mask,
                const std::vector<double>& g) {
  Naive r{std::vector<double>(l.loss_elements(), 0.0), std::vector<double>(l.elements(), 0.0),
          std::vector<double>(l.elements(), 0.0)};
  const int64_t I = l.inner();
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t j = 0; j < I; ++j) {
      const int64_t grp = j / l.channels;
      auto at = [&](int64_t t) { return (o * l.time + t) * I + j; };
      auto mat = [&](int64_t t) { return (o * l.time + t) * l.groups + grp; };
      auto ok = [&](int64_t t) { return !mask || (*mask)[mat(t)]; };
      double n = 0, mx = 0, my = 0;
      for (int64_t t = 0; t < l.time; ++t)
        if (ok(t)) n += 1, mx += x[at(t)], my += y[at(t)];
      if (n == 0) continue;
      mx /= n, my /= n;
      double vx = 0, vy = 0;
      for (int64_t t = 0; t < l.time; ++t)
        if (ok(t)) {
          vx += (x[at(t)] - mx) * (x[at(t)] - mx);
          vy += (y[at(t)] - my) * (y[at(t)] - my);
        }
      vx /= n, vy /= n;
      const double q = std::sqrt(vx * vy);
      const double d = method == Method::kPearson ? q + eps : vx + vy + (mx - my) * (mx - my) + eps;
      const double k = method == Method::kPearson ? 1.0 : 2.0;
      double s1 = 0, s1p = 0, s2 = 0;
      for (int64_t t = 0; t < l.time; ++t)
        if (ok(t)) {
          const double dx = x[at(t)] - mx, dy = y[at(t)] - my, gt = g[mat(t)] / l.channels;
          r.loss[mat(t)] += (1.0 - k * dx * dy / d) / l.channels;
          s1 += gt * dx, s1p += gt * dy, s2 += gt * dx * dy;
        }
      for (int64_t t = 0; t < l.time; ++t)
        if (ok(t)) {
          const double dx = x[at(t)] - mx, dy = y[at(t)] - my, gt = g[mat(t)] / l.channels;
          if (method == Method::kPearson) {
            const double c = q > 0 ? s2 / (d * d) / (n * q) : 0.0;
            r.gy[at(t)] = -(gt * dx - s1 / n) / d + c * vx * dy;
            r.gx[at(t)] = -(gt * dy - s1p / n) / d + c * vy * dx;
          } else {
            const double e = 4 * s2 / (n * d * d);
            r.gy[at(t)] = -2 * (gt * dx - s1 / n) / d + e * (dy - (mx - my));
            r.gx[at(t)] = -2 * (gt * dy - s1p / n) / d + e * (dx + (mx - my));
          }
        }
    }
  return r;
}

template <typename T>
struct Run {
  std::vector<T> loss, gx, gy;
  std::vector<double> stats;
};

// Runs the engine with the work units split into `pieces` calls.
template <typename T>
Run<T> Engine(const Layout& l, Method method, double eps, const std::vector<T>& x,
              const std::vector<T>& y, const bool* mask, const std::vector<T>& g, int pieces) {
  // Outputs start as NaN: an element the engine does not write fails the checks.
  const T poison = std::numeric_limits<T>::quiet_NaN();
  Run<T> r{std::vector<T>(l.loss_elements(), poison), std::vector<T>(l.elements(), poison),
           std::vector<T>(l.elements(), poison),
           std::vector<double>(l.rows() * corrops::kStatsPerRow, poison)};
  const int64_t units = corrops::num_work_units(l);
  if (corrops::loss_is_all_zero(l)) std::fill(r.loss.begin(), r.loss.end(), T(0));
  for (int p = 0; p < pieces; ++p) {
    const int64_t b = units * p / pieces, e = units * (p + 1) / pieces;
    corrops::corr_loss_forward<T>(l, method, eps, x.data(), y.data(), mask, r.loss.data(),
                                  r.stats.data(), b, e);
  }
  for (int p = pieces - 1; p >= 0; --p) {  // reverse order: independence of units
    const int64_t b = units * p / pieces, e = units * (p + 1) / pieces;
    corrops::corr_loss_backward<T>(l, method, eps, g.data(), x.data(), y.data(), mask,
                                   r.stats.data(), r.gx.data(), r.gy.data(), b, e);
  }
  return r;
}

// Largest |want - got| over max(floor, max |want|); infinite where exactly one
// of the two is NaN (std::max would skip a NaN: a NaN-poisoned output the
// engine never wrote, or a NaN it should not give, would then pass). floor 0:
// relative to the values' own size (e.g. the ~1e-20 gradients of 1e20 rows).
double MaxRelErr(const std::vector<double>& want, const std::vector<double>& got,
                 double floor = 1.0) {
  double scale = floor, err = 0.0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i]) != std::isnan(got[i])) return std::numeric_limits<double>::infinity();
    err = std::max(err, std::fabs(want[i] - got[i]));
  }
  return scale > 0.0 ? err / scale : err;
}

template <typename T>
std::vector<double> AsDouble(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// One gradient only (the other pointer null), and, with one channel, that
// gradient written over the upstream gradient's own buffer: bitwise equal to
// the two-sided run.
void CheckOneSided(const Layout& l, Method method, const std::vector<double>& x,
                   const std::vector<double>& y, const bool* mask, const std::vector<double>& g,
                   const Run<double>& both) {
  const int64_t units = corrops::num_work_units(l);
  for (int side = 0; side < 2; ++side) {
    std::vector<double> out(l.elements(), -1.0);
    double* gx = side == 0 ? out.data() : nullptr;
    double* gy = side == 1 ? out.data() : nullptr;
    corrops::corr_loss_backward<double>(l, method, 1e-7, g.data(), x.data(), y.data(), mask,
                                        both.stats.data(), gx, gy, 0, units);
    EXPECT(out == (side == 0 ? both.gx : both.gy), "one-sided gradient %d, C=%ld", side,
           l.channels);
    if (l.channels != 1) continue;
    std::vector<double> io = g;  // same element count when C == 1
    gx = side == 0 ? io.data() : nullptr;
    gy = side == 1 ? io.data() : nullptr;
    corrops::corr_loss_backward<double>(l, method, 1e-7, io.data(), x.data(), y.data(), mask,
                                        both.stats.data(), gx, gy, 0, units);
    EXPECT(io == (side == 0 ? both.gx : both.gy), "in-place gradient %d, M=%ld", side, l.groups);
  }
}

// kRandom: each step valid with probability 3/4. kRuns: per mask row one run
// of valid steps (padding before and/or after; some rows full, empty or a
// single step), the layout the engine computes as an unmasked run.
enum class MaskKind { kNone, kRandom, kRuns };

std::vector<char> MakeMask(const Layout& l, MaskKind kind, std::mt19937& rng) {
  std::vector<char> m(l.loss_elements(), 1);
  if (kind == MaskKind::kRandom)
    for (auto& v : m) v = (rng() % 4) != 0;
  if (kind == MaskKind::kRuns)
    for (int64_t o = 0; o < l.outer; ++o)
      for (int64_t g = 0; g < l.groups; ++g) {
        const int64_t T = l.time, kind_of_row = rng() % 6;
        if (T == 0) continue;
        int64_t a = rng() % (T / 2 + 1), b = T - static_cast<int64_t>(rng() % (T / 2 + 1));
        if (kind_of_row == 0) a = 0, b = T;              // full
        if (kind_of_row == 1) a = b = 0;                 // empty
        if (kind_of_row == 2) a = rng() % T, b = a + 1;  // one step
        if (kind_of_row == 3) a = 0;                     // padded after
        for (int64_t t = 0; t < T; ++t) m[(o * T + t) * l.groups + g] = t >= a && t < b;
      }
  return m;
}

// The forward without a loss (statistics alone) gives the full forward's
// statistics, bitwise; the loss summed over time from them is the per-step
// loss's sum (docs/DESIGN.md) to rounding.
template <typename T>
void CheckStatsOnly(const Layout& l, Method method, const std::vector<T>& x,
                    const std::vector<T>& y, const bool* mask, const std::vector<double>& stats,
                    const std::vector<double>& want_loss, double tol) {
  std::vector<double> alone(stats.size(), std::numeric_limits<double>::quiet_NaN());
  const int64_t units = corrops::num_work_units(l);
  for (int p = 1; p >= 0; --p)
    corrops::corr_loss_forward<T>(l, method, 1e-7, x.data(), y.data(), mask, nullptr, alone.data(),
                                  units * p / 2, units * (p + 1) / 2);
  EXPECT(std::memcmp(alone.data(), stats.data(), stats.size() * sizeof(double)) == 0,
         "statistics without a loss O=%ld T=%ld M=%ld C=%ld", l.outer, l.time, l.groups,
         l.channels);
  std::vector<T> totals(l.outer * l.groups);
  corrops::corr_loss_totals<T>(l, method, 1e-7, stats.data(), totals.data(), 0, l.outer);
  std::vector<double> want(totals.size(), 0.0);
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t t = 0; t < l.time; ++t)
      for (int64_t g = 0; g < l.groups; ++g)
        want[o * l.groups + g] += want_loss[(o * l.time + t) * l.groups + g];
  double err = 0;
  for (size_t i = 0; i < want.size(); ++i)
    err = std::max(
        err, std::abs(static_cast<double>(totals[i]) - want[i]) / std::max(1.0, std::abs(want[i])));
  EXPECT(err < tol, "loss summed over time O=%ld T=%ld M=%ld C=%ld: %g", l.outer, l.time, l.groups,
         l.channels, err);
}

void CheckLayout(const Layout& l, Method method, MaskKind kind, std::mt19937& rng) {
  const bool masked = kind != MaskKind::kNone;
  std::normal_distribution<double> normal;
  std::vector<double> x(l.elements()), y(l.elements()), g(l.loss_elements());
  for (auto& v : x) v = normal(rng) + 0.5;
  for (size_t i = 0; i < y.size(); ++i) y[i] = 0.6 * x[i] + normal(rng);
  for (auto& v : g) v = normal(rng);
  const std::vector<char> mask_bytes = MakeMask(l, kind, rng);
  const std::vector<bool> maskv(mask_bytes.begin(), mask_bytes.end());
  const bool* mask = masked ? reinterpret_cast<const bool*>(mask_bytes.data()) : nullptr;
  const Naive want = NaiveCorr(l, method, 1e-7, x, y, masked ? &maskv : nullptr, g);
  const auto r64 = Engine<double>(l, method, 1e-7, x, y, mask, g, 1);
  EXPECT(MaxRelErr(want.loss, r64.loss) < 1e-10, "loss f64 O=%ld T=%ld M=%ld C=%ld", l.outer,
         l.time, l.groups, l.channels);
  EXPECT(MaxRelErr(want.gx, r64.gx) < 1e-9, "grad x f64 T=%ld C=%ld", l.time, l.channels);
  EXPECT(MaxRelErr(want.gy, r64.gy) < 1e-9, "grad y f64 T=%ld C=%ld", l.time, l.channels);
  const auto split = Engine<double>(l, method, 1e-7, x, y, mask, g, 3);
  EXPECT(split.loss == r64.loss && split.gx == r64.gx && split.gy == r64.gy,
         "results depend on the work split");
  CheckOneSided(l, method, x, y, mask, g, r64);
  const std::vector<float> xf(x.begin(), x.end()), yf(y.begin(), y.end()), gf(g.begin(), g.end());
  const auto r32 = Engine<float>(l, method, 1e-7, xf, yf, mask, gf, 2);
  EXPECT(MaxRelErr(want.loss, AsDouble(r32.loss)) < 1e-3, "loss f32 T=%ld", l.time);
  EXPECT(MaxRelErr(want.gy, AsDouble(r32.gy)) < 1e-3, "grad f32 T=%ld", l.time);
  CheckStatsOnly<double>(l, method, x, y, mask, r64.stats, want.loss, 1e-10);
  CheckStatsOnly<float>(l, method, xf, yf, mask, r32.stats, want.loss, 1e-3);
}

// Upstream gradient constant along time, passed as (outer, 1, groups): the
// one-pass backward against docs/DESIGN.md on the broadcast gradient, for any work
// split and either gradient alone; masked steps exactly 0; float within 1e-3.
void CheckTimeConst(const Layout& l, Method method, MaskKind kind, std::mt19937& rng) {
  const bool masked = kind != MaskKind::kNone;
  std::normal_distribution<double> normal;
  std::vector<double> x(l.elements()), y(l.elements()), gc(l.outer * l.groups);
  for (auto& v : x) v = normal(rng) + 0.5;
  for (size_t i = 0; i < y.size(); ++i) y[i] = 0.6 * x[i] + normal(rng);
  for (auto& v : gc) v = normal(rng);
  std::vector<double> g(l.loss_elements());  // gc broadcast along time
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t t = 0; t < l.time; ++t)
      for (int64_t grp = 0; grp < l.groups; ++grp)
        g[(o * l.time + t) * l.groups + grp] = gc[o * l.groups + grp];
  const std::vector<char> mask_bytes = MakeMask(l, kind, rng);
  const std::vector<bool> maskv(mask_bytes.begin(), mask_bytes.end());
  const bool* mask = masked ? reinterpret_cast<const bool*>(mask_bytes.data()) : nullptr;
  const Naive want = NaiveCorr(l, method, 1e-7, x, y, masked ? &maskv : nullptr, g);
  const auto full = Engine<double>(l, method, 1e-7, x, y, mask, g, 1);  // stats
  const int64_t units = corrops::num_work_units(l);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> gx(l.elements(), nan), gy(l.elements(), nan);
  for (int p = 2; p >= 0; --p)
    corrops::corr_loss_backward<double>(l, method, 1e-7, gc.data(), x.data(), y.data(), mask,
                                        full.stats.data(), gx.data(), gy.data(), units * p / 3,
                                        units * (p + 1) / 3, /*grad_time_const=*/true);
  EXPECT(MaxRelErr(want.gx, gx) < 1e-9 && MaxRelErr(want.gy, gy) < 1e-9,
         "time-constant grad f64 O=%ld T=%ld M=%ld C=%ld", l.outer, l.time, l.groups, l.channels);
  for (int64_t o = 0; o < l.outer && masked; ++o)
    for (int64_t t = 0; t < l.time; ++t)
      for (int64_t j = 0; j < l.inner(); ++j)
        if (!mask_bytes[(o * l.time + t) * l.groups + j / l.channels]) {
          const int64_t i = (o * l.time + t) * l.inner() + j;
          EXPECT(gx[i] == 0.0 && gy[i] == 0.0, "time-constant grad at a masked step");
        }
  std::vector<double> only_y(l.elements(), nan);
  corrops::corr_loss_backward<double>(l, method, 1e-7, gc.data(), x.data(), y.data(), mask,
                                      full.stats.data(), nullptr, only_y.data(), 0, units, true);
  EXPECT(only_y == gy, "time-constant grad, y_pred only");
  const std::vector<float> xf(x.begin(), x.end()), yf(y.begin(), y.end()),
      gcf(gc.begin(), gc.end()), gf(g.begin(), g.end());
  const auto r32 = Engine<float>(l, method, 1e-7, xf, yf, mask, gf, 1);
  std::vector<float> gyf(l.elements(), nan);
  corrops::corr_loss_backward<float>(l, method, 1e-7, gcf.data(), xf.data(), yf.data(), mask,
                                     r32.stats.data(), nullptr, gyf.data(), 0, units, true);
  EXPECT(MaxRelErr(want.gy, AsDouble(gyf)) < 1e-3, "time-constant grad f32 T=%ld", l.time);
}

void CheckEdgeCases() {
  const Layout l{3, 7, 1, 1};
  std::vector<double> x(21), y(21), g(21, 1.0);
  for (int i = 0; i < 21; ++i) x[i] = std::sin(i), y[i] = std::cos(3.0 * i);
  for (int t = 0; t < 7; ++t) y[7 + t] = 0.25;  // row 1: constant prediction
  std::vector<char> m(21, 1);
  for (int t = 0; t < 7; ++t) m[14 + t] = t == 3;  // row 2: one valid step
  for (Method method : {Method::kPearson, Method::kCcc}) {
    const auto r = Engine<double>(l, method, 1e-7, x, y, reinterpret_cast<bool*>(m.data()), g, 1);
    for (int t = 0; t < 7; ++t) {
      EXPECT(std::isfinite(r.gx[7 + t]) && std::isfinite(r.gy[7 + t]), "constant row finite");
      EXPECT(r.gx[14 + t] == 0 && r.gy[14 + t] == 0, "n = 1 has zero gradient");
      EXPECT(r.loss[14 + t] == (t == 3 ? 1.0 : 0.0), "n = 1 loss");
    }
    if (method == Method::kPearson)
      for (int t = 0; t < 7; ++t) EXPECT(r.loss[7 + t] == 1.0, "constant row loss 1");
  }
  // The same table with a time-constant upstream gradient (one value per row).
  const std::vector<double> gc{0.5, 2.0, -1.0};
  for (Method method : {Method::kPearson, Method::kCcc}) {
    const bool* mk = reinterpret_cast<bool*>(m.data());
    const auto r = Engine<double>(l, method, 1e-7, x, y, mk, g, 1);
    std::vector<double> gx(21, NAN), gy(21, NAN);
    corrops::corr_loss_backward<double>(l, method, 1e-7, gc.data(), x.data(), y.data(), mk,
                                        r.stats.data(), gx.data(), gy.data(), 0, 3, true);
    for (int t = 0; t < 7; ++t) {
      EXPECT(std::isfinite(gx[7 + t]) && std::isfinite(gy[7 + t]), "constant row finite (gc)");
      EXPECT(gx[14 + t] == 0 && gy[14 + t] == 0, "n = 1 has zero gradient (gc)");
    }
  }
  std::vector<char> none(21, 0);  // fully masked
  const auto z =
      Engine<double>(l, Method::kPearson, 1e-7, x, y, reinterpret_cast<bool*>(none.data()), g, 1);
  for (int i = 0; i < 21; ++i) EXPECT(z.loss[i] == 0 && z.gx[i] == 0 && z.gy[i] == 0, "masked");
  std::vector<double> xn = x;
  xn[9] = NAN;  // NaN confined to row 1
  const auto nn = Engine<double>(l, Method::kPearson, 1e-7, xn, y, nullptr, g, 1);
  const auto clean = Engine<double>(l, Method::kPearson, 1e-7, x, y, nullptr, g, 1);
  std::vector<double> ngy(21, 0.0);
  const std::vector<double> ones(3, 1.0);
  corrops::corr_loss_backward<double>(l, Method::kPearson, 1e-7, ones.data(), xn.data(), y.data(),
                                      nullptr, nn.stats.data(), nullptr, ngy.data(), 0, 3, true);
  for (int t = 0; t < 7; ++t) {
    EXPECT(std::isnan(ngy[7 + t]) && std::isfinite(ngy[t]) && std::isfinite(ngy[14 + t]),
           "NaN row's time-constant gradient is NaN, other rows finite");
    EXPECT(std::isnan(nn.loss[7 + t]), "NaN row is NaN");
    EXPECT(nn.loss[t] == clean.loss[t] && nn.loss[14 + t] == clean.loss[14 + t], "other rows");
  }
  // Empty and zero-channel layouts: nothing to do, no out-of-bounds access.
  for (Layout e :
       {Layout{0, 5, 1, 1}, Layout{2, 0, 1, 3}, Layout{2, 5, 1, 0}, Layout{2, 5, 0, 2}}) {
    std::vector<double> ex(e.elements()), eg(e.loss_elements());
    const auto r = Engine<double>(e, Method::kCcc, 1e-7, ex, ex, nullptr, eg, 1);
    for (double v : r.loss) EXPECT(v == 0.0, "empty loss is 0");
  }
  // Scale robustness: float values near 1e30 and 1e-30 (whose squares over-
  // or underflow float) against the double reference on the same values.
  for (float s : {1e30f, 1e-30f}) {
    std::vector<float> xs(21), ys(21), gs(21, 1.0f);
    std::vector<double> xd(21), yd(21);
    for (int i = 0; i < 21; ++i) {
      xs[i] = s * static_cast<float>(x[i]), ys[i] = s * static_cast<float>(y[i]);
      xd[i] = xs[i], yd[i] = ys[i];
    }
    const Naive want = NaiveCorr(l, Method::kPearson, 1e-7, xd, yd, nullptr, g);
    const auto r = Engine<float>(l, Method::kPearson, 1e-7, xs, ys, nullptr, gs, 1);
    EXPECT(MaxRelErr(want.loss, AsDouble(r.loss)) < 1e-4, "scale %g loss", s);
    for (int i = 0; i < 21; ++i) EXPECT(std::isfinite(r.gx[i]), "scale %g finite grad", s);
  }
}

}  // namespace

// IEEE binary16 entry points (corr_loss_*_binary16): with the AVX2 engine
// active, bitwise equal to widening by hand, running the float engine and
// narrowing (round to nearest even); and they decline (return false) when a
// work unit is not a whole slab and on the portable engine.
void CheckBinary16(std::mt19937& rng) {
#if defined(__FLT16_MAX__) && defined(CORROPS_HAVE_AVX2_ENGINE)
  using H = _Float16;
  std::normal_distribution<float> normal;
  for (const Layout& l : {Layout{3, 37, 1, 1}, Layout{2, 300, 1, 1}, Layout{4, 8, 1, 1},
                          Layout{3, 37, 1, 8}, Layout{2, 29, 3, 5}, Layout{2, 9, 2, 1}}) {
    for (MaskKind kind : {MaskKind::kNone, MaskKind::kRandom, MaskKind::kRuns}) {
      const int64_t n = l.elements();
      std::vector<H> x(n), y(n), g(n);
      for (int64_t i = 0; i < n; ++i) {
        x[i] = static_cast<H>(normal(rng) + 2.0f);
        y[i] = static_cast<H>(0.5f * static_cast<float>(x[i]) + normal(rng));
        g[i] = static_cast<H>(normal(rng));
      }
      const std::vector<char> mb = MakeMask(l, kind, rng);
      const bool* mask =
          kind == MaskKind::kNone ? nullptr : reinterpret_cast<const bool*>(mb.data());
      const int64_t units = corrops::num_work_units(l);
      std::vector<H> loss(n), gy(n);
      std::vector<double> stats(l.rows() * corrops::kStatsPerRow);
      const bool ran = corrops::corr_loss_forward_binary16(
          l, Method::kCcc, 1e-7, reinterpret_cast<const uint16_t*>(x.data()),
          reinterpret_cast<const uint16_t*>(y.data()), mask,
          reinterpret_cast<uint16_t*>(loss.data()), stats.data(), 0, units);
      const bool ran_back = corrops::corr_loss_backward_binary16(
          l, Method::kCcc, 1e-7, reinterpret_cast<const uint16_t*>(g.data()),
          reinterpret_cast<const uint16_t*>(x.data()), reinterpret_cast<const uint16_t*>(y.data()),
          mask, stats.data(), nullptr, reinterpret_cast<uint16_t*>(gy.data()), 0, units);
      // Any SIMD copy (AVX2 or AVX-512) runs binary16 through the AVX2 slabs.
      const bool avx2 = corrops::active_cpu_isa() != corrops::CpuIsa::kGeneric;
      EXPECT(ran == avx2 && ran_back == avx2, "binary16 runs exactly when a SIMD copy is active");
      if (!avx2) continue;
      // By hand: widen, the AVX2 float engine (whichever SIMD copy is active), narrow.
      const std::vector<float> xf(x.begin(), x.end()), yf(y.begin(), y.end()),
          gf(g.begin(), g.end());
      std::vector<float> lf(n), gyf(n);
      std::vector<double> sf(l.rows() * corrops::kStatsPerRow);
      corrops::avx2::corr_loss_forward<float>(l, Method::kCcc, 1e-7, xf.data(), yf.data(), mask,
                                              lf.data(), sf.data(), 0, units);
      corrops::avx2::corr_loss_backward<float>(l, Method::kCcc, 1e-7, gf.data(), xf.data(),
                                               yf.data(), mask, sf.data(), nullptr, gyf.data(), 0,
                                               units, false);
      bool same = stats == sf;
      for (int64_t i = 0; i < n; ++i) {
        const H lw = static_cast<H>(lf[i]), gw = static_cast<H>(gyf[i]);
        same = same && std::memcmp(&lw, &loss[i], 2) == 0 && std::memcmp(&gw, &gy[i], 2) == 0;
      }
      EXPECT(same, "binary16 == widen + float engine + narrow, T=%ld", l.time);
      // Time-constant upstream gradient, (outer, 1, groups).
      std::vector<H> gc(l.outer * l.groups);
      for (auto& v : gc) v = static_cast<H>(normal(rng));
      const std::vector<float> gcf(gc.begin(), gc.end());
      corrops::corr_loss_backward_binary16(
          l, Method::kCcc, 1e-7, reinterpret_cast<const uint16_t*>(gc.data()),
          reinterpret_cast<const uint16_t*>(x.data()), reinterpret_cast<const uint16_t*>(y.data()),
          mask, stats.data(), nullptr, reinterpret_cast<uint16_t*>(gy.data()), 0, units, true);
      corrops::avx2::corr_loss_backward<float>(l, Method::kCcc, 1e-7, gcf.data(), xf.data(),
                                               yf.data(), mask, sf.data(), nullptr, gyf.data(), 0,
                                               units, true);
      bool same_c = true;
      for (int64_t i = 0; i < n; ++i) {
        const H gw = static_cast<H>(gyf[i]);
        same_c = same_c && std::memcmp(&gw, &gy[i], 2) == 0;
      }
      EXPECT(same_c, "binary16 time-constant == widen + float engine + narrow, T=%ld", l.time);
    }
  }
  // 3 groups x 40 channels: over 64 columns, so a work unit is one group's
  // column block, not a whole slab; the widening path must decline.
  const Layout strided{2, 9, 3, 40};
  EXPECT(corrops::num_work_units(strided) != strided.outer, "strided layout has column blocks");
  std::vector<uint16_t> z(strided.elements());
  std::vector<double> st(strided.rows() * corrops::kStatsPerRow);
  EXPECT(!corrops::corr_loss_forward_binary16(strided, Method::kPearson, 1e-7, z.data(), z.data(),
                                              nullptr, z.data(), st.data(), 0,
                                              corrops::num_work_units(strided)),
         "binary16 declines units that are not whole slabs");
#else
  (void)rng;
  std::printf("binary16: no _Float16 or no AVX2 engine in this build\n");
#endif
}

// Streamed gradient stores (core/stream_store.h) change only how the bytes
// reach memory: for every backward variant on contiguous rows (both
// gradients, one, one written over g's buffer; per-step and time-constant g;
// masks; rows shorter than, equal to and longer than a streamed block of
// kLanes steps and a statistics chunk, so rows start at every alignment) and
// for outputs not 16-byte aligned, bitwise equal to the plain stores. The
// streamed forward (pipelined over unmasked rows: row u's loss between row
// u + 1's statistics chunks) also for any split of the rows between calls.
// Its own generator: the other checks' data stays what it was.
template <typename T>
void CheckStreamedStores() {
  std::mt19937 rng(11);
  std::normal_distribution<double> normal;
  const int64_t big = std::numeric_limits<int64_t>::max();
  const int64_t threshold = corrops::stream_store_min_bytes();
  int mismatches = 0, runs = 0;
  for (int64_t len : {1, 7, 15, 16, 17, 33, 511, 512, 513, 1024, 1025, 1500, 3000})
    for (MaskKind kind : {MaskKind::kNone, MaskKind::kRandom, MaskKind::kRuns})
      for (bool time_const : {false, true}) {
        const Layout l{3, len, 1, 1};
        const int64_t units = corrops::num_work_units(l);
        std::vector<T> x(l.elements()), y(l.elements());
        for (auto& v : x) v = static_cast<T>(normal(rng));
        for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<T>(0.6 * x[i] + normal(rng));
        std::vector<T> g(time_const ? l.outer : l.loss_elements());
        for (auto& v : g) v = static_cast<T>(normal(rng));
        const std::vector<char> mask_bytes = MakeMask(l, kind, rng);
        const bool* mask =
            kind == MaskKind::kNone ? nullptr : reinterpret_cast<const bool*>(mask_bytes.data());
        std::vector<T> loss(l.loss_elements());
        std::vector<double> stats(l.rows() * corrops::kStatsPerRow);
        corrops::corr_loss_forward<T>(l, Method::kPearson, 1e-7, x.data(), y.data(), mask,
                                      loss.data(), stats.data(), 0, units);
        // The forward's streamed loss (contiguous_loss_out; pipelined when
        // unmasked), into an unaligned buffer, with the rows split between
        // calls three ways (all in one; one per call; {0} and {1, 2}): the
        // same bits as the plain stores above.
        const std::vector<std::vector<int64_t>> splits = {
            {0, units}, {0, 1, 2, units}, {0, 1, units}};
        for (int64_t shift : {0, 1})
          for (const std::vector<int64_t>& cut : splits) {
            corrops::set_stream_store_min_bytes(0);
            std::vector<T> streamed(shift + l.loss_elements(), T(-7));
            std::vector<double> st(stats.size());
            for (size_t c = 0; c + 1 < cut.size(); ++c)
              corrops::corr_loss_forward<T>(l, Method::kPearson, 1e-7, x.data(), y.data(), mask,
                                            streamed.data() + shift, st.data(), cut[c], cut[c + 1]);
            corrops::set_stream_store_min_bytes(big);
            ++runs;
            if (st != stats ||
                std::memcmp(streamed.data() + shift, loss.data(), loss.size() * sizeof(T)) != 0)
              ++mismatches;
          }
        // mode 0: both gradients; 1: gy only; 2: gy over g's buffer (per-step g).
        for (int mode = 0; mode < (time_const ? 2 : 3); ++mode)
          for (int64_t shift : {0, 1}) {
            std::vector<T> out[2];
            for (int streamed = 0; streamed < 2; ++streamed) {
              corrops::set_stream_store_min_bytes(streamed ? 0 : big);
              // One buffer: [shift pad | gx | gy | g copy], so outputs start unaligned.
              std::vector<T> buf(shift + 3 * l.elements(), T(-7));
              T* gx = mode == 0 ? buf.data() + shift : nullptr;
              T* gy = buf.data() + shift + l.elements();
              const T* gp = g.data();
              if (mode == 2) {
                T* io = buf.data() + shift + 2 * l.elements();
                std::copy(g.begin(), g.end(), io);
                gy = io, gp = io;
              }
              corrops::corr_loss_backward<T>(l, Method::kPearson, 1e-7, gp, x.data(), y.data(),
                                             mask, stats.data(), gx, gy, 0, units, time_const);
              out[streamed] = buf;
            }
            ++runs;
            if (std::memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(T)) != 0)
              ++mismatches;
          }
      }
  corrops::set_stream_store_min_bytes(threshold);
  EXPECT(mismatches == 0 && runs > 0, "streamed stores differ from plain ones in %d of %d runs",
         mismatches, runs);
}

// Rows longer than one statistics chunk (contiguous_stats merges chunks):
// lengths either side of one and two chunks, and rows whose chunks differ
// in level (a trend: the merge's mean-delta term carries most of the
// variance), in magnitude (1e-20 then 1e20 and back: the moments are
// rescaled when a chunk raises the row's scale) and, masked, with whole
// chunks masked out. Float and double against docs/DESIGN.md in double.
// Its own generator: the other checks' data stays what it was.
void CheckChunkedRows() {
  std::mt19937 rng(13);
  std::normal_distribution<double> normal;
  const int64_t chunk = corrops::generic::detail::kStatsChunk;
  for (int64_t len : {chunk - 1, chunk, chunk + 1, 2 * chunk + 17, 5 * chunk})
    for (int shape = 0; shape < 4; ++shape)
      for (MaskKind kind : {MaskKind::kNone, MaskKind::kRandom, MaskKind::kRuns}) {
        const Layout l{3, len, 1, 1};
        std::vector<double> x(l.elements()), y(l.elements()), g(l.loss_elements());
        for (int64_t r = 0; r < l.outer; ++r)
          for (int64_t t = 0; t < len; ++t) {
            const int64_t i = r * len + t, c = t / chunk;
            double a = normal(rng), b = 0.6 * a + normal(rng);
            if (shape == 1) a += 40.0 * static_cast<double>(c), b -= 25.0 * c;  // level steps
            if (shape == 2) {  // magnitude steps: tiny, huge, tiny, ...
              const double s = c % 2 == 0 ? 1e-20 : 1e20;
              a *= s, b *= s;
            }
            if (shape == 3) a = b = 3.0;  // constant: exact zero deviations
            x[i] = a, y[i] = b;
          }
        for (auto& v : g) v = normal(rng);
        std::vector<char> mask_bytes = MakeMask(l, kind, rng);
        if (kind == MaskKind::kRandom && len > chunk)  // row 0: its second chunk masked out
          for (int64_t t = chunk; t < std::min(len, 2 * chunk); ++t) mask_bytes[t] = 0;
        const std::vector<bool> maskv(mask_bytes.begin(), mask_bytes.end());
        const bool masked = kind != MaskKind::kNone;
        const bool* mask = masked ? reinterpret_cast<const bool*>(mask_bytes.data()) : nullptr;
        // Gradients of 1e20-sized rows are ~1e-20: relative to their own size
        // (MaxRelErr's floor 0).
        for (Method method : {Method::kPearson, Method::kCcc}) {
          const Naive want = NaiveCorr(l, method, 1e-7, x, y, masked ? &maskv : nullptr, g);
          const auto r64 = Engine<double>(l, method, 1e-7, x, y, mask, g, 2);
          EXPECT(MaxRelErr(want.loss, r64.loss) < 1e-10 && MaxRelErr(want.gy, r64.gy, 0.0) < 1e-9 &&
                     MaxRelErr(want.gx, r64.gx, 0.0) < 1e-9,
                 "chunked rows f64 len=%ld shape=%d mask=%d", len, shape, static_cast<int>(kind));
          const std::vector<float> xf(x.begin(), x.end()), yf(y.begin(), y.end()),
              gf(g.begin(), g.end());
          const std::vector<double> xr(xf.begin(), xf.end()), yr(yf.begin(), yf.end()),
              gr(gf.begin(), gf.end());
          const Naive wantf = NaiveCorr(l, method, 1e-7, xr, yr, masked ? &maskv : nullptr, gr);
          const auto r32 = Engine<float>(l, method, 1e-7, xf, yf, mask, gf, 2);
          EXPECT(MaxRelErr(wantf.loss, AsDouble(r32.loss)) < 1e-4 &&
                     MaxRelErr(wantf.gy, AsDouble(r32.gy), 0.0) < 1e-3,
                 "chunked rows f32 len=%ld shape=%d mask=%d", len, shape, static_cast<int>(kind));
        }
      }
}

// The default stream threshold: the largest cache the kernel lists, at most
// 32 MiB; sysfs sizes parsed, anything malformed read as unknown (0).
void CheckStreamThreshold() {
  using corrops::default_stream_store_min_bytes;
  using corrops::parse_cache_size;
  const int64_t mib = int64_t{1} << 20;
  EXPECT(parse_cache_size("8192K\n") == 8 * mib, "8192K");
  EXPECT(parse_cache_size("32M") == 32 * mib && parse_cache_size("1G") == 1024 * mib, "M, G");
  EXPECT(parse_cache_size("512") == 512, "bytes");
  for (const char* bad : {"", "K", "-1K", "8X", "8K junk", "0K"})
    EXPECT(parse_cache_size(bad) == 0, "'%s' parsed", bad);
  EXPECT(parse_cache_size(nullptr) == 0, "null");
  EXPECT(default_stream_store_min_bytes(0) == 32 * mib, "unknown cache: 32 MiB");
  EXPECT(default_stream_store_min_bytes(8 * mib) == 8 * mib, "8 MiB L3");
  EXPECT(default_stream_store_min_bytes(480 * mib) == 32 * mib, "a larger cache keeps 32 MiB");
  const int64_t now = corrops::stream_store_min_bytes();
  EXPECT(std::getenv("CORROPS_STREAM_STORE_MIN_BYTES") != nullptr || (now > 0 && now <= 32 * mib),
         "default threshold %lld", static_cast<long long>(now));
}

// engine_isa (cpu_dispatch.h): with AVX-512 active, a call whose inputs span
// less than the threshold runs the AVX2 copy, one at or above it AVX-512, and
// a threshold of 0 runs every call on AVX-512; a lesser active copy is never
// changed. For whichever copy is active.
void CheckEngineIsa() {
  using corrops::CpuIsa;
  const CpuIsa active = corrops::active_cpu_isa();
  const int64_t saved = corrops::avx512_min_input_bytes();
  corrops::set_avx512_min_input_bytes(corrops::kAvx512MinInputBytes);
  const Layout small{20, 100, 1, 1};       // 16 000 bytes of float input
  const Layout at{128, 1024, 1, 1};        // exactly 1 MiB of float input
  const Layout under{128, 1023, 1, 1};     // just under it
  const Layout at_double{16, 1024, 2, 2};  // 1 MiB of double input, 4 columns
  const CpuIsa small_isa = active == CpuIsa::kAvx512 ? CpuIsa::kAvx2 : active;
  EXPECT(corrops::engine_isa(small, 4) == small_isa, "%s: small call ran %s",
         corrops::cpu_isa_name(active), corrops::cpu_isa_name(corrops::engine_isa(small, 4)));
  EXPECT(corrops::engine_isa(under, 4) == small_isa, "%s: call under the threshold",
         corrops::cpu_isa_name(active));
  EXPECT(corrops::engine_isa(at, 4) == active, "%s: call at the threshold",
         corrops::cpu_isa_name(active));
  EXPECT(corrops::engine_isa(at_double, 8) == active, "%s: double call at the threshold",
         corrops::cpu_isa_name(active));
  EXPECT(corrops::engine_isa(at_double, 4) == small_isa, "%s: half the bytes is under it",
         corrops::cpu_isa_name(active));
  corrops::set_avx512_min_input_bytes(0);
  EXPECT(corrops::engine_isa(small, 4) == active, "%s: threshold 0", corrops::cpu_isa_name(active));
  corrops::set_avx512_min_input_bytes(saved);
}

// row_inv_scale reads the exponent from the bits on the CPU; it must give
// exactly the ilogb/ldexp formula (the CUDA kernels' form) for every input.
template <typename A>
A InvScaleByLibm(A max_abs) {
  if (!(max_abs > A(0)) || !std::isfinite(max_abs)) return A(1);
  int e = std::ilogb(max_abs) + 1;
  e = std::min(corrops::kMaxScaleExponent, std::max(-corrops::kMaxScaleExponent, e));
  return std::ldexp(A(1), -e);
}

template <typename A>
void CheckRowInvScale(std::mt19937& rng) {
  using Lim = std::numeric_limits<A>;
  using Uint = typename corrops::FloatBits<A>::Uint;
  std::vector<A> values = {A(0),
                           -A(0),
                           A(1),
                           -A(1),
                           Lim::min(),
                           Lim::denorm_min(),
                           Lim::max(),
                           Lim::infinity(),
                           -Lim::infinity(),
                           Lim::quiet_NaN(),
                           A(0.75),
                           A(1e-30)};
  for (int k = Lim::min_exponent - Lim::digits - 1; k <= Lim::max_exponent; ++k)
    for (A f : {A(1), A(1.5), std::nextafter(A(2), A(0))}) values.push_back(std::ldexp(f, k));
  for (int i = 0; i < 20000; ++i) {  // random bit patterns: every class, both signs
    Uint u = 0;
    for (size_t b = 0; b < sizeof(Uint); b += 4) u = (u << 16 << 16) | Uint(rng());
    A v;
    std::memcpy(&v, &u, sizeof v);
    values.push_back(v);
  }
  int wrong = 0;
  for (A v : values) {
    const A got = corrops::row_inv_scale(v), want = InvScaleByLibm(v);
    if (std::memcmp(&got, &want, sizeof got) != 0) {
      if (++wrong <= 3)
        std::printf("  row_inv_scale(%a) = %a, want %a\n", double(v), double(got), double(want));
    }
  }
  EXPECT(wrong == 0, "row_inv_scale<%s> differs from ilogb/ldexp on %d of %zu inputs",
         sizeof(A) == 4 ? "float" : "double", wrong, values.size());
}

// valid_run decides which masked rows take the unmasked loops: a row it
// wrongly calls one run gives wrong numbers (CheckLayout would see that); one
// it wrongly rejects is only slower, so the classification is checked here.
void CheckValidRun(std::mt19937& rng) {
  using corrops::generic::detail::Run;
  using corrops::generic::detail::valid_run;
  int wrong = 0;
  for (int64_t len = 1; len <= 70; ++len)
    for (int trial = 0; trial < 40; ++trial) {
      const int64_t a = rng() % (len + 1), b = a + rng() % (len - a + 1);
      std::vector<unsigned char> m(len, 0);
      for (int64_t t = a; t < b; ++t) m[t] = trial % 5 == 0 ? 1 + rng() % 255 : 1;  // any nonzero
      Run run;
      const bool* mb = reinterpret_cast<const bool*>(m.data());
      const bool got = valid_run(mb, len, &run);
      if (got != (b > a) || (got && (run.begin != a || run.end != b))) ++wrong;
      if (b - a >= 3) {  // a hole inside: not one run
        m[a + 1 + rng() % (b - a - 2)] = 0;
        if (valid_run(mb, len, &run)) ++wrong;
      }
    }
  EXPECT(wrong == 0, "valid_run misclassified %d masks", wrong);
}

int main() {
  std::mt19937 rng(7);
  const Layout layouts[] = {{4, 1, 1, 1},
                            {3, 2, 1, 1},
                            {2, 15, 1, 1},
                            {2, 16, 1, 1},
                            {2, 17, 1, 1},
                            {3, 100, 1, 1},
                            {2, 9, 3, 1},
                            {2, 9, 1, 3},
                            {2, 33, 5, 2},
                            {1, 20, 70, 1},
                            {2, 12, 3, 40},
                            {1, 300, 1, 1},
                            // flat tiles (row width divides 16): ragged last chunk, several
                            // groups per chunk, one channel (in place), 16 columns
                            {3, 37, 1, 8},
                            {2, 29, 2, 4},
                            {2, 17, 4, 4},
                            {3, 21, 1, 2},
                            {2, 19, 2, 1},
                            {2, 5, 8, 2},
                            {2, 3, 16, 1},
                            {1, 1, 4, 2},
                            {2, 40, 1, 16},
                            // long contiguous rows (masked runs: the unmasked loops on a run)
                            {4, 1000, 1, 1}};
  // Every engine copy this build and CPU can run (cpu_dispatch.h), on every
  // layout: threshold 0, or the small layouts here would run AVX2 under AVX-512.
  const int64_t avx512_min = corrops::avx512_min_input_bytes();
  for (corrops::CpuIsa isa :
       {corrops::CpuIsa::kGeneric, corrops::CpuIsa::kAvx2, corrops::CpuIsa::kAvx512}) {
    if (!corrops::set_cpu_isa(isa)) {
      std::printf("engine %s: not available on this build/CPU\n", corrops::cpu_isa_name(isa));
      continue;
    }
    std::printf("engine %s\n", corrops::cpu_isa_name(isa));
    CheckEngineIsa();
    corrops::set_avx512_min_input_bytes(0);
    for (const Layout& l : layouts)
      for (Method method : {Method::kPearson, Method::kCcc})
        for (MaskKind kind : {MaskKind::kNone, MaskKind::kRandom, MaskKind::kRuns}) {
          CheckLayout(l, method, kind, rng);
          CheckTimeConst(l, method, kind, rng);
        }
    CheckEdgeCases();
    CheckBinary16(rng);
    CheckStreamedStores<float>();
    CheckStreamedStores<double>();
    CheckChunkedRows();
    corrops::set_avx512_min_input_bytes(avx512_min);
  }
  CheckValidRun(rng);
  CheckRowInvScale<float>(rng);
  CheckRowInvScale<double>(rng);
  CheckStreamThreshold();
  std::printf("%d passed, %d failed\n", checks - failures, failures);
  return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
