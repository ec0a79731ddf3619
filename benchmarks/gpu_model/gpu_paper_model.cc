// The CUDA kernels on paper: for each shape of docs/GPU.md, the launch
// geometry the launchers use (csrc/cuda/kernels/tile_plan.h, the same plan),
// the bytes each kernel moves, and the time those bytes take at an H100's
// bandwidth; and the same for the previous kernel design (one block per
// contiguous row, one thread per strided row), for comparison. float32, no
// mask; forward, and backward with a per-step upstream gradient.
//
//   gpu_paper_model            a Markdown table per design (docs/GPU.md)
//
// The model: a kernel's time is at least its bytes over the device's
// bandwidth, scaled by the share of SMs its blocks can occupy (a kernel of
// 8 blocks gets at most 8/132 of the bandwidth). Traffic counts every byte
// each kernel reads or writes once per read (no cache reuse between
// kernels), and a scattered 4-byte read as the 32-byte sector it fetches.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/row_math.h"
#include "cuda/kernels/launch_sequence.h"
#include "cuda/kernels/tile_plan.h"

namespace {

using corrops::Layout;
namespace cu = corrops::cuda;

constexpr double kSms = 132;            // H100 SXM
constexpr double kBandwidth = 3.35e12;  // bytes/s
constexpr double kElem = 4;             // float32
constexpr double kStatsBytes = 7 * 8;

struct Kernel {
  double blocks, threads, bytes;
};

// The time the kernels' bytes take at the bandwidth their SM share allows.
double BoundMicros(const std::vector<Kernel>& ks) {
  double s = 0;
  for (const Kernel& k : ks) s += k.bytes / (kBandwidth * std::min(1.0, k.blocks / kSms));
  return s * 1e6;
}
double Bytes(const std::vector<Kernel>& ks) {
  double b = 0;
  for (const Kernel& k : ks) b += k.bytes;
  return b;
}

// The fewest bytes: read x and y, write the loss (forward); read g, x and y,
// write both gradients (backward).
double MinForward(const Layout& l) {
  return kElem * (2.0 * l.elements() + l.loss_elements()) + kStatsBytes * l.rows();
}
double MinBackward(const Layout& l) {
  return kElem * (4.0 * l.elements() + l.loss_elements()) + kStatsBytes * l.rows();
}

std::vector<Kernel> TiledForward(const Layout& l) {
  const cu::TilePlan p = cu::plan_for<float>(l);
  const double e = l.elements(), loss = l.loss_elements(), rows = l.rows();
  std::vector<Kernel> ks;
  double tile = kElem * 2 * e;
  if (p.one_pass())
    tile += kStatsBytes * rows;
  else
    tile += sizeof(cu::Partial<float>) * rows * p.chunks;
  if (p.fused_loss())
    tile += kElem * loss;
  else if (p.one_pass())
    tile += sizeof(cu::LossRow<float>) * rows;
  ks.push_back({double(p.blocks()), double(p.threads()), tile});
  if (!p.one_pass())
    ks.push_back({std::ceil(rows / 256), 256,
                  rows * (sizeof(cu::Partial<float>) * p.chunks + kStatsBytes +
                          sizeof(cu::LossRow<float>))});
  const double again = kElem * (2 * e + loss) + sizeof(cu::LossRow<float>) * rows;
  if (!p.fused_loss() && p.whole_groups)
    ks.push_back({double(p.blocks()), double(p.threads()), again});  // LossTile
  else if (!p.fused_loss())
    ks.push_back({std::ceil(loss * cu::kLossPassWidth / 256), 256, again});  // LossPass
  return ks;
}

std::vector<Kernel> TiledBackward(const Layout& l) {
  const cu::TilePlan p = cu::plan_for<float>(l);
  const double e = l.elements(), loss = l.loss_elements(), rows = l.rows();
  std::vector<Kernel> ks;
  const double read = kElem * (2 * e + loss) + kStatsBytes * rows;
  if (p.one_pass()) {
    ks.push_back({double(p.blocks()), double(p.threads()), read + kElem * 2 * e});
    return ks;
  }
  ks.push_back(
      {double(p.blocks()), double(p.threads()), read + sizeof(cu::Sums3<float>) * rows * p.chunks});
  ks.push_back(
      {std::ceil(rows / 256), 256,
       rows * (sizeof(cu::Sums3<float>) * p.chunks + kStatsBytes + sizeof(cu::GradRow<float>))});
  ks.push_back(
      {std::ceil(e / 256), 256, kElem * 4 * e + kElem * loss + sizeof(cu::GradRow<float>) * rows});
  return ks;
}

// The previous design. Contiguous rows: one block of 256 threads per row;
// rows of up to 2048 steps read once (kept in registers), longer ones read
// three times (forward: two statistics passes and the loss) or twice
// (backward). Strided rows: the forward one thread per (outer, group), the
// backward one thread per column, each looping over time; reads scattered
// across a warp fetch a 32-byte sector per element.
std::vector<Kernel> PreviousForward(const Layout& l) {
  const double e = l.elements(), loss = l.loss_elements(), rows = l.rows();
  if (l.inner() == 1) {
    const double passes = l.time <= 2048 ? 1 : 3;
    return {{double(l.outer), 256, kElem * (2 * e * passes + loss) + kStatsBytes * rows}};
  }
  const double threads = double(l.outer) * l.groups;
  const double stride = l.groups > 1 ? double(l.channels) : double(l.time) * l.inner();
  const double inflation = std::min(stride, 32 / kElem);
  return {{std::ceil(threads / 256), std::min(threads, 256.0),
           kElem * (3 * 2 * e * inflation + loss) + kStatsBytes * rows}};
}

std::vector<Kernel> PreviousBackward(const Layout& l) {
  const double e = l.elements(), loss = l.loss_elements(), rows = l.rows();
  if (l.inner() == 1) {
    const double passes = l.time <= 2048 ? 1 : 2;
    return {{double(l.outer), 256, kElem * (passes * (2 * e + loss) + 2 * e) + kStatsBytes * rows}};
  }
  const double threads = double(l.outer) * l.inner();
  return {{std::ceil(threads / 256), std::min(threads, 256.0),
           kElem * (2 * (2 * e + e) + 2 * e) + kStatsBytes * rows}};
}

std::string Grid(const std::vector<Kernel>& ks) {
  std::string s;
  for (const Kernel& k : ks) {
    if (!s.empty()) s += " + ";
    s += std::to_string(static_cast<long long>(k.blocks)) + "×" +
         std::to_string(static_cast<long long>(k.threads));
  }
  return s;
}

void Table(const char* title, std::vector<Kernel> (*fwd)(const Layout&),
           std::vector<Kernel> (*bwd)(const Layout&)) {
  const int64_t shapes[][3] = {{20, 100, 1},   {1024, 50, 1},  {64, 1000, 1},
                               {16, 1000, 64}, {256, 2048, 1}, {32, 2048, 8},
                               {256, 4096, 1}, {64, 65536, 1}, {4, 1048576, 1}};
  std::printf("%s\n\n", title);
  std::printf(
      "| shape | MB moved at least (fwd + bwd) | forward blocks×threads | forward bytes / least | "
      "backward blocks×threads | backward bytes / least | tile blocks per SM | bound (µs), fwd + "
      "bwd |\n|---|---|---|---|---|---|---|---|\n");
  for (const auto& s : shapes) {
    const Layout l{s[0], s[1], 1, s[2]};
    const auto f = fwd(l), b = bwd(l);
    const double least = MinForward(l) + MinBackward(l);
    std::printf("| (%lld, %lld, %lld) | %.2f | %s | %.2f | %s | %.2f | %.2f | %.1f + %.1f |\n",
                static_cast<long long>(s[0]), static_cast<long long>(s[1]),
                static_cast<long long>(s[2]), least / 1e6, Grid(f).c_str(),
                Bytes(f) / MinForward(l), Grid(b).c_str(), Bytes(b) / MinBackward(l),
                f[0].blocks / kSms, BoundMicros(f), BoundMicros(b));
  }
  std::printf("\n");
}

}  // namespace

int main() {
  Table("Tiled kernels (csrc/cuda/kernels)", TiledForward, TiledBackward);
  Table("Previous kernels (a block per contiguous row, a thread per strided row)", PreviousForward,
        PreviousBackward);
  return 0;
}
