"""What the benchmarks compare, and how one measurement is taken.

Every contender computes the per-step loss of ``(x, y)`` and, for
``forward+backward``, the gradient of its mean with respect to ``y`` (a
``GradientTape``), as a training step does. Graph and XLA contenders run K
iterations inside one ``tf.function`` over K different inputs: the per-call
dispatch cost of a tf.function (~0.3-0.5 ms for an empty one on a 2-core machine) is
paid once per K, and different data per iteration keeps XLA from hoisting the
work out of the loop. In a training step that cost belongs to the whole step,
not to the loss, so K is chosen to make it a small share of a call. Eager
contenders run the same K iterations from Python, which is what eager code
costs. JAX contenders run the same K iterations in one ``jax.jit`` (a
``lax.scan`` over the K inputs), the gradient by ``jax.value_and_grad``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

import corrops
from benchmarks.bound_ops import memory_pattern_bound


def naive_formula(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """The per-step Pearson loss as users commonly write it in Keras 3 ops (the
    naive formula corrops replaces)."""
    ops = keras.ops
    s1, s2 = ops.squeeze(y_true, -1), ops.squeeze(y_pred, -1)
    d1 = s1 - ops.mean(s1, axis=-1, keepdims=True)
    d2 = s2 - ops.mean(s2, axis=-1, keepdims=True)
    den = ops.sqrt(
        ops.mean(ops.square(d1), axis=-1, keepdims=True)
        * ops.mean(ops.square(d2), axis=-1, keepdims=True)
    )
    return 1.0 - d1 * d2 / (den + keras.config.epsilon())


def _naive_t(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """naive_formula with the time axis at 1 and a mean over channels: the same
    ops for C = 1 (naive_formula squeezes C and reduces the last axis), and it also
    runs for C > 1. The benchmarks use this form."""
    d1 = y_true - tf.reduce_mean(y_true, axis=1, keepdims=True)
    d2 = y_pred - tf.reduce_mean(y_pred, axis=1, keepdims=True)
    den = tf.sqrt(
        tf.reduce_mean(tf.square(d1), axis=1, keepdims=True)
        * tf.reduce_mean(tf.square(d2), axis=1, keepdims=True)
    )
    return tf.reduce_mean(1.0 - d1 * d2 / (den + keras.config.epsilon()), axis=-1)


def _naive_jax(y_true, y_pred, mask=None):
    """_naive_t in jax.numpy: the naive formula as a JAX user writes it."""
    import jax.numpy as jnp

    if mask is not None:
        raise ValueError("the naive formula has no mask")
    d1 = y_true - jnp.mean(y_true, axis=1, keepdims=True)
    d2 = y_pred - jnp.mean(y_pred, axis=1, keepdims=True)
    den = jnp.sqrt(
        jnp.mean(jnp.square(d1), axis=1, keepdims=True)
        * jnp.mean(jnp.square(d2), axis=1, keepdims=True)
    )
    return jnp.mean(1.0 - d1 * d2 / (den + keras.config.epsilon()), axis=-1)


def _naive_torch(y_true, y_pred, mask=None):
    """_naive_t in torch: the naive formula as a PyTorch user writes it."""
    if mask is not None:
        raise ValueError("the naive formula has no mask")
    d1 = y_true - y_true.mean(dim=1, keepdim=True)
    d2 = y_pred - y_pred.mean(dim=1, keepdim=True)
    den = ((d1 * d1).mean(dim=1, keepdim=True) * (d2 * d2).mean(dim=1, keepdim=True)).sqrt()
    return (1.0 - d1 * d2 / (den + keras.config.epsilon())).mean(dim=-1)


def _loop_overhead_torch(y_true, y_pred, mask=None):
    """The torch loops' x*y bound: the cheapest per-step 'loss' (a product,
    averaged over channels) with the same mean and backward, as
    LOOP_OVERHEAD is for the TF loop."""
    if mask is not None:
        raise ValueError("no mask")
    return (y_true * y_pred).mean(dim=-1)


def _corrops_torch(y_true, y_pred, mask=None):
    import corrops.torch

    return corrops.torch.corr_loss(y_true, y_pred, mask=mask)


def _corrops_torch_mean(y_true, y_pred, mask=None):
    """corrops.torch with the mean taken by the op (``reduction="mean"``):
    the same value and gradient as the per-step loss's mean, with no per-step
    loss written and the compact gradient into the backward op."""
    import corrops.torch

    return corrops.torch.corr_loss(y_true, y_pred, mask=mask, reduction="mean")


def _corrops_jax(y_true, y_pred, mask=None):
    import corrops.jax

    return corrops.jax.corr_loss(y_true, y_pred, mask=mask)


@dataclass(frozen=True)
class Contender:
    name: str
    loss: Callable | None  # (y_true, y_pred, mask) -> per-step loss; None: LOOP_ALONE
    # "eager", "graph", "xla", "jax" (loss is a JAX function, run under
    # jax.jit on JAX's default backend), "torch" (a torch function, eager) or
    # "torch.compile" (the step, loss and mean, under torch.compile)
    mode: str
    supports_mask: bool = True
    device: str | None = None  # graph and XLA: inputs and ops on this device


def _naive(y_true, y_pred, mask=None):
    if mask is not None:
        raise ValueError("the naive formula has no mask")
    return _naive_t(y_true, y_pred)


def _loop_overhead(y_true, y_pred, mask=None):
    """Not a contender: the cheapest per-step 'loss' (a product, averaged over
    channels) run in the same loop, with the same mean and gradient. Its time
    is what the benchmark loop, the mean and the gradient plumbing cost. Not
    strict: it runs more TF ops than the fused step (a product, a second mean
    and their gradients) and has measured slower than it at (20, 100, 1);
    LOOP_ALONE below is the strict bound of the speed-up targets."""
    if mask is not None:
        raise ValueError("no mask")
    return tf.reduce_mean(y_true * y_pred, axis=-1)


LOOP_OVERHEAD = "loop overhead (x*y)"


def _memory_bound(y_true, y_pred, mask=None):
    """Not a contender: the fused step with the engine replaced by loops that
    move only its bytes (benchmarks/bound_ops.py). Its time is
    what the fused op's structure (one forward op, TF's mean, one backward op)
    costs with nothing to compute: the floor targets' bound, not strict within
    a few percent (its loops leave prefetching to the hardware)."""
    if mask is not None:
        raise ValueError("no mask")
    return memory_pattern_bound(y_true, y_pred)


MEMORY_BOUND = Contender("memory-pattern bound", _memory_bound, "graph", supports_mask=False)

# Not a contender: the benchmark loop with no loss at all. Each iteration runs
# only the ops every contender's iteration also runs (its input slice, the
# reduction of a corner of the result, the accumulation), so no loss
# implementation, not even one that costs nothing, takes less time per
# iteration: `naive time / its time` is the largest speed-up over the naive formula any
# implementation can show in this loop. At small shapes that cost is most of
# the fused step's (the 4x target at (20, 100, 1)). Strict where the x*y loop
# overhead is not: that one runs more TF ops (a product, two means and their
# gradients) than the fused step's two ops and a mean, and can measure slower.
LOOP_ALONE = Contender("loop alone (no loss)", None, "graph", supports_mask=False)

CONTENDERS = [
    Contender("naive eager", _naive, "eager", supports_mask=False),
    Contender("naive graph", _naive, "graph", supports_mask=False),
    Contender("naive XLA", _naive, "xla", supports_mask=False),
    Contender(
        "fallback graph", lambda a, b, m=None: corrops.corr_loss(a, b, mask=m, impl="tf"), "graph"
    ),
    Contender(
        "fallback XLA", lambda a, b, m=None: corrops.corr_loss(a, b, mask=m, impl="tf"), "xla"
    ),
    Contender("fused", lambda a, b, m=None: corrops.corr_loss(a, b, mask=m, impl="fused"), "graph"),
    # The fused op inside an XLA-compiled step: its custom calls.
    Contender(
        "fused XLA", lambda a, b, m=None: corrops.corr_loss(a, b, mask=m, impl="fused"), "xla"
    ),
    Contender(LOOP_OVERHEAD, _loop_overhead, "graph", supports_mask=False),
    # JAX users: the naive formula under jax.jit against corrops.jax (the fused
    # engine through jax.ffi).
    Contender("naive JAX jit", _naive_jax, "jax", supports_mask=False),
    Contender("corrops.jax", _corrops_jax, "jax"),
    # PyTorch users: the naive formula eager and under torch.compile against
    # corrops.torch (the fused engine as native ops) in both, its per-step
    # loss then torch's mean, and the mean taken by the op (reduction="mean").
    Contender("naive torch eager", _naive_torch, "torch", supports_mask=False),
    Contender("naive torch.compile", _naive_torch, "torch.compile", supports_mask=False),
    Contender("corrops.torch", _corrops_torch, "torch"),
    Contender("corrops.torch compile", _corrops_torch, "torch.compile"),
    Contender("corrops.torch mean", _corrops_torch_mean, "torch"),
    Contender("corrops.torch mean compile", _corrops_torch_mean, "torch.compile"),
    Contender("torch loop overhead (x*y)", _loop_overhead_torch, "torch", supports_mask=False),
    Contender(
        "torch.compile loop overhead (x*y)",
        _loop_overhead_torch,
        "torch.compile",
        supports_mask=False,
    ),
]
# The GPU contenders, where there is a GPU (benchmarks/gpu_bench.py, run by
# scripts/gpu_check.sh): the naive formula and the fused op in a tf.function
# and under XLA, inputs and ops on the first GPU.
GPU_CONTENDERS = [
    Contender(f"{c.name} GPU", c.loss, c.mode, c.supports_mask, "/GPU:0")
    for c in CONTENDERS
    if c.name in ("naive graph", "naive XLA", "fused", "fused XLA")
]
if tf.config.list_physical_devices("GPU"):
    CONTENDERS += GPU_CONTENDERS
BY_NAME = {c.name: c for c in CONTENDERS}


@dataclass(frozen=True)
class Case:
    shape: tuple[int, int, int]
    masked: bool = False

    @property
    def id(self) -> str:
        b, t, c = self.shape
        return f"{b}x{t}x{c}" + ("-masked" if self.masked else "")


def grid() -> list[Case]:
    if os.environ.get("CORROPS_BENCH_SMOKE"):
        return [Case((4, 16, 1)), Case((3, 8, 2)), Case((4, 16, 1), masked=True)]
    return [
        Case((20, 100, 1)),
        Case((64, 1000, 1)),
        Case((256, 4096, 1)),
        Case((64, 65536, 1)),
        Case((32, 2048, 8)),
        Case((256, 2048, 1)),  # the single-channel case with (32, 2048, 8)'s element count
        Case((256, 4096, 1), masked=True),  # variable lengths, 50-100% of T valid
    ]


def iterations(case: Case) -> int:
    """K iterations per measured call: 16M+ elements per call, at least 16
    (at most 200). With 4M and at least 4, a call at (256, 4096, 1) ran ~5 ms
    and its dispatch (0.3-0.5 ms) was 6-10% of it: K 4 -> 16 there took the
    fused fwd+bwd 1.38-1.54 -> 1.11-1.22 ms per iteration and the loop
    overhead 1.14-1.25 -> 0.88-0.94 (alternating, one process)."""
    if os.environ.get("CORROPS_BENCH_SMOKE"):
        return 2
    elements = int(np.prod(case.shape))
    return int(min(200, max(16, 2**24 // elements)))


def make_inputs(case: Case, dtype: tf.DType, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(k, *case.shape)).astype(np.float32)
    y = (0.5 * x + rng.normal(size=x.shape)).astype(np.float32)
    mask = None
    if case.masked:
        b, t, _ = case.shape
        lengths = rng.integers(t // 2, t + 1, size=(k, b))
        mask = tf.constant(np.arange(t)[None, None, :] < lengths[..., None])
    return tf.cast(tf.constant(x), dtype), tf.cast(tf.constant(y), dtype), mask


def make_runner(contender: Contender, case: Case, dtype: tf.DType, backward: bool):
    """Returns (run, k): run() executes k iterations and blocks until done."""
    k = iterations(case)
    xs, ys, masks = make_inputs(case, dtype, k)
    if contender.mode == "jax":
        return _jax_runner(contender, xs, ys, masks, backward), k
    if contender.mode.startswith("torch"):
        return _torch_runner(contender, xs, ys, masks, backward), k

    def one(x, y, m):
        if contender.loss is None:  # LOOP_ALONE: the iteration's own ops only
            return tf.reduce_sum(y[..., :1, :1])
        if not backward:
            return tf.reduce_sum(tf.cast(contender.loss(x, y, m), tf.float32)[..., :1])
        with tf.GradientTape() as tape:
            tape.watch(y)
            total = tf.reduce_mean(tf.cast(contender.loss(x, y, m), tf.float32))
        grad = tape.gradient(total, y)
        return total + tf.cast(tf.reduce_sum(grad[..., :1, :1]), tf.float32)

    if contender.mode == "eager":

        def run():
            acc = 0.0
            for i in range(k):
                acc += float(one(xs[i], ys[i], None if masks is None else masks[i]))
            return acc

        return run, k

    if contender.device:
        with tf.device(contender.device):
            xs, ys = tf.identity(xs), tf.identity(ys)
            masks = None if masks is None else tf.identity(masks)

    # The masks travel as an optional trailing argument: a None argument costs
    # every call of the function ~90 us of argument handling (0.3-0.45 us per
    # iteration at K = 200), which would be timed as part of the loss.
    extra = () if masks is None else (masks,)

    @tf.function(jit_compile=contender.mode == "xla")
    def loop(xs, ys, *extra):
        acc = tf.constant(0.0)
        for i in tf.range(k):
            acc += one(xs[i], ys[i], extra[0][i] if extra else None)
        return acc

    def run():
        if contender.device:
            with tf.device(contender.device):
                return float(loop(xs, ys, *extra))
        return float(loop(xs, ys, *extra))

    # Trace / compile outside the measurement. Each runner is a new
    # tf.function traced once, but TF's retracing detector keys on the
    # Python code object, so a dozen runners read to it as one function
    # retraced a dozen times: its warning is held back for this first call.
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        run()
    finally:
        logger.setLevel(level)
    return run, k


def _jax_runner(contender: Contender, xs, ys, masks, backward: bool) -> Callable:
    """make_runner's loop for a JAX contender: the same K iterations and the
    same per-iteration result, in one jax.jit."""
    import jax
    import jax.numpy as jnp

    xs, ys = jnp.asarray(xs.numpy()), jnp.asarray(ys.numpy())
    masks = None if masks is None else jnp.asarray(masks.numpy())

    def one(x, y, m):
        if not backward:
            return jnp.sum(contender.loss(x, y, m).astype(jnp.float32)[..., :1])
        total, grad = jax.value_and_grad(
            lambda b: jnp.mean(contender.loss(x, b, m).astype(jnp.float32))
        )(y)
        return total + jnp.sum(grad[..., :1, :1]).astype(jnp.float32)

    def step(acc, inputs):
        return acc + one(*inputs), None

    loop = jax.jit(lambda xs, ys, ms: jax.lax.scan(step, jnp.float32(0.0), (xs, ys, ms))[0])

    def run():
        return float(loop(xs, ys, masks))

    run()  # compile outside the measurement
    return run


def _torch_runner(contender: Contender, xs, ys, masks, backward: bool) -> Callable:
    """make_runner's loop for a PyTorch contender: the same K iterations and
    the same per-iteration result, from Python as a training loop runs them;
    the gradient by ``backward()`` of the mean (a loss that is already a
    mean, 0-dim, is used as it is). Under torch.compile the step (loss and
    mean) is compiled, its backward by AOTAutograd."""
    import torch

    xs, ys = torch.from_numpy(xs.numpy()), torch.from_numpy(ys.numpy())
    masks = None if masks is None else torch.from_numpy(masks.numpy())

    def step(x, y, m):
        loss = contender.loss(x, y, m).float()
        return loss if loss.dim() == 0 else loss.mean()

    if contender.mode == "torch.compile":
        # Every runner compiles the same code object (this `step`) for its
        # contender, shape and dtype: past Dynamo's recompile limit (8) it
        # would silently run eagerly, so the limit is lifted, and reaching it
        # anyway fails instead of timing eager code.
        torch._dynamo.config.recompile_limit = 4096
        torch._dynamo.config.accumulated_recompile_limit = 1 << 20
        torch._dynamo.config.fail_on_recompile_limit_hit = True
        step = torch.compile(step, dynamic=False)

    def one(i):
        y = ys[i].requires_grad_(backward)
        total = step(xs[i], y, None if masks is None else masks[i])
        if not backward:
            return total.detach()
        total.backward()
        grad = y.grad
        y.grad = None
        return total.detach() + grad[..., :1, :1].sum().float()

    def run():
        acc = torch.zeros(())
        for i in range(len(xs)):
            acc += one(i)
        return float(acc)

    run()  # compile outside the measurement
    return run


def floor_bytes(
    case: Case,
    dtype: tf.DType,
    backward: bool,
    per_step_grad: bool = True,
    per_step_loss: bool = True,
) -> int:
    """Bytes an ideal fused implementation must move: read x, y; write the
    loss; and for the backward read x, y, g and write the one gradient the
    step asks for (dL/dy_pred: the tape watches y_pred only). per_step_grad
    False: g is one value per sequence (the gradient of a mean, which the
    fused backward takes in that compact form), so it is not read per step.
    per_step_loss False: the loss is reduced in the op (corrops.torch's
    reduction), so no per-step loss is written (nor a per-step g read)."""
    b, t, c = case.shape
    item = dtype.size
    elems, steps = b * t * c, b * t
    per_step_grad = per_step_grad and per_step_loss
    forward = 2 * elems * item + (steps * item if per_step_loss else 0)
    if not backward:
        return forward
    grad_read = steps * item if per_step_grad else 0
    return forward + 2 * elems * item + grad_read + elems * item
