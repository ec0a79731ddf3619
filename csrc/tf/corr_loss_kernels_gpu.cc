// GPU kernels: validate and allocate as the CPU kernels do, then launch
// csrc/cuda on the op's stream; a launch failure becomes an op error.
// Compiled only when CMake finds CUDA (GOOGLE_CUDA=1).
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include "cuda/corr_loss_cuda.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tf/corr_loss_validate.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace corrops {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

// TF element type -> the CUDA type of the same bits.
template <typename T>
struct CudaType {
  using type = T;
};
template <>
struct CudaType<Eigen::half> {
  using type = __half;
};
template <>
struct CudaType<Eigen::bfloat16> {
  using type = __nv_bfloat16;
};

template <typename T>
const typename CudaType<T>::type* Dev(const Tensor& t) {
  return reinterpret_cast<const typename CudaType<T>::type*>(t.flat<T>().data());
}
template <typename T>
typename CudaType<T>::type* Dev(Tensor* t) {
  return reinterpret_cast<typename CudaType<T>::type*>(t->flat<T>().data());
}

template <typename T>
typename CudaType<T>::type* DevPtr(T* p) {  // null stays null (gradient not wanted)
  return reinterpret_cast<typename CudaType<T>::type*>(p);
}

// Scratch memory of `bytes` for the launchers, as a temporary tensor (null
// when 0).
::tensorflow::Status Scratch(OpKernelContext* ctx, size_t bytes, Tensor* holder, void** out) {
  *out = nullptr;
  if (bytes == 0) return ::tensorflow::OkStatus();
  TF_RETURN_IF_ERROR(
      ctx->allocate_temp(::tensorflow::DT_UINT8, {static_cast<int64_t>(bytes)}, holder));
  *out = holder->flat<uint8_t>().data();
  return ::tensorflow::OkStatus();
}

::tensorflow::Status LaunchStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return ::tensorflow::OkStatus();
  return ::tensorflow::errors::Internal("corrops ", what,
                                        " CUDA launch failed: ", cudaGetErrorString(err));
}

template <typename T>
class CorrLossGpuOp : public OpKernel {
 public:
  explicit CorrLossGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) { ReadAttrs(ctx, &attrs_); }

  void Compute(OpKernelContext* ctx) override {
    Layout layout;
    double eps = 0;
    Tensor* loss = nullptr;
    Tensor* stats = nullptr;
    OP_REQUIRES_OK(ctx, PrepareForward(ctx, attrs_, &layout, &eps, &loss, &stats));
    const Tensor& y_true = ctx->input(0);
    const Tensor& y_pred = ctx->input(1);
    const Tensor& mask = ctx->input(2);
    const cudaStream_t stream = ctx->eigen_device<Eigen::GpuDevice>().stream();
    const bool* m = attrs_.has_mask ? mask.flat<bool>().data() : nullptr;
    Tensor scratch;
    void* ws = nullptr;
    OP_REQUIRES_OK(
        ctx, Scratch(ctx, cuda::forward_scratch_bytes<typename CudaType<T>::type>(layout), &scratch,
                     &ws));
    OP_REQUIRES_OK(ctx, LaunchStatus(cuda::corr_loss_forward(
                                         layout, attrs_.method, eps, Dev<T>(y_true), Dev<T>(y_pred),
                                         m, Dev<T>(loss), stats->flat<double>().data(), ws, stream),
                                     "forward"));
  }

 private:
  OpAttrs attrs_;
};

template <typename T>
class CorrLossGradGpuOp : public OpKernel {
 public:
  explicit CorrLossGradGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) { ReadAttrs(ctx, &attrs_); }

  void Compute(OpKernelContext* ctx) override {
    Layout layout;
    double eps = 0;
    T* grad_true = nullptr;
    T* grad_pred = nullptr;
    // No buffer reuse on the GPU: its kernels read g through __restrict__
    // pointers, and TF's GPU allocator makes a fresh buffer cheap anyway.
    bool time_const = false;
    OP_REQUIRES_OK(ctx, PrepareBackward<T>(ctx, attrs_, /*may_reuse_buffers=*/false, &layout, &eps,
                                           &time_const, &grad_true, &grad_pred));
    if (grad_true == nullptr && grad_pred == nullptr) return;
    const cudaStream_t stream = ctx->eigen_device<Eigen::GpuDevice>().stream();
    const Tensor& grad = ctx->input(0);
    const Tensor& y_true = ctx->input(1);
    const Tensor& y_pred = ctx->input(2);
    const Tensor& mask = ctx->input(3);
    const Tensor& stats = ctx->input(4);
    const bool* m = attrs_.has_mask ? mask.flat<bool>().data() : nullptr;
    Tensor scratch;
    void* ws = nullptr;
    OP_REQUIRES_OK(
        ctx,
        Scratch(ctx, cuda::backward_scratch_bytes<typename CudaType<T>::type>(layout, time_const),
                &scratch, &ws));
    OP_REQUIRES_OK(
        ctx, LaunchStatus(cuda::corr_loss_backward(
                              layout, attrs_.method, eps, Dev<T>(grad), Dev<T>(y_true),
                              Dev<T>(y_pred), m, stats.flat<double>().data(), DevPtr<T>(grad_true),
                              DevPtr<T>(grad_pred), time_const, ws, stream),
                          "backward"));
  }

 private:
  OpAttrs attrs_;
};

#define CORROPS_REGISTER_GPU(T)                                 \
  REGISTER_KERNEL_BUILDER(Name("Corrops>CorrLoss")              \
                              .Device(::tensorflow::DEVICE_GPU) \
                              .TypeConstraint<T>("T")           \
                              .HostMemory("eps"),               \
                          CorrLossGpuOp<T>);                    \
  REGISTER_KERNEL_BUILDER(Name("Corrops>CorrLossGrad")          \
                              .Device(::tensorflow::DEVICE_GPU) \
                              .TypeConstraint<T>("T")           \
                              .HostMemory("eps"),               \
                          CorrLossGradGpuOp<T>);

CORROPS_REGISTER_GPU(Eigen::half)
CORROPS_REGISTER_GPU(Eigen::bfloat16)
CORROPS_REGISTER_GPU(float)
CORROPS_REGISTER_GPU(double)
#undef CORROPS_REGISTER_GPU

}  // namespace
}  // namespace corrops
#endif  // GOOGLE_CUDA
