"""``otgen verify``: table, JSON, report with figures, exit codes; layering."""

import ast
import json
from pathlib import Path

import pytest

import otgen.theory
from otgen.cli import main
from otgen.theory import checks


def test_verify_table_and_report(tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(["verify", "--quick", "--items", "7,9,10,11", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "7.1" in text and "P6 exact W_1 penalty" in text and "NO" not in text
    report = (out / "report.md").read_text()
    assert "| 9.3 |" in report and "**NO**" not in report
    for fig in ("dpot.png", "critic.png", "blur.png", "monge.png"):
        assert (out / fig).stat().st_size > 1000
        assert f"]({fig})" in report


def test_verify_json(tmp_path, capsys):
    rc = main(["verify", "--quick", "--items", "14", "--json", "--out", str(tmp_path)])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is True and data["n_failed"] == 0
    assert data["not_run"] == []  # item 16 runs now (it needs only tqdm)
    assert [c["name"] for c in data["checks"]] == [f"14.{k}" for k in range(1, 6)]
    assert all(c["passed"] for c in data["checks"])
    assert Path(data["report"]).is_file()


def test_verify_exits_1_when_a_check_fails(tmp_path, capsys, monkeypatch):
    item = checks.CHECKS[7]
    broken = checks.Item(7, item.title, item.fn, dict(item.quick, lam_factor=0.0), {})
    monkeypatch.setitem(checks.CHECKS, 7, broken)
    rc = main(["verify", "--quick", "--items", "7", "--out", str(tmp_path)])
    assert rc == 1
    assert "NO" in capsys.readouterr().out
    assert "**NO**" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["verify", "--items", "0,99"], "--items"),
        (["verify", "--seed", "-3"], "--seed"),
        (["verify", "--seed", "abc"], "--seed"),
    ],
)
def test_usage_errors_exit_2(argv, msg, capsys):
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    e = capsys.readouterr().err
    assert msg in e and len(e.strip().splitlines()) == 1


def test_unwritable_out_dir_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["verify", "--quick", "--items", "14", "--out", str(blocker / "sub")])
    assert rc == 2
    assert "cannot write the report" in capsys.readouterr().err


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
            "import_module",
        ):
            yield from (a.value for a in node.args if isinstance(a, ast.Constant))


def test_theory_imports_models_only_for_items_15_and_16():
    # Layer 3 may import layer 2 (items 15 and 16 run the real models); the
    # reverse is forbidden (tests/test_layering.py, tests/models/test_cli.py).
    root = Path(otgen.theory.__file__).parent
    files = sorted(root.glob("*.py"))
    assert any(f.name == "checks.py" for f in files)
    users = {
        f.name for f in files if any(m.startswith("otgen.models") for m in _imports(f))
    }
    assert users == {"_items_models.py"}


def test_items_whose_dependency_is_missing_are_reported_not_run(
    tmp_path, capsys, monkeypatch
):
    item = checks.CHECKS[14]
    gated = checks.Item(14, item.title, item.fn, item.quick, item.full, ("otgen.nope",))
    monkeypatch.setitem(checks.CHECKS, 14, gated)
    rc = main(["verify", "--quick", "--items", "14,15", "--out", str(tmp_path)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "14.1" not in text and "15.1" in text
    assert "not run: item 14 (GAN, f-GAN): needs otgen.nope" in text
    assert "needs otgen.nope" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_verify_quick_runs_every_item_and_passes(tmp_path, capsys):
    rc = main(["verify", "--quick", "--json", "--out", str(tmp_path)])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["n_failed"] == 0
    assert sorted({c["item"] for c in data["checks"]}) == list(range(1, 17))
    assert "not_run" in data and data["not_run"] == []
