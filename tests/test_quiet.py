"""CPU users never see KeOps's start-up notes (issue 17, item 7).

pykeops prints "[KeOps] Warning : CUDA libraries not found ..." when it is
imported on a machine without CUDA. otgen imports it only when the KeOps
backend runs; POT imports it through GeomLoss, and otgen drops those notes.
"""

import importlib.util
import subprocess
import sys

import pytest

import otgen

ROOT = str(__import__("pathlib").Path(otgen.__file__).resolve().parents[1])

WORK = """
import sys
sys.path.insert(0, {root!r})
import torch
import otgen
g = torch.Generator().manual_seed(0)
x, y = torch.randn(40, 3, generator=g), torch.randn(30, 3, generator=g)
otgen.sinkhorn(x, y, eps=0.1)
otgen.sinkhorn_divergence(x, y, eps=0.1)
otgen.mmd(x, y)
print("pykeops" in sys.modules)
otgen.wasserstein(x, y, p=2)  # exact OT: POT, which imports GeomLoss and pykeops
"""


def run(code):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )


def test_import_and_cpu_work_print_nothing_from_keops():
    out = run(WORK.format(root=ROOT))
    assert out.returncode == 0, out.stderr
    assert "KeOps" not in out.stderr and "KeOps" not in out.stdout
    # Sinkhorn, the divergence and MMD never import pykeops on the CPU.
    assert out.stdout.strip() == "False"


CLI = """
import sys
sys.path.insert(0, {root!r})
sys.argv = ["otgen", "--help"]
from otgen.cli import main
try:
    main()
except SystemExit:
    pass
print("--planted--", flush=True)
import pykeops  # planted: a raw import prints the note on a CPU machine
"""


def test_cli_help_prints_nothing_from_keops_and_the_check_can_fail():
    if importlib.util.find_spec("pykeops") is None:
        pytest.skip("pykeops not installed")
    out = run(CLI.format(root=ROOT))
    assert out.returncode == 0, out.stderr
    before, planted = out.stdout.split("--planted--")
    assert "usage" in before.lower()
    assert "KeOps" not in before and "KeOps" not in out.stderr
    if "CUDA" not in planted:
        pytest.skip("pykeops prints no CUDA note here (a CUDA machine)")
    assert "KeOps" in planted  # the check above would see such a note


def test_a_broken_pykeops_is_a_clear_error(monkeypatch):
    # keops_available() only asks whether pykeops is installed; a broken
    # install surfaces when the KeOps backend runs, as a ValueError with a fix.
    import torch

    import otgen.ot._reduce as reduce_mod

    def broken(name):
        raise ImportError(f"{name}: undefined symbol")

    monkeypatch.setattr(reduce_mod, "quiet_import", broken)
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match="could not import pykeops.*chunked"):
        reduce_mod.KeOps().softmin(x, x, torch.zeros(5), 0.1, otgen.ot.costs.Cost())
