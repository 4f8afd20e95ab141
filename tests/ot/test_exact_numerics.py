"""Issue 15 for exact OT: no silent wrong numbers at any scale.

Each test failed on the code before the fix (commit ddeb932): scale-dependent
values, a certificate judged in absolute units, forbidden pairs refused,
cancellation on identical inputs, overflow into POT's "please report" error.
References: SciPy's LP (HiGHS), the unscaled problem, exact zeros.
"""

import warnings

import numpy as np
import pytest
import torch

import otgen
from otgen.ot import exact as exact_mod
from otgen.ot._solvers import Solution
from tests.ot.lp_reference import transport_lp

SCALES = [1e-12, 1e-8, 1e-6, 1e6, 1e12]


def lp_value(C, a, b, forbidden=None):
    return transport_lp(a, b, C, forbidden)[0]


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    return rng.normal(size=(200, 2)), rng.normal(size=(180, 2)) + [0.5, 0.0]


@pytest.mark.parametrize("solver", ["network_simplex", "multiscale"])
@pytest.mark.parametrize("s", SCALES)
def test_value_is_scale_equivariant(xy, solver, s):
    x, y = xy
    ref = otgen.exact_ot(x, y, solver=solver).value
    res = otgen.exact_ot(x * s, y * s, solver=solver)
    assert res.converged
    np.testing.assert_allclose(res.value, ref * s**2, rtol=1e-10)
    w = otgen.wasserstein(torch.from_numpy(x * s), torch.from_numpy(y * s), p=1)
    w_ref = otgen.wasserstein(x, y, p=1)
    np.testing.assert_allclose(w.item(), w_ref * s, rtol=1e-10)


@pytest.mark.parametrize("s", SCALES)
def test_assignment_and_line_are_scale_equivariant(s):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(60, 3)), rng.normal(size=(60, 3)) + 1.0
    ref = otgen.exact_ot(x, y, solver="assignment").value
    res = otgen.exact_ot(x * s, y * s, solver="assignment")
    assert res.converged
    np.testing.assert_allclose(res.value, ref * s**2, rtol=1e-10)
    u, v = rng.normal(size=300), rng.normal(size=250) * 2
    ref1 = otgen.exact_ot(u, v, cost="euclidean").value
    np.testing.assert_allclose(
        otgen.exact_ot(u * s, v * s, cost="euclidean").value, ref1 * s, rtol=1e-10
    )


@pytest.mark.parametrize("s", [1e-200, 1e-8, 1e8, 1e200])
def test_emd_is_scale_equivariant_in_costs_and_masses(xy, s):
    x, y = xy
    C = otgen.cost_matrix(x[:40], y[:30])
    rng = np.random.default_rng(2)
    a, b = rng.random(40), rng.random(30)
    a, b = a / a.sum(), b / b.sum()
    ref = otgen.emd(a, b, C)
    res = otgen.emd(a, b, C * s)
    assert res.converged
    np.testing.assert_allclose(res.value, ref.value * s, rtol=1e-10)
    # Weights of tiny or huge total mass: the plan and value scale with it.
    mass = otgen.emd(a * s, b * s, C)
    assert mass.converged
    np.testing.assert_allclose(mass.value, ref.value * s, rtol=1e-10)


def test_one_huge_cost_does_not_spoil_the_others(xy):
    x, y = xy
    C = otgen.cost_matrix(x[:20], y[:20])
    C[3, 5] = 1e15  # "forbid" a pair the way users do
    u = np.full(20, 1 / 20)
    res = otgen.emd(u, u, C)
    assert res.converged
    np.testing.assert_allclose(res.value, lp_value(C, u, u), rtol=1e-9)
    assert res.max_dual_violation <= 1e-9 * otgen.cost_matrix(x[:20], y[:20]).max()


def test_forbidden_pairs_as_inf(xy):
    x, y = xy
    C = otgen.cost_matrix(x[:20], y[:15])
    # Forbid the cheapest pair of several rows: the optimum must change.
    forb = np.zeros_like(C, dtype=bool)
    forb[np.arange(8), C[:8].argmin(1)] = True
    Ci = np.where(forb, np.inf, C)
    a, b = np.full(20, 1 / 20), np.full(15, 1 / 15)
    res = otgen.emd(a, b, Ci)
    ref = lp_value(C, a, b, forbidden=forb)
    assert res.converged
    np.testing.assert_allclose(res.value, ref, rtol=1e-9)
    assert res.value > otgen.emd(a, b, C).value + 1e-6
    P = res.plan.dense()
    assert P[forb].sum() == 0.0
    tC = torch.from_numpy(Ci)
    np.testing.assert_allclose(otgen.emd(None, None, tC).value.item(), ref, rtol=1e-9)
    with pytest.raises(ValueError, match="no transport plan avoids"):
        otgen.emd(None, None, np.array([[0.0, np.inf], [np.inf, np.inf]]))


def test_failed_certificate_is_never_converged(monkeypatch, xy):
    x, y = xy
    real = exact_mod.network_simplex

    def wrong(a, b, C, max_iter=None, **kw):
        sol = real(a, b, C, max_iter, **kw)
        # A planted defect: the potentials of a correct plan, one raised.
        f = sol.f.copy()
        f[0] += 0.5 * float(np.abs(C).max())
        return Solution(sol.rows, sol.cols, sol.vals, f, sol.g, sol.value, "x", True)

    monkeypatch.setattr(exact_mod, "network_simplex", wrong)
    with pytest.warns(UserWarning, match="fails its own certificate"):
        res = otgen.exact_ot(x, y, solver="network_simplex")
    assert not res.converged
    assert res.max_dual_violation > 0.1


@pytest.mark.parametrize("scale", [1.0, 1000.0])
@pytest.mark.parametrize("as_torch", [False, True])
def test_identical_inputs_give_exactly_zero(scale, as_torch):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 2)) * scale + 7.0 * scale
    y = x[rng.permutation(300)]
    if as_torch:
        x, y = torch.from_numpy(x), torch.from_numpy(y)
    for p in (1, 2):
        w = otgen.wasserstein(x, y.clone() if as_torch else y.copy(), p=p)
        assert float(w) == 0.0
    assert float(otgen.exact_ot(x, y).value) == 0.0


def test_overflow_is_a_clear_error_and_large_scales_work(xy):
    x, y = xy
    with pytest.raises(ValueError, match="the transport cost overflows float64"):
        otgen.exact_ot(x * 1e154, y * 1e154)
    with pytest.raises(ValueError, match="overflows float64"):
        otgen.exact_ot(x[:, 0] * 1e300, y[:, 0] * 1e300, cost="minkowski", p=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = otgen.exact_ot(x * 1e150, y * 1e150)
    np.testing.assert_allclose(big.value, otgen.exact_ot(x, y).value * 1e300, 1e-10)


def test_option_errors_name_the_parameter(xy):
    x, y = xy
    C = otgen.cost_matrix(x[:5], y[:5])
    with pytest.raises(ValueError, match=r"max_iter must be >= 1 \(got -1\)"):
        otgen.emd(None, None, C, max_iter=-1)
    with pytest.raises(ValueError, match="max_iter must be a positive integer"):
        otgen.exact_ot(x, y, max_iter=2.5)
    assert otgen.emd(None, None, C, max_iter=np.int64(10**6)).converged
    with pytest.raises(ValueError, match=r"tol must be in \(0, 1\)"):
        otgen.exact_ot(x, y, tol=0.0)
