// IEEE binary16 entry points of the CPU engine (cpu_dispatch.cc), apart from
// cpu_dispatch.h so that code compiling its own engine copy (the
// engine_passes benchmark) can call them too.
#pragma once

#include <cstdint>

#include "core/row_math.h"

namespace corrops {

// IEEE binary16 (e.g. Eigen::half, passed as its bits) through the AVX2
// copy: each work unit's outer slab is widened to float with F16C and run by
// the AVX2 float engine. Returns false, doing nothing, when the active copy
// is the generic one or a work unit is not a whole slab (more than 64 columns per slab,
// see num_work_units); the caller then runs the portable engine on its own
// half type. Same work units, so any split of [begin, end) is allowed. The
// time-constant backward of unmasked one-column rows skips the slab copies
// (binary16_unit_g_row, cpu_engine_avx2.cc), with the same bits.
bool corr_loss_forward_binary16(const Layout& l, Method method, double eps, const uint16_t* y_true,
                                const uint16_t* y_pred, const bool* mask, uint16_t* loss,
                                double* stats, int64_t begin, int64_t end);
bool corr_loss_backward_binary16(const Layout& l, Method method, double eps, const uint16_t* grad,
                                 const uint16_t* y_true, const uint16_t* y_pred, const bool* mask,
                                 const double* stats, uint16_t* grad_true, uint16_t* grad_pred,
                                 int64_t begin, int64_t end, bool grad_time_const = false);

}  // namespace corrops
