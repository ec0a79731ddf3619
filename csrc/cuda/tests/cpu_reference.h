// The CPU engine in float64 over a whole call, for cuda_engine_check.cu: its
// CUDA translation unit includes no engine header (they are host C++ for the
// host compiler), only these declarations.
#pragma once

#include "core/row_math.h"

namespace corrops::check {

void cpu_forward(const Layout& l, Method method, double eps, const double* y_true,
                 const double* y_pred, const bool* mask, double* loss, double* stats);

// The loss summed over time, (outer, groups), from cpu_forward's stats.
void cpu_totals(const Layout& l, Method method, double eps, const double* stats, double* totals);

void cpu_backward(const Layout& l, Method method, double eps, const double* grad,
                  const double* y_true, const double* y_pred, const bool* mask, const double* stats,
                  double* grad_true, double* grad_pred, bool grad_time_const);

}  // namespace corrops::check
