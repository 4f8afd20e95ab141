"""The native loops' entry points check their arguments, and small problems
never build the native library (issue 17, item 3)."""

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import otgen
from otgen.ot import _native

ROOT = str(Path(otgen.__file__).resolve().parents[1])


def test_arguments_are_checked_before_any_pointer_is_passed():
    x = torch.randn(5, 3)
    yt = torch.randn(3, 4)
    h = torch.randn(4)
    with pytest.raises(TypeError, match="yt must be a CPU torch.float32 tensor"):
        _native.lse_rows(x, yt.double(), h, 0.1, 2)
    with pytest.raises(ValueError, match=r"h must have shape \(4,\)"):
        _native.lse_rows(x, yt, torch.randn(5), 0.1, 2)
    with pytest.raises(ValueError, match=r"yt must have shape \(3, None\)"):
        _native.lse_rows(x, yt[:2], h, 0.1, 2)
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        _native.lse_rows(x, yt, h, 0.1, 3)
    with pytest.raises(TypeError, match="x must be a float32 or float64 tensor"):
        _native.lse_rows(x.half(), yt, h, 0.1, 2)
    with pytest.raises(ValueError, match="x must have shape"):
        _native.lse_rows(torch.randn(5, 65), torch.randn(65, 4), h, 0.1, 2)
    with pytest.raises(ValueError, match="kind must be one of"):
        _native.kernel_rows("cauchy", (1.0,), x, yt, torch.randn(1, 4), False)
    with pytest.raises(ValueError, match="tri=True needs"):
        _native.kernel_rows("energy1", (1.0,), x, yt, torch.randn(1, 4), True)
    with pytest.raises(ValueError, match=r"h must have shape \(4,\)"):
        _native.lse_stored(torch.rand(5, 4), torch.randn(3), 0.1)
    with pytest.raises(ValueError, match="w must have shape"):
        _native.expgrad_rows(x, yt, torch.randn(5), h, torch.randn(3), 0.1, 2)
    bad = (torch.tensor([0, 5]), torch.tensor([0, 1]), torch.tensor([[0, 9]]))
    with pytest.raises(ValueError, match="units do not describe 5 rows and 4"):
        _native.lse_rows(x, yt, h, 0.1, 2, bad)


@pytest.mark.skipif(not _native.available(), reason="native library unavailable")
def test_bindings_match_the_libraries_signatures(monkeypatch):
    lib = _native._lib()
    _native._bind(lib)  # the real table matches the library's own description
    # Planted: one argument type changed on the Python side, then the version.
    args, ret = _native.SIGNATURES["kernel"]
    wrong = dict(_native.SIGNATURES, kernel=([*args[:-1], ctypes.c_double], ret))
    monkeypatch.setattr(_native, "SIGNATURES", wrong)
    with pytest.raises(RuntimeError, match="kernel:ILLIPPPIIPIPD"):
        _native._bind(lib)
    monkeypatch.undo()
    monkeypatch.setattr(_native, "ABI_VERSION", _native.ABI_VERSION + 1)
    with pytest.raises(RuntimeError, match="ABI version"):
        _native._bind(lib)


PROBE = """
import sys
sys.path.insert(0, {root!r})
import torch
import otgen
from otgen.ot import _native
g = torch.Generator().manual_seed(0)
x, y = torch.randn(300, 3, generator=g), torch.randn(200, 3, generator=g)
otgen.sinkhorn(x, y, eps=0.1)
otgen.sinkhorn(x, y, eps=0.1, cost=lambda u, v: torch.cdist(u, v))
otgen.sinkhorn_divergence(x, y, eps=0.1)
otgen.mmd(x[:200], y[:200])  # 400^2 pooled pairs: below NATIVE_MIN_PAIRS
otgen.mmd_test(x[:50], y[:50], n_permutations=20)
{planted}
print(_native._lib.cache_info().currsize)
"""


@pytest.mark.parametrize("planted", [False, True])
def test_small_problems_never_build_the_native_library(planted, tmp_path):
    # OTGEN_NATIVE=0: a build attempt is recorded (lru_cache) but costs nothing;
    # the planted run asks for the library, which the probe must see.
    code = PROBE.format(root=ROOT, planted="_native.available()" if planted else "")
    env = {**__import__("os").environ, "OTGEN_NATIVE": "0"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env,
        timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == ("1" if planted else "0")


def _installed_build():
    return _native._prebuilt(_native.build_key())


def test_install_time_build_is_used_only_with_its_own_key(tmp_path, monkeypatch):
    # The key names the source, flags and CPU the library was built for: a
    # library stamped for anything else (planted: another key) is not used.
    from otgen.ot._native import _build_key

    lib_dir = tmp_path / "native"
    lib_dir.mkdir()
    fake_init = lib_dir / "__init__.py"
    fake_init.write_text("")
    name = (
        f"{_native.PREBUILT}{__import__('importlib').machinery.EXTENSION_SUFFIXES[0]}"
    )
    (lib_dir / name).write_bytes(b"not loaded here")
    monkeypatch.setattr(_native, "__file__", str(fake_init))
    assert _native._prebuilt(_build_key.build_key()) is None  # no stamp
    (lib_dir / (name + ".key")).write_text("0123456789abcdef")
    assert _native._prebuilt(_build_key.build_key()) is None  # wrong stamp
    (lib_dir / (name + ".key")).write_text(_build_key.build_key())
    assert _native._prebuilt(_build_key.build_key()) == lib_dir / name


@pytest.mark.skipif(_installed_build() is None, reason="no install-time build")
def test_install_time_build_loads_without_compiling(tmp_path):
    # An empty cache and no compiler on PATH: the library still loads, from
    # the build that pip install made (setup.py).
    code = (
        f"import sys; sys.path.insert(0, {ROOT!r})\n"
        "from otgen.ot import _native\n"
        "print(_native.available(), _native.origin)\n"
    )
    env = {
        **__import__("os").environ,
        "OTGEN_CACHE": str(tmp_path),
        "OTGEN_NATIVE": "1",  # also under CI's OTGEN_NATIVE=0 step
        "CXX": "",
        "PATH": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("True ['install-time build"), out.stdout
    assert not list(tmp_path.iterdir())
