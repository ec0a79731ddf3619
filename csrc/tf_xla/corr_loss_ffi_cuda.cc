// Registers the "CUDA" handlers of the corrops custom calls
// (xla_ffi/cuda_handlers.h) with TF's XLA FFI registry when the library
// loads. Compiled only when CMake finds CUDA (GOOGLE_CUDA=1).
#if GOOGLE_CUDA
#include "xla_ffi/corr_loss_custom_call.h"
#include "xla_ffi/cuda_handlers.h"

namespace corrops {
namespace {

XLA_FFI_DEFINE_HANDLER(kForwardCuda, ForwardCuda, ForwardCudaBinding());
XLA_FFI_DEFINE_HANDLER(kBackwardCuda, BackwardCuda, BackwardCudaBinding());

XLA_FFI_REGISTER_HANDLER(XLA_FFI_GetApi(), kForwardTarget, "CUDA", kForwardCuda);
XLA_FFI_REGISTER_HANDLER(XLA_FFI_GetApi(), kBackwardTarget, "CUDA", kBackwardCuda);

}  // namespace
}  // namespace corrops
#endif  // GOOGLE_CUDA
