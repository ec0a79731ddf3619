// Explicit instantiation of one engine copy's entry points (float, double),
// used inside that copy's namespace by cpu_engine_avx2.cc and
// cpu_engine_avx512.cc; cpu_dispatch.h declares them.
#pragma once

#define CORROPS_INSTANTIATE_ENGINE(T)                                                              \
  template void corr_loss_forward<T>(const Layout&, Method, double, const T*, const T*,            \
                                     const bool*, T*, double*, int64_t, int64_t);                  \
  template void corr_loss_backward<T>(const Layout&, Method, double, const T*, const T*, const T*, \
                                      const bool*, const double*, T*, T*, int64_t, int64_t, bool);
