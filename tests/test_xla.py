"""The fused op inside XLA (jit_compile=True): Corrops>CorrLoss and
Corrops>CorrLossGrad lower to typed-FFI custom calls that run the same CPU
engine (csrc/tf_xla). Bitwise parity with the graph-mode fused op over
dtypes, layouts, masks and methods; float64 gradient checks; Keras fit; a
SavedModel in a fresh process (MirroredStrategy: tests/test_distribute.py); determinism across runs
and thread counts; bad input with the graph-mode errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import corrops
from corrops.tensorflow import _dispatch, _loader
from tests import reference as ref
from tests.helpers import DTYPES, tolerance

# (shape, time axis): contiguous rows, channels, time not on axis 1, rank 4,
# empty and odd sizes, one step, and a call large enough for several threads.
CASES = [
    ((6, 50), 1),
    ((6, 50, 1), 1),
    ((5, 37, 3), 1),
    ((40, 3, 2), 0),
    ((2, 30, 4, 3), 1),
    ((0, 10, 1), 1),
    ((3, 0, 2), 1),
    ((3, 1, 2), 1),
    ((64, 1000, 1), 1),
]
CASE_IDS = [f"{'x'.join(map(str, s))}-axis{a}" for s, a in CASES]


def _data(rng, shape, dtype, axis=1, masked=False):
    x = tf.cast(rng.normal(size=shape), dtype)
    y = tf.cast(rng.normal(size=shape) + 0.5 * rng.normal(size=shape), dtype)
    mask = None
    if masked:
        loss_shape = shape[:-1] if len(shape) >= 3 else shape
        mask = tf.constant(rng.random(loss_shape) < 0.8)
    return x, y, mask


def _step(method, axis, mask, per_step_weights=None):
    """loss, d/dy_true and d/dy_pred of a reduced loss: the mean (the
    upstream gradient is constant along time) or a weighted sum (per step)."""

    def step(x, y):
        with tf.GradientTape() as tape:
            tape.watch([x, y])
            loss = corrops.corr_loss(x, y, axis=axis, mask=mask, method=method, impl="fused")
            if per_step_weights is None:
                total = tf.reduce_mean(loss)
            else:
                total = tf.reduce_sum(loss * tf.cast(per_step_weights, loss.dtype))
        gx, gy = tape.gradient(total, [x, y])
        return loss, gx, gy

    return step


def _both(fn, *args):
    """fn's results in a graph (the TF kernels) and under XLA (the custom calls)."""
    graph = tf.function(fn)(*args)
    compiled = tf.function(fn, jit_compile=True)(*args)
    return [np.asarray(t) for t in graph], [np.asarray(t) for t in compiled]


def _assert_bitwise(a, b):
    for u, v in zip(a, b, strict=True):
        assert u.shape == v.shape and u.dtype == v.dtype
        np.testing.assert_array_equal(u.view(np.uint8), v.view(np.uint8))


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize(("shape", "axis"), CASES, ids=CASE_IDS)
def test_xla_is_bitwise_the_graph_mode_fused_op(rng, dtype, shape, axis, masked, method):
    x, y, mask = _data(rng, shape, dtype, axis, masked)
    graph, compiled = _both(_step(method, axis, mask), x, y)
    _assert_bitwise(graph, compiled)


@pytest.mark.parametrize(("shape", "axis"), CASES[:5], ids=CASE_IDS[:5])
def test_xla_per_step_upstream_gradient_is_bitwise_the_graph_mode(rng, dtype, shape, axis):
    x, y, _ = _data(rng, shape, dtype, axis)
    loss_shape = np.asarray(corrops.corr_loss(x, y, axis=axis)).shape
    weights = rng.random(loss_shape)
    graph, compiled = _both(_step("pearson", axis, None, weights), x, y)
    _assert_bitwise(graph, compiled)


def test_xla_agrees_with_the_reference_and_the_fallback(rng, dtype):
    x, y, mask = _data(rng, (5, 40, 2), dtype, masked=True)

    def both_impls(a, b):
        return [
            corrops.corr_loss(a, b, mask=mask, method="ccc", impl=impl) for impl in ("fused", "tf")
        ]

    fused, fallback = tf.function(both_impls, jit_compile=True)(x, y)
    want = ref.corr_loss(np.asarray(tf.cast(x, tf.float64)), np.asarray(tf.cast(y, tf.float64)),
                         mask=np.asarray(mask), method="ccc")  # fmt: skip
    np.testing.assert_allclose(np.asarray(tf.cast(fused, tf.float64)), want, **tolerance(dtype))
    np.testing.assert_allclose(
        np.asarray(tf.cast(fused, tf.float64)),
        np.asarray(tf.cast(fallback, tf.float64)),
        **tolerance(dtype),
    )


def test_the_compiled_computation_holds_the_custom_calls(rng):
    x, y, _ = _data(rng, (4, 30, 1), tf.float32)
    compiled = tf.function(_step("pearson", 1, None), jit_compile=True)
    hlo = compiled.experimental_get_compiler_ir(x, y)(stage="hlo")
    assert 'custom_call_target="corrops_corr_loss_forward"' in hlo
    assert 'custom_call_target="corrops_corr_loss_backward"' in hlo
    assert "api_version=API_VERSION_TYPED_FFI" in hlo
    # One group: the loss comes out as (B, T), no trailing axis of 1 for
    # XLA's reduction of it (corrops/tensorflow/_api.py).
    forward = next(line for line in hlo.splitlines() if "corrops_corr_loss_forward" in line)
    assert forward.split("custom-call(")[0].split("= (")[1].startswith("f32[4,30]{1,0}")
    compiled(x, y)
    assert corrops.last_choice()["impl"] == "fused"
    assert "fused (XLA custom call)" in corrops.last_choice()["reason"]


def test_only_the_gradient_asked_for_is_computed(rng):
    x, y, _ = _data(rng, (4, 30, 1), tf.float32)

    @tf.function(jit_compile=True)
    def grad_pred(a, b):
        with tf.GradientTape() as tape:
            tape.watch(b)
            total = tf.reduce_mean(corrops.corr_loss(a, b, impl="fused"))
        return tape.gradient(total, b)

    hlo = grad_pred.experimental_get_compiler_ir(x, y)(stage="hlo")
    call = next(line for line in hlo.splitlines() if "corrops_corr_loss_backward" in line)
    assert "f32[0]" in call  # the y_true gradient is not asked for
    graph = tf.function(grad_pred.python_function)(x, y)
    _assert_bitwise([np.asarray(graph)], [np.asarray(grad_pred(x, y))])


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_gradients_under_xla_float64(rng, method, masked):
    x, y, mask = _data(rng, (3, 12, 2), tf.float64, masked=masked)
    weights = tf.constant(rng.random((3, 12)))

    @tf.function(jit_compile=True)
    def f(a, b):
        loss = corrops.corr_loss(a, b, mask=mask, method=method, impl="fused")
        return tf.reduce_sum(loss * weights)

    for i in range(2):
        args = [x, y]

        def g(v, i=i, args=args):
            return f(*[v if j == i else a for j, a in enumerate(args)])

        theoretical, numerical = tf.test.compute_gradient(g, [args[i]])
        np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-6, atol=1e-7)


def test_corrcoef_under_xla(rng):
    x, y, mask = _data(rng, (4, 25, 3), tf.float32, masked=True)

    def coef(a, b):
        return corrops.corrcoef(a, b, mask=mask, method="ccc", impl="fused")

    _assert_bitwise([np.asarray(tf.function(coef)(x, y))],
                    [np.asarray(tf.function(coef, jit_compile=True)(x, y))])  # fmt: skip


def test_a_trace_with_an_unknown_batch_compiles_per_shape(rng):
    """Keras traces its train step with the batch dimension unknown; XLA
    compiles it once per concrete shape and the lowering sees real sizes."""
    spec = tf.TensorSpec([None, None, 1], tf.float32)
    step = tf.function(_step("pearson", 1, None), jit_compile=True, input_signature=[spec, spec])
    for batch, steps in [(3, 20), (7, 45), (3, 20)]:
        x, y, _ = _data(rng, (batch, steps, 1), tf.float32)
        graph = tf.function(_step("pearson", 1, None))(x, y)
        _assert_bitwise([np.asarray(t) for t in graph], [np.asarray(t) for t in step(x, y)])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: (np.zeros((2, 5, 1)), np.zeros((2, 6, 1)), {}), "same shape"),
        (
            lambda: (np.zeros((2, 5, 1)), np.zeros((2, 5, 1)), {"mask": np.ones((2, 4), bool)}),
            "mask",
        ),
        (lambda: (np.zeros((2, 5, 1)), np.zeros((2, 5, 1)), {"eps": -1.0}), "eps"),
    ],
    ids=["shapes", "mask", "eps"],
)
def test_bad_input_under_xla_gets_the_graph_mode_error(make, message):
    x, y, kwargs = make()

    def f(a, b):
        return corrops.corr_loss(a, b, impl="fused", **kwargs)

    errors = []
    for compiled in (False, True):
        with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match=message) as info:
            tf.function(f, jit_compile=compiled)(tf.constant(x), tf.constant(y))
        errors.append((type(info.value), str(info.value).splitlines()[0]))
    assert errors[0] == errors[1]


def test_raw_op_lowering_checks_shapes():
    """The lowering's own checks (the wrapper bypassed, shapes unknown when
    traced, so the op's shape function cannot see them): the TF kernels'
    messages, when XLA compiles for the concrete shapes."""
    ops = _loader.load_ops()
    data, loss = tf.TensorSpec([None, None, 1]), tf.TensorSpec([None, None], tf.bool)

    @tf.function(jit_compile=True, input_signature=[data, loss])
    def bad_mask(a, m):
        return ops.corrops_corr_loss(y_true=a, y_pred=a, mask=m,
                                     eps=tf.constant(1e-8, tf.float64), has_mask=True)  # fmt: skip

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"mask must have shape \[2,5\]"):
        bad_mask(tf.zeros((2, 5, 1)), tf.ones((2, 4), bool))

    @tf.function(jit_compile=True, input_signature=[data])
    def bad_eps(a):
        return ops.corrops_corr_loss(y_true=a, y_pred=a, mask=tf.zeros((0,), bool),
                                     eps=tf.constant(0.0, tf.float64))  # fmt: skip

    with pytest.raises(tf.errors.InvalidArgumentError, match="eps must be finite and > 0"):
        bad_eps(tf.zeros((2, 5, 1)))

    @tf.function(jit_compile=True, input_signature=[data, tf.TensorSpec([None, None])])
    def bad_grad(a, g):
        stats = tf.zeros((2, 1, 7), tf.float64)
        return ops.corrops_corr_loss_grad(grad=g, y_true=a, y_pred=a, mask=tf.zeros((0,), bool),
                                          stats=stats, eps=tf.constant(1e-8, tf.float64),
                                          loss=tf.zeros((0,)))  # fmt: skip

    with pytest.raises(tf.errors.InvalidArgumentError, match="grad must have the loss shape"):
        bad_grad(tf.zeros((2, 5, 1)), tf.zeros((2, 4)))


def test_a_library_without_xla_custom_calls_falls_back(rng, monkeypatch):
    info = {k: v for k, v in _loader.loaded_build_info().items() if k != "xla_platforms"}
    monkeypatch.setattr(_loader, "loaded_build_info", lambda: info)
    x, y, _ = _data(rng, (3, 20, 1), tf.float32)
    tf.function(corrops.corr_loss, jit_compile=True)(x, y)
    assert corrops.last_choice()["impl"] == "tf"
    assert "without XLA custom calls" in corrops.last_choice()["reason"]
    with pytest.raises(corrops.FusedOpUnavailableError, match="XLA"):
        tf.function(lambda a, b: corrops.corr_loss(a, b, impl="fused"), jit_compile=True)(x, y)


def test_keras_fit_with_jit_compile_runs_the_custom_calls():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 40, 3)).astype(np.float32)
    y = np.cumsum(x[..., :1], axis=1) * 0.3 + 0.1 * rng.normal(size=(48, 40, 1))
    model = keras.Sequential(
        [keras.Input((None, 3)), keras.layers.Conv1D(8, 5, padding="causal"),
         keras.layers.Dense(1)]
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=corrops.CorrelationLoss(),
                  jit_compile=True)  # fmt: skip
    # 48 = 2 * 20 + 8: a last batch of another size compiles again.
    hist = model.fit(x, y.astype(np.float32), batch_size=20, epochs=8, verbose=0)
    losses = hist.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0], losses
    assert corrops.last_choice()["reason"] == _dispatch.FUSED_IN_XLA


def _run(script: str, env: dict | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


DETERMINISM = """
import hashlib, json, sys
import numpy as np, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(int(sys.argv[1]))
import corrops
rng = np.random.default_rng(7)
out = {}
for shape in [(64, 1000, 1), (32, 2048, 8), (256, 4096, 1)]:
    x = tf.constant(rng.normal(size=shape), tf.float32)
    y = tf.constant(rng.normal(size=shape), tf.float32)

    @tf.function(jit_compile=True)
    def step(a, b):
        with tf.GradientTape() as tape:
            tape.watch(b)
            loss = corrops.corr_loss(a, b, method="ccc")
            total = tf.reduce_mean(loss)
        return loss, tape.gradient(total, b)

    digest = hashlib.sha256()
    for t in step(x, y):
        digest.update(t.numpy().tobytes())
    out[str(shape)] = digest.hexdigest()
print(json.dumps(out))
"""


def test_xla_results_do_not_depend_on_runs_or_threads():
    runs = []
    for threads in ("1", "2", "2"):
        script = DETERMINISM.replace("int(sys.argv[1])", threads)
        runs.append(_run(script))
    assert runs[0] == runs[1] == runs[2]


def test_saved_model_with_an_xla_compiled_function_in_a_fresh_process(tmp_path, rng):
    step = _step("pearson", 1, None)

    class Module(tf.Module):
        @tf.function(jit_compile=True,
                     input_signature=[tf.TensorSpec([None, None, 1], tf.float32)] * 2)  # fmt: skip
        def step(self, a, b):
            loss, _, grad_pred = step(a, b)
            return loss, grad_pred

    path = str(tmp_path / "model")
    tf.saved_model.save(Module(), path)
    x, y, _ = _data(rng, (3, 25, 1), tf.float32)
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", y.numpy())
    loss, _, grad_pred = tf.function(step)(x, y)  # graph mode, the TF kernels
    want = [loss.numpy(), grad_pred.numpy()]
    script = f"""
    import json
    import numpy as np, tensorflow as tf, corrops
    corrops.load_ops()
    m = tf.saved_model.load({path!r})
    x, y = np.load({str(tmp_path / "x.npy")!r}), np.load({str(tmp_path / "y.npy")!r})
    loss, grad = m.step(x, y)
    np.save({str(tmp_path / "loss.npy")!r}, loss.numpy())
    np.save({str(tmp_path / "grad.npy")!r}, grad.numpy())
    print(json.dumps({{}}))
    """
    _run(script)
    _assert_bitwise(want, [np.load(tmp_path / "loss.npy"), np.load(tmp_path / "grad.npy")])


@pytest.mark.parametrize("op", ["Corrops>CorrLoss", "Corrops>CorrLossGrad"])
def test_every_dtype_is_lowered(op):
    """The lowerings are XLA CPU JIT kernels for each dtype the tests use."""
    from tensorflow.python.framework import kernels  # the kernel registry

    assert "Host" in corrops.build_info()["xla_platforms"]
    tf.function(lambda a: a + 1.0, jit_compile=True)(tf.constant(1.0))  # makes the JIT kernels
    lowered = {
        tf.dtypes.as_dtype(t)
        for k in kernels.get_registered_kernels_for_op(op).kernel
        if k.device_type == "XLA_CPU_JIT"
        for c in k.constraint
        if c.name == "T"
        for t in c.allowed_values.list.type
    }
    assert set(DTYPES) <= lowered, sorted(d.name for d in lowered)


@pytest.mark.parametrize("jit_first", [False, True], ids=["corrops_first", "xla_first"])
def test_lowered_whichever_loads_first(jit_first):
    """TF's bridge makes its JIT kernels once; a library loaded after that
    registers its own lowerings. Either way a jit-compiled step runs the
    custom call, and the lowerings are registered once (no duplicate kernel)."""
    jit_op = "tf.function(lambda a: a + 1.0, jit_compile=True)(tf.constant(1.0))"
    first = jit_op if jit_first else ""
    script = f"""
    import json
    import numpy as np, tensorflow as tf
    {first}
    import corrops
    corrops.load_ops()
    x = tf.constant(np.random.default_rng(0).normal(size=(3, 20, 1)), tf.float32)
    step = tf.function(lambda a, b: corrops.corr_loss(a, b), jit_compile=True)
    loss = step(x, 2.0 * x + 1.0)
    hlo = step.experimental_get_compiler_ir(x, x)(stage="hlo")
    print(json.dumps({{"loss": float(tf.reduce_max(tf.abs(tf.reduce_mean(loss, 1)))),
                       "custom_call": "corrops_corr_loss_forward" in hlo,
                       "reason": corrops.last_choice()["reason"]}}))
    """
    out = _run(script)
    assert out["custom_call"], out
    assert "fused (XLA custom call)" in out["reason"], out
    assert out["loss"] < 1e-6  # y_pred = 2 y_true + 1: r = 1 in every row


@pytest.mark.parametrize("shape", [(5, 40), (5, 40, 1)])
@pytest.mark.parametrize("method", ["pearson", "ccc"])
def test_fallback_under_xla_keeps_the_edge_cases(shape, method):
    """Inside XLA the fallback runs on (outer, time) when there is one group
    and one channel: constant rows, a fully masked row, a NaN confined to its
    row, and scales from 1e-30 to 1e30, with gradients, as in graph mode."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5, 40))
    y = 0.5 * x + rng.normal(size=(5, 40))
    y[0] = 3.0  # constant prediction
    x[1], y[1] = x[1] * 1e-30, y[1] * 1e-30
    x[2], y[2] = x[2] * 1e30, y[2] * 1e30
    y[3, 7] = np.nan
    mask = np.ones((5, 40), bool)
    mask[4] = False  # a fully masked row
    a, b = (tf.constant(v.reshape(shape), tf.float32) for v in (x, y))

    def step(a, b):
        with tf.GradientTape() as tape:
            tape.watch(b)
            loss = corrops.corr_loss(a, b, mask=mask, method=method, impl="tf")
            total = tf.reduce_sum(tf.where(tf.math.is_nan(loss), tf.zeros_like(loss), loss))
        return loss, tape.gradient(total, b)

    graph, compiled = _both(step, a, b)
    want = ref.corr_loss(x, y, mask=mask, method=method)
    for got in (graph[0], compiled[0]):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)
    assert np.isnan(compiled[0][3]).all() and np.isfinite(compiled[0][[0, 1, 2, 4]]).all()
    assert (compiled[0][4] == 0).all() and (compiled[1].reshape(5, 40)[4] == 0).all()
    grads = [g.reshape(5, 40) for g in (graph[1], compiled[1])]
    rows = [0, 1, 2, 4]
    assert np.isfinite(grads[1][rows]).all()
    np.testing.assert_allclose(grads[1][rows], grads[0][rows], rtol=1e-3, atol=1e-6)
