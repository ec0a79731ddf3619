// Registers the "Host" handlers of the corrops custom calls
// (xla_ffi/host_handlers.h) with TF's XLA FFI registry when the library loads.
#include "xla_ffi/corr_loss_custom_call.h"
#include "xla_ffi/host_handlers.h"

namespace corrops {
namespace {

XLA_FFI_DEFINE_HANDLER(kForwardHost, ForwardHost, ForwardBinding<ffi::ThreadPool>());
XLA_FFI_DEFINE_HANDLER(kBackwardHost, BackwardHost, BackwardBinding<ffi::ThreadPool>());

XLA_FFI_REGISTER_HANDLER(XLA_FFI_GetApi(), kForwardTarget, "Host", kForwardHost);
XLA_FFI_REGISTER_HANDLER(XLA_FFI_GetApi(), kBackwardTarget, "Host", kBackwardHost);

}  // namespace
}  // namespace corrops
