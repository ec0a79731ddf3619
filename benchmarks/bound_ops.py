"""The memory-pattern bound ops (benchmarks only): built, loaded and wired.

The bound ops (benchmarks/bound_ops_src/memory_pattern_bound_ops.cc) have the
fused ops' interface and move exactly their bytes, computing products of their
inputs instead of a loss. They live in a library of their own, which `pip
install .` never builds or installs: `load()` configures a CMake build of it
under build/bench-ops against the running TensorFlow (CMake rebuilds only
what changed), loads it, and registers the forward's gradient exactly as the
fused op's (corrops.tensorflow._fused.grad_of_forward).
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import tensorflow as tf

import corrops
from corrops.tensorflow import _fused

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / "build" / "bench-ops"
LIBRARY = BUILD_DIR / "_corrops_bench_ops.so"
OP_NAME = "Corrops>MemoryPatternBound"


def build() -> Path:
    """Builds the bound op library (if out of date) and returns its path."""
    cmake = Path(sys.executable).with_name("cmake")
    cmake_cmd = str(cmake) if cmake.exists() else "cmake"
    configure = [
        cmake_cmd,
        "-S",
        str(ROOT),
        "-B",
        str(BUILD_DIR),
        "-DCORROPS_BUILD_BENCH_OPS=ON",
        "-DCORROPS_BUILD_NUMPY=OFF",
        "-DCORROPS_CUDA=off",
        "-DCORROPS_JAX=off",
        "-DCORROPS_TORCH=off",
        f"-DCORROPS_OUTPUT_DIR={BUILD_DIR}",  # the build info stays out of the package
        f"-DPython3_EXECUTABLE={sys.executable}",
        "-DCMAKE_BUILD_TYPE=Release",
    ]
    for cmd in (configure, [cmake_cmd, "--build", str(BUILD_DIR), "--target", "corrops_bench_ops"]):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"building the bound op library failed:\n{done.stdout}{done.stderr}")
    return LIBRARY


@functools.cache
def load() -> ModuleType:
    """The bound op library's module, built if needed, its gradient registered."""
    corrops.load_ops()  # the fused ops first: both libraries share csrc/core
    module = tf.load_op_library(str(build()))

    def gradient(op: tf.Operation, grad_loss: tf.Tensor, _grad_stats: tf.Tensor) -> list:
        return _fused.grad_of_forward(op, grad_loss, module.corrops_memory_pattern_bound_grad)

    tf.RegisterGradient(OP_NAME)(gradient)
    return module


def memory_pattern_bound(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Not a loss: ``x * y`` of shape (outer, time) from float32 (outer, time,
    1) inputs, through ops with the fused ops' interface, buffer reuse and
    gradient wiring that move exactly the fused ops' bytes. A step built on it
    bounds what any kernel of the fused op's structure can reach."""
    b, t = tf.shape(x)[0], tf.shape(x)[1]
    loss, _stats = load().corrops_memory_pattern_bound(
        y_true=tf.reshape(x, [b, t, 1, 1]),
        y_pred=tf.reshape(y, [b, t, 1, 1]),
        mask=tf.zeros([0], tf.bool),
        eps=tf.constant(1.0, tf.float64),  # validated as the fused op's; unused
    )
    return tf.reshape(loss, [b, t])
