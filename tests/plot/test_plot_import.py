"""otgen.plot: matplotlib is imported only when something is drawn, and no
layer below imports the plotting package."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import otgen

PACKAGE = Path(otgen.__file__).resolve().parent

PROBE = """
import json, sys
import otgen
{extra}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib")))
"""


def _matplotlib_modules(extra: str) -> list[str]:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(extra=extra)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_otgen_does_not_import_matplotlib():
    assert _matplotlib_modules("") == []


def test_import_otgen_plot_does_not_import_matplotlib():
    # Reaching otgen.plot (as an attribute or a module) still imports nothing.
    assert _matplotlib_modules("import otgen.plot\notgen.plot.plan_arrows") == []


def test_the_probe_sees_matplotlib_once_something_is_drawn():
    # Planted: drawing must load matplotlib, so the probe above can fail.
    code = "import numpy as np\notgen.plot.plan_matrix(np.eye(2), colorbar=False)"
    assert "matplotlib" in _matplotlib_modules(code)


def _imports(path: Path, pkg: str | None = None) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    if pkg is None:
        pkg = ".".join(("otgen",) + path.relative_to(PACKAGE).parent.parts)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([mod] if mod else []))
            names += [mod] + [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
            "import_module",
            "__import__",
        ):
            names += [a.value for a in node.args if isinstance(a, ast.Constant)]
    return names


def _plot_importers(files, pkg: str | None = None) -> dict[str, list[str]]:
    bad = {}
    for f in files:
        hits = [
            n
            for n in _imports(f, pkg)
            if n == "otgen.plot" or n.startswith("otgen.plot.")
        ]
        if hits:
            bad[str(f)] = hits
    return bad


def test_no_lower_layer_imports_otgen_plot():
    files = [
        f
        for sub in ("ot", "models", "theory")
        for f in sorted((PACKAGE / sub).rglob("*.py"))
    ]
    assert len(files) > 10
    assert _plot_importers(files) == {}


def test_plot_imports_no_models_layer():
    files = sorted((PACKAGE / "plot").rglob("*.py"))
    bad = [n for f in files for n in _imports(f) if n.startswith("otgen.models")]
    assert bad == []


def test_the_scanner_finds_planted_imports(tmp_path):
    # Planted: a relative, an absolute and a dynamic import of otgen.plot.
    for k, line in enumerate(
        [
            "from ..plot import fields\n",
            "import otgen.plot\n",
            "import importlib\nimportlib.import_module('otgen.plot.maps')\n",
        ]
    ):
        src = tmp_path / f"bad{k}.py"
        src.write_text("import numpy\n" + line)
        assert _plot_importers([src], pkg="otgen.theory") != {}, line
    ok = tmp_path / "ok.py"
    ok.write_text("from ..ot import exact\nimport otgen.plotting_elsewhere\n")
    assert _plot_importers([ok], pkg="otgen.theory") == {}
