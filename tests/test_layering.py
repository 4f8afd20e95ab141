"""Layering: `otgen.ot` (layer 1) and `otgen.nn` (layer 1.5, the losses) import
nothing from `otgen.models` or
`otgen.theory`, `otgen.models` (layer 2) nothing from `otgen.theory` (layer 3
may import layer 2), only `otgen/ot/_reduce.py` imports pykeops (lazily), and
no module imports the command `otgen.cli` (its subcommands share the leaf
`otgen._cli_common`).

Checked twice: in a fresh interpreter that loads `otgen.ot` *without* running
`otgen/__init__.py` (so a package-level import of the upper layers cannot hide
or fake a dependency of `otgen.ot` itself), and by scanning the source.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import otgen

PACKAGE = Path(otgen.__file__).resolve().parent
LAYER1 = PACKAGE / "ot"
UPPER = ("otgen.models", "otgen.theory")

PROBE = """
import importlib, json, sys, types
pkg = types.ModuleType("otgen")
pkg.__path__ = [{path!r}]
sys.modules["otgen"] = pkg  # the bare package: otgen/__init__.py does not run
import otgen.ot
for info in __import__("pkgutil").iter_modules(otgen.ot.__path__):
    importlib.import_module("otgen.ot." + info.name)
print(json.dumps(sorted(sys.modules)))
"""


def loaded_modules(code):
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_otgen_ot_loads_no_upper_layer():
    mods = loaded_modules(PROBE.format(path=str(PACKAGE)))
    assert "otgen.ot" in mods and "otgen.ot.exact" in mods
    upper = [m for m in mods if m.startswith(UPPER)]
    assert upper == [], f"otgen.ot pulled in {upper}"
    assert not any(m == "pykeops" or m.startswith("pykeops.") for m in mods), (
        "importing otgen.ot must not import pykeops (only _reduce.py, lazily)"
    )


def test_the_probe_sees_upper_layers_when_they_are_imported():
    # The probe must be able to fail: importing otgen.models is visible to it.
    if not (PACKAGE / "models" / "__init__.py").exists():
        return
    code = PROBE.format(path=str(PACKAGE)).replace(
        "import otgen.ot\n", "import otgen.ot\nimport otgen.models\n"
    )
    assert "otgen.models" in loaded_modules(code)


MODELS_PROBE = PROBE.replace("otgen.ot", "otgen.models")


def test_importing_otgen_models_loads_no_theory():
    # Layer 2 never imports layer 3 (layer 3 may import layer 2: items 15, 16).
    if not (PACKAGE / "models" / "__init__.py").exists():
        return
    mods = loaded_modules(MODELS_PROBE.format(path=str(PACKAGE)))
    assert "otgen.models" in mods and "otgen.models.train" in mods
    theory = [m for m in mods if m.startswith("otgen.theory")]
    assert theory == [], f"otgen.models pulled in {theory}"


def test_source_of_otgen_models_imports_no_theory():
    files = sorted((PACKAGE / "models").rglob("*.py"))
    bad = {
        str(f.relative_to(PACKAGE)): [
            n for n in imported_names(f) if n.startswith("otgen.theory")
        ]
        for f in files
    }
    assert {k: v for k, v in bad.items() if v} == {}


def _call_name(func) -> str:
    return getattr(func, "attr", None) or getattr(func, "id", "")


def imported_names(path, pkg=None):
    """Absolute module names imported by a source file (relative ones resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if pkg is None:
        pkg = ".".join(("otgen",) + path.relative_to(PACKAGE).parent.parts)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.append(mod)
            names += [f"{mod}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and _call_name(node.func) in (
            "import_module",
            "__import__",
            "quiet_import",  # otgen._imports: how pykeops and POT are imported
        ):
            names += [a.value for a in node.args if isinstance(a, ast.Constant)]
    return names


def test_source_of_otgen_ot_imports_no_upper_layer():
    files = sorted(LAYER1.rglob("*.py"))
    assert any(f.name == "exact.py" for f in files)
    bad = {
        str(f.relative_to(PACKAGE)): [
            n for n in imported_names(f) if n.startswith(UPPER)
        ]
        for f in files
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_only_reduce_imports_pykeops():
    users = [
        f.name
        for f in sorted(LAYER1.rglob("*.py"))
        if any(n.split(".")[0] == "pykeops" for n in imported_names(f))
    ]
    assert set(users) <= {"_reduce.py"}


def test_the_scanner_can_fail(tmp_path):
    src = tmp_path / "bad.py"
    src.write_text(
        "from ..models import base\n"
        "from .costs import Cost\n"
        "import importlib\n"
        "importlib.import_module('otgen.theory.gaussian')\n"
    )
    names = imported_names(src, pkg="otgen.ot")
    assert "otgen.models.base" in names
    assert "otgen.ot.costs.Cost" in names
    assert "otgen.theory.gaussian" in names
    src.write_text(
        "from otgen._imports import quiet_import\n"
        "def f():\n"
        "    return quiet_import('pykeops.torch').LazyTensor\n"
        "def g():\n"
        "    from otgen.cli import main\n"
    )
    names = imported_names(src, pkg="otgen.models")
    assert "pykeops.torch" in names  # lazy imports through quiet_import count
    assert "otgen.cli.main" in names  # so do imports inside functions


def test_nothing_imports_the_otgen_command():
    # otgen.cli loads the subcommand modules (otgen.models.cli, ...); they
    # share its helpers through the leaf otgen._cli_common, never otgen.cli.
    users = {
        str(f.relative_to(PACKAGE)): [
            n for n in imported_names(f) if n.split(".")[:2] == ["otgen", "cli"]
        ]
        for f in sorted(PACKAGE.rglob("*.py"))
        if f != PACKAGE / "cli.py"
    }
    assert {k: v for k, v in users.items() if v} == {}


def test_the_shared_cli_helpers_are_a_leaf():
    names = imported_names(PACKAGE / "_cli_common.py")
    assert [n for n in names if n.split(".")[0] == "otgen"] == []


# Layer 1.5: otgen.nn (the losses) may import otgen.ot, never otgen.models or
# otgen.theory.
NN_PROBE = PROBE.replace("otgen.ot", "otgen.nn")


def test_importing_otgen_nn_loads_no_models_or_theory():
    mods = loaded_modules(NN_PROBE.format(path=str(PACKAGE)))
    assert "otgen.nn" in mods and "otgen.nn.losses" in mods
    upper = [m for m in mods if m.startswith(UPPER)]
    assert upper == [], f"otgen.nn pulled in {upper}"


def test_the_nn_probe_sees_models_when_they_are_imported():
    code = NN_PROBE.format(path=str(PACKAGE)).replace(
        "import otgen.nn\n", "import otgen.nn\nimport otgen.models\n"
    )
    assert "otgen.models" in loaded_modules(code)


def test_source_of_otgen_nn_imports_no_models_or_theory():
    files = sorted((PACKAGE / "nn").rglob("*.py"))
    assert any(f.name == "losses.py" for f in files)
    bad = {
        str(f.relative_to(PACKAGE)): [
            n for n in imported_names(f) if n.startswith(UPPER)
        ]
        for f in files
    }
    assert {k: v for k, v in bad.items() if v} == {}
