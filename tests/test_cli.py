"""The ``otgen`` command: output, JSON, and one-line errors with exit code 2."""

import json
import subprocess
import sys

import numpy as np
import ot
import pytest

from otgen.cli import main


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) + 1.0
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "y.csv", y, delimiter=",")
    np.savetxt(tmp_path / "y.txt", y)
    return tmp_path, x, y


def _pot_wp(x, y, p, metric="euclidean"):
    M = ot.dist(x, y, metric=metric) ** p
    return ot.emd2(np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y)), M) ** (
        1 / p
    )


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_distance_json_matches_pot(files, capsys, p):
    d, x, y = files
    assert (
        main(["distance", str(d / "x.npy"), str(d / "y.csv"), "--p", str(p), "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(out["W_p"], _pot_wp(x, y, p), rtol=1e-9)
    assert out["solver"] == "network_simplex" and out["converged"] is True
    assert (out["n"], out["m"], out["d"]) == (40, 30, 3)


def test_distance_cityblock_and_txt(files, capsys):
    d, x, y = files
    assert (
        main(
            [
                "distance",
                str(d / "x.npy"),
                str(d / "y.txt"),
                "--metric",
                "cityblock",
                "--p",
                "1",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(out["W_p"], _pot_wp(x, y, 1, "cityblock"), rtol=1e-9)


def test_distance_human_output(files, capsys):
    d, _, _ = files
    assert main(["distance", str(d / "x.npy"), str(d / "y.csv")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("W_2 = ") and "solver: network_simplex" in out


@pytest.mark.parametrize(
    "content, suffix, message",
    [
        (None, ".npy", "no such file"),
        ("1,2,x\n", ".csv", "cannot read samples"),
        ("1 2\n3\n", ".txt", "cannot read samples"),
        ("", ".dat", "unsupported file type"),
        ("1,nan,3\n", ".csv", "must be finite"),
    ],
)
def test_bad_files_one_line_exit_2(files, capsys, content, suffix, message):
    d, _, _ = files
    bad = d / f"bad{suffix}"
    if content is not None:
        bad.write_text(content)
    assert main(["distance", str(bad), str(d / "y.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_dimension_mismatch(files, capsys, tmp_path):
    d, _, _ = files
    np.save(tmp_path / "z.npy", np.zeros((5, 2)))
    assert main(["distance", str(d / "x.npy"), str(tmp_path / "z.npy")]) == 2
    assert "dimension 3" in capsys.readouterr().err


def test_bad_p_is_usage_error(files):
    d, _, _ = files
    with pytest.raises(SystemExit) as e:
        main(["distance", str(d / "x.npy"), str(d / "y.csv"), "--p", "0.5"])
    assert e.value.code == 2


def test_console_script_json_stdout_is_clean(files):
    """stdout carries only the JSON object (dependency notes go to stderr)."""
    d, x, y = files
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "otgen.cli",
            "distance",
            str(d / "x.npy"),
            str(d / "y.csv"),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout)
    np.testing.assert_allclose(out["W_p"], _pot_wp(x, y, 2), rtol=1e-9)


def test_distance_past_the_multiscale_threshold_uses_it(tmp_path, capsys):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(2100, 2)), rng.normal(size=(2000, 2)) + 0.5
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    assert main(["distance", str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]) == 0
    assert (
        main(["distance", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["solver"] == "multiscale" and out["converged"] is True
    assert out["rounds"] >= 1 and out["edges"] < 2100 * 2000
    np.testing.assert_allclose(out["W_p"], _pot_wp(x, y, 2.0), rtol=1e-9)
