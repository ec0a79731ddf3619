#include "core/cpu_dispatch.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace corrops {
namespace {

bool cpu_has_avx2_fma() {
#if defined(CORROPS_HAVE_AVX2_ENGINE) && (defined(__GNUC__) || defined(__clang__))
  // libgcc's cpu model also checks that the OS saves the AVX registers.
  __builtin_cpu_init();
  // Every AVX2 CPU so far also has F16C; checked anyway (binary16 path).
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(CORROPS_HAVE_AVX512_ENGINE) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();  // as above, includes the OS's saving of the zmm and mask registers
  return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

CpuIsa best_isa() {
  if (cpu_has_avx512()) return CpuIsa::kAvx512;
  return cpu_has_avx2_fma() ? CpuIsa::kAvx2 : CpuIsa::kGeneric;
}

CpuIsa initial_isa() {
  const char* want = std::getenv("CORROPS_CPU_ISA");
  if (want != nullptr && std::strcmp(want, "generic") == 0) return CpuIsa::kGeneric;
  if (want != nullptr && std::strcmp(want, "avx2") == 0 && cpu_has_avx2_fma()) return CpuIsa::kAvx2;
  return best_isa();
}

std::atomic<CpuIsa>& isa_slot() {
  static std::atomic<CpuIsa> slot{initial_isa()};
  return slot;
}

// The largest cache Linux lists for CPU 0 (/sys/devices/system/cpu/cpu0/
// cache/index*/size: the kernel's reading of CPUID's cache leaves, what
// lscpu prints), 0 where there is none. glibc's sysconf is not used: on some
// virtual machines it reports a 64 MiB L3 for the 8 MiB the kernel lists.
int64_t largest_cache_bytes() {
  int64_t best = 0;
  for (int index = 0; index < 16; ++index) {
    char path[96];
    std::snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
    std::FILE* f = std::fopen(path, "r");
    if (f == nullptr) continue;
    char text[32] = {};
    const bool read = std::fgets(text, sizeof text, f) != nullptr;
    std::fclose(f);
    if (read) best = std::max(best, parse_cache_size(text));
  }
  return best;
}

// A byte count from the environment variable `name` (a decimal integer >= 0),
// or `fallback` where it is unset or not one.
int64_t env_bytes(const char* name, int64_t fallback) {
  const char* want = std::getenv(name);
  if (want != nullptr && *want != '\0') {
    char* end = nullptr;
    const long long v = std::strtoll(want, &end, 10);
    if (end != nullptr && *end == '\0' && v >= 0) return static_cast<int64_t>(v);
  }
  return fallback;
}

// CORROPS_STREAM_STORE_MIN_BYTES (read once) overrides the default.
std::atomic<int64_t>& stream_store_slot() {
  static std::atomic<int64_t> bytes{env_bytes(
      "CORROPS_STREAM_STORE_MIN_BYTES", default_stream_store_min_bytes(largest_cache_bytes()))};
  return bytes;
}

// CORROPS_AVX512_MIN_BYTES (read once) overrides kAvx512MinInputBytes.
std::atomic<int64_t>& avx512_min_slot() {
  static std::atomic<int64_t> bytes{env_bytes("CORROPS_AVX512_MIN_BYTES", kAvx512MinInputBytes)};
  return bytes;
}

}  // namespace

int64_t parse_cache_size(const char* text) {
  if (text == nullptr) return 0;
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || v <= 0) return 0;
  int64_t unit = 1;
  switch (*end) {
    case 'K':
      unit = int64_t{1} << 10;
      break;
    case 'M':
      unit = int64_t{1} << 20;
      break;
    case 'G':
      unit = int64_t{1} << 30;
      break;
    default:
      break;
  }
  if (unit != 1) ++end;
  if (*end != '\0' && *end != '\n') return 0;
  if (v > (int64_t{1} << 62) / unit) return 0;
  return static_cast<int64_t>(v) * unit;
}

int64_t default_stream_store_min_bytes(int64_t largest_cache) {
  constexpr int64_t kTypicalServerL3 = int64_t{32} << 20;
  return largest_cache > 0 ? std::min(kTypicalServerL3, largest_cache) : kTypicalServerL3;
}

int64_t stream_store_min_bytes() { return stream_store_slot().load(std::memory_order_relaxed); }

void set_stream_store_min_bytes(int64_t bytes) {
  stream_store_slot().store(bytes, std::memory_order_relaxed);
}

CpuIsa active_cpu_isa() { return isa_slot().load(std::memory_order_relaxed); }

int64_t avx512_min_input_bytes() { return avx512_min_slot().load(std::memory_order_relaxed); }

void set_avx512_min_input_bytes(int64_t bytes) {
  avx512_min_slot().store(bytes, std::memory_order_relaxed);
}

CpuIsa engine_isa(const Layout& l, int64_t item_bytes) {
  const CpuIsa isa = active_cpu_isa();
  // AVX-512 implies AVX2 (cpu_has_avx512), so the AVX2 copy is there to take over.
  if (isa == CpuIsa::kAvx512 && 2 * l.elements() * item_bytes < avx512_min_input_bytes())
    return CpuIsa::kAvx2;
  return isa;
}

bool cpu_isa_available(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512:
      return cpu_has_avx512();
    case CpuIsa::kAvx2:
      return cpu_has_avx2_fma();
    default:
      return true;
  }
}

bool set_cpu_isa(CpuIsa isa) {
  if (!cpu_isa_available(isa)) return false;
  isa_slot().store(isa, std::memory_order_relaxed);
  return true;
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512:
      return "avx512";
    case CpuIsa::kAvx2:
      return "avx2";
    default:
      return "generic";
  }
}

bool corr_loss_forward_binary16(const Layout& l, Method method, double eps, const uint16_t* y_true,
                                const uint16_t* y_pred, const bool* mask, uint16_t* loss,
                                double* stats, int64_t begin, int64_t end) {
#if defined(CORROPS_HAVE_AVX2_ENGINE)
  if (active_cpu_isa() != CpuIsa::kGeneric && num_work_units(l) == l.outer) {
    avx2::corr_loss_forward_binary16_slabs(l, method, eps, y_true, y_pred, mask, loss, stats, begin,
                                           end);
    return true;
  }
#endif
  return false;
}

bool corr_loss_backward_binary16(const Layout& l, Method method, double eps, const uint16_t* grad,
                                 const uint16_t* y_true, const uint16_t* y_pred, const bool* mask,
                                 const double* stats, uint16_t* grad_true, uint16_t* grad_pred,
                                 int64_t begin, int64_t end, bool grad_time_const) {
#if defined(CORROPS_HAVE_AVX2_ENGINE)
  if (active_cpu_isa() != CpuIsa::kGeneric && num_work_units(l) == l.outer) {
    avx2::corr_loss_backward_binary16_slabs(l, method, eps, grad, y_true, y_pred, mask, stats,
                                            grad_true, grad_pred, begin, end, grad_time_const);
    return true;
  }
#endif
  return false;
}

}  // namespace corrops
