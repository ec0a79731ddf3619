// cpu_reference.h over csrc/core's engine: every work unit of the call on the
// calling thread.
#include "cuda/tests/cpu_reference.h"

#include <algorithm>

#include "core/cpu_dispatch.h"

namespace corrops::check {

void cpu_forward(const Layout& l, Method method, double eps, const double* y_true,
                 const double* y_pred, const bool* mask, double* loss, double* stats) {
  if (loss_is_all_zero(l)) std::fill(loss, loss + l.loss_elements(), 0.0);
  corr_loss_forward<double>(l, method, eps, y_true, y_pred, mask, loss, stats, 0,
                            num_work_units(l));
}

void cpu_totals(const Layout& l, Method method, double eps, const double* stats, double* totals) {
  corr_loss_totals<double>(l, method, eps, stats, totals, 0, l.outer);
}

void cpu_backward(const Layout& l, Method method, double eps, const double* grad,
                  const double* y_true, const double* y_pred, const bool* mask, const double* stats,
                  double* grad_true, double* grad_pred, bool grad_time_const) {
  corr_loss_backward<double>(l, method, eps, grad, y_true, y_pred, mask, stats, grad_true,
                             grad_pred, 0, num_work_units(l), grad_time_const);
}

}  // namespace corrops::check
