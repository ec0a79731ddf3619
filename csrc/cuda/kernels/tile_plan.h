// Launch geometry of the CUDA kernels for a layout (plain C++: the device
// launchers, the host execution and the occupancy table of docs/GPU.md all
// take it from here).
//
// The data is (outer, time, inner) with inner = groups * channels contiguous;
// a row is one (outer, inner index) column along time. A tile is the work of
// one block: `rows` outer indices x `cols` adjacent inner indices x one chunk
// of `lanes * kItems` time steps. Thread tid has column tid % cols, time lane
// (tid / cols) % lanes and tile row tid / (cols * lanes), so adjacent threads
// read adjacent addresses (the inner axis, then time): every layout is read
// coalesced. Each thread keeps its kItems steps of the chunk in registers.
//
// - Short rows (time <= lanes * kItems for the widest lane count): one chunk
//   per row, several outer indices to a block; the statistics, the loss and
//   the gradient come from the registers (inputs read once).
// - Long rows: split into chunks across blocks; per-(row, chunk) partials are
//   merged in chunk order by one thread per row (deterministic, no float
//   atomics), then a second pass over the tiles writes the loss, and an
//   elementwise kernel the gradient (inputs read twice).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "core/row_math.h"
#include "cuda/kernels/exec.h"

namespace corrops {
namespace cuda {

constexpr int kItems = 16;  // time steps per thread and chunk, at most
// With 8-byte accumulation, 8: 16 doubles of x and 16 of y per thread leave
// too few registers for the rest of a tile kernel.
constexpr int max_items(size_t accumulator_bytes) { return accumulator_bytes == 8 ? 8 : kItems; }
// Enough blocks to keep every SM of the largest GPUs busy with two blocks;
// short rows are packed fewer to a block, or with fewer steps per thread,
// until a launch has this many blocks or a block reaches kMinThreads.
constexpr int64_t kTargetBlocks = 264;
constexpr int kMinThreads = 128;
constexpr int kMinItems = 4;

struct TilePlan {
  int cols = 1;             // inner indices per tile
  int lanes = 1;            // time lanes per tile (a power of two)
  int rows = 1;             // outer indices per tile
  int items = kItems;       // steps per lane and chunk (<= max_items)
  int64_t chunk = 0;        // time steps per chunk: lanes * items
  int64_t chunks = 1;       // chunks per row (>= 1)
  int64_t col_tiles = 1;    // ceil(inner / cols)
  int64_t outer_tiles = 0;  // ceil(outer / rows)
  // The tile kernels write the loss themselves: each tile holds whole
  // channel groups (the loss is their mean).
  bool whole_groups = false;

  CORROPS_KERNEL_FN int threads() const { return rows * lanes * cols; }
  CORROPS_KERNEL_FN int64_t blocks() const { return outer_tiles * col_tiles * chunks; }
  CORROPS_KERNEL_FN bool one_pass() const { return chunks == 1; }
  // The forward tile kernel writes the loss from its registers.
  CORROPS_KERNEL_FN bool fused_loss() const { return one_pass() && whole_groups; }
};

// The tile a block works on.
struct Tile {
  int64_t o0, j0, t0, t1;  // first outer index, first inner index, steps [t0, t1)
  int64_t chunk;
};

// Where a thread of a tile is.
struct Lane {
  int row, col, lane;  // within the tile
  int64_t o, j;        // outer and inner index
  int64_t grp;         // j's group: j / channels
  int chan;            // j's channel: j % channels
  bool active;         // o < outer and j < inner
};

CORROPS_KERNEL_FN Tile tile_of(const TilePlan& p, const Layout& l, int64_t block) {
  const int64_t ch = block % p.chunks, rest = block / p.chunks;
  const int64_t ct = rest % p.col_tiles, ot = rest / p.col_tiles;
  Tile t;
  t.o0 = ot * p.rows;
  t.j0 = ct * p.cols;
  t.t0 = ch * p.chunk;
  t.t1 = t.t0 + p.chunk < l.time ? t.t0 + p.chunk : l.time;
  t.chunk = ch;
  return t;
}

CORROPS_KERNEL_FN Lane lane_of(const TilePlan& p, const Layout& l, const Tile& t, int tid) {
  Lane q;
  q.col = tid % p.cols;
  q.lane = (tid / p.cols) % p.lanes;
  q.row = tid / (p.cols * p.lanes);
  q.o = t.o0 + q.row;
  q.j = t.j0 + q.col;
  // 32-bit division (inner < 2^31, make_tile_plan's precondition): a 64-bit
  // one is a subroutine call on GPUs, and its stack frame spills registers.
  const uint32_t grp = static_cast<uint32_t>(q.j) / static_cast<uint32_t>(l.channels);
  q.grp = grp;
  q.chan = static_cast<int>(static_cast<uint32_t>(q.j) - grp * static_cast<uint32_t>(l.channels));
  q.active = q.o < l.outer && q.j < l.inner();
  return q;
}

inline int floor_pow2(int64_t v) {
  int p = 1;
  while (2 * static_cast<int64_t>(p) <= v) p *= 2;
  return p;
}

// Whether the kernels can run layout l: a tile's indices in 32 bits.
inline bool plan_fits(const Layout& l) { return l.inner() < (int64_t{1} << 31); }

inline int ceil_pow2(int64_t v) {
  int p = 1;
  while (p < v) p *= 2;
  return p;
}

// The geometry for layout l (rows() > 0, inner() < 2^31: plan_fits), with at
// most `items` steps per thread (max_items of the accumulation type).
inline TilePlan make_tile_plan(const Layout& l, int items) {
  TilePlan p;
  const int64_t inner = l.inner(), c = l.channels;
  if (inner <= kBlockThreads)
    p.cols = static_cast<int>(inner);
  else if (c <= kBlockThreads)
    p.cols = static_cast<int>((kBlockThreads / c) * c);  // whole channel groups
  else
    p.cols = kBlockThreads;  // a group spans tiles: LossPass averages it
  p.whole_groups = p.cols % c == 0;
  p.col_tiles = (inner + p.cols - 1) / p.cols;
  const int wide = floor_pow2(kBlockThreads / p.cols);
  const int64_t time = std::max<int64_t>(l.time, 1);
  auto lanes_for = [&](int k) { return ceil_pow2((time + k - 1) / k); };
  auto blocks = [&](int rows) { return (l.outer + rows - 1) / rows * p.col_tiles; };
  p.items = items;
  if (lanes_for(items) > wide) {  // long rows: chunks of the widest tile
    p.lanes = wide;
    p.chunk = static_cast<int64_t>(wide) * items;
    p.chunks = (l.time + p.chunk - 1) / p.chunk;
    p.rows = 1;
  } else {
    // Rows of one chunk: as many outer indices to a block as the lanes
    // leave room for, then fewer (down to kMinThreads a block) and fewer
    // steps per thread (down to kMinItems) while the launch is short of
    // kTargetBlocks.
    p.lanes = lanes_for(items);
    p.rows = static_cast<int>(std::min<int64_t>(wide / p.lanes, l.outer));
    while (blocks(p.rows) < kTargetBlocks) {
      if (p.rows > 1 && (p.rows / 2) * p.lanes * p.cols >= kMinThreads) {
        p.rows /= 2;
      } else if (p.items > kMinItems && lanes_for(p.items / 2) <= wide) {
        p.items /= 2;
        p.lanes = lanes_for(p.items);
        p.rows = std::max(1, std::min(p.rows, wide / p.lanes));
      } else {
        break;
      }
    }
    p.rows = std::max(p.rows, 1);
    p.chunk = static_cast<int64_t>(p.lanes) * p.items;
    p.chunks = 1;
  }
  p.outer_tiles = (l.outer + p.rows - 1) / p.rows;
  return p;
}

// Scratch memory of a call, in bytes; the sections are 256-byte aligned.
constexpr size_t kScratchAlign = 256;
CORROPS_KERNEL_FN size_t align_up(size_t n) {
  return (n + kScratchAlign - 1) / kScratchAlign * kScratchAlign;
}

}  // namespace cuda
}  // namespace corrops
