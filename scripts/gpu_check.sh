#!/usr/bin/env bash
# Verifies and times corrops on a GPU in one command; without a GPU, runs the
# CUDA kernels' host execution instead and says so. See --help.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'TEXT'
usage: bash scripts/gpu_check.sh [--help]

On a machine with an NVIDIA GPU (nvidia-smi lists one):
  1. sets up .venv and builds corrops with the CUDA kernels (CORROPS_CUDA=on;
     needs nvcc), as scripts/bootstrap.sh;
  2. cuda_engine_check: every CUDA kernel on every dtype and layout class
     against the CPU engine in float64, twice (the same bits), and bitwise
     against the kernels' own host execution;
  3. the GPU tests of the suite: TensorFlow's GPU kernels and XLA custom calls
     (tests/test_cuda.py), JAX's CUDA handlers (tests/test_jax.py, when JAX
     has a GPU), the PyTorch ops' CUDA kernels (tests/test_torch.py, when
     torch is a CUDA build);
  4. benchmarks/gpu_bench.py: the fused op against the naive formula on the
     GPU (tf.function and XLA; corrops.jax against jax.jit), with the
     achieved bandwidth as a fraction of the device's x + y bandwidth;
  then one summary line. Logs in build/gpu_check/.

Without a GPU it says so, builds and runs the host execution of the CUDA
kernels (the ctest cuda_kernels_on_host, the same source run on the CPU),
prints the kernels' occupancy and bandwidth on paper (docs/GPU.md), and
exits 0.
TEXT
}
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

source scripts/quiet.sh
logs=build/gpu_check
mkdir -p "$logs"
if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L 2> /dev/null | grep -q '^GPU'; then
  echo "gpu_check: no GPU here (nvidia-smi lists none): running the CUDA kernels' host execution instead"
  # The C++ compiler and CMake alone (.venv's when scripts/bootstrap.sh made one).
  cmake=.venv/bin/cmake
  [ -x "$cmake" ] || cmake=cmake
  python=.venv/bin/python
  [ -x "$python" ] || python=$(command -v python3)
  "$cmake" -S . -B build/gpu-host -DCORROPS_BUILD_TF=OFF -DCORROPS_BUILD_NUMPY=OFF -DCORROPS_JAX=off -DCORROPS_TORCH=off \
    -DCORROPS_BUILD_CORE_TESTS=ON -DPython3_EXECUTABLE="$python" \
    > "$logs/configure.txt"
  host_build() {
    "$cmake" --build build/gpu-host -j 2 --target cuda_kernels_on_host gpu_paper_model 2>&1 |
      cmake_progress "$logs/build.txt"
  }
  heartbeat "building" host_build
  build/gpu-host/cuda_kernels_on_host > "$logs/host_execution.txt" || {
    grep -v '^ok' "$logs/host_execution.txt"
    echo "gpu_check: the host execution failed (log: $logs/host_execution.txt)"
    exit 1
  }
  build/gpu-host/gpu_paper_model
  echo "gpu_check: no GPU; host execution of the CUDA kernels: $(tail -n 1 "$logs/host_execution.txt" | sed 's/^cuda_kernels_on_host: //')," \
    "$(grep -c '^ok' "$logs/host_execution.txt") checks passed"
  exit 0
fi

nvidia-smi -L
start=$SECONDS
failed=0
echo "== build with CUDA"
CORROPS_CUDA=on bash scripts/bootstrap.sh
echo "== cuda_engine_check: device against the CPU engine and the host execution"
if build/cmake/cuda_engine_check > "$logs/cuda_engine_check.txt"; then engine="passed"; else
  engine="FAILED"
  failed=1
  grep -v '^ok' "$logs/cuda_engine_check.txt" | head -n 40
fi
tail -n 1 "$logs/cuda_engine_check.txt"
echo "== GPU tests: tests/test_cuda.py, tests/test_jax.py, tests/test_torch.py"
if .venv/bin/python -m pytest tests/test_cuda.py tests/test_jax.py tests/test_torch.py -q \
  -p no:cacheprovider \
  -rs > "$logs/pytest.txt" 2>&1; then tests="passed"; else
  tests="FAILED"
  failed=1
fi
tail -n 15 "$logs/pytest.txt"
echo "== GPU timings: benchmarks/gpu_bench.py"
if .venv/bin/python -m benchmarks.gpu_bench | tee "$logs/gpu_bench.txt"; then bench="ran"; else
  bench="FAILED"
  failed=1
fi
echo "gpu_check: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1):" \
  "cuda_engine_check $engine; GPU tests $tests ($(tail -n 1 "$logs/pytest.txt"));" \
  "timings $bench; $((SECONDS - start)) s"
exit $failed
