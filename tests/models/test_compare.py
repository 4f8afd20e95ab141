"""``otgen compare``: tiny budgets write the report, the table and the figure."""

import json

import pytest

from otgen.cli import main


def _one_line_error(capsys, argv, match):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors exit from the parser
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_bad_options_exit_2_with_one_line(capsys):
    _one_line_error(capsys, ["compare", "--models", "wae-mmd,magic"], "unknown model")
    _one_line_error(capsys, ["compare", "--models", ","], "expected comma-separated")
    _one_line_error(capsys, ["compare", "--seeds", "0"], "must be >= 1")
    _one_line_error(capsys, ["compare", "--steps", "ten"], "must be an integer")
    _one_line_error(capsys, ["compare", "--data", "ring9"], "neither a toy")
    _one_line_error(capsys, ["compare", "--colour", "red"], "unrecognized arguments")


def test_tiny_budget_writes_report_table_and_figure(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--models", "wae-mmd,gan", "--seeds", "2"]
    argv += ["--steps", "3", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert str(out / "report.md") in captured.out
    assert "compare" in captured.err  # the progress bar is on stderr
    report = (out / "report.md").read_text()
    assert (out / "samples.png").stat().st_size > 5000
    assert "![samples per model](samples.png)" in report
    table = [ln for ln in report.splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:5] == [
        "model",
        "check passed",
        "z (floor sds)",
        "W2 to held-out",
        "W2 noise floor",
    ]
    rows = {ln.split("|")[1].strip(): ln for ln in table[1:]}
    assert list(rows) == ["wae-mmd", "gan"]
    for name, line in rows.items():
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == len(header) and cells[-1] == "2/2"
        named = dict(zip(header, cells))
        assert "±" in named["W2 to held-out"] and "±" in named["modes covered"]
        assert named["check passed"] == "0/2"  # 3 steps: far from the law
        has_encoder = name != "gan"
        assert (named["squared recon. cost"] != "-") == has_encoder
        assert (named["MMD^2(Q_Z, P_Z)"] != "-") == has_encoder
    runs = json.loads((out / "metrics.json").read_text())
    assert [len(runs[m]) for m in ("wae-mmd", "gan")] == [2, 2]
    for rs in runs.values():
        assert [r["seed"] for r in rs] == [0, 1]
        # the same held-out data per seed for every model: the same noise floor
        assert [r["w2_noise_floor"] for r in rs] == [
            r["w2_noise_floor"] for r in runs["gan"]
        ]
        assert all(r["w2_generated"] > 0 and len(r["mode_mass"]) == 8 for r in rs)
        assert all(r["check_m"] == 500 and r["check_replicates"] == 19 for r in rs)
    assert "by the model check, a Monte Carlo test at level 0.05" in report
    # the wae-mmd runs use the otgen train toy recipe
    assert runs["wae-mmd"][0]["config"]["options"]["encoder"] == "implicit"


def test_report_numbers_are_means_over_seeds(tmp_path):
    from otgen.models.compare import comparison_table

    results = {
        "a": [{"w2_generated": 1.0, "modes_covered": 8}, {"failed": "nan", "seed": 1}],
        "b": [{"w2_generated": 2.0}, {"w2_generated": 4.0}],
    }
    lines = comparison_table(results, n_modes=8).splitlines()
    a = [c.strip() for c in lines[2].strip("|").split("|")]
    b = [c.strip() for c in lines[3].strip("|").split("|")]
    assert a[1] == "1 ± 0" and a[3] == "8.0 ± 0.0" and a[-1] == "1/2"
    assert b[1] == "3 ± 1.4" and b[3] == "-" and b[-1] == "2/2"
    checked = {
        "a": [
            {"check_indistinguishable": True, "check_z": 0.5},
            {"check_indistinguishable": False, "check_z": 4.5},
        ]
    }
    row = comparison_table(checked, None).splitlines()[2]
    assert [c.strip() for c in row.strip("|").split("|")][1:3] == ["1/2", "2.5 ± 2.8"]


@pytest.mark.slow
def test_default_models_train_under_the_default_budget(tmp_path):
    assert main(["compare", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    runs = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert set(runs) == {"wae-mmd", "wae-gan", "vae", "avb", "gan", "wgan-gp"}
    assert all("failed" not in r for rs in runs.values() for r in rs)
    report = (tmp_path / "d" / "report.md").read_text()
    assert "Each model was trained for 1000 steps" in report
    assert all(r["check_m"] == 5000 for rs in runs.values() for r in rs)
    # every model that fails its check on a seed is named in the verdicts
    for model, rs in runs.items():
        bad = sum(not r["check_indistinguishable"] for r in rs)
        if bad:
            assert f"- {model}: **fails** the check on {bad} of 3 seeds" in report
