"""How corrops.jax's custom calls are split across devices: ``jax.experimental.
custom_partitioning`` rules, so that a sharded input runs per shard instead of
being gathered onto every device (the default for a call the partitioner
cannot see into).

Operands are in the canonical layout (corrops/_layout.py): data (outer, time,
groups, channels), mask and per-step gradient (outer, time, groups) or the
(0,) placeholder, statistics (outer, groups * channels, words). Rows are
independent, so the outer and groups axes stay as they are sharded. The
statistics need a row's whole time axis, so time is gathered (time only). The
forward's loss is the mean over a group's channels, so the forward gathers
channels; the backward keeps them sharded when there is one group (the
statistics' row axis is then the channel axis). Everything else is computed
per shard with no communication, and results keep the inputs' sharding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec


def _spec(sharding: Any, ndim: int) -> tuple:
    """The mesh axes of each dimension (None: replicated)."""
    spec = tuple(sharding.spec) if isinstance(sharding, NamedSharding) else ()
    return spec + (None,) * (ndim - len(spec))


def _named(mesh: Any, *axes: Any) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(*axes))


def _rule(template: str, data: int) -> Callable:
    """The Shardy rule: factors o, t, g, c of the data and of everything of
    the loss shape; the statistics' row axis is g and c together, written
    with the factors that are not 1 (Shardy takes no size-1 factor in a
    compound one). ``data``: the index of a data operand."""

    def rule(mesh, value_types, result_types):
        _o, _t, groups, channels = value_types[data].shape
        rows = "(g c)" if groups > 1 and channels > 1 else "c" if channels > 1 else "g"
        return template.format(rows=rows)

    return rule


def _shards(mesh: Any, axes: Any) -> int:
    """How many shards mesh axes (a name, a tuple of names, or None) make."""
    names = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
    count = 1
    for name in names:
        count *= mesh.shape[name]
    return count


def _layout_axes(data: Any) -> tuple:
    """(outer, groups, channels) mesh axes of a data operand's sharding."""
    o, _time, g, c = _spec(data.sharding, 4)
    return o, g, c


def forward(call: Callable, has_mask: bool) -> Callable:
    """``call(x, y, m) -> (loss, stats)`` partitioned per shard."""

    def shardings(mesh, arg_shapes):
        o, g, _ = _layout_axes(arg_shapes[1])
        data = _named(mesh, o, None, g, None)
        mask = _named(mesh, o, None, g) if has_mask else _named(mesh, None)
        outs = (_named(mesh, o, None, g), _named(mesh, o, g, None))
        return outs, (data, data, mask)

    def infer(mesh, arg_shapes, result_shape):
        return shardings(mesh, arg_shapes)[0]

    def partition(mesh, arg_shapes, result_shape):
        outs, args = shardings(mesh, arg_shapes)
        return mesh, call, outs, args

    fn = custom_partitioning(call)
    mask_factors = "o t g" if has_mask else "z"
    fn.def_partition(
        infer_sharding_from_operands=infer,
        partition=partition,
        sharding_rule=_rule(f"o t g c, o t g c, {mask_factors} -> o t g, o {{rows}} w", data=0),
    )
    return fn


def backward(call: Callable, has_mask: bool, want_true: bool, want_pred: bool) -> Callable:
    """``call(g, x, y, m, stats) -> (grad_true, grad_pred)`` partitioned per shard."""

    def shardings(mesh, arg_shapes):
        o, g, c = _layout_axes(arg_shapes[2])
        if arg_shapes[2].shape[2] != 1:  # several groups: rows mix groups and channels
            c = None
        rows = c if arg_shapes[2].shape[2] == 1 else g
        data = _named(mesh, o, None, g, c)
        steps = _named(mesh, o, None, g)
        mask = steps if has_mask else _named(mesh, None)
        grads = tuple(data if want else _named(mesh, None) for want in (want_true, want_pred))
        return grads, (steps, data, data, mask, _named(mesh, o, rows, None))

    def infer(mesh, arg_shapes, result_shape):
        return shardings(mesh, arg_shapes)[0]

    def partition(mesh, arg_shapes, result_shape):
        outs, args = shardings(mesh, arg_shapes)
        shards = _shards(mesh, args[1].spec[3] if len(args[1].spec) > 3 else None)
        if shards == 1:
            return mesh, call, outs, args

        def per_shard(g, *rest):
            # A shard averages its own channels: the upstream gradient of the
            # mean over all of them is 1/shards of the one it divides.
            return call(g * (1.0 / shards), *rest)

        return mesh, per_shard, outs, args

    fn = custom_partitioning(call)
    mask_factors = "o t g" if has_mask else "z"
    grads = ", ".join(
        "o t g c" if want else f"e{i}" for i, want in enumerate((want_true, want_pred))
    )
    fn.def_partition(
        infer_sharding_from_operands=infer,
        partition=partition,
        sharding_rule=_rule(
            f"o t g, o t g c, o t g c, {mask_factors}, o {{rows}} w -> {grads}", data=1
        ),
    )
    return fn
