// CPU kernels of Corrops>CorrLoss and Corrops>CorrLossGrad: the kernel
// classes of corr_loss_cpu_kernels.h running csrc/core's engine.
#include <cstdint>
#include <type_traits>

#include "core/cpu_dispatch.h"
#include "tensorflow/core/framework/register_types.h"
#include "tf/corr_loss_cpu_kernels.h"

namespace corrops {
namespace {

using ::tensorflow::Status;

// Eigen::half as the IEEE binary16 bits the core's binary16 entry points take.
static_assert(sizeof(Eigen::half) == sizeof(uint16_t), "Eigen::half is binary16");
template <typename T>
const uint16_t* Bits(const T* p) {
  return reinterpret_cast<const uint16_t*>(p);
}
template <typename T>
uint16_t* Bits(T* p) {
  return reinterpret_cast<uint16_t*>(p);
}

// The fused engine (csrc/core), with its binary16 entry points for half.
struct FusedEngine {
  static Status Check(const Layout&) { return ::tensorflow::OkStatus(); }

  template <typename T>
  static void Forward(const Layout& l, Method method, double eps, const T* x, const T* y,
                      const bool* m, T* out, double* st, int64_t begin, int64_t end) {
    if constexpr (std::is_same_v<T, Eigen::half>)
      if (corr_loss_forward_binary16(l, method, eps, Bits(x), Bits(y), m, Bits(out), st, begin,
                                     end))
        return;
    corr_loss_forward<T>(l, method, eps, x, y, m, out, st, begin, end);
  }

  template <typename T>
  static void Backward(const Layout& l, Method method, double eps, const T* g, const T* x,
                       const T* y, const bool* m, const double* st, T* gx, T* gy, int64_t begin,
                       int64_t end, bool time_const) {
    if constexpr (std::is_same_v<T, Eigen::half>)
      if (corr_loss_backward_binary16(l, method, eps, Bits(g), Bits(x), Bits(y), m, st, Bits(gx),
                                      Bits(gy), begin, end, time_const))
        return;
    corr_loss_backward<T>(l, method, eps, g, x, y, m, st, gx, gy, begin, end, time_const);
  }
};

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
