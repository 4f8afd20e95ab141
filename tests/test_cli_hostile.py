"""Every ``otgen`` subcommand on hostile input: exit 2 and one line, never a traceback.

Each test runs one subcommand over a list of bad inputs and reports every case
that does not end with exit status 2 and a single ``otgen: error: ...`` line on
standard error (pykeops's start-up note, a third-party line that otgen routes to
standard error on purpose, is not counted).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import otgen._cli_common
import otgen.cli
from otgen.cli import main


def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # the argument parser's errors
        code = exc.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and "[KeOps]" not in ln]
    return code, lines, err


def _check_all(cases, capsys, code=2):
    bad = []
    for argv, match in cases:
        try:
            got, lines, err = _run(argv, capsys)
        except Exception as exc:  # noqa: BLE001 (the test reports every case)
            bad.append((argv, f"raised {type(exc).__name__}: {exc}"))
            continue
        one = len(lines) == 1 and lines[0].startswith("otgen: error: ")
        if got != code or not one or "Traceback" in err or match not in err:
            bad.append((argv, got, err))
    assert not bad, "\n".join(map(repr, bad))


def _npy_header(path, shape, descr="<f8", pad=0):
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": descr, "fortran_order": False, "shape": shape}
        )
        f.write(b"\0" * pad)
    return str(path)


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a case that got through would write runs/ here
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    paths = {"x": tmp_path / "x.npy", "x3": tmp_path / "x3.npy"}
    np.save(paths["x"], x)
    np.save(paths["x3"], rng.normal(size=(60, 3)))
    np.save(tmp_path / "shift.npy", (x + [0.5, 0.0])[rng.permutation(60)])
    np.save(tmp_path / "complex.npy", x + 1j)
    np.save(
        tmp_path / "object.npy", np.array([1, "a"], dtype=object), allow_pickle=True
    )
    np.save(tmp_path / "cube.npy", np.zeros((4, 3, 2)))
    np.save(tmp_path / "strings.npy", np.array([["a", "b"]]))
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "text.npy").write_text("1,2\n3,4\n")
    (tmp_path / "header.npy").write_bytes(b"\x93NUMPY\x01\x00\x06\x00{abc}\n")
    _npy_header(tmp_path / "huge.npy", (10**9, 2), pad=64)  # 288 bytes
    _npy_header(tmp_path / "negative.npy", (-5, 2), pad=80)
    (tmp_path / "nan.csv").write_text("1,2\nnan,3\n")
    (tmp_path / "inf.txt").write_text("1 2\ninf 3\n")
    (tmp_path / "strings.csv").write_text("a,b\nc,d\n")
    (tmp_path / "ragged.csv").write_text("1,2\n3\n")
    (tmp_path / "comments.txt").write_text("# nothing\n")
    (tmp_path / "const.csv").write_text("1.5,2\n" * 80)
    (tmp_path / "points.dat").write_text("1 2\n")
    (tmp_path / "a_file").write_text("in the way\n")
    (tmp_path / "dir.npy").mkdir()
    return tmp_path


def test_distance_hostile_inputs(files, capsys):
    d = files
    x = str(d / "x.npy")
    cases = [
        (["distance", str(d / "missing.npy"), x], "no such file"),
        (["distance", str(d / "dir.npy"), x], "is a directory"),
        (["distance", str(d / "empty.npy"), x], "empty file"),
        (["distance", x, str(d / "empty.csv")], "empty file"),
        (["distance", str(d / "text.npy"), x], "not a readable .npy file"),
        (["distance", str(d / "header.npy"), x], "not a readable .npy file"),
        (["distance", str(d / "huge.npy"), x], "truncated or corrupt"),
        (["distance", str(d / "negative.npy"), x], "corrupt .npy header"),
        (["distance", str(d / "complex.npy"), x], "must be real numbers"),
        (["distance", str(d / "object.npy"), x], "Python objects"),
        (["distance", str(d / "strings.npy"), x], "must be numbers"),
        (["distance", str(d / "cube.npy"), x], "non-empty 2-D array"),
        (["distance", str(d / "nan.csv"), x], "must be finite"),
        (["distance", str(d / "inf.txt"), x], "must be finite"),
        (["distance", str(d / "strings.csv"), x], "cannot read samples"),
        (["distance", str(d / "ragged.csv"), x], "same number of columns"),
        (["distance", str(d / "comments.txt"), x], "no data rows"),
        (["distance", str(d / "points.dat"), x], "unsupported file type"),
        (["distance", x, str(d / "x3.npy")], "dimension 2"),
        (["distance", x, str(d / "shift.npy"), "--p", "400"], "--p 400"),
        (["distance", x, x, "--p", "0.5"], "--p"),
        (["distance", x, x, "--p", "abc"], "--p"),
        (["distance", x, x, "--p", "inf"], "--p"),
        (["distance", x, x, "--p", "nan"], "--p"),
        (["distance", x, x, "--metric", "cosine"], "--metric"),
        (["distance", x], "required"),
        (["nonsense"], "invalid choice"),
    ]
    _check_all(cases, capsys)


def test_distance_p400_on_identical_inputs_is_zero(files, capsys):
    """Large p needs no overflow-prone cost: identical sets give W_p = 0."""
    x = str(files / "x.npy")
    assert main(["distance", x, x, "--p", "400", "--json"]) == 0
    assert '"W_p": 0.0' in capsys.readouterr().out


def test_distance_sizes_checked_before_allocating(files, capsys, monkeypatch):
    d = files
    # n * m > 1e13 pairs in d = 4: refused from the headers of two sparse files
    # (nothing is read or allocated; the files take no disk space).
    for name in ("big_a.npy", "big_b.npy"):
        path = _npy_header(d / name, (3_300_000, 4))
        with open(path, "r+b") as f:
            f.truncate(f.seek(0, 2) + 3_300_000 * 4 * 8)
    cases = [(["distance", str(d / "big_a.npy"), str(d / "big_b.npy")], "beyond")]
    _check_all(cases, capsys)
    # Points that do not fit in the available memory: refused before loading.
    monkeypatch.setattr(otgen._cli_common, "available_memory", lambda: 1000)
    x = str(d / "x.npy")
    _check_all([(["distance", x, x], "is available")], capsys)
    _check_all([(["train", "--data", str(d / "x.npy")], "is available")], capsys)
    monkeypatch.undo()

    # A MemoryError from the solver is a one-line error too.
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("otgen.ot.exact.exact_ot", no_memory)
    _check_all([(["distance", x, str(d / "shift.npy")], "not enough memory")], capsys)


def test_train_hostile_inputs(files, capsys, tmp_path):
    d = files
    conf = d / "conf.json"

    def with_config(text, *extra):
        path = d / f"conf{len(configs)}.json"
        path.write_text(text)
        configs.append(path)
        return ["train", "--config", str(path), "--out", str(d / "o"), *extra]

    configs = []
    conf.write_text("{")
    out = ["--out", str(d / "o")]
    cases = [
        (["train", "--data", str(d / "missing.csv")], "neither a toy"),
        (["train", "--data", str(d / "empty.csv")], "empty file"),
        (["train", "--data", str(d / "const.csv"), *out], "every point is the same"),
        (["train", "--data", str(d / "complex.npy"), *out], "must be real numbers"),
        (["train", "--data", str(d / "nan.csv")], "must be finite"),
        (["train", "--data", str(d / "strings.csv")], "cannot read samples"),
        (["train", "--data", str(d / "huge.npy")], "truncated or corrupt"),
        (["train", "--steps", "0"], "must be >= 1"),
        (["train", "--steps", "many"], "--steps"),
        (["train", "--seed", "-1"], "--seed"),
        (["train", "--model", "magic"], "invalid choice"),
        (["train", "--checkpoint-every", "-2"], "--checkpoint-every"),
        (["train", "--resume", "--overwrite"], "not allowed with"),
        (["train", "--config", str(d / "missing.json")], "no such file"),
        (["train", "--config", str(conf)], "not valid JSON"),
        (with_config("[1, 2]"), "expected an object"),
        (with_config('{"steps": -5}'), "steps must be an integer >= 1"),
        (with_config('{"model": {"hidden": [-1]}}'), "hidden must hold integers"),
        (
            with_config('{"model": {"critic_hidden": [0]}}', "--model", "wae-gan"),
            "critic_hidden must hold integers",
        ),
        (with_config('{"model": {"lam": "big"}}'), "lam must be a number"),
        (with_config('{"model": {"d_z": 2.5}}'), "d_z must be an integer"),
        (
            with_config(
                '{"trainer": {"schedule": "adaptive", "lam_target": 0.01, '
                '"lam_rate": 1e6}}'
            ),
            "lam_rate must be in (0, 1]",
        ),
        (with_config('{"trainer": {"lam": NaN}}'), "lam must be a finite number"),
        (with_config('{"trainer": {"batch_size": "x"}}'), "batch_size must be"),
        (with_config('{"trainer": {"dtype": "float16"}}'), "dtype must be"),
        (
            with_config('{"trainer": {"optim": {"model": {"lr": "fast"}}}}'),
            "optim['model']['lr'] must be",
        ),
        (
            with_config(
                '{"trainer": {"optim": {"model": {"lr": 1e10}}}}',
                "--steps",
                "40",
                "--quiet",
            ),
            "training stopped at step",
        ),
        (["train", "--out", str(d / "a_file")], "not a directory"),
        (["train", "--out", str(d / "a_file" / "sub")], "cannot write there"),
        (["train", "--resume", "--out", str(d / "fresh")], "no checkpoint"),
    ]
    _check_all(cases, capsys)


def test_compare_hostile_inputs(files, capsys):
    d = files
    tiny = ["--models", "gan", "--seeds", "1", "--steps", "1", "--quiet"]
    cases = [
        (["compare", "--models", "magic"], "unknown model"),
        (["compare", "--models", ","], "--models"),
        (["compare", "--data", str(d / "missing.csv")], "neither a toy"),
        (["compare", "--data", str(d / "const.csv"), *tiny], "every point"),
        (["compare", "--data", str(d / "complex.npy"), *tiny], "real numbers"),
        (["compare", "--seeds", "0"], "must be >= 1"),
        (["compare", "--steps", "x"], "--steps"),
        (["compare", "--out", str(d / "a_file"), *tiny], "--out"),
    ]
    _check_all(cases, capsys)


def test_verify_hostile_inputs(files, capsys, monkeypatch):
    def ran(*args, **kwargs):
        raise AssertionError("the checks ran before --out was checked")

    monkeypatch.setattr("otgen.theory.checks.run_checks", ran)
    monkeypatch.setattr("otgen.theory.cli.run_checks", ran)
    d = files
    cases = [
        (["verify", "--items", "0,99"], "--items"),
        (["verify", "--seed", "-3"], "--seed"),
        (["verify", "--out", str(d / "a_file")], "not a directory"),
        (["verify", "--out", str(d / "a_file" / "sub")], "cannot write the report"),
    ]
    _check_all(cases, capsys)


def test_internal_error_is_one_line_with_debug_hint(files, capsys, monkeypatch):
    def bug(args):
        raise KeyError("a bug")

    monkeypatch.setattr(otgen.cli, "_distance", bug)
    monkeypatch.delenv("OTGEN_DEBUG", raising=False)
    x = str(files / "x.npy")
    code, lines, err = _run(["distance", x, x], capsys)
    assert code == 3 and len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("otgen: internal error: KeyError")
    assert "OTGEN_DEBUG=1" in lines[0]
    monkeypatch.setenv("OTGEN_DEBUG", "1")
    with pytest.raises(KeyError, match="a bug"):
        main(["distance", x, x])


def test_module_entry_point_user_error_from_a_subcommand(files):
    """``python -m otgen.cli``: a subcommand's CLIError is a user error (2)."""
    proc = subprocess.run(
        [sys.executable, "-m", "otgen.cli", "train", "--data", str(files / "e.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OTGEN_DEBUG": ""},
    )
    lines = [ln for ln in proc.stderr.splitlines() if "[KeOps]" not in ln]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "neither a toy" in lines[0]
