#include "core/cpu_dispatch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace corrops {
namespace {

bool cpu_has_avx2_fma() {
#if defined(CORROPS_HAVE_AVX2_ENGINE) && (defined(__GNUC__) || defined(__clang__))
  // libgcc's cpu model also checks that the OS saves the AVX registers.
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

CpuIsa initial_isa() {
  const char* want = std::getenv("CORROPS_CPU_ISA");
  if (want != nullptr && std::strcmp(want, "generic") == 0) return CpuIsa::kGeneric;
  return cpu_has_avx2_fma() ? CpuIsa::kAvx2 : CpuIsa::kGeneric;
}

std::atomic<CpuIsa>& isa_slot() {
  static std::atomic<CpuIsa> slot{initial_isa()};
  return slot;
}

}  // namespace

CpuIsa active_cpu_isa() { return isa_slot().load(std::memory_order_relaxed); }

bool cpu_isa_available(CpuIsa isa) { return isa == CpuIsa::kGeneric || cpu_has_avx2_fma(); }

bool set_cpu_isa(CpuIsa isa) {
  if (!cpu_isa_available(isa)) return false;
  isa_slot().store(isa, std::memory_order_relaxed);
  return true;
}

const char* cpu_isa_name(CpuIsa isa) { return isa == CpuIsa::kAvx2 ? "avx2" : "generic"; }

}  // namespace corrops
