// Argument checks shared by the bindings (the TF kernels and the pybind11
// module): each takes shapes as dimension lists and returns an empty string
// when the argument is valid, else a message naming it. The bindings turn a
// message into their own error (InvalidArgument, ValueError).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/row_math.h"

namespace corrops {

using Dims = std::vector<int64_t>;

// "[2,5,1]", as TensorFlow prints shapes.
inline std::string DimsString(const Dims& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

// The method names of the C++ bindings, in one place: "pearson", "ccc".
inline std::string ParseMethod(const std::string& name, Method* method) {
  if (name == "pearson") {
    *method = Method::kPearson;
    return "";
  }
  if (name == "ccc") {
    *method = Method::kCcc;
    return "";
  }
  return "method must be 'pearson' or 'ccc', got '" + name + "'";
}

inline std::string CheckEps(double eps) {
  if (std::isfinite(eps) && eps > 0.0) return "";
  return "eps must be finite and > 0, got " + std::to_string(eps);
}

// The data layouts the engine's bindings take: (outer, time, groups,
// channels), or (outer, time, channels) and (outer, time) with one group.
// Fills `layout` from y_true's and y_pred's shapes.
inline std::string CheckData(const Dims& y_true, const Dims& y_pred, Layout* layout) {
  const size_t rank = y_pred.size();
  if (y_true.size() != rank || rank < 2 || rank > 4)
    return "y_true and y_pred must have rank 4 (outer, time, groups, channels), 3 (outer, "
           "time, channels) or 2 (outer, time); got y_true " +
           DimsString(y_true) + " and y_pred " + DimsString(y_pred);
  if (y_true != y_pred)
    return "y_true and y_pred must have the same shape; got y_true " + DimsString(y_true) +
           " and y_pred " + DimsString(y_pred);
  layout->outer = y_pred[0];
  layout->time = y_pred[1];
  layout->groups = rank == 4 ? y_pred[2] : 1;
  layout->channels = rank >= 3 ? y_pred[rank - 1] : 1;
  return "";
}

// The loss shape: the data shape without its channel axis.
inline Dims LossDims(const Layout& layout, size_t data_rank) {
  if (data_rank == 4) return {layout.outer, layout.time, layout.groups};
  return {layout.outer, layout.time};
}

// The mask: the loss shape with has_mask, else the empty [0].
inline std::string CheckMask(const Dims& mask, bool has_mask, const Layout& layout,
                             size_t data_rank) {
  if (!has_mask) {
    if (mask == Dims{0}) return "";
    return "mask must have shape [0] when has_mask is false, got " + DimsString(mask);
  }
  const Dims want = LossDims(layout, data_rank);
  if (mask == want) return "";
  return "mask must have shape " + DimsString(want) + " (the loss shape), got " + DimsString(mask);
}

// The upstream gradient: the loss shape, or that shape with time 1 when it is
// constant along time (*time_const is then true, unless time == 1, where the
// two shapes are the same thing).
inline std::string CheckGrad(const Dims& grad, const Layout& layout, size_t data_rank,
                             bool* time_const) {
  const Dims want = LossDims(layout, data_rank);
  Dims want_const = want;
  want_const[1] = 1;
  *time_const = layout.time != 1 && grad == want_const;
  if (grad == want || *time_const) return "";
  return "grad must have the loss shape " + DimsString(want) + " (or " + DimsString(want_const) +
         " when constant along time), got " + DimsString(grad);
}

// The forward's per-row statistics: (outer, groups * channels, kStatsPerRow).
inline std::string CheckStats(const Dims& stats, const Layout& layout) {
  const Dims want{layout.outer, layout.inner(), kStatsPerRow};
  if (stats == want) return "";
  return "stats must have shape " + DimsString(want) + ", got " + DimsString(stats);
}

// The gradient op's `loss` operand: the forward's loss, or [0] (none). Its
// values are never read; the TF CPU kernel may write a gradient into it.
inline std::string CheckLossDonor(const Dims& loss, const Layout& layout, size_t data_rank) {
  const Dims want = LossDims(layout, data_rank);
  if (loss == want || loss == Dims{0}) return "";
  return "loss must be the forward's loss " + DimsString(want) + " or have shape [0], got " +
         DimsString(loss);
}

}  // namespace corrops
