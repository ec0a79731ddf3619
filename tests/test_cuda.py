"""CUDA kernels. Without a GPU: the library must be built with CUDA wherever
nvcc exists, register GPU kernels for both ops and every dtype, keep the CPU
path working, and compile without register spills for every target
architecture (the kernels' logic itself runs on the CPU in the ctest
cuda_kernels_on_host). With a GPU: parity, gradients, placement and
determinism (skipped otherwise, with the reason)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import kernels  # the kernel registry

import corrops
from tests import reference as ref

ROOT = Path(__file__).resolve().parents[1]
NVCC = shutil.which("nvcc") or (
    "/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").exists() else None
)
GPUS = tf.config.list_physical_devices("GPU")
needs_gpu = pytest.mark.skipif(
    not GPUS,
    reason="no GPU: the CUDA kernels are compiled and registry-checked here, and their source"
    " runs on the CPU in the ctest cuda_kernels_on_host",
)
OPS = ["Corrops>CorrLoss", "Corrops>CorrLossGrad"]
DTYPES = ["DT_HALF", "DT_BFLOAT16", "DT_FLOAT", "DT_DOUBLE"]


def _registered(op: str) -> set[tuple[str, str]]:
    out = set()
    for k in kernels.get_registered_kernels_for_op(op).kernel:
        for c in k.constraint:
            if c.name == "T":
                for t in c.allowed_values.list.type:
                    out.add((k.device_type, tf.dtypes.as_dtype(t).as_datatype_enum))
    return {(dev, tf.dtypes.as_dtype(t).name) for dev, t in out}


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed: a CPU-only build is expected")
def test_library_built_with_cuda_where_nvcc_exists():
    info = corrops.build_info()
    assert info["cuda"] is True, info
    assert {"sm_75", "sm_80", "sm_86", "sm_89", "sm_90", "compute_90"} <= set(info["cuda_archs"])


@pytest.mark.parametrize("op", OPS)
def test_kernels_registered_for_every_dtype(op):
    corrops.load_ops()
    got = _registered(op)
    devices = ["CPU", "GPU"] if corrops.build_info().get("cuda") else ["CPU"]
    for device in devices:
        for dtype in ("float16", "bfloat16", "float32", "float64"):
            assert (device, dtype) in got, f"{op}: no {device} kernel for {dtype}: {sorted(got)}"


def test_cpu_path_works_with_cuda_enabled_library(rng):
    x, y = rng.normal(size=(4, 50, 2)), rng.normal(size=(4, 50, 2))
    with tf.device("/CPU:0"):
        got = corrops.corr_loss(x, y, impl="fused")
    assert corrops.last_choice()["impl"] == "fused"
    np.testing.assert_allclose(np.asarray(got), ref.corr_loss(x, y), rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
def test_no_register_spills_on_any_target_arch(tmp_path):
    archs = ["75", "80", "86", "89", "90"]
    cmd = [
        NVCC,
        "-std=c++17",
        "-O3",
        "-fmad=false",
        f"-I{ROOT / 'csrc'}",
        "-Xptxas",
        "-v",
        "-c",
        str(ROOT / "csrc" / "cuda" / "corr_loss_kernels.cu"),
        "-o",
        str(tmp_path / "k.o"),
    ]
    for a in archs:
        cmd += ["-gencode", f"arch=compute_{a},code=sm_{a}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    entry, spills, seen = None, [], set()
    for line in done.stderr.splitlines():
        m = re.search(r"Compiling entry function '([^']+)' for 'sm_(\d+)'", line)
        if m:
            entry = m.groups()
            seen.add(entry[1])
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and (int(m.group(1)) or int(m.group(2))):
            spills.append((entry, line.strip()))
    assert seen == set(archs)
    assert not spills, spills


# ------------------------------------------------------------------ with a GPU
SHAPES = [
    # The layout classes of csrc/cuda/kernels/tile_plan.h: short rows packed
    # several to a block; rows of one chunk; long rows split into chunks (more
    # than 4096 steps); channels and groups; more columns than a block holds;
    # a channel group wider than a block; time on axis 0; an empty batch.
    ((3, 17), 1),
    ((4, 2048), 1),
    ((5, 1030), 1),
    ((2, 5000), 1),
    ((3, 9001), 1),
    ((0, 8), 1),
    ((4, 33, 3), 1),
    ((2, 3000, 4), 1),
    ((2, 9, 300), 1),
    ((6, 5), 0),
    ((2, 7, 3, 2), 1),
    ((2, 20, 100, 3), 1),
]


def _gpu_and_cpu(x, y, mask, method, axis, dtype):
    out = {}
    for dev in ("/GPU:0", "/CPU:0"):
        with tf.device(dev):
            xt, yt = tf.constant(x, dtype), tf.constant(y, dtype)
            with tf.GradientTape() as tape:
                tape.watch([xt, yt])
                loss = corrops.corr_loss(xt, yt, mask=mask, method=method, axis=axis, impl="fused")
                total = tf.reduce_sum(loss * 0.5)
            gx, gy = tape.gradient(total, [xt, yt])
        out[dev] = [np.asarray(tf.cast(t, tf.float64)) for t in (loss, gx, gy)]
    return out


@needs_gpu
@pytest.mark.parametrize(
    "dtype", [tf.float16, tf.bfloat16, tf.float32, tf.float64], ids=lambda d: d.name
)
@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize(("shape", "axis"), SHAPES)
def test_gpu_matches_cpu_and_fallback(rng, dtype, method, masked, shape, axis):
    x = rng.normal(size=shape)
    y = 0.5 * x + rng.normal(size=shape)
    loss_shape = shape[:-1] if len(shape) >= 3 else shape
    mask = (rng.random(loss_shape) > 0.3) if masked else None
    out = _gpu_and_cpu(x, y, mask, method, axis, dtype)
    tol = {tf.float64: 1e-9, tf.float32: 1e-4, tf.float16: 2e-2, tf.bfloat16: 5e-2}[dtype]
    for a, b in zip(out["/GPU:0"], out["/CPU:0"], strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max(initial=0)))
    fallback = corrops.corr_loss(
        tf.constant(x, dtype), tf.constant(y, dtype), mask=mask, method=method, axis=axis, impl="tf"
    )
    np.testing.assert_allclose(
        out["/GPU:0"][0], np.asarray(tf.cast(fallback, tf.float64)), rtol=tol, atol=tol
    )


@needs_gpu
def test_op_really_runs_on_gpu(rng):
    x = tf.constant(rng.normal(size=(4, 100)), tf.float32)

    @tf.function
    def fn(a):
        return corrops.corr_loss(a, a * 2.0, impl="fused")

    with tf.device("/GPU:0"):
        graph = fn.get_concrete_function(x).graph
        fn(x)
    ops = [op for op in graph.get_operations() if op.type == "Corrops>CorrLoss"]
    assert ops
    tf.debugging.set_log_device_placement(False)
    with tf.device("/GPU:0"):
        loss, _stats = corrops.load_ops().corrops_corr_loss(
            tf.reshape(x, (4, 100, 1, 1)),
            tf.reshape(x, (4, 100, 1, 1)),
            tf.zeros([0], tf.bool),
            tf.constant(1e-7, tf.float64),
        )
    assert "GPU" in loss.device


@needs_gpu
def test_gpu_bitwise_deterministic(rng):
    x, y = rng.normal(size=(64, 5000)), rng.normal(size=(64, 5000))
    first = _gpu_and_cpu(x, y, None, "ccc", 1, tf.float32)["/GPU:0"]
    second = _gpu_and_cpu(x, y, None, "ccc", 1, tf.float32)["/GPU:0"]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


@needs_gpu
@pytest.mark.parametrize("dtype", [tf.float16, tf.float32, tf.float64], ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(3, 2050, 1, 1), (2, 5000, 1, 1), (2, 11, 3, 2)])
def test_gpu_time_constant_grad_matches_per_step(rng, dtype, shape):
    """grad of shape (outer, 1, groups) (a mean's gradient, see corrops/tensorflow/_upstream.py):
    the GPU op reads it once per row and must match the per-step form and the CPU."""
    ops = corrops.load_ops()
    outer, time, groups, _ = shape
    x0 = rng.normal(size=shape)
    y0 = 0.5 * x0 + rng.normal(size=shape)
    gc = rng.normal(size=(outer, 1, groups))
    eps = tf.constant(1e-7, tf.float64)
    out = {}
    for dev in ("/GPU:0", "/CPU:0"):
        with tf.device(dev):
            x, y = tf.constant(x0, dtype), tf.constant(y0, dtype)
            no_mask = tf.zeros([0], tf.bool)
            _, stats = ops.corrops_corr_loss(y_true=x, y_pred=y, mask=no_mask, eps=eps)
            common = dict(
                y_true=x, y_pred=y, mask=no_mask, stats=stats, eps=eps, loss=tf.zeros([0], dtype)
            )
            compact = ops.corrops_corr_loss_grad(grad=tf.constant(gc, dtype), **common)
            g_full = np.broadcast_to(gc, (outer, time, groups))
            full = ops.corrops_corr_loss_grad(grad=tf.constant(g_full, dtype), **common)
        out[dev] = [np.asarray(tf.cast(t, tf.float64)) for t in (*compact, *full)]
    tol = {tf.float64: 1e-9, tf.float32: 1e-4, tf.float16: 2e-2}[dtype]
    gpu, cpu = out["/GPU:0"], out["/CPU:0"]
    for a, b in [*zip(gpu[:2], gpu[2:], strict=True), *zip(gpu, cpu, strict=True)]:
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max(initial=0)))


@pytest.mark.parametrize("op", OPS)
def test_xla_lowerings_registered_for_each_xla_platform_built(op):
    """The XLA lowerings: on XLA's CPU JIT device always, on its GPU JIT
    device when the library has the CUDA custom-call handlers."""
    tf.function(lambda a: a + 1.0, jit_compile=True)(tf.constant(1.0))  # makes the JIT kernels
    devices = {dev for dev, _ in _registered(op)}
    assert "XLA_CPU_JIT" in devices
    assert ("XLA_GPU_JIT" in devices) == ("CUDA" in corrops.build_info()["xla_platforms"])


@needs_gpu
@pytest.mark.parametrize(
    "dtype", [tf.float16, tf.bfloat16, tf.float32, tf.float64], ids=lambda d: d.name
)
@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize(("shape", "axis"), SHAPES)
@pytest.mark.parametrize("reduce", ["mean", "weighted"])
def test_gpu_xla_custom_calls_match_the_gpu_kernels(
    rng, dtype, method, masked, shape, axis, reduce
):
    """Under jit_compile on the GPU the ops run as the "CUDA" custom calls:
    the same CUDA kernels as the TF GPU kernels, so the same bits, for the
    compact (mean) and per-step (weighted) upstream gradients."""
    x = tf.constant(rng.normal(size=shape), dtype)
    y = tf.constant(rng.normal(size=shape), dtype)
    loss_shape = shape[:-1] if len(shape) >= 3 else shape
    mask = tf.constant(rng.random(loss_shape) > 0.3) if masked else None
    weights = tf.constant(rng.random(loss_shape), dtype)

    def step(a, b):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            loss = corrops.corr_loss(a, b, mask=mask, method=method, axis=axis, impl="fused")
            total = tf.reduce_mean(loss) if reduce == "mean" else tf.reduce_sum(loss * weights)
        return [loss, *tape.gradient(total, [a, b])]

    with tf.device("/GPU:0"):
        graph = tf.function(step)(x, y)
        compiled = tf.function(step, jit_compile=True)(x, y)
    assert "XLA custom call" in corrops.last_choice()["reason"]
    for a, b in zip(graph, compiled, strict=True):
        np.testing.assert_array_equal(np.asarray(tf.cast(a, tf.float64)),
                                      np.asarray(tf.cast(b, tf.float64)))  # fmt: skip


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed: a CPU-only build is expected")
def test_standalone_cuda_check_is_built_and_runs():
    """csrc/cuda/tests/cuda_engine_check.cu, built with the library: every CUDA
    kernel against the CPU engine, no TF. It passes on a GPU and says it is
    skipped (exit 77, ctest's skip) without one."""
    exe = ROOT / "build" / "cmake" / "cuda_engine_check"
    assert exe.exists(), "the editable build (scripts/bootstrap.sh) builds it"
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600, check=False)
    if GPUS:
        assert done.returncode == 0, done.stdout[-4000:]
    else:
        assert done.returncode == 77 and "no CUDA device" in done.stdout, done.stdout


def test_gpu_check_describes_itself():
    """scripts/gpu_check.sh, the one command that verifies corrops on a GPU,
    says what it runs with and without one (CI runs the script itself)."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for what in ("cuda_engine_check", "tests/test_cuda.py", "gpu_bench.py", "Without a GPU"):
        assert what in done.stdout
