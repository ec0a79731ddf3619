"""Builds corrops' native libraries with CMake: the engine and its NumPy
binding always, and each framework's binding whose framework is importable at
build time (TensorFlow's op library, the JAX and PyTorch ops).

numpy is the only hard dependency. The extras pin the minor version of each
framework a binding was built against (a TF custom-op library or a
TORCH_LIBRARY extension loads only into the version it was compiled for):
``corrops[tensorflow]``, ``corrops[jax]``, ``corrops[torch]``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """One CMake build produces every extension; later calls find it done."""

    _built = False

    def build_extension(self, ext: Extension) -> None:
        if CMakeBuild._built:
            return
        CMakeBuild._built = True
        ops_path = Path(self.get_ext_fullpath("corrops._corrops_ops")).resolve()
        editable = self.inplace or getattr(self, "editable_mode", False)
        # An editable install (scripts/bootstrap.sh) keeps its CMake build in
        # the source tree, so that running it again rebuilds only what changed.
        # Any other build starts from an empty directory: pip builds a source
        # tree in place, and a cache from an earlier build would point at
        # that build's (isolated, since deleted) framework paths.
        if editable:
            build_dir = ROOT / "build" / "cmake"
            build_dir.mkdir(parents=True, exist_ok=True)
        else:
            build_dir = Path(tempfile.mkdtemp(prefix="corrops-cmake-"))
        try:
            self._cmake(build_dir, ops_path, editable)
        finally:
            if not editable:
                shutil.rmtree(build_dir, ignore_errors=True)

    def _cmake(self, build_dir: Path, ops_path: Path, editable: bool) -> None:
        out_dir = ops_path.parent
        config = [
            "cmake",
            "-S",
            str(ROOT),
            "-B",
            str(build_dir),
            f"-DCORROPS_OUTPUT_DIR={out_dir}",
            f"-DCORROPS_OPS_NAME={ops_path.name.removesuffix('.so')}",
            f"-DPython3_EXECUTABLE={sys.executable}",
            f"-DCMAKE_BUILD_TYPE={os.environ.get('CORROPS_BUILD_TYPE', 'Release')}",
        ]
        # Every choice is passed, not only the non-default ones, so that the
        # editable build's directory, reused, keeps no earlier cached choice.
        config.append(f"-DCORROPS_BUILD_TF={'ON' if have_tensorflow() else 'OFF'}")
        for option in ("CORROPS_CUDA", "CORROPS_JAX", "CORROPS_TORCH"):
            config.append(f"-D{option}={os.environ.get(option, 'auto')}")
        subprocess.run(config, check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(["cmake", "--build", str(build_dir), "-j", jobs], check=True)
        # A binding this build left out must not ship from an earlier build
        # into the same directory (pip reuses build/ in a source tree).
        what = json.loads((out_dir / "_build_info.json").read_text())
        built = {
            ops_path.name: bool(what["tf_version"]),
            "_corrops_jax.so": what["jax"],
            "_corrops_torch.so": what["torch"],
        }
        for name, present in built.items():
            if not present:
                (out_dir / name).unlink(missing_ok=True)
        if editable:
            # Editable installs copy only extension files back to the source
            # tree: the build info and the JAX and PyTorch bindings (plain shared
            # libraries, built when jax / torch is importable) are copied here.
            info = out_dir / "_build_info.json"
            (ROOT / "corrops" / info.name).write_text(info.read_text())
            for name in ("_corrops_jax.so", "_corrops_torch.so"):
                lib = out_dir / name
                if lib.exists():
                    shutil.copy2(lib, ROOT / "corrops" / name)
                else:
                    (ROOT / "corrops" / name).unlink(missing_ok=True)


JAX_REQUIREMENT = "jax>=0.10,<0.11"  # the jax.ffi API and FFI headers the binding is built with


def have_tensorflow() -> bool:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def package_version() -> str:
    """corrops.__version__, read without importing the package."""
    text = (ROOT / "corrops" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def _minor_pin(name: str, version: str) -> str:
    major, minor = (int(p) for p in version.split("+", maxsplit=1)[0].split(".")[:2])
    return f"{name}>={major}.{minor},<{major}.{minor + 1}"


def tensorflow_requirement() -> str:
    """The TensorFlow minor version the op library is built against (a
    custom-op library loads only into that one); pyproject.toml's build
    requirement where TensorFlow is not importable."""
    try:
        import tensorflow as tf
    except ImportError:
        pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
        return re.search(r'"(tensorflow[^"]*)"', pyproject).group(1)
    return _minor_pin("tensorflow", tf.__version__)


def torch_requirement() -> str:
    """The torch minor version the PyTorch ops are built against."""
    try:
        import torch
    except ImportError:
        return "torch>=2.13"
    return _minor_pin("torch", torch.__version__)


setup(
    name="corrops",
    version=package_version(),
    description=(
        "Fused per-time-step correlation losses (Pearson, CCC) for TensorFlow, Keras, JAX, "
        "PyTorch and NumPy"
    ),
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["corrops", "corrops.*"]),
    # The libraries come from this build's CMake output (the build directory),
    # never from the source tree, where an editable install keeps its own.
    package_data={"corrops": ["_build_info.json"]},
    ext_modules=[
        *([CMakeExtension("corrops._corrops_ops")] if have_tensorflow() else []),
        CMakeExtension("corrops._corrops_numpy"),
    ],
    cmdclass={"build_ext": CMakeBuild},
    install_requires=["numpy"],
    # A binding is built when its framework is importable at build time: an
    # isolated build has TensorFlow (pyproject.toml's build requirements);
    # for jax and torch, install them first, then corrops without build
    # isolation (README, "Install").
    extras_require={
        "tensorflow": [tensorflow_requirement()],
        "jax": [JAX_REQUIREMENT],
        "torch": [torch_requirement()],
    },
    zip_safe=False,
)
