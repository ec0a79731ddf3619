// CPU kernels of Corrops>CorrLoss and Corrops>CorrLossGrad: the kernel
// classes of corr_loss_cpu_kernels.h running csrc/core's engine. TF's 16-bit
// types run as the engine's own (the same bits), as in the custom calls.
#include "host/fused_engine.h"
#include "tensorflow/core/framework/register_types.h"
#include "tf/corr_loss_cpu_kernels.h"

namespace corrops {

template <>
struct EngineElement<Eigen::half> {
  using type = Binary16;
};
template <>
struct EngineElement<Eigen::bfloat16> {
  using type = Bfloat16;
};

namespace {

#define CORROPS_REGISTER_CPU(T)                                                             \
  REGISTER_KERNEL_BUILDER(                                                                  \
      Name("Corrops>CorrLoss").Device(::tensorflow::DEVICE_CPU).TypeConstraint<T>("T"),     \
      (CorrLossOp<T, FusedEngine>));                                                        \
  REGISTER_KERNEL_BUILDER(                                                                  \
      Name("Corrops>CorrLossGrad").Device(::tensorflow::DEVICE_CPU).TypeConstraint<T>("T"), \
      (CorrLossGradOp<T, FusedEngine>));

CORROPS_REGISTER_CPU(Eigen::half)
CORROPS_REGISTER_CPU(Eigen::bfloat16)
CORROPS_REGISTER_CPU(float)
CORROPS_REGISTER_CPU(double)
#undef CORROPS_REGISTER_CPU

}  // namespace
}  // namespace corrops
