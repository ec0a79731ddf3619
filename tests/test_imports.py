"""Each front end imports only its own framework: ``import corrops`` none,
corrops.numpy none, corrops.jax only jax, corrops.torch only torch,
corrops.tensorflow only what TensorFlow imports, corrops.keras Keras and its
backend; the TensorFlow names load TensorFlow on first use. Every public name resolves.
Each case runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("tensorflow", "keras", "jax", "torch")

CASES = {
    "corrops": ("import corrops; corrops.build_info(); corrops.DEFAULT_EPS", ()),
    "numpy": (
        "import numpy as np, corrops.numpy as c; c.corr_loss(np.ones((2, 5)), np.arange(10.0)"
        ".reshape(2, 5))",
        (),
    ),
    "jax": (
        "import jax.numpy as jnp, corrops.jax as c; c.corr_loss(jnp.ones((2, 5)), "
        "jnp.arange(10.0).reshape(2, 5)).block_until_ready()",
        ("jax",),
    ),
    "torch": (
        "import torch, corrops.torch as c; c.corr_loss(torch.ones(2, 5), "
        "torch.arange(10.0).reshape(2, 5)).sum().item()",
        ("torch",),
    ),
}
# The TensorFlow names load TensorFlow and Keras (Keras itself may import jax).
TF_NAMES = "import corrops; corrops.corr_loss; corrops.CorrelationLoss; corrops.metrics"


def _frameworks_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(set(sys.modules))))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    return [f for f in FRAMEWORKS if f in modules]


@pytest.mark.parametrize("case", list(CASES))
def test_front_end_imports_only_its_framework(case):
    code, allowed = CASES[case]
    for framework in allowed:
        pytest.importorskip(framework)
    assert _frameworks_after(code) == list(allowed)


def test_keras_on_the_torch_backend_loads_no_tensorflow():
    pytest.importorskip("torch")
    code = (
        "import os; os.environ['KERAS_BACKEND'] = 'torch'\n"
        "import keras, numpy as np, corrops\n"
        "corrops.CorrelationLoss()(np.ones((2, 5, 1), 'float32'), np.ones((2, 5, 1), 'float32'))\n"
        "corrops.metrics.PearsonCorrelation()"
    )
    loaded = _frameworks_after(code)
    assert "torch" in loaded and "tensorflow" not in loaded


def test_tensorflow_front_end_imports_what_tensorflow_imports():
    """corrops.tensorflow adds no framework to those `import tensorflow`
    loads itself (TensorFlow imports Keras, which may import jax)."""
    baseline = _frameworks_after("import tensorflow")
    code = (
        "import tensorflow as tf, corrops.tensorflow as c\n"
        "c.corr_loss(tf.ones((2, 5)), tf.reshape(tf.range(10.0), (2, 5)))"
    )
    assert _frameworks_after(code) == baseline


def test_keras_on_the_jax_backend_loads_no_tensorflow():
    pytest.importorskip("jax")
    code = (
        "import os; os.environ['KERAS_BACKEND'] = 'jax'\n"
        "import numpy as np, corrops.keras as ck\n"
        "ck.CorrelationLoss()(np.ones((2, 5, 1), 'float32'), np.ones((2, 5, 1), 'float32'))"
    )
    assert _frameworks_after(code) == ["keras", "jax"]


def test_tensorflow_names_load_tensorflow_on_first_use():
    loaded = _frameworks_after(TF_NAMES)
    assert "tensorflow" in loaded and "keras" in loaded and "torch" not in loaded


def test_every_public_name_resolves():
    import corrops

    for name in corrops.__all__:
        assert getattr(corrops, name) is not None, name
    assert set(corrops.__all__) <= set(dir(corrops))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        corrops.nope  # noqa: B018
    for front_end in (corrops.tensorflow, corrops.keras):
        for name in front_end.__all__:
            assert getattr(front_end, name) is not None, (front_end.__name__, name)
    # The top-level names are the front ends' own objects.
    assert corrops.corr_loss is corrops.tensorflow.corr_loss
    assert (
        corrops.CorrelationLoss is corrops.keras.CorrelationLoss is corrops.losses.CorrelationLoss
    )
    assert corrops.metrics.PearsonCorrelation is corrops.keras.PearsonCorrelation
