// The autograd kernels of the ops, in C++, so that a training step's
// backward, eager or compiled, runs the fused backward op with no Python in
// between.
// - corr_loss_forward: its gradient is the backward op. The gradient of a
//   mean (one value broadcast along time) reaches it as its time-1 slice, as
//   does the gradient of the loss summed over time (sum_time: its shape is
//   that slice's), and only the gradients autograd needs are computed (a
//   training step: dL/dy_pred alone).
// - corr_loss_backward: with nothing to record (no grad mode, or no input
//   that requires grad: every first-order backward, and torch.compile's
//   backward graph) it runs the kernel directly; otherwise it calls
//   corr_loss_backward_differentiable, the same kernels with the backward's
//   own autograd (second and higher derivatives, through the formula)
//   registered from Python (corrops/torch/_library.py).
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <tuple>

namespace corrops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using TensorPair = std::tuple<at::Tensor, at::Tensor>;

using ForwardSignature = TensorPair(const at::Tensor&, const at::Tensor&,
                                    const std::optional<at::Tensor>&, c10::string_view, double,
                                    bool);

const c10::TypedOperatorHandle<ForwardSignature>& ForwardOp() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("corrops::corr_loss_forward", "")
                             .typed<ForwardSignature>();
  return op;
}

using BackwardSignature = TensorPair(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     const std::optional<at::Tensor>&, const at::Tensor&,
                                     c10::string_view, double, bool, bool);

const c10::TypedOperatorHandle<BackwardSignature>& BackwardOp() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("corrops::corr_loss_backward", "")
                             .typed<BackwardSignature>();
  return op;
}

const c10::TypedOperatorHandle<BackwardSignature>& BackwardDifferentiableOp() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("corrops::corr_loss_backward_differentiable", "")
                             .typed<BackwardSignature>();
  return op;
}

class CorrLoss : public torch::autograd::Function<CorrLoss> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& y_true,
                               const at::Tensor& y_pred, const std::optional<at::Tensor>& mask,
                               c10::string_view method, double eps, bool sum_time) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [loss, stats] = ForwardOp().call(y_true, y_pred, mask, method, eps, sum_time);
    ctx->save_for_backward({y_true, y_pred, mask.value_or(at::Tensor()), stats});
    ctx->saved_data["method"] = std::string(method);
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["has_mask"] = mask.has_value();
    ctx->mark_non_differentiable({stats});
    return {loss, stats};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    at::Tensor grad = grads[0];
    if (grad.dim() == 3 && grad.size(1) > 1 && grad.stride(1) == 0) grad = grad.narrow(1, 0, 1);
    grad = grad.contiguous();
    std::optional<at::Tensor> mask;
    if (ctx->saved_data["has_mask"].toBool()) mask = saved[2];
    const std::string method = ctx->saved_data["method"].toStringRef();
    const double eps = ctx->saved_data["eps"].toDouble();
    const bool want_true = ctx->needs_input_grad(0), want_pred = ctx->needs_input_grad(1);
    // Through the backward op's autograd kernel, which records it only under
    // create_graph.
    const TensorPair out = BackwardOp().call(grad, saved[0], saved[1], mask, saved[3], method, eps,
                                             want_true, want_pred);
    return {want_true ? std::get<0>(out) : at::Tensor(),
            want_pred ? std::get<1>(out) : at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor()};
  }
};

TensorPair ForwardAutograd(const at::Tensor& y_true, const at::Tensor& y_pred,
                           const std::optional<at::Tensor>& mask, c10::string_view method,
                           double eps, bool sum_time) {
  const variable_list out = CorrLoss::apply(y_true, y_pred, mask, method, eps, sum_time);
  return {out[0], out[1]};
}

// The backward op's kernels, below autograd (also the kernel of
// corr_loss_backward_differentiable).
TensorPair BackwardKernels(const at::Tensor& grad, const at::Tensor& y_true,
                           const at::Tensor& y_pred, const std::optional<at::Tensor>& mask,
                           const at::Tensor& stats, c10::string_view method, double eps,
                           bool want_true, bool want_pred) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  return BackwardOp().call(grad, y_true, y_pred, mask, stats, method, eps, want_true, want_pred);
}

TensorPair BackwardAutograd(const at::Tensor& grad, const at::Tensor& y_true,
                            const at::Tensor& y_pred, const std::optional<at::Tensor>& mask,
                            const at::Tensor& stats, c10::string_view method, double eps,
                            bool want_true, bool want_pred) {
  const bool record = at::GradMode::is_enabled() &&
                      (grad.requires_grad() || y_true.requires_grad() || y_pred.requires_grad());
  if (record)
    return BackwardDifferentiableOp().call(grad, y_true, y_pred, mask, stats, method, eps,
                                           want_true, want_pred);
  return BackwardKernels(grad, y_true, y_pred, mask, stats, method, eps, want_true, want_pred);
}

}  // namespace
}  // namespace corrops

TORCH_LIBRARY_IMPL(corrops, Autograd, m) {
  m.impl("corr_loss_forward", &corrops::ForwardAutograd);
  m.impl("corr_loss_backward", &corrops::BackwardAutograd);
}

TORCH_LIBRARY_IMPL(corrops, CompositeExplicitAutograd, m) {
  m.impl("corr_loss_backward_differentiable", &corrops::BackwardKernels);
}
