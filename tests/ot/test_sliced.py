"""Sliced and max-sliced Wasserstein: POT with the same projections, closed
forms for Gaussians, exact W_p on the line, the Monte Carlo standard error,
gradients and the errors on bad input."""

import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from otgen import max_sliced_wasserstein, sliced_wasserstein, wasserstein
from otgen.ot.sliced import random_projections

ot = pytest.importorskip("ot")


def clouds(rng, n=300, m=200, d=4, weighted=True):
    x = rng.normal(size=(n, d))
    y = 1.3 * rng.normal(size=(m, d)) + 0.5
    if not weighted:
        return x, y, None, None
    a, b = rng.random(n) + 0.05, rng.random(m) + 0.05
    return x, y, a / a.sum(), b / b.sum()


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_equals_pot_with_the_same_projections(rng, p, weighted):
    x, y, a, b = clouds(rng, weighted=weighted)
    th = random_projections(4, 40, seed=5)
    r = sliced_wasserstein(x, y, p, a=a, b=b, projections=th)
    ref = ot.sliced_wasserstein_distance(x, y, a, b, p=p, projections=th)
    assert_allclose(r.value, ref, rtol=1e-12)
    assert_allclose(r.power, ref**p, rtol=1e-12)
    rm = max_sliced_wasserstein(x, y, p, a=a, b=b, projections=th)
    refm = ot.max_sliced_wasserstein_distance(x, y, a, b, p=p, projections=th)
    assert_allclose(rm.value, refm, rtol=1e-12)
    assert rm.best == int(np.argmax(r.projected))
    # Planted: other directions give another value (the comparison can fail).
    other = sliced_wasserstein(x, y, p, a=a, b=b, n_projections=40, seed=6)
    assert abs(other.value - ref) > 1e-6


def test_torch_equals_numpy_and_seed_fixes_projections(rng):
    x, y, a, b = clouds(rng)
    r1 = sliced_wasserstein(x, y, a=a, b=b, seed=7)
    r2 = sliced_wasserstein(torch.tensor(x), torch.tensor(y), a=a, b=b, seed=7)
    assert_allclose(r1.projections, r2.projections.numpy())
    assert_allclose(r1.value, float(r2.value), rtol=1e-12)
    assert isinstance(r1.value, float) and r2.value.dtype == torch.float64
    # float32 input: projected and accumulated in float64, returned in float32
    r3 = sliced_wasserstein(torch.tensor(x).float(), torch.tensor(y).float(), seed=7)
    r4 = sliced_wasserstein(x.astype(np.float32), y.astype(np.float32), seed=7)
    assert r3.value.dtype == torch.float32
    assert_allclose(float(r3.value), r4.value, rtol=1e-6)
    assert sliced_wasserstein(x, y, seed=8).value != r1.value


def test_line_equals_exact_wasserstein(rng):
    # In d = 1 every direction is +-1: SW_p = W_p, with zero standard error.
    x, y = rng.normal(size=50), 2.0 * rng.normal(size=70) + 1.0
    a = rng.random(50)
    a /= a.sum()
    for p in (1.0, 2.0, 3.0):
        r = sliced_wasserstein(x, y, p, a=a, n_projections=8)
        assert_allclose(r.value, wasserstein(x, y, p, a=a), rtol=1e-12)
        assert r.power_std_error < 1e-12 * r.power
        assert_allclose(np.abs(r.projections), 1.0)
    # Planted: a scaled direction is no longer W_p (the check can fail).
    r = sliced_wasserstein(x, y, a=a, projections=np.array([[2.0]]))
    assert_allclose(r.value, 2.0 * wasserstein(x, y, a=a), rtol=1e-12)


def test_isotropic_gaussians_closed_form():
    # N(m1, s1^2 I), N(m2, s2^2 I): SW_2^2 = |m1 - m2|^2 / d + (s1 - s2)^2.
    rng = np.random.default_rng(1)
    d, n = 5, 20_000
    m1, m2, s1, s2 = np.zeros(d), np.array([1.0, -2.0, 0.5, 0.0, 1.0]), 1.0, 2.0
    x = m1 + s1 * rng.normal(size=(n, d))
    y = m2 + s2 * rng.normal(size=(n, d))
    r = sliced_wasserstein(x, y, n_projections=400, seed=0)
    exact = np.sum((m1 - m2) ** 2) / d + (s1 - s2) ** 2
    # Monte Carlo (4 standard errors) plus the sampling error of n = 2e4 points
    # in each 1-D cost (about 1e-2 relative, measured over seeds).
    tol = 4 * r.power_std_error + 0.02 * exact
    assert abs(r.power - exact) < tol
    # Planted: the formula without the 1/d is rejected.
    assert abs(r.power - (np.sum((m1 - m2) ** 2) + (s1 - s2) ** 2)) > tol


def test_standard_error_shrinks_like_one_over_sqrt_l(rng):
    x, y, _, _ = clouds(rng, d=6, weighted=False)
    se = [
        sliced_wasserstein(x, y, n_projections=L, seed=1).power_std_error
        for L in (100, 1600)
    ]
    assert 3.0 < se[0] / se[1] < 5.3  # sqrt(16) = 4


def test_standard_error_matches_the_spread_over_seeds(rng):
    # The reported error is the actual spread of the estimate over seeds.
    x, y, _, _ = clouds(rng, n=200, m=150, d=5, weighted=False)
    runs = [sliced_wasserstein(x, y, n_projections=30, seed=s) for s in range(80)]
    spread = np.std([r.value for r in runs], ddof=1)
    se = np.mean([r.std_error for r in runs])
    assert 0.7 < spread / se < 1.4
    # Planted: the standard deviation without the 1/sqrt(L) is far off.
    assert spread / (se * math.sqrt(30)) < 0.7


def test_max_sliced_bounds_and_attained_direction(rng):
    x = rng.normal(size=(200, 2))
    y = x + np.array([3.0, 0.0])
    r = max_sliced_wasserstein(x, y, n_projections=500)
    th = r.projections[:, r.best]
    assert 2.9 < r.value <= 3.0 + 1e-9  # W_2 = 3 along e_1
    assert abs(th[0]) > 0.95
    assert math.isnan(r.std_error)
    s = sliced_wasserstein(x, y, projections=r.projections)
    assert s.value < r.value


def test_gradcheck_points_and_projections(rng):
    x = torch.tensor(rng.normal(size=(6, 2)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(4, 2)), requires_grad=True)
    th = torch.tensor(random_projections(2, 7, seed=1), requires_grad=True)
    for p in (1.5, 2.0, 3.0):

        def fn(x, y, th, p=p):
            return sliced_wasserstein(x, y, p, projections=th).value

        def fm(x, y, p=p):
            return max_sliced_wasserstein(x, y, p, n_projections=5).power

        assert torch.autograd.gradcheck(fn, (x, y, th))
        assert torch.autograd.gradcheck(fm, (x, y))


def test_weight_gradient_along_mass_preserving_directions(rng):
    x, y = torch.tensor(rng.normal(size=(8, 3))), torch.tensor(rng.normal(size=(5, 3)))
    a0 = rng.random(8) + 0.2
    a0 /= a0.sum()
    a = torch.tensor(a0, requires_grad=True)
    r = sliced_wasserstein(x, y, a=a, n_projections=6)
    (g,) = torch.autograd.grad(r.value, a)
    v = rng.normal(size=8)
    v -= v.mean()  # keeps the mass
    h = 1e-6
    up = sliced_wasserstein(x, y, a=a0 + h * v, n_projections=6).value
    dn = sliced_wasserstein(x, y, a=a0 - h * v, n_projections=6).value
    assert_allclose(float(g @ torch.tensor(v)), (up - dn) / (2 * h), rtol=1e-5)


def test_identical_inputs_give_zero_and_finite_gradient(rng):
    x = torch.tensor(rng.normal(size=(10, 3)), requires_grad=True)
    r = sliced_wasserstein(x, x.detach().clone())
    r.value.backward()
    assert float(r.value.detach()) == 0.0 and r.std_error == 0.0
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(p=0.5), "p must be >= 1"),
        (dict(n_projections=0), "n_projections must be an integer >= 1"),
        (dict(n_projections=2.5), "n_projections must be an integer >= 1"),
        (dict(seed=-1), "seed must be a non-negative integer"),
        (dict(seed="a"), "seed must be"),
        (dict(projections=np.ones((2, 4))), r"projections must have shape \(d, L\)"),
        (dict(projections=np.full((3, 2), np.nan)), "projections must be finite"),
        (dict(a=-np.ones(5)), "a must be non-negative"),
        (dict(a=np.ones(5) / 5, b=np.ones(4)), "same total mass"),
        (dict(b=np.ones(3)), "b must be a 1-D weight vector of length 4"),
    ],
)
def test_bad_input_raises_clearly(rng, kwargs, match):
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match=match):
        sliced_wasserstein(x, y, **kwargs)


def test_bad_points_raise(rng):
    with pytest.raises(ValueError, match="same dimension"):
        sliced_wasserstein(rng.normal(size=(5, 3)), rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match="finite"):
        sliced_wasserstein(np.full((5, 2), np.nan), rng.normal(size=(5, 2)))
