"""The CPU engine's run-time instruction-set dispatch (csrc/core/cpu_dispatch.h):
the AVX2 and AVX-512 copies are really confined to their namespaces (the
binary stays portable), the best copy the CPU has is the one in use (AVX2
for small calls where that is AVX-512), and the lesser copies give the same
results through TF."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import corrops

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(corrops.__file__).parent
# A function header line of `objdump -d -C` and a VEX/EVEX-encoded instruction
# (AVX and newer; SSE instructions have no "v" prefix).
_FUNCTION = re.compile(r"^[0-9a-f]+ <(.*)>:$")
_VEX = re.compile(r"^\s+[0-9a-f]+:\s+v[a-z0-9]+\s")


def _cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _has_flags(*names: str) -> bool:
    flags = _cpu_flags()
    return all(re.search(rf"\b{name}\b", flags) for name in names)


def _best_isa() -> str:
    """The engine copy cpu_dispatch.cc must pick on this CPU (read from /proc/cpuinfo)."""
    if os.uname().machine != "x86_64" or not _has_flags("avx2", "fma", "f16c"):
        return "generic"
    if _has_flags("avx512f", "avx512vl", "avx512bw", "avx512dq"):
        return "avx512"
    return "avx2"


# The copies below the best one, each forced with CORROPS_CPU_ISA.
_LESSER_ISAS = {"generic": [], "avx2": ["generic"], "avx512": ["generic", "avx2"]}[_best_isa()]
_SIMD_NAMESPACES = ("corrops::avx2::", "corrops::avx512::")


def _functions_using_avx(library: Path) -> set[str]:
    dump = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", "-C", str(library)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found, current = set(), ""
    for line in dump.splitlines():
        m = _FUNCTION.match(line)
        if m:
            current = m.group(1)
        elif _VEX.match(line):
            found.add(current)
    return found


@pytest.mark.parametrize("pattern", ["_corrops_ops*.so", "_corrops_numpy*.so"])
def test_avx_instructions_only_in_the_simd_engines(pattern):
    if shutil.which("objdump") is None:
        pytest.skip("objdump (binutils) is not installed: cannot disassemble")
    libraries = sorted(PACKAGE.glob(pattern))
    assert libraries, f"no {pattern} in {PACKAGE}"
    using = _functions_using_avx(libraries[0])
    outside = sorted(f for f in using if not any(ns in f for ns in _SIMD_NAMESPACES))
    assert not outside, f"AVX instructions outside the SIMD engines (not portable): {outside[:5]}"
    if os.uname().machine == "x86_64":
        for ns in _SIMD_NAMESPACES:
            assert any(ns in f for f in using), f"the {ns} engine was not built"


def test_active_isa_matches_the_cpu():
    from corrops import _corrops_numpy

    assert _corrops_numpy.cpu_isa() == _best_isa()


def test_small_calls_run_avx2_where_avx512_is_active():
    """cpu_dispatch.h's engine_isa: under AVX-512, calls with less than
    avx512_min_input_bytes of input run the AVX2 copy (they measured faster in
    a TF step), larger ones the AVX-512 copy; the threshold is validated."""
    from corrops import _corrops_numpy as native

    best = _best_isa()
    default = native.avx512_min_input_bytes()
    assert default == 2**20
    try:
        small = native.engine_isa(20, 100, 1, 1, 4)  # a small training batch, float32
        large = native.engine_isa(256, 4096, 1, 1, 4)
        assert small == ("avx2" if best == "avx512" else best)
        assert large == best
        native.set_avx512_min_input_bytes(0)
        assert native.engine_isa(20, 100, 1, 1, 4) == best
    finally:
        native.set_avx512_min_input_bytes(default)
    with pytest.raises(ValueError, match="bytes must be >= 0"):
        native.set_avx512_min_input_bytes(-1)


@pytest.fixture(scope="module")
def default_engine_outputs(tmp_path_factory) -> Path:
    return _engine_outputs(tmp_path_factory.mktemp("isa") / "default.npz", "auto")


def _engine_outputs(path: Path, isa: str) -> Path:
    # CORROPS_AVX512_MIN_BYTES=0: the worker's inputs are small, and under the
    # default threshold an AVX-512 CPU would run them on the AVX2 copy too.
    env = dict(os.environ, CORROPS_CPU_ISA=isa, CORROPS_AVX512_MIN_BYTES="0", PYTHONPATH=str(ROOT))
    worker = ROOT / "tests" / "workers" / "engine_outputs.py"
    subprocess.run([sys.executable, str(worker), str(path)], env=env, check=True, timeout=300)
    return path


@pytest.mark.skipif(not _LESSER_ISAS, reason="this CPU runs only the generic engine")
@pytest.mark.parametrize("isa", _LESSER_ISAS or ["none"])
def test_lesser_engine_gives_the_same_results(tmp_path, default_engine_outputs, isa):
    # Everything else in the test suite runs the engine this CPU selects;
    # this runs each lesser copy through TF in a subprocess.
    lesser = np.load(_engine_outputs(tmp_path / f"{isa}.npz", isa))
    default = np.load(default_engine_outputs)
    assert str(lesser["isa"]) == isa
    assert str(default["isa"]) == _best_isa()
    for key in lesser.files:
        if key == "isa":
            continue
        # float16: the AVX2 build widens rows to float (F16C) and runs the
        # float engine, the portable one converts per element: the same
        # float math up to FMA, so outputs differ by at most a half ulp or so.
        tol = {"float64": 1e-12, "float32": 2e-5, "float16": 2e-3}[key.split("_")[1]]
        scale = max(1.0, float(np.max(np.abs(default[key]))))
        np.testing.assert_allclose(lesser[key], default[key], rtol=0, atol=tol * scale, err_msg=key)
