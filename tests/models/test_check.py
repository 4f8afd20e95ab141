"""The model check can fail: it passes the true law at its level, fails bad models.

Bad models of ``ring8`` (8 Gaussians N(c_k, 0.05^2 I) on the circle of
radius 2):

- the smeared ring: 57% of the mass uniformly along the ring (with the same
  0.05 noise), 43% in the 8 Gaussians; it scored 0.65 of the old W2 floor
  ratio at m = 1000;
- mode dropping: the mass spread evenly over 6 of the 8 Gaussians.
"""

import json

import numpy as np
import pytest
import torch

from otgen.cli import main
from otgen.models.check import (
    CheckResult,
    min_replicates,
    model_check,
    noise_floor,
)
from otgen.models.data import get_toy

RING = get_toy("ring8")


def smeared_ring(m: int, seed: int, frac: float = 0.57) -> np.ndarray:
    """A fraction ``frac`` of iid samples uniform along the ring, the rest modes."""
    rng = np.random.default_rng(seed)
    on_ring = rng.random(m) < frac
    theta = 2 * np.pi * rng.random(m)
    ring = 2.0 * np.stack([np.cos(theta), np.sin(theta)], 1)
    modes = RING.centers[rng.integers(0, 8, m)]
    return np.where(on_ring[:, None], ring, modes) + 0.05 * rng.standard_normal((m, 2))


def drop_modes(m: int, seed: int, keep: int = 6) -> np.ndarray:
    """iid samples of an equal mixture of the first ``keep`` of the 8 Gaussians."""
    rng = np.random.default_rng(seed)
    return RING.centers[rng.integers(0, keep, m)] + 0.05 * rng.standard_normal((m, 2))


def true_law(m: int, seed: int) -> np.ndarray:
    return RING.sample(m, seed=seed, dtype=torch.float64).numpy()


def _rejections(m: int, seeds: range, law: str = "ring8") -> tuple[int, list]:
    """Checks of samples of the law itself (streams apart from the check's)."""
    toy = get_toy(law)
    results = [model_check(toy.sample(m, seed=10_000 + s), law, seed=s) for s in seeds]
    return sum(not r.indistinguishable for r in results), [r.p_value for r in results]


@pytest.mark.parametrize("law", ["ring8", "gaussian"])
def test_true_law_passes_at_the_stated_level_over_seeds(law):
    # The Monte Carlo test is exact: over 30 seeds the number of false alarms
    # is Binomial(30, 0.05) (mean 1.5; P(>= 6) = 0.003), whatever the toy.
    rejected, p = _rejections(200, range(30), law)
    assert rejected <= 5, rejected
    assert 0.35 < np.mean(p) < 0.7  # uniform on {1/20, ..., 20/20}: mean 0.525


@pytest.mark.slow
@pytest.mark.parametrize("law", ["ring8", "gaussian"])
def test_true_law_false_alarm_rate_over_100_seeds(law):
    # Binomial(100, 0.05): mean 5, P(>= 12) = 0.004.
    rejected, p = _rejections(1000, range(100), law)
    assert rejected <= 11, rejected
    assert 0.45 < np.mean(p) < 0.6


def test_mode_dropping_fails_and_true_law_passes_at_the_same_m():
    bad = model_check(drop_modes(600, 1), "ring8", m=600, seed=0)
    assert not bad.indistinguishable and bad.z > 5
    assert bad.p_value == pytest.approx(1 / 20)  # above every replicate
    assert bad.verdict.startswith("NOT indistinguishable from ring8 at m = 600")
    good = model_check(true_law(600, 1), "ring8", m=600, seed=0)
    assert good.indistinguishable and good.verdict.startswith("indistinguishable")
    # the same held-out sample and floor: only the statistic differs
    assert good.floor == bad.floor


@pytest.mark.slow
def test_smeared_ring_fails_at_the_default_m():
    r = model_check(smeared_ring(10_000, 1), "ring8", seed=0)
    assert r.m == 10_000 and r.replicates == 19
    assert not r.indistinguishable and r.z > 3, r.verdict


def test_result_is_the_monte_carlo_test_of_its_replicates():
    x = true_law(400, 7)
    r = model_check(x, "ring8", m=300, seed=3)
    f = np.array(r.floor)
    assert isinstance(r, CheckResult) and r.m == 300 and len(f) == r.replicates == 19
    assert r.p_value == (1 + (f >= r.statistic).sum()) / 20
    assert r.indistinguishable == (r.statistic <= f.max())
    assert r.floor_mean == pytest.approx(f.mean(), rel=1e-12)
    assert r.floor_std == pytest.approx(f.std(ddof=1), rel=1e-12)
    assert r.z == pytest.approx((r.statistic - f.mean()) / f.std(ddof=1), rel=1e-12)
    # reproducible from the seed (also the subsample of 300 of the 400 points)
    assert model_check(x, "ring8", m=300, seed=3) == r
    assert model_check(x, "ring8", m=300, seed=4).floor != r.floor
    d = json.loads(json.dumps(r.to_dict()))
    assert d["verdict"] == r.verdict and d["indistinguishable"] == r.indistinguishable
    with pytest.raises(AttributeError):
        r.p_value = 0.0  # frozen
    held, floor = noise_floor("ring8", 300, replicates=19, seed=3)
    assert floor == r.floor and not held.flags.writeable


def test_apples_to_apples_the_held_out_sample_is_fresh():
    # The check's held-out sample and replicates come from streams of their
    # own: never the points that RING.sample(n, seed=seed) gives for training.
    held, _ = noise_floor("ring8", 200, replicates=2, seed=0)
    train = RING.sample(20_000, seed=0, dtype=torch.float64).numpy()
    d2 = ((held[:, None, :] - train[None, :2000]) ** 2).sum(-1)
    assert d2.min() > 0


def test_constant_samples_fail_and_errors_name_the_fix():
    assert min_replicates(0.05) == 19 and min_replicates(0.1) == 9
    const = np.zeros((300, 2))
    assert not model_check(const, "ring8", m=300).indistinguishable
    x = true_law(100, 0)
    cases = [
        (dict(replicates=18), "replicates must be an integer >= 19 for a test"),
        (dict(replicates=19, level=0.01), "replicates must be an integer >= 99"),
        (dict(replicates=19.0), "replicates must be an integer >= 19"),
        (dict(level=1.5), r"level must be in \(0, 1\)"),
        (dict(m=200), "m must be at most the number of samples"),
        (dict(m=1), "m must be an integer >= 2"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            model_check(x, "ring8", **kwargs)
    with pytest.raises(ValueError, match=r"samples must have shape \(n, 2\)"):
        model_check(np.zeros((100, 3)), "ring8")
    with pytest.raises(ValueError, match="samples must be finite"):
        model_check(np.full((100, 2), np.nan), "ring8")
    with pytest.raises(ValueError, match="data must be one of"):
        model_check(x, "ring9")


def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors exit from the parser
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, [ln for ln in err.splitlines() if "[KeOps]" not in ln]


def test_otgen_check_exit_codes(tmp_path, capsys):
    good, bad = tmp_path / "good.npy", tmp_path / "bad.csv"
    np.save(good, true_law(400, 1))
    np.savetxt(bad, drop_modes(400, 1), delimiter=",")
    code, out, _ = _run(["check", str(good), "--data", "ring8", "--quiet"], capsys)
    assert code == 0 and "verdict: indistinguishable from ring8 at m = 400" in out
    assert "a weak check" in out  # m < 10000 says so
    code, out, _ = _run(["check", str(bad), "--data", "ring8", "--json"], capsys)
    res = json.loads(out)
    assert code == 1 and res["indistinguishable"] is False and res["m"] == 400
    assert res["replicates"] == 19 and res["level"] == 0.05 and res["z"] > 5
    assert len(res["floor"]) == 19 and res["n"] == 400
    code, out, _ = _run(["check", str(good), "--data", "ring8", "--m", "300"], capsys)
    assert code == 0 and "at m = 300" in out
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros((50, 3)))
    for argv, match in [
        ([str(tmp_path / "none.npy"), "--data", "ring8"], "none.npy"),
        ([str(good), "--data", "ring9"], "not a toy"),
        ([str(good)], "required: --data"),
        ([str(wide), "--data", "ring8"], "dimension 3"),
        ([str(good), "--data", "ring8", "--replicates", "5"], "at least 19"),
        ([str(good), "--data", "ring8", "--m", "1000"], "holds 400 points"),
        ([str(good), "--data", "ring8", "--level", "2"], "must be a number in (0, 1)"),
    ]:
        code, out, err = _run(["check", *argv], capsys)
        assert code == 2 and len(err) == 1 and match in err[0], err


def test_evaluate_leads_with_the_check_on_a_toy_and_flags_a_zero_floor():
    from otgen.models.metrics import evaluate
    from otgen.models.presets import wae_mmd
    from otgen.models.report import check_section, metrics_table

    model = wae_mmd(2, seed=0)  # untrained: far from the law
    a, b = RING.sample(200, seed=1), RING.sample(200, seed=2)
    m = evaluate(model, a, b, law=RING, check_m=300, seed=0)
    assert m["check_m"] == 300 and m["check_replicates"] == 19
    assert m["check_indistinguishable"] is False and m["check_z"] > 5
    assert m["w2_noise_floor"] == pytest.approx(np.mean(m["w2_floor_replicates"]))
    assert m["modes_covered"] <= 8 and len(m["mode_mass"]) == 8
    section = check_section(m)
    assert section.startswith("**Verdict: NOT indistinguishable from ring8 at m = 300")
    assert "| z-score |" in section and "level 0.05" in section
    assert "| W2(generated, held-out) |" not in metrics_table(m)
    # Constant data (no law): the floor is 0 and the ratio is None, not 4e299.
    const = torch.zeros(100, 2)
    m = evaluate(model, const, const, seed=0)
    assert m["w2_noise_floor"] == 0.0 and m["w2_ratio"] is None
    assert "n/a (noise floor 0: constant data)" in metrics_table(m)
