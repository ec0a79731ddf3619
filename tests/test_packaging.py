"""setup.py's metadata: one version (corrops.__version__), one TensorFlow
pin (pyproject.toml's build requirement), which requirements-dev.txt and the
installed TensorFlow agree with, and one jax minor version (the extra, the dev
requirements, the jax the binding was built with)."""

from __future__ import annotations

import re
from pathlib import Path

import tensorflow as tf

import corrops

ROOT = Path(__file__).resolve().parent.parent


def _setup_helpers() -> dict:
    """setup.py's functions, without running setup()."""
    source = (ROOT / "setup.py").read_text().split("\nsetup(\n")[0]
    namespace = {"__file__": str(ROOT / "setup.py"), "__name__": "setup_helpers"}
    exec(compile(source, "setup.py", "exec"), namespace)
    return namespace


def _minor(spec: str) -> str:
    return re.search(r"(\d+\.\d+)", spec).group(1)


def test_the_package_version_is_corrops_version():
    assert _setup_helpers()["package_version"]() == corrops.__version__


def test_one_tensorflow_minor_version_everywhere():
    pyproject = re.search(r'"(tensorflow[^"]*)"', (ROOT / "pyproject.toml").read_text()).group(1)
    dev = next(
        line
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if line.startswith("tensorflow")
    )
    built_for = _setup_helpers()["tensorflow_requirement"]()
    assert _minor(pyproject) == _minor(dev) == _minor(built_for) == _minor(tf.__version__)


def test_one_jax_minor_version_everywhere():
    # The extra, the dev requirements and the jax the binding was built with.
    extra = _setup_helpers()["JAX_REQUIREMENT"]
    dev = next(
        line
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if line.startswith("jax")
    )
    built_with = corrops.build_info()["jax_version"]
    assert _minor(extra) == _minor(dev) == _minor(built_with)
