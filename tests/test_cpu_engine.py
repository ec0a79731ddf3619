"""The CPU engine's run-time instruction-set dispatch (csrc/core/cpu_dispatch.h):
the AVX2 copy is really confined to its namespace (the binary stays portable),
and the portable copy gives the same results through TF."""

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


def _cpu_has_avx2_fma() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\bavx2\b", flags)) and bool(re.search(r"\bfma\b", flags))


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
def test_avx_instructions_only_in_the_avx2_engine(pattern):
    if shutil.which("objdump") is None:
        pytest.skip("objdump (binutils) is not installed: cannot disassemble")
    libraries = sorted(PACKAGE.glob(pattern))
    assert libraries, f"no {pattern} in {PACKAGE}"
    using = _functions_using_avx(libraries[0])
    outside = sorted(f for f in using if "corrops::avx2::" not in f)
    assert not outside, f"AVX instructions outside corrops::avx2 (not portable): {outside[:5]}"
    if _cpu_has_avx2_fma() and os.uname().machine == "x86_64":
        assert any("corrops::avx2::" in f for f in using), "the AVX2 engine was not built"


def test_active_isa_matches_the_cpu():
    from corrops import _corrops_numpy

    want = "avx2" if _cpu_has_avx2_fma() and os.uname().machine == "x86_64" else "generic"
    assert _corrops_numpy.cpu_isa() == want


def test_generic_engine_gives_the_same_results(tmp_path):
    # Everything else in the test suite runs the engine this CPU selects
    # (AVX2 here); this runs the portable copy through TF in a subprocess.
    env = dict(os.environ, CORROPS_CPU_ISA="generic", PYTHONPATH=str(ROOT))
    out_generic = tmp_path / "generic.npz"
    out_default = tmp_path / "default.npz"
    worker = ROOT / "tests" / "workers" / "engine_outputs.py"
    for path, e in ((out_generic, env), (out_default, dict(env, CORROPS_CPU_ISA="auto"))):
        subprocess.run([sys.executable, str(worker), str(path)], env=e, check=True, timeout=300)
    generic, default = np.load(out_generic), np.load(out_default)
    assert str(generic["isa"]) == "generic"
    want = "avx2" if _cpu_has_avx2_fma() and os.uname().machine == "x86_64" else "generic"
    assert str(default["isa"]) == want
    for key in generic.files:
        if key == "isa":
            continue
        # float16: the AVX2 build widens rows to float (F16C) and runs the
        # float engine, the portable one converts per element: the same
        # float math up to FMA, so outputs differ by at most a half ulp or so.
        tol = {"float64": 1e-12, "float32": 2e-5, "float16": 2e-3}[key.split("_")[1]]
        scale = max(1.0, float(np.max(np.abs(default[key]))))
        np.testing.assert_allclose(
            generic[key], default[key], rtol=0, atol=tol * scale, err_msg=key
        )
