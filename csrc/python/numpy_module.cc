// pybind11 module over csrc/core for NumPy arrays: validates, allocates,
// releases the GIL and spreads the engine's work units over threads. No math
// here: everything is computed by csrc/core.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/cpu_dispatch.h"
#include "core/validate.h"

namespace py = pybind11;

namespace corrops {
namespace {

template <typename T>
using Array = py::array_t<T, py::array::c_style | py::array::forcecast>;
using BoolArray = py::array_t<bool, py::array::c_style | py::array::forcecast>;

// Below this many elements a call runs on the calling thread only.
constexpr int64_t kParallelThreshold = 1 << 16;

// core/validate.h's message as a ValueError.
void Require(const std::string& message) {
  if (!message.empty()) throw py::value_error(message);
}

Method MethodOf(const std::string& name) {
  Method method;
  Require(ParseMethod(name, &method));
  return method;
}

Dims DimsOf(const py::array& a) { return Dims(a.shape(), a.shape() + a.ndim()); }

template <typename T>
Layout CheckInputs(const Array<T>& x, const Array<T>& y, const std::optional<BoolArray>& mask) {
  Layout l;
  Require(CheckData(DimsOf(x), DimsOf(y), &l));
  if (mask) Require(CheckMask(DimsOf(*mask), /*has_mask=*/true, l, y.ndim()));
  return l;
}

// Runs fn(begin, end) over [0, units) on up to `threads` threads (0 = all
// cores); each unit goes to exactly one thread, so results do not depend on
// the thread count.
template <typename Fn>
void ParallelUnits(int64_t units, int64_t elements, int threads, Fn fn) {
  if (units <= 0) return;
  int n = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  if (elements < kParallelThreshold) n = 1;
  n = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n, units)));
  if (n == 1) return fn(0, units);
  std::vector<std::thread> pool;
  const int64_t chunk = (units + n - 1) / n;
  for (int i = 0; i < n; ++i) {
    const int64_t b = i * chunk, e = std::min(units, b + chunk);
    if (b < e) pool.emplace_back([=] { fn(b, e); });
  }
  for (auto& t : pool) t.join();
}

template <typename T>
py::tuple Forward(const Array<T>& y_true, const Array<T>& y_pred,
                  const std::optional<BoolArray>& mask, const std::string& method, double eps,
                  int threads) {
  const Method m = MethodOf(method);
  Require(CheckEps(eps));
  const Layout l = CheckInputs(y_true, y_pred, mask);
  const bool* mk = mask ? mask->data() : nullptr;
  Array<T> loss(LossDims(l, y_pred.ndim()));
  py::array_t<double> stats({l.outer, l.inner(), static_cast<int64_t>(kStatsPerRow)});
  const T* x = y_true.data();
  const T* y = y_pred.data();
  T* out = loss.mutable_data();
  double* st = stats.mutable_data();
  {
    py::gil_scoped_release release;
    if (loss_is_all_zero(l)) std::fill(out, out + l.loss_elements(), T(0));
    ParallelUnits(num_work_units(l), l.elements(), threads, [&](int64_t b, int64_t e) {
      corr_loss_forward<T>(l, m, eps, x, y, mk, out, st, b, e);
    });
  }
  return py::make_tuple(loss, stats);
}

template <typename T>
py::tuple Backward(const Array<T>& grad, const Array<T>& y_true, const Array<T>& y_pred,
                   const std::optional<BoolArray>& mask, const py::array_t<double>& stats,
                   const std::string& method, double eps, int threads) {
  const Method m = MethodOf(method);
  Require(CheckEps(eps));
  const Layout l = CheckInputs(y_true, y_pred, mask);
  const bool* mk = mask ? mask->data() : nullptr;
  bool time_const = false;
  Require(CheckGrad(DimsOf(grad), l, y_pred.ndim(), &time_const));
  Require(CheckStats(DimsOf(stats), l));
  Array<T> grad_true(DimsOf(y_true));
  Array<T> grad_pred(DimsOf(y_pred));
  const T* g = grad.data();
  const T* x = y_true.data();
  const T* y = y_pred.data();
  const double* st = stats.data();
  T* gx = grad_true.mutable_data();
  T* gy = grad_pred.mutable_data();
  {
    py::gil_scoped_release release;
    ParallelUnits(num_work_units(l), l.elements(), threads, [&](int64_t b, int64_t e) {
      corr_loss_backward<T>(l, m, eps, g, x, y, mk, st, gx, gy, b, e, time_const);
    });
  }
  return py::make_tuple(grad_true, grad_pred);
}

template <typename T>
Array<T> Coefficients(const py::array_t<double>& stats, const std::string& method, double eps) {
  const Method m = MethodOf(method);
  Require(CheckEps(eps));
  if (stats.ndim() != 3 || stats.shape(2) != kStatsPerRow)
    throw py::value_error("stats must have shape (outer, rows, " + std::to_string(kStatsPerRow) +
                          "), got " + DimsString(DimsOf(stats)));
  Array<T> coef({stats.shape(0), stats.shape(1)});
  corr_coefficients<T>(m, eps, stats.data(), coef.mutable_data(), 0,
                       stats.shape(0) * stats.shape(1));
  return coef;
}

// A byte threshold's setter as Python sees it: a negative count is an error.
template <void (*Set)(int64_t)>
void SetBytes(int64_t bytes) {
  if (bytes < 0) throw std::invalid_argument("bytes must be >= 0, got " + std::to_string(bytes));
  Set(bytes);
}

template <typename T>
void Bind(py::module_& mod, const std::string& suffix) {
  mod.def(("forward_" + suffix).c_str(), &Forward<T>, py::arg("y_true"), py::arg("y_pred"),
          py::arg("mask"), py::arg("method"), py::arg("eps"), py::arg("threads") = 0);
  mod.def(("backward_" + suffix).c_str(), &Backward<T>, py::arg("grad"), py::arg("y_true"),
          py::arg("y_pred"), py::arg("mask"), py::arg("stats"), py::arg("method"), py::arg("eps"),
          py::arg("threads") = 0);
}

}  // namespace
}  // namespace corrops

PYBIND11_MODULE(_corrops_numpy, mod) {
  mod.doc() = "corrops core engine for NumPy arrays in the canonical layout";
  corrops::Bind<double>(mod, "f64");
  corrops::Bind<float>(mod, "f32");
  mod.def("coefficients_f64", &corrops::Coefficients<double>, py::arg("stats"), py::arg("method"),
          py::arg("eps"));
  mod.attr("stats_per_row") = corrops::kStatsPerRow;
  mod.def(
      "cpu_isa", [] { return std::string(corrops::cpu_isa_name(corrops::active_cpu_isa())); },
      "Instruction set of the CPU engine in use in this process: 'avx512', 'avx2' or 'generic'.");
  mod.def(
      "engine_isa",
      [](int64_t outer, int64_t time, int64_t groups, int64_t channels, int64_t item_bytes) {
        const corrops::Layout l{outer, time, groups, channels};
        return std::string(corrops::cpu_isa_name(corrops::engine_isa(l, item_bytes)));
      },
      py::arg("outer"), py::arg("time"), py::arg("groups"), py::arg("channels"),
      py::arg("item_bytes"),
      "The engine copy a float32/float64 call over this canonical layout runs: cpu_isa(), "
      "or 'avx2' for an AVX-512 call whose inputs span fewer than avx512_min_input_bytes().");
  mod.def("avx512_min_input_bytes", &corrops::avx512_min_input_bytes,
          "Bytes of input (x and y) below which a call runs the AVX2 copy where AVX-512 is "
          "active. Process-wide within this module (the TF op library has its own setting, "
          "from CORROPS_AVX512_MIN_BYTES).");
  mod.def("set_avx512_min_input_bytes", &corrops::SetBytes<&corrops::set_avx512_min_input_bytes>,
          py::arg("bytes"), "Sets avx512_min_input_bytes (0: AVX-512 for every call); for tests.");
  mod.def("stream_store_min_bytes", &corrops::stream_store_min_bytes,
          "Bytes (inputs + outputs of one backward) above which the CPU engine writes the "
          "gradients with non-temporal stores. Process-wide within this module (the TF op "
          "library has its own copy of the engine and its own setting).");
  mod.def("set_stream_store_min_bytes", &corrops::SetBytes<&corrops::set_stream_store_min_bytes>,
          py::arg("bytes"),
          "Sets stream_store_min_bytes (0: always stream). Changes no value, only how outputs are "
          "stored; for tests and benchmarks.");
}
