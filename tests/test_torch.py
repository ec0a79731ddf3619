"""corrops.torch: the native ops (opcheck), gradients to second order in
float64 (gradcheck, gradgradcheck), parity with corrops.numpy over dtypes,
shape classes, masks, methods and dims, the reductions, torch.compile and torch.export,
bad inputs, determinism over thread counts, and the pure-torch fallback.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import corrops  # noqa: E402
import corrops.numpy as cnp  # noqa: E402
import corrops.torch as ct  # noqa: E402
from corrops.torch import _library  # noqa: E402
from tests.helpers import sequence_data  # noqa: E402

if not ct.available():  # a build without the ops is a failure in CI, as for the TF op
    pytest.fail(f"corrops.torch's native ops did not load: {_library.unavailable_reason()}")

METHODS = ["pearson", "ccc"]
# (shape, dim): (B, T), (B, T, C), 4-D with groups, time not on axis 1.
SHAPES = [((3, 17), 1), ((4, 9, 3), 1), ((2, 6, 3, 2), 1), ((5, 3, 2), 0), ((2, 3, 11, 2), 2)]
IMPLS = ["fused", "torch"]
REDUCED_SHAPES = [((3, 17), 1), ((2, 6, 3, 2), 1), ((5, 3, 2), 0)]


def _data(shape, dim, masked, seed=0):
    x, y, mask = sequence_data(np.random.default_rng(seed), shape, dim, masked)
    return x, y, mask


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize(("shape", "dim"), SHAPES, ids=str)
def test_matches_numpy_front_end(shape, dim, masked, method, impl):
    # The fused op runs the engine corrops.numpy runs: bitwise in float32 and
    # float64; the formula agrees to rounding.
    x, y, mask = _data(shape, dim, masked)
    for dtype in (np.float32, np.float64):
        want = cnp.corr_loss(x.astype(dtype), y.astype(dtype), axis=dim, mask=mask, method=method)
        t_mask = None if mask is None else torch.from_numpy(mask)
        got = ct.corr_loss(
            torch.from_numpy(x.astype(dtype)),
            torch.from_numpy(y.astype(dtype)),
            dim=dim,
            mask=t_mask,
            method=method,
            impl=impl,
        )
        assert got.dtype == torch.from_numpy(want).dtype and got.shape == want.shape
        if impl == "fused":
            np.testing.assert_array_equal(got.numpy(), want)
        else:
            tol = 1e-12 if dtype == np.float64 else 2e-5
            np.testing.assert_allclose(got.numpy(), want, rtol=tol, atol=tol)
        coef = ct.corrcoef(
            torch.from_numpy(x.astype(dtype)),
            torch.from_numpy(y.astype(dtype)),
            dim=dim,
            mask=t_mask,
            method=method,
            impl=impl,
        )
        want_coef = cnp.corrcoef(
            x.astype(dtype), y.astype(dtype), axis=dim, mask=mask, method=method
        )
        tol = 1e-12 if dtype == np.float64 else 3e-5
        np.testing.assert_allclose(coef.numpy(), want_coef, rtol=tol, atol=tol)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize(("shape", "dim"), REDUCED_SHAPES, ids=str)
def test_reduction_is_the_reduced_per_step_loss(shape, dim, masked, method, impl):
    # reduction="mean"/"sum" equals .mean()/.sum() of the per-step loss to
    # rounding (the op sums over time from its statistics), with the same
    # gradients: bitwise for the fused op, whose backward gets the compact
    # upstream gradient either way.
    x, y, mask = _data(shape, dim, masked)
    m = None if mask is None else torch.from_numpy(mask)
    for dtype in (torch.float16, torch.float32, torch.float64):
        tol = {torch.float16: 2e-3, torch.float32: 2e-6, torch.float64: 1e-13}[dtype]
        for reduction in ("mean", "sum"):
            grads = []
            for reduced in (False, True):
                xt = torch.from_numpy(x).to(dtype).requires_grad_()
                yt = torch.from_numpy(y).to(dtype).requires_grad_()
                kwargs = dict(dim=dim, mask=m, method=method, impl=impl)
                if reduced:
                    loss = ct.corr_loss(xt, yt, reduction=reduction, **kwargs)
                    assert loss.shape == () and loss.dtype == dtype
                else:
                    loss = getattr(ct.corr_loss(xt, yt, **kwargs), reduction)()
                grads.append((loss, *torch.autograd.grad(loss, (xt, yt))))
            (want, *want_grads), (got, *got_grads) = grads
            scale = 1.0 if reduction == "mean" else float(np.prod(want_grads[0].shape))
            torch.testing.assert_close(got, want, rtol=tol, atol=tol * scale)
            for g, w in zip(got_grads, want_grads, strict=True):
                if impl == "fused" and dtype != torch.float16:
                    assert torch.equal(g, w)
                else:
                    torch.testing.assert_close(g, w, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_types_computed_in_float32(dtype):
    # Half inputs are widened to float32, computed, and rounded back, as
    # corrops.numpy does for float16: bitwise the float32 result rounded.
    x, y, mask = _data((4, 40, 2), 1, True)
    xt, yt = torch.from_numpy(x).to(dtype), torch.from_numpy(y).to(dtype)
    got = ct.corr_loss(xt, yt, mask=torch.from_numpy(mask))
    assert got.dtype == dtype
    want = cnp.corr_loss(xt.float().numpy(), yt.float().numpy(), mask=mask)
    assert torch.equal(got, torch.from_numpy(want).to(dtype))
    formula = ct.corr_loss(xt, yt, mask=torch.from_numpy(mask), impl="torch")
    torch.testing.assert_close(formula.float(), got.float(), rtol=2e-2, atol=2e-2)


def test_y_true_cast_to_y_pred_dtype_and_rank_two_against_channels():
    x, y, _ = _data((3, 20, 1), 1, False)
    got = ct.corr_loss(torch.from_numpy(x[..., 0]), torch.from_numpy(y).float())
    assert got.dtype == torch.float32 and got.shape == (3, 20)
    want = cnp.corr_loss(x[..., 0].astype(np.float32), y.astype(np.float32))
    np.testing.assert_array_equal(got.numpy(), want)


def test_non_contiguous_inputs():
    x, y, mask = _data((6, 30, 4), 1, True)
    base = ct.corr_loss(torch.from_numpy(x), torch.from_numpy(y), mask=torch.from_numpy(mask))
    # The same values behind transposed and strided views.
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2))).transpose(0, 1)
    yt = torch.from_numpy(np.repeat(y, 2, axis=2))[..., ::2]
    mt = torch.from_numpy(np.ascontiguousarray(mask.T)).T
    assert not (xt.is_contiguous() or yt.is_contiguous() or mt.is_contiguous())
    assert torch.equal(ct.corr_loss(xt, yt, mask=mt), base)


def test_integer_and_float_masks_as_bool():
    x, y, mask = _data((3, 12), 1, True)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    want = ct.corr_loss(xt, yt, mask=torch.from_numpy(mask))
    for m in (torch.from_numpy(mask).int(), torch.from_numpy(mask).double()):
        assert torch.equal(ct.corr_loss(xt, yt, mask=m), want)


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize(("shape", "dim"), [((3, 7), 1), ((2, 5, 2), 1), ((4, 3, 2), 0)], ids=str)
def test_gradcheck_and_gradgradcheck(shape, dim, masked, method, impl):
    x, y, mask = _data(shape, dim, masked)
    xt = torch.from_numpy(x).requires_grad_()
    yt = torch.from_numpy(y).requires_grad_()
    m = None if mask is None else torch.from_numpy(mask)

    def loss(a, b):
        return ct.corr_loss(a, b, dim=dim, mask=m, method=method, impl=impl)

    def coef(a, b):
        return ct.corrcoef(a, b, dim=dim, mask=m, method=method, impl=impl)

    def mean_loss(a, b):
        return ct.corr_loss(a, b, dim=dim, mask=m, method=method, impl=impl, reduction="mean")

    for fn in (loss, mean_loss):
        assert torch.autograd.gradcheck(fn, (xt, yt))
        assert torch.autograd.gradgradcheck(fn, (xt, yt))
    assert torch.autograd.gradcheck(coef, (xt, yt))


def test_gradient_of_a_mean_uses_the_time_constant_path():
    # loss.mean()'s gradient is one value broadcast along time: the backward
    # op gets its time-1 slice (bitwise what the op gives for that slice), and
    # agrees with a dense upstream gradient to rounding.
    x, y, mask = _data((4, 50, 3), 1, True)
    m = torch.from_numpy(mask)
    grads = []
    for dense in (False, True):
        xt = torch.from_numpy(x).requires_grad_()
        yt = torch.from_numpy(y).requires_grad_()
        loss = ct.corr_loss(xt, yt, mask=m)
        upstream = torch.full_like(loss, 1.0 / loss.numel())
        if not dense:
            upstream = upstream[:, :1].expand_as(loss)
        loss.backward(upstream)
        grads.append((xt.grad, yt.grad))
    for a, b in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    x4, y4, m3 = (torch.from_numpy(a).unsqueeze(2) for a in (x, y, mask))
    _loss, stats = torch.ops.corrops.corr_loss_forward(x4, y4, m3, "pearson", 1e-7)
    g = torch.full((4, 1, 1), 1.0 / 200, dtype=torch.float64)
    gx, gy = torch.ops.corrops.corr_loss_backward(g, x4, y4, m3, stats, "pearson", 1e-7)
    assert torch.equal(gx.squeeze(2), grads[0][0]) and torch.equal(gy.squeeze(2), grads[0][1])


def test_third_derivative_through_the_formula():
    # The backward op's gradient is the formula differentiated by torch.func,
    # itself differentiable: third derivatives match the formula path.
    x, y, _ = _data((2, 6), 1, False)
    outs = []
    for impl in IMPLS:
        yt = torch.from_numpy(y).requires_grad_()
        v = torch.linspace(-1.0, 1.0, 12, dtype=torch.float64).reshape(2, 6)
        (g,) = torch.autograd.grad(ct.corr_loss(x, yt, impl=impl).sum(), yt, create_graph=True)
        (h,) = torch.autograd.grad((g * v).sum(), yt, create_graph=True)
        (t,) = torch.autograd.grad((h * v).sum(), yt)
        outs.append(t)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("create_graph", [False, True])
def test_the_backward_records_its_derivatives_only_when_asked(create_graph):
    # The backward op's C++ autograd kernel runs the kernels directly for a
    # first-order backward and goes through the op whose autograd is the
    # formula only under create_graph.
    x, y, _ = _data((3, 20), 1, False)
    yt = torch.from_numpy(y).requires_grad_()
    with torch.profiler.profile() as prof:
        loss = ct.corr_loss(x, yt, reduction="mean")
        torch.autograd.grad(loss, yt, create_graph=create_graph)
    names = {event.key for event in prof.key_averages()}
    assert "corrops::corr_loss_backward" in names
    assert ("corrops::corr_loss_backward_differentiable" in names) == create_graph


@pytest.mark.parametrize("context", ["no_grad", "inference_mode"])
def test_no_autograd_state_without_grad(context):
    x, y, _ = _data((3, 20), 1, False)
    xt = torch.from_numpy(x).requires_grad_()
    with getattr(torch, context)():
        loss = ct.corr_loss(xt, torch.from_numpy(y))
    assert loss.grad_fn is None and not loss.requires_grad


# ---------------------------------------------------------------- the ops


def test_opcheck_the_ops():
    rng = np.random.default_rng(3)
    for masked in (False, True):
        x = torch.from_numpy(rng.normal(size=(2, 9, 2, 3)))
        y = torch.from_numpy(rng.normal(size=(2, 9, 2, 3)))
        mask = torch.from_numpy(rng.random((2, 9, 2)) > 0.3) if masked else None
        for method in METHODS:
            args = (x, y, mask, method, 1e-7)
            torch.library.opcheck(torch.ops.corrops.corr_loss_forward, args)
            torch.library.opcheck(torch.ops.corrops.corr_loss_forward, (*args, True))
            _loss, stats = torch.ops.corrops.corr_loss_forward(*args)
            backward_ops = (
                torch.ops.corrops.corr_loss_backward,
                torch.ops.corrops.corr_loss_backward_differentiable,
            )
            for grad in (torch.ones(2, 9, 2, dtype=torch.float64), torch.ones(2, 1, 2).double()):
                for op in backward_ops:
                    torch.library.opcheck(op, (grad, x, y, mask, stats, method, 1e-7))


def test_results_do_not_depend_on_the_thread_count():
    # Work units are computed by one thread each: bitwise equal for 1 and 2
    # threads, on inputs large enough to be split.
    x, y, mask = _data((16, 8192, 2), 1, True)
    xt, yt, m = torch.from_numpy(x), torch.from_numpy(y).requires_grad_(), torch.from_numpy(mask)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            loss = ct.corr_loss(xt, yt, mask=m)
            (g,) = torch.autograd.grad(loss.mean(), yt)
            results.append((loss, g))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_the_ops_spread_their_work_over_torch_intra_op_threads():
    # at::parallel_for is an inline `omp parallel` region in an OpenMP torch:
    # a library compiled without OpenMP runs it on the calling thread alone.
    # With 2 intra-op threads, the other thread takes about half the work,
    # so the CPU time of the process beyond the calling thread's is more
    # than a quarter of the calling thread's.
    x, y, _ = _data((64, 8192, 4), 1, False)
    args = (torch.from_numpy(x), torch.from_numpy(y), None, "pearson", 1e-7)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        torch.ops.corrops.corr_loss_forward(*args)  # the thread team exists
        time.sleep(0.05)  # and is idle
        process, caller = time.process_time(), time.thread_time()
        for _ in range(20):
            torch.ops.corrops.corr_loss_forward(*args)
        caller = time.thread_time() - caller
        others = time.process_time() - process - caller
    finally:
        torch.set_num_threads(threads)
    assert others > 0.25 * caller, f"other threads {others:.3f} s, calling thread {caller:.3f} s"


# ---------------------------------------------------------------- torch.compile, export


@pytest.mark.slow
def test_torch_compile_fullgraph_dynamic_batch():
    torch._dynamo.reset()

    def step(a, b, m):
        return ct.corr_loss(a, b, mask=m, method="ccc").mean()

    def reduced_step(a, b, m):
        return ct.corr_loss(a, b, mask=m, method="ccc", reduction="mean")

    for fn in (step, reduced_step):
        compiled = torch.compile(fn, fullgraph=True, dynamic=True)
        for batch in (4, 7):
            x, y, mask = _data((batch, 33, 2), 1, True, seed=batch)
            m = torch.from_numpy(mask)
            ye = torch.from_numpy(y).requires_grad_()
            yc = torch.from_numpy(y).requires_grad_()
            eager = fn(torch.from_numpy(x), ye, m)
            got = compiled(torch.from_numpy(x), yc, m)
            torch.testing.assert_close(got, eager, rtol=1e-12, atol=1e-12)
            eager.backward()
            got.backward()
            torch.testing.assert_close(yc.grad, ye.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_torch_export_holds_the_native_op():
    class Loss(torch.nn.Module):
        def forward(self, a, b):
            return ct.corr_loss(a, b)

    x, y, _ = _data((4, 20, 1), 1, False)
    batch = torch.export.Dim("batch", min=2)
    exported = torch.export.export(
        Loss(), (torch.from_numpy(x), torch.from_numpy(y)), dynamic_shapes=({0: batch}, {0: batch})
    )
    assert "corrops.corr_loss_forward" in str(exported.graph)
    x2, y2, _ = _data((6, 20, 1), 1, False, seed=1)
    got = exported.module()(torch.from_numpy(x2), torch.from_numpy(y2))
    np.testing.assert_array_equal(got.numpy(), cnp.corr_loss(x2, y2))


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape", [(4, 37), (3, 29, 2)], ids=str)
def test_the_lean_call_gives_the_general_paths_bits(shape, dtype, method, reduction, monkeypatch):
    # The common call skips the general argument handling (_lean_call); an
    # explicit impl takes the general path. Same loss and gradients, bitwise.
    x, y, _ = _data(shape, 1, False)
    x = torch.tensor(x, dtype=dtype, requires_grad=True)
    y = torch.tensor(y, dtype=dtype, requires_grad=True)
    general = ct.corr_loss(x, y, method=method, impl="auto", reduction=reduction)
    general_grads = torch.autograd.grad((general * general).sum(), (x, y))

    def general_path(*args, **kwargs):
        raise AssertionError("the common call took the general path")

    monkeypatch.setattr(ct, "_canonicalize", general_path)
    lean = ct.corr_loss(x, y, method=method, reduction=reduction)
    lean_grads = torch.autograd.grad((lean * lean).sum(), (x, y))
    assert torch.equal(lean, general)
    for got, want in zip(lean_grads, general_grads, strict=True):
        assert torch.equal(got, want)


# ---------------------------------------------------------------- choice, errors


def test_last_choice_and_the_fallback(monkeypatch):
    x, y, _ = _data((2, 10), 1, False)
    ct.corr_loss(x, y)
    assert corrops.last_choice()["impl"] == "fused"
    ct.corr_loss(x, y, impl="torch")
    assert corrops.last_choice() == {"impl": "torch", "reason": "impl='torch' requested"}
    monkeypatch.setattr(_library, "unavailable_reason", lambda: "the ops are not built")
    ct.corr_loss(x, y)
    assert corrops.last_choice() == {"impl": "torch", "reason": "the ops are not built"}
    with pytest.raises(corrops.FusedOpUnavailableError, match="the ops are not built"):
        ct.corr_loss(x, y, impl="fused")


def test_meta_tensors_use_the_formula():
    # A device the ops have no kernels for runs the formula (shapes only here).
    x = torch.empty(3, 10, 2, device="meta")
    assert ct.corr_loss(x, x).shape == (3, 10)
    assert corrops.last_choice()["impl"] == "torch"
    with pytest.raises(corrops.FusedOpUnavailableError, match="kernels for cpu"):
        ct.corr_loss(x, x, impl="fused")


BAD = [
    (dict(method="spearman"), ValueError, "method must be one of"),
    (dict(eps=0.0), ValueError, "eps must be finite and > 0"),
    (dict(eps="1"), TypeError, "eps must be a real number"),
    (dict(dim=2), ValueError, "axis 2 is the channel axis"),
    (dict(dim=1.0), TypeError, "axis must be an int"),
    (dict(mask=np.ones((3, 9), bool)), ValueError, "mask must have the loss shape"),
    (dict(mask=torch.ones(3, 10, dtype=torch.complex64)), TypeError, "mask must be bool or 0/1"),
    (dict(impl="cuda"), ValueError, "impl must be one of"),
    (dict(reduction="avg"), ValueError, "reduction must be one of"),
    (dict(reduction=None), ValueError, "reduction must be one of"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD, ids=lambda v: str(v)[:30])
def test_bad_arguments_name_themselves(kwargs, error, match):
    x = torch.randn(3, 10, 2)
    with pytest.raises(error, match=match):
        ct.corr_loss(x, x, **kwargs)


def test_bad_tensors_name_themselves(monkeypatch):
    x = torch.randn(3, 10)
    with pytest.raises(TypeError, match="y_pred must be a floating-point tensor"):
        ct.corr_loss(x, torch.ones(3, 10, dtype=torch.int32))
    with pytest.raises(TypeError, match="y_true must be a floating-point tensor"):
        ct.corr_loss(torch.ones(3, 10, dtype=torch.int64), x)
    with pytest.raises(ValueError, match="y_true and y_pred must have the same shape"):
        ct.corr_loss(x, torch.randn(3, 11))
    with pytest.raises(ValueError, match="rank >= 2"):
        ct.corr_loss(torch.randn(5), torch.randn(5))
    with pytest.raises(ValueError, match="y_true is on meta"):
        ct.corr_loss(torch.empty(3, 10, device="meta"), x)
    with pytest.raises(ValueError, match="y_pred could not be converted"):
        ct.corr_loss(x, object())
    monkeypatch.setenv("CORROPS_IMPL", "nope")
    with pytest.raises(ValueError, match="CORROPS_IMPL must be one of"):
        ct.corr_loss(x, x)


def test_the_ops_reject_what_the_front_end_never_passes():
    # Called directly: each bad operand is a ValueError/TypeError naming it.
    x = torch.randn(2, 5, 1, 1)
    op = torch.ops.corrops.corr_loss_forward
    with pytest.raises(ValueError, match="method must be 'pearson' or 'ccc'"):
        op(x, x, None, "r", 1e-7)
    with pytest.raises(ValueError, match="eps must be finite"):
        op(x, x, None, "ccc", float("nan"))
    with pytest.raises(TypeError, match="y_true must have dtype"):
        op(x.double(), x, None, "ccc", 1e-7)
    with pytest.raises(ValueError, match="y_pred must be contiguous"):
        op(x, x.transpose(0, 1), None, "ccc", 1e-7)
    with pytest.raises(ValueError, match="mask must have shape"):
        op(x, x, torch.ones(2, 4, 1, dtype=torch.bool), "ccc", 1e-7)
    _loss, stats = op(x, x, None, "ccc", 1e-7)
    with pytest.raises(ValueError, match="stats must have shape"):
        torch.ops.corrops.corr_loss_backward(
            torch.ones(2, 5, 1), x, x, None, stats[:1], "ccc", 1e-7
        )


# ---------------------------------------------------------------- CUDA


def test_cuda_kernels_registered_in_a_cuda_build():
    # Compiled and registered with any torch (only device-generic headers);
    # they run where torch has CUDA and a GPU.
    cuda = "cuda" in corrops.build_info().get("torch_platforms", [])
    assert cuda == bool(corrops.build_info().get("cuda"))
    for op in ("corrops::corr_loss_forward", "corrops::corr_loss_backward"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op, "CUDA") == cuda


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("method", METHODS)
def test_cuda_matches_cpu(dtype, method):
    if "cuda" not in _library.platforms():
        pytest.skip("this build has no CUDA kernels for the PyTorch ops")
    x, y, mask = _data((8, 300, 3), 1, True)
    grads = {}
    for device in ("cpu", "cuda"):
        xt = torch.from_numpy(x).to(device, dtype)
        yt = torch.from_numpy(y).to(device, dtype).requires_grad_()
        m = torch.from_numpy(mask).to(device)
        loss = ct.corr_loss(xt, yt, mask=m, method=method)
        assert corrops.last_choice()["impl"] == "fused"
        loss.mean().backward()
        total = ct.corr_loss(xt, yt, mask=m, method=method, reduction="sum")
        (g_total,) = torch.autograd.grad(total, yt)
        grads[device] = (loss.detach().cpu(), yt.grad.cpu(), total.detach().cpu(), g_total.cpu())
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    for got, want in zip(grads["cuda"], grads["cpu"], strict=True):
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)
