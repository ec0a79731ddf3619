"""corrops.jax on four devices: sharded inputs run per shard, with no
communication for the batch, group and channel layouts the partitioning
rules keep (corrops/jax/_sharding.py), results keep the inputs' sharding and
equal the unsharded call bitwise; time-sharded inputs are gathered along time
and give the same results; Keras' DataParallel fit runs the fused op and
gives the loss of one device.

Run by tests/test_jax_sharding.py in a process of its own with
XLA_FLAGS=--xla_force_host_platform_device_count=4 and KERAS_BACKEND=jax
(the device count is fixed when JAX starts).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import corrops
import corrops.jax as cj

COLLECTIVES = re.compile(r"\b(all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter)")


@pytest.fixture(scope="module")
def mesh():
    assert len(jax.devices()) == 4, "run with XLA_FLAGS=--xla_force_host_platform_device_count=4"
    # Auto axes: jax.jit places the work from the inputs' sharding (explicit
    # axes: test_explicit_axes_keep_their_types).
    return jax.make_mesh((4,), ("d",), axis_types=(AxisType.Auto,))


def _collectives(fn, *args) -> list[str]:
    return sorted(set(COLLECTIVES.findall(fn.lower(*args).compile().as_text())))


def _spec(a) -> tuple:
    """a's partition spec without trailing replicated axes."""
    spec = tuple(a.sharding.spec)
    while spec and spec[-1] is None:
        spec = spec[:-1]
    return spec


def _spec_of(spec: P) -> tuple:
    spec = tuple(spec)
    while spec and spec[-1] is None:
        spec = spec[:-1]
    return spec


def _same(got, want, bitwise: bool) -> None:
    """Bitwise, or to float32 rounding (XLA's own reductions around the
    calls, such as the coefficient's sum over time, and the engine's sums
    for another layout, add in an order that depends on the shard's shape)."""
    if bitwise:
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    else:
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)


def _data(shape, axis, masked, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(np.float32)
    y = (0.5 * x + rng.normal(size=shape)).astype(np.float32)
    loss_shape = shape[:-1] if len(shape) >= 3 else shape
    mask = rng.random(loss_shape) > 0.25 if masked else None
    return x, y, mask


# (name, shape, time axis, partition of the data, of the loss, of the
# coefficient, whether a shard's call gives the unsharded call's bits: a
# batch shard is the same layout with fewer rows; a group shard another
# layout, whose rows the engine may sum in another order)
LAYOUTS = [
    ("batch", (16, 60, 3), 1, P("d"), P("d"), P("d"), True),
    ("leading axis, time on 2", (4, 6, 50, 2), 2, P("d"), P("d"), P("d"), True),
    ("groups", (6, 40, 4, 2), 1, P(None, None, "d"), P(None, None, "d"), P(None, "d"), False),
]


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("layout", LAYOUTS, ids=[case[0] for case in LAYOUTS])
def test_sharded_calls_run_per_shard(mesh, layout, masked, method):
    _name, shape, axis, data_spec, loss_spec, coef_spec, bitwise = layout
    x, y, mask = _data(shape, axis, masked)
    put = lambda a, spec: jax.device_put(a, NamedSharding(mesh, spec))  # noqa: E731
    xs, ys = put(x, data_spec), put(y, data_spec)
    ms = None if mask is None else put(mask, loss_spec)

    def loss(a, b, m):
        return cj.corr_loss(a, b, axis=axis, mask=m, method=method)

    def coef(a, b, m):
        return cj.corrcoef(a, b, axis=axis, mask=m, method=method)

    def grads(a, b, m):
        return jax.grad(lambda u, v: jnp.mean(loss(u, v, m)), argnums=(0, 1))(a, b)

    for fn, spec in ((loss, loss_spec), (coef, coef_spec)):
        jitted = jax.jit(fn)
        assert _collectives(jitted, xs, ys, ms) == []
        got = jitted(xs, ys, ms)
        assert _spec(got) == _spec_of(spec)
        _same(got, fn(x, y, mask), bitwise=bitwise and fn is loss)
    jitted = jax.jit(grads)
    # The mean's gradient is the one collective: the sum of the loss over shards.
    assert set(_collectives(jitted, xs, ys, ms)) <= {"all-reduce"}
    for got, want in zip(jitted(xs, ys, ms), grads(x, y, mask), strict=True):
        assert _spec(got) == _spec_of(data_spec)
        _same(got, want, bitwise=bitwise)


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_channel_sharding(mesh, masked, method):
    """The coefficient and the gradient run per channel shard; the loss (a
    mean over channels) gathers them, with the same results."""
    x, y, mask = _data((8, 50, 8), 1, masked)
    xs, ys = (jax.device_put(a, NamedSharding(mesh, P(None, None, "d"))) for a in (x, y))
    coef = jax.jit(lambda a, b: cj.corrcoef(a, b, mask=mask, method=method))
    assert _collectives(coef, xs, ys) == []
    assert _spec(coef(xs, ys)) == (None, "d")
    _same(coef(xs, ys), cj.corrcoef(x, y, mask=mask, method=method), bitwise=False)
    weights = jnp.asarray(np.random.default_rng(1).random((8, 50)), jnp.float32)

    def total(a, b):
        return jnp.sum(cj.corr_loss(a, b, mask=mask, method=method) * weights)

    grad = jax.jit(jax.grad(total, argnums=1))
    got = grad(xs, ys)
    assert _spec(got) == (None, None, "d")
    _same(got, jax.grad(total, argnums=1)(x, y), bitwise=False)
    np.testing.assert_array_equal(np.asarray(jax.jit(total)(xs, ys)), np.asarray(total(x, y)))


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_time_sharding_gathers_time_only(mesh, masked, method):
    x, y, mask = _data((8, 64, 2), 1, masked)
    xs, ys = (jax.device_put(a, NamedSharding(mesh, P(None, "d"))) for a in (x, y))
    ms = None if mask is None else jax.device_put(mask, NamedSharding(mesh, P(None, "d")))

    def total(a, b, m):
        return jnp.mean(cj.corr_loss(a, b, mask=m, method=method))

    step = jax.jit(jax.value_and_grad(total, argnums=1))
    assert "all-reduce" not in _collectives(
        jax.jit(lambda a, b, m: cj.corr_loss(a, b, mask=m)), xs, ys, ms
    )
    (value, grad), (want_value, want_grad) = (
        step(xs, ys, ms),
        jax.value_and_grad(total, argnums=1)(x, y, mask),
    )
    _same(value, want_value, bitwise=False)  # XLA's mean
    _same(grad, want_grad, bitwise=True)


def test_second_derivatives_under_sharding(mesh):
    x, y, _ = _data((8, 40, 1), 1, False)
    ys = jax.device_put(y, NamedSharding(mesh, P("d")))

    def penalty(b):
        g = jax.grad(lambda v: jnp.mean(cj.corr_loss(x, v)))(b)
        return jnp.sum(g**2)

    got = jax.jit(jax.grad(penalty))(ys)
    np.testing.assert_allclose(np.asarray(got), np.asarray(jax.grad(penalty)(y)), rtol=1e-5)


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize(
    ("shape", "axis"), [((8, 40), 1), ((8, 40, 2), 1), ((8, 3, 40, 2), 2)], ids=str
)
def test_explicit_axes_keep_their_types(shape, axis, masked):
    # A mesh with Explicit axes: sharding is part of the arrays' types. The
    # leading axis stays sharded in the loss, the coefficient and the
    # gradients (the canonical reshape merges it with the next axis, which
    # Explicit axes reject: the calls run with the axes Auto), per shard,
    # with the values of one device.
    explicit = jax.make_mesh((4,), ("d",), axis_types=(AxisType.Explicit,))
    x, y, mask = _data(shape, axis, masked)
    with jax.set_mesh(explicit):
        put = lambda a: jax.device_put(a, NamedSharding(explicit, P("d")))  # noqa: E731
        xs, ys = put(x), put(y)
        ms = None if mask is None else put(mask)

        def total(a, b, m):
            return jnp.mean(cj.corr_loss(a, b, axis=axis, mask=m))

        loss = jax.jit(lambda a, b, m: cj.corr_loss(a, b, axis=axis, mask=m))
        coef = jax.jit(lambda a, b, m: cj.corrcoef(a, b, axis=axis, mask=m))
        grads = jax.jit(jax.grad(total, argnums=(0, 1)))
        for fn in (loss, coef):
            assert _collectives(fn, xs, ys, ms) == []
        assert set(_collectives(grads, xs, ys, ms)) <= {"all-reduce"}  # the mean
        got_loss, got_coef = loss(xs, ys, ms), coef(xs, ys, ms)
        got_grads = grads(xs, ys, ms)
    assert _spec(got_loss) == ("d",) and _spec(got_coef) == ("d",)
    assert all(_spec(g) == ("d",) for g in got_grads)
    _same(got_loss, cj.corr_loss(x, y, axis=axis, mask=mask), bitwise=True)
    _same(got_coef, cj.corrcoef(x, y, axis=axis, mask=mask), bitwise=False)
    for got, want in zip(got_grads, jax.grad(total, argnums=(0, 1))(x, y, mask), strict=True):
        _same(got, want, bitwise=False)


def test_forward_mode_under_batch_sharding(mesh):
    # jax.jvp of the fused loss: the forward call per shard, the tangent (the
    # formula's JVP) partitioned by XLA; no collective, the batch sharding kept.
    x, y, _ = _data((8, 40, 1), 1, False)
    ty = np.random.default_rng(3).normal(size=y.shape).astype(np.float32)
    sharding = NamedSharding(mesh, P("d"))
    xs, ys, ts = (jax.device_put(a, sharding) for a in (x, y, ty))
    step = jax.jit(lambda a, b, t: jax.jvp(lambda v: cj.corr_loss(a, v), (b,), (t,)))
    assert _collectives(step, xs, ys, ts) == []
    loss, tangent = step(xs, ys, ts)
    assert _spec(tangent) == ("d",)
    want_loss, want_tangent = jax.jvp(lambda v: cj.corr_loss(x, v), (y,), (ty,))
    _same(loss, want_loss, bitwise=True)
    _same(tangent, want_tangent, bitwise=False)


def test_data_parallel_fit_runs_the_fused_op_with_the_loss_of_one_device():
    import keras

    assert keras.backend.backend() == "jax"
    x, y, _ = _data((32, 50, 3), 1, False)
    y = y[..., :1]

    def fit():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((50, 3)), keras.layers.Dense(1)])
        model.compile(
            optimizer=keras.optimizers.SGD(0.1), loss=corrops.CorrelationLoss(), jit_compile=True
        )
        hist = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        return hist.history["loss"], corrops.last_choice()

    one, _ = fit()
    with keras.distribution.DataParallel(devices=jax.devices()).scope():
        parallel, choice = fit()
    assert choice["impl"] == "fused", choice
    np.testing.assert_allclose(parallel, one, rtol=1e-5)
