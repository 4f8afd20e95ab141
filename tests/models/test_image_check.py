"""The exact pixel-space W2 permutation test (issue 16, item 4): it accepts
held-out data at its stated false-alarm rate and rejects blurred and
mode-dropping models; its statistic is POT's exact W2."""

import numpy as np
import ot
import pytest
import torch
import torch.nn.functional as F

from otgen.models.check import permutation_check

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float64)[:, None] / 16.0
    return x, torch.tensor(d.target)


def test_statistic_is_the_exact_w2(digits):
    x, _ = digits
    g, h = x[:150], x[150:270]
    r = permutation_check(g, h, replicates=19)
    M = ot.dist(g.flatten(1).numpy(), h.flatten(1).numpy())
    ref = np.sqrt(ot.emd2(np.full(150, 1 / 150), np.full(120, 1 / 120), M))
    assert r.statistic == pytest.approx(ref, rel=1e-9)
    assert len(r.floor) == 19 and r.m == 150


def test_real_data_passes_at_the_stated_rate(digits):
    # 40 disjoint-draw checks of real digits against real digits at level
    # 0.05: about 2 failures expected; 7 or more has probability 4e-4.
    x, _ = digits
    fails = 0
    for s in range(40):
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(s))
        r = permutation_check(x[perm[:100]], x[perm[100:200]], replicates=19, seed=s)
        fails += not r.indistinguishable
    assert fails <= 6


def test_blurred_and_mode_dropping_models_fail(digits):
    x, y = digits
    held, gen = x[:300], x[300:600]
    blurred = F.interpolate(F.avg_pool2d(gen, 2), scale_factor=2, mode="bilinear")
    r = permutation_check(blurred, held)
    assert not r.indistinguishable and r.z > 5
    dropped = x[600:][y[600:] < 5][:300]  # digits 0-4 only
    r = permutation_check(dropped, held)
    assert not r.indistinguishable and r.z > 3
    assert "NOT indistinguishable from the held-out data" in r.verdict


def test_errors_name_the_argument():
    x = torch.rand(20, 8, 8)
    with pytest.raises(ValueError, match="replicates must be an integer >= 19"):
        permutation_check(x[:10], x[10:], replicates=5)
    with pytest.raises(ValueError, match="rows of one size"):
        permutation_check(x[:10], torch.rand(10, 7, 7))
    with pytest.raises(ValueError, match="reference must be finite"):
        permutation_check(x[:10], x[10:] * float("nan"))
    with pytest.raises(ValueError, match="level must be in"):
        permutation_check(x[:10], x[10:], level=1.5)
