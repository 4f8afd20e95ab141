"""The one-pass scans of a dense cost matrix against NumPy's separate passes."""

import numpy as np
import pytest
import torch

import otgen
from otgen.ot._scan import cost_stats, max_violation


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shift", [0.0, -3.0, 5.0])
def test_cost_stats_matches_numpy(dtype, shift):
    rng = np.random.default_rng(0)
    C = (rng.normal(size=(37, 53)) + shift).astype(dtype)
    C[3, 4], C[10, 0] = np.inf, np.inf
    finite = C[np.isfinite(C)]
    n_bad, n_inf, lo, hi = cost_stats(C)
    assert (n_bad, n_inf) == (0, 2)
    assert lo == float(finite.min(initial=0.0))
    assert hi == float(finite.max(initial=0.0))


def test_cost_stats_counts_nan_and_minus_inf():
    C = np.ones((4, 5))
    C[0, 0], C[1, 1], C[2, 2], C[3, 3] = np.nan, -np.inf, np.inf, -7.0
    assert cost_stats(C) == (2, 1, -7.0, 1.0)
    # A non-contiguous view is read as it is.
    assert cost_stats(np.asfortranarray(C)[:, 1:]) == (1, 1, -7.0, 1.0)


def test_max_violation_matches_numpy():
    rng = np.random.default_rng(1)
    C = rng.random((70, 30))
    f, g = rng.normal(size=70), rng.normal(size=30)
    ref = max(float((f[:, None] + g[None, :] - C).max()), 0.0)
    assert max_violation(f, g, C) == pytest.approx(ref, rel=0, abs=1e-15)
    # Feasible potentials: no violation; forbidden pairs (inf) never violate.
    assert max_violation(f * 0 - 5, g * 0, np.where(C > 0.5, np.inf, C)) == 0.0


def test_max_violation_nan_fails_the_certificate():
    f, g = np.array([0.0, np.nan]), np.zeros(3)
    assert np.isnan(max_violation(f, g, np.ones((2, 3))))


@pytest.mark.parametrize("bad", [np.nan, -np.inf])
@pytest.mark.parametrize("with_inf", [False, True])
@pytest.mark.parametrize("as_torch", [False, True])
def test_nan_and_minus_inf_are_refused(bad, with_inf, as_torch):
    C = np.ones((3, 3))
    C[1, 2] = bad
    if with_inf:
        C[0, 0] = np.inf
    # Only the NaN or -inf entry is counted, not the forbidden pair.
    with pytest.raises(ValueError, match=r"C must be finite \(got 1 NaN or inf"):
        otgen.emd(None, None, torch.from_numpy(C) if as_torch else C)


def test_emd_errors_unchanged_by_the_scan():
    C = np.ones((3, 3))
    C[1, 2] = np.nan
    with pytest.raises(ValueError, match="C must be finite"):
        otgen.emd(None, None, C)
    C[1, 2] = -np.inf
    with pytest.raises(ValueError, match="C must be finite"):
        otgen.emd(None, None, torch.from_numpy(C))


def test_emd_with_negative_and_forbidden_costs_matches_pot():
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(2)
    C = rng.normal(size=(30, 20))
    a, b = rng.random(30) + 0.1, rng.random(20) + 0.1
    a, b = a / a.sum(), b / b.sum()
    r = otgen.emd(a, b, C)
    assert r.converged
    assert float(r.value) == pytest.approx(ot.emd2(a, b, C), rel=1e-12)
    Ci = C.copy()
    Ci[0, :5] = np.inf
    big = np.where(np.isinf(Ci), 1e6, Ci)  # a cost no optimal plan uses
    r = otgen.emd(a, b, Ci)
    assert r.converged
    assert float(r.value) == pytest.approx(ot.emd2(a, b, big), rel=1e-12)


def test_support_and_violation_matches_numpy():
    from otgen.ot._scan import support_and_violation

    rng = np.random.default_rng(3)
    G = np.where(rng.random((25, 35)) < 0.05, rng.random((25, 35)), 0.0)
    C = rng.random((25, 35))
    f, g = rng.normal(size=25), rng.normal(size=35)
    rows, cols, vals, viol = support_and_violation(G, C, f, g)
    i, j = np.nonzero(G)
    np.testing.assert_array_equal(rows, i)
    np.testing.assert_array_equal(cols, j)
    np.testing.assert_array_equal(vals, G[i, j])
    assert viol == max_violation(f, g, C)
    # More non-zeros than a basis holds (n + m - 1): the buffers grow.
    full = rng.random((6, 7)) + 0.1
    rows, cols, vals, _ = support_and_violation(full, C[:6, :7], f[:6], g[:7])
    assert rows.size == 42
    np.testing.assert_array_equal(vals, full.ravel())
    f[2] = np.nan
    assert np.isnan(support_and_violation(G, C, f, g)[3])


def test_import_otgen_does_not_load_numba():
    import subprocess
    import sys

    code = "import sys, otgen; print('numba' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("seed", range(4))
def test_assignment_potentials_certify_scipys_matching(seed):
    from scipy.optimize import linear_sum_assignment

    from otgen.ot._shortest_paths import assignment_potentials

    rng = np.random.default_rng(seed)
    n = 60 + 17 * seed
    C = rng.normal(size=(n, n)) if seed % 2 else rng.random((n, n)) * 10
    rows, sigma = linear_sum_assignment(C)
    u, v, passes, ok = assignment_potentials(C, sigma, n + 1)
    assert ok and passes >= 1
    slack = C - u[:, None] - v[None, :]
    assert slack.min() >= -1e-12 * np.abs(C).max()  # feasible
    np.testing.assert_allclose(slack[rows, sigma], 0.0, atol=1e-12)  # tight
    assert u.sum() + v.sum() == pytest.approx(C[rows, sigma].sum(), rel=1e-12)
    # A suboptimal matching has a negative cycle: the relaxation never settles.
    worse = np.roll(sigma, 1)
    assert not assignment_potentials(C, worse, 3)[3]
