"""corrops.jax on several devices: forward+backward (the gradient of the
mean w.r.t. y_pred, in one jax.jit) of a batch-sharded input against the same
call on one device, and the shape each device's custom calls see.

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python benchmarks/jax_sharding.py

With host devices, the devices share the machine's cores: the sharded step
can be no faster than the cores allow; what it shows is that each device runs
its own shard (a quarter of the rows) with no collective on the data.
"""

from __future__ import annotations

import re
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import corrops.jax as cj

SHAPE = (256, 4096, 1)


def best_time(fn, *args, rounds: int = 20, calls: int = 10) -> float:
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main() -> int:
    devices = jax.devices()
    if len(devices) < 2:
        print("jax_sharding: one device; set XLA_FLAGS=--xla_force_host_platform_device_count=4")
        return 2
    rng = np.random.default_rng(0)
    x = rng.normal(size=SHAPE).astype(np.float32)
    y = (0.5 * x + rng.normal(size=SHAPE)).astype(np.float32)
    step = jax.jit(jax.value_and_grad(lambda a, b: jnp.mean(cj.corr_loss(a, b)), argnums=1))
    mesh = jax.make_mesh((len(devices),), ("d",), axis_types=(jax.sharding.AxisType.Auto,))
    xs, ys = (jax.device_put(a, NamedSharding(mesh, P("d"))) for a in (x, y))
    one = jax.device_put(x, devices[0]), jax.device_put(y, devices[0])
    hlo = step.lower(xs, ys).compile().as_text()
    calls = sorted(
        set(re.findall(r"f32\[([0-9,]+)\][^\n]*custom_call_target=\"corrops_corr_loss_\w+", hlo))
    )
    collectives = sorted(set(re.findall(r"\b(all-gather|all-to-all|collective-permute)\b", hlo)))
    t_one = best_time(step, *one)
    t_sharded = best_time(step, xs, ys)
    print(
        f"{SHAPE} float32, fwd+bwd of the mean: one device {t_one * 1e3:.2f} ms, "
        f"{len(devices)} devices {t_sharded * 1e3:.2f} ms"
    )
    print(f"custom-call data shapes per device: {calls}; collectives: {collectives or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
