// The CUDA kernels' source executed on the CPU (cuda/kernels/exec.h's host
// execution): every launcher (forward; backward with a per-step upstream
// gradient; backward with one constant along time) on every element type,
// with the launch geometry the device uses, over each layout class the plan
// distinguishes (short rows packed several to a block, long rows split into
// chunks, channels and groups read coalesced, more than a block's width of
// columns, channel groups wider than a block) and the edge cases of
// docs/DESIGN.md (kernel_cases.h), against the CPU engine in float64 on the
// same rounded inputs. Each call runs twice and must give the same bits.
//
// Exit status 0 when every comparison holds, 1 otherwise.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>

#include "cuda/kernels/elements.h"
#include "cuda/kernels/exec.h"
#include "cuda/tests/kernel_cases.h"

namespace {

using namespace corrops::check;  // NOLINT: the test's own vocabulary
using corrops::Method;
using corrops::cuda::Bfloat16;
using corrops::cuda::Half;

template <typename T>
bool CheckCase(const Case& c, Method method, std::mt19937_64& rng) {
  if (!Applies<T>(c)) return true;
  const Inputs in = MakeInputs(c, rng);
  const Rounded<T> r = RoundAll<T>(in);
  const double eps = EpsFor<T>(c.data);
  const Reference want = ReferenceFor<T>(c.layout, method, eps, r, in.mask);
  corrops::cuda::HostLaunch launch;
  HostMem mem;
  const Outputs<T> a = RunKernels<T>(mem, launch, c.layout, method, eps, r, in.mask);
  const Outputs<T> b = RunKernels<T>(mem, launch, c.layout, method, eps, r, in.mask);
  std::string report;
  const bool ok =
      MatchesReference(c.layout, a, want, &report) && SameOutputs("two runs", a, b, &report);
  PrintResult<T>(ok, c, method, report);
  return ok;
}

template <typename T>
int CheckType(std::mt19937_64& rng) {
  int failures = 0;
  for (const Case& c : kCases)
    for (Method m : {Method::kPearson, Method::kCcc}) failures += !CheckCase<T>(c, m, rng);
  return failures;
}

// The host binary16 and bfloat16 conversions round to nearest even, as
// CUDA's __float2half_rn and __float2bfloat16_rn.
int CheckConversions() {
  struct HalfCase {
    float in;
    uint16_t bits;
  };
  const HalfCase half_cases[] = {
      {0.0f, 0x0000},      {-0.0f, 0x8000},         {1.0f, 0x3c00},         {65504.0f, 0x7bff},
      {65520.0f, 0x7c00},  {65519.0f, 0x7bff},      {1e-8f, 0x0000},        {5.9604645e-8f, 0x0001},
      {2.98e-8f, 0x0000},  {1.0004883f, 0x3c00},    {1.0014648f, 0x3c02},   {INFINITY, 0x7c00},
      {-INFINITY, 0xfc00}, {6.1035156e-5f, 0x0400}, {3.0517578e-5f, 0x0200}};
  int failures = 0;
  for (const auto& c : half_cases) {
    const uint16_t got = corrops::cuda::store<Half>(c.in).bits;
    if (got != c.bits) {
      std::printf("FAIL float16 rounding of %.9g: 0x%04x, want 0x%04x\n", c.in, got, c.bits);
      ++failures;
    }
    if (std::isfinite(c.in) && c.bits != 0x7c00 &&
        Bits(static_cast<float>(ToDouble(Half::from_bits(c.bits)))) !=
            Bits(corrops::cuda::to_acc(Half::from_bits(c.bits)))) {
      ++failures;
    }
  }
  for (uint32_t b = 0; b < 0x7c00u; b += 7) {  // finite halves round-trip exactly
    const float f = corrops::cuda::to_acc(Half::from_bits(static_cast<uint16_t>(b)));
    if (corrops::cuda::store<Half>(f).bits != b) {
      std::printf("FAIL float16 round trip of 0x%04x\n", b);
      ++failures;
      break;
    }
  }
  if (!std::isnan(corrops::cuda::to_acc(corrops::cuda::store<Half>(NAN))) ||
      !std::isnan(corrops::cuda::to_acc(corrops::cuda::store<Bfloat16>(NAN)))) {
    std::printf("FAIL NaN does not stay NaN\n");
    ++failures;
  }
  if (corrops::cuda::store<Bfloat16>(1.00390625f).bits != 0x3f80 ||  // tie to even
      corrops::cuda::store<Bfloat16>(1.01171875f).bits != 0x3f82) {
    std::printf("FAIL bfloat16 rounding\n");
    ++failures;
  }
  std::printf("%-4s binary16 and bfloat16 conversions\n", failures ? "FAIL" : "ok");
  return failures;
}

}  // namespace

int main() {
  std::mt19937_64 rng(12345);
  const int failures = CheckConversions() + CheckType<float>(rng) + CheckType<double>(rng) +
                       CheckType<Half>(rng) + CheckType<Bfloat16>(rng);
  std::printf("cuda_kernels_on_host: %d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
