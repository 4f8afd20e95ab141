"""No lost work: run directories, checkpoints, resuming, divergence, clear errors.

The SIGINT test starts ``otgen train`` in a subprocess (no network) and stops
it with a signal; every wait has a timeout.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from otgen.cli import main
from otgen.models.data import get_toy
from otgen.models.presets import build, wae_mmd, wae_sinkhorn
from otgen.models.train import LambdaSchedule, Trainer, TrainingError, load_model

X = get_toy("ring8").sample(512, seed=0)


def _main(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    return code, [ln for ln in err.splitlines() if ln.strip() and "[KeOps]" not in ln]


def _steps(log: Path) -> list[int]:
    return [json.loads(line)["step"] for line in log.read_text().splitlines()]


def _leftovers(d: Path) -> list[str]:
    return sorted(
        p.name for p in d.rglob(".*") if "otgen-tmp" in p.name or p.suffix == ".lock"
    )


# -- class 9: the run directory ------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_checkpoints_and_resume_continues(tmp_path, capsys):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OTGEN_DEBUG": ""}
    cmd = [sys.executable, "-m", "otgen.cli", "train", "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--steps", "100000", "--quiet", "--checkpoint-every", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        log = out / "metrics.jsonl"
        deadline = time.monotonic() + 120
        while not (log.is_file() and len(log.read_text().splitlines()) >= 3):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "training did not start in 120 s"
            time.sleep(0.2)
        # A second run on the busy directory is refused at once.
        code, lines = _main(["train", "--out", str(out), "--steps", "5"], capsys)
        assert code == 2 and len(lines) == 1 and "is in use by process" in lines[0]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if "[KeOps]" not in ln]
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("otgen: interrupted at step ") and "--resume" in lines[0]
    config = json.loads((out / "checkpoint" / "config.json").read_text())
    step = config["step"]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and run["step"] == step >= 20
    logged = _steps(out / "metrics.jsonl")
    assert logged == sorted(set(logged)) and logged[-1] <= step
    assert not (out / "report.md").exists() and _leftovers(out) == []
    # Resuming trains the remaining steps, once each, and writes the report.
    target = (step // 10 + 2) * 10  # a logged step (every 10)
    code, lines = _main(
        ["train", "--out", str(out), "--resume", "--steps", str(target), "--quiet"],
        capsys,
    )
    assert code == 0 and lines == []
    config = json.loads((out / "checkpoint" / "config.json").read_text())
    assert config["step"] == target and load_model(out / "checkpoint").training is False
    logged = _steps(out / "metrics.jsonl")
    assert logged == sorted(set(logged)) and logged[-1] == target
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert (out / "report.md").is_file() and _leftovers(out) == []


def test_previous_run_is_refused_and_overwrite_replaces_only_its_files(
    tmp_path, capsys
):
    out = tmp_path / "run"
    base = ["train", "--out", str(out), "--quiet", "--data", "gaussian"]
    assert _main([*base, "--steps", "20"], capsys)[0] == 0
    (out / "notes.txt").write_text("mine")
    code, lines = _main([*base, "--steps", "3"], capsys)
    assert code == 2 and len(lines) == 1 and "holds a previous run" in lines[0]
    assert _steps(out / "metrics.jsonl")[-1] == 20  # untouched
    assert _main([*base, "--steps", "10", "--overwrite"], capsys)[0] == 0
    assert _steps(out / "metrics.jsonl") == [1, 10]
    assert json.loads((out / "checkpoint" / "config.json").read_text())["step"] == 10
    assert (out / "notes.txt").read_text() == "mine" and _leftovers(out) == []


def test_out_problems_are_found_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint").write_text("a file in the way")
    for argv, match in [
        (["--out", str(out)], "in the way of the checkpoint"),
        (["--out", str(tmp_path / "run" / "checkpoint" / "x")], "cannot write there"),
    ]:
        code, lines = _main(["train", "--steps", "3", "--quiet", *argv], capsys)
        assert code == 2 and len(lines) == 1 and match in lines[0], lines
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint"]  # nothing trained
    (out / "checkpoint").unlink()
    (out / "report.md").mkdir()
    code, lines = _main(["train", "--steps", "3", "--out", str(out)], capsys)
    assert code == 2 and "is a directory, in the way" in lines[0]
    assert not (out / "metrics.jsonl").exists()


def test_resume_refuses_other_settings_and_fewer_steps(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--out", str(out), "--quiet", "--data", "gaussian"]
    assert _main([*base, "--steps", "6"], capsys)[0] == 0
    report = (out / "report.md").read_text()
    for extra, match in [
        (["--resume", "--seed", "3"], "--seed 3 (the run has 0)"),
        (["--resume", "--steps", "4"], "already at step 6"),
    ]:
        code, lines = _main([*base, *extra], capsys)
        assert code == 2 and len(lines) == 1 and match in lines[0], lines
    assert (out / "report.md").read_text() == report  # the finished run is kept


def test_lock_is_exclusive_and_released(tmp_path):
    from otgen.models.report import RunDirectoryError, RunLock

    with RunLock(tmp_path):
        with pytest.raises(RunDirectoryError, match="in use by process"):
            RunLock(tmp_path).acquire()
    with RunLock(tmp_path):
        pass
    assert not (tmp_path / ".otgen.lock").exists()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    from otgen.models.report import atomic_write, atomic_write_text

    path = atomic_write_text(tmp_path / "report.md", "old")

    def half(tmp):
        tmp.write_text("half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


# -- checkpoints: damaged files, class 12 ----------------------------------------------


def test_damaged_checkpoints_give_clear_errors(tmp_path):
    tr = Trainer(wae_mmd(2), X, batch_size=64, progress=False).fit(2)
    ck = tr.save(tmp_path / "ck")
    state = (ck / "state.pt").read_bytes()
    (ck / "state.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"state.pt is empty \(0 bytes\)"):
        load_model(ck)
    (ck / "state.pt").write_bytes(state[: len(state) // 2])
    with pytest.raises(ValueError, match=r"state.pt cannot be read .*damaged"):
        Trainer(wae_mmd(2), X, batch_size=64, progress=False).load(ck)
    (ck / "state.pt").write_bytes(state)
    config = json.loads((ck / "config.json").read_text())
    (ck / "config.json").write_text(json.dumps({**config, "step": 7}))
    with pytest.raises(ValueError, match="inconsistent: state.pt is at step 2"):
        load_model(ck)
    (ck / "config.json").write_text("{")
    with pytest.raises(ValueError, match="config.json cannot be read"):
        load_model(ck)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="a file is in the way"):
        tr.save(tmp_path / "file")


# -- class 10: resuming with another configuration -------------------------------------


def test_load_names_differences_and_overrides_only_explicitly(tmp_path):
    kw = dict(batch_size=64, progress=False)
    ck = Trainer(wae_mmd(2), X, **kw).fit(2).save(tmp_path / "ck")
    with pytest.raises(ValueError, match="model.preset: 'wae_mmd' in the checkpoint"):
        Trainer(wae_sinkhorn(2), X, **kw).load(ck)
    with pytest.raises(ValueError, match=r"trainer.lam: 10.0 in the checkpoint, 3.0"):
        Trainer(wae_mmd(2), X, lam=3.0, **kw).load(ck)
    with pytest.raises(ValueError, match=r"model.lam: 10.0 .*override=\('lam',\)"):
        Trainer(wae_mmd(2, lam=3.0), X, **kw).load(ck)
    with pytest.raises(ValueError, match="unknown field"):
        Trainer(wae_mmd(2), X, **kw).load(ck, override=["lamda"])
    tr = Trainer(wae_mmd(2), X, lam=3.0, **kw).load(ck, override=["lam"])
    assert tr.step == 2 and tr.schedule(tr.step) == 3.0
    tr = Trainer.from_checkpoint(ck, X, lam=5.0, progress=False)
    assert tr.step == 2 and tr.schedule(tr.step) == 5.0


# -- class 11: divergence, degenerate data ---------------------------------------------


def test_divergence_names_the_step_and_where_not_the_input():
    tr = Trainer(
        wae_mmd(2, seed=0),
        X,
        batch_size=64,
        progress=False,
        optim={"model": {"lr": 1e10}},
    )
    with pytest.raises(TrainingError, match=r"training stopped at step \d+") as err:
        tr.fit(50)
    assert "is not finite" in str(err.value) and "must be finite" not in str(err.value)
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
        Trainer(wae_mmd(2), X, dtype=torch.float16, progress=False)


def test_lambda_rate_is_bounded_and_lambda_never_overflows():
    with pytest.raises(ValueError, match=r"lam_rate must be in \(0, 1\]"):
        Trainer(
            wae_mmd(2),
            X,
            schedule="adaptive",
            lam_target=1e-3,
            lam_rate=1e6,
            progress=False,
        )
    s = LambdaSchedule("adaptive", value=1.0, target=1e-3, rate=1.0)
    for _ in range(2000):
        s.observe(1.0)  # far above target: lambda grows as fast as allowed
    assert np.isfinite(s(0)) and s(0) > 1e290


# -- class 12: clear errors ------------------------------------------------------------


def test_bad_widths_name_the_option():
    with pytest.raises(ValueError, match=r"hidden must hold integers >= 1 .*\[-1\]"):
        build("wae-mmd", 2, hidden=[-1])
    with pytest.raises(ValueError, match="critic_hidden must hold integers"):
        build("wgan-gp", 2, critic_hidden=[0])
    with pytest.raises(ValueError, match="hidden must be a sequence"):
        build("vae", 2, hidden=64)


def test_numpy_integers_are_accepted_and_stored_as_ints(tmp_path):
    i = np.int64
    model = build("wae-mmd", i(2), d_z=i(2), hidden=np.array([8, 8]), seed=i(1))
    tr = Trainer(model, X, batch_size=i(32), log_every=i(1), progress=False)
    tr.fit(i(2))
    ck = tr.save(tmp_path / "ck")  # JSON: would fail on NumPy scalars
    assert load_model(ck).config["options"]["hidden"] == [8, 8]
    gan = build("wgan-gp", i(2), n_critic=i(2), hidden=[8], critic_hidden=[8])
    Trainer(gan, X, batch_size=32, n_critic=i(1), progress=False).fit(1)


def test_wrong_data_dimension_names_both():
    with pytest.raises(ValueError, match=r"dimension 2 .* built for d_x=3"):
        Trainer(wae_mmd(3), X, batch_size=64, progress=False)
    loader = torch.utils.data.DataLoader(X, batch_size=32)
    tr = Trainer(wae_mmd(3), loader, progress=False)
    with pytest.raises(ValueError, match=r"dimension 2 .* built for d_x=3"):
        tr.fit(1)
