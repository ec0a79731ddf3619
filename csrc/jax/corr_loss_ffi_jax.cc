// The corrops custom calls for JAX: the "Host" handlers of
// xla_ffi/host_handlers.h built against jaxlib's FFI headers
// (jax.ffi.include_dir()), exported as C symbols that corrops/jax.py
// registers with jax.ffi.register_ffi_target for the "cpu" platform. The same
// handler code as TF's custom calls, so JAX gets the same bits.
#include "xla_ffi/host_handlers.h"

XLA_FFI_DEFINE_HANDLER_SYMBOL(CorropsCorrLossForwardCpu, corrops::ForwardHost,
                              corrops::ForwardBinding<xla::ffi::ThreadPool>());
XLA_FFI_DEFINE_HANDLER_SYMBOL(CorropsCorrLossBackwardCpu, corrops::BackwardHost,
                              corrops::BackwardBinding<xla::ffi::ThreadPool>());
