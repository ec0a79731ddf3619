// The corrops custom calls for JAX on CUDA GPUs: the "CUDA" handlers of
// xla_ffi/cuda_handlers.h built against jaxlib's FFI headers, exported as C
// symbols that corrops/jax.py registers with jax.ffi.register_ffi_target for
// the "CUDA" platform. The same handler code and kernels as TF's GPU custom
// calls. Built when both CUDA and jax are found at build time.
#include "xla_ffi/cuda_handlers.h"

XLA_FFI_DEFINE_HANDLER_SYMBOL(CorropsCorrLossForwardCuda, corrops::ForwardCuda,
                              corrops::ForwardCudaBinding());
XLA_FFI_DEFINE_HANDLER_SYMBOL(CorropsCorrLossBackwardCuda, corrops::BackwardCuda,
                              corrops::BackwardCudaBinding());
