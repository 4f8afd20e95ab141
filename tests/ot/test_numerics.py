"""No silent wrong numbers at any scale (issue 15).

Each test pins a class of failure found by probing otgen with extreme inputs:
float32 Sinkhorn at eps far from the cost scale (class 3), kernels that
underflow (4), identical inputs (5), coordinates near the ends of the float
range (6), unbounded annealing schedules (7) and unclear errors (12); and the
scale-equivariance of every solver in this part of otgen, W(s x, s y) = s W(x,
y) for s from 1e-12 to 1e12 plus the edges of each dtype's range.

References are independent of otgen: POT (exact and log-domain entropic OT in
float64), SciPy (matrix square roots, the 1-D Wasserstein distance), closed
forms and brute-force NumPy sums.
"""

import importlib
import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.linalg import sqrtm
from scipy.stats import wasserstein_distance

from otgen.ot import onedim
from otgen.ot.gaussian import gaussian_w2

# The module (otgen.ot.sinkhorn is also the name of the function).
sk = importlib.import_module("otgen.ot.sinkhorn")


def cloud(n, d, seed, shift=0.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) + shift).astype(dtype)


def sqdist(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def entropic_reference(C, eps):
    """OT_eps = <P, C> + eps KL(P | a x b) from POT's log-domain plan (float64)."""
    ot = pytest.importorskip("ot")
    n, m = C.shape
    a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    P = ot.bregman.sinkhorn_log(a, b, C, reg=eps, numItermax=200_000, stopThr=1e-13)
    ab = a[:, None] * b[None, :]
    return float((P * C).sum() + eps * (P * np.log(P / ab) - P + ab).sum())


def large_eps_reference(C, eps):
    r"""<a x b, C> - ||C~||^2 / (2 eps), C~ the doubly centred cost: the
    expansion of OT_eps in 1 / eps (Genevay et al. 2019), error O(C^3 / eps^2).
    """
    Ct = C - C.mean(1, keepdims=True) - C.mean(0, keepdims=True) + C.mean()
    return float(C.mean() - (Ct**2).mean() / (2 * eps))


def as_lib(arrays, lib):
    return (
        [torch.from_numpy(np.ascontiguousarray(u)) for u in arrays]
        if lib == "torch"
        else arrays
    )


def value_of(v):
    return float(v.detach()) if isinstance(v, torch.Tensor) else float(v)


# -- scale-equivariance: W(s x, s y) = s W(x, y) ------------------------------

# The edges of each dtype's range where the answer is representable but the
# squares of the coordinates are not (x^2 overflows or underflows): p = 1
# costs and kernels, whose values scale like s. Before, otgen returned nan,
# inf or 0 there.
EDGES = {np.float64: (1e-200, 1e200), np.float32: (1e-25, 1e25)}
# p = 2 (value ~ s^2): edges where s^2 W^2 and the potentials (~ s^2 C) are
# still normal numbers (so are the squares of the coordinates: the p = 1
# edges are those that failed before).
EDGES_SQ = {np.float64: (1e-150, 1e150), np.float32: (1e-17, 1e18)}


def scale_of(k, dtype, p):
    if isinstance(k, int):
        return 10.0**k
    return (EDGES if p == 1 else EDGES_SQ)[dtype][k == "huge"]


SCALE = st.integers(-12, 12)


# -- the 1-D sorted solver (class 6) ------------------------------------------


def test_one_dimensional_overflow_is_an_error_and_the_distance_is_finite():
    # Before: W_2 of coordinates of 1e154 and beyond was inf, W_2^2 silently inf.
    rng = np.random.default_rng(15)
    x, y = rng.normal(size=60), rng.normal(size=70) + 1.0
    w2 = math.sqrt(onedim.sorted_1d_value(x, y, None, None, 2.0))
    for s in (1e155, 1e200, 1e300):  # W_2^2 beyond float64 (1.8e308)
        assert_allclose(
            onedim.sorted_1d_distance(s * x, s * y, None, None, 2.0), s * w2, rtol=1e-14
        )
        with pytest.raises(ValueError, match="overflows float64"):
            onedim.sorted_1d_value(s * x, s * y, None, None, 2.0)
    assert_allclose(
        onedim.sorted_1d_distance(x, y, None, None, 1.0),
        wasserstein_distance(x, y),
        rtol=1e-12,
    )


@settings(max_examples=10, deadline=None)
@given(k=SCALE)
@example(k="tiny")
@example(k="huge")
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_one_dimensional_distance_is_scale_equivariant(k, p):
    s = 10.0**k if isinstance(k, int) else {"tiny": 1e-300, "huge": 1e300}[k]
    rng = np.random.default_rng(26)
    x, y = rng.normal(size=40), 2 * rng.normal(size=30) + 1
    a, b = rng.random(40) + 0.1, rng.random(30) + 0.1
    a, b = a / a.sum(), b / b.sum()
    for wa, wb in ((None, None), (a, b)):
        w1 = onedim.sorted_1d_distance(x, y, wa, wb, p)
        assert_allclose(
            onedim.sorted_1d_distance(s * x, s * y, wa, wb, p), s * w1, rtol=1e-13
        )
    # The full solution (value and potentials) where s^p is representable.
    if abs(math.log10(s)) * p < 300:
        sol1 = onedim.sorted_1d(x, y, a, b, p)
        sols = onedim.sorted_1d(s * x, s * y, a, b, p)
        assert_allclose(sols.value, s**p * sol1.value, rtol=1e-12)
        assert_allclose(
            sols.f, s**p * sol1.f, rtol=1e-10, atol=1e-12 * s**p * abs(sol1.f).max()
        )


# -- Gaussians (classes 5 and 6) ----------------------------------------------


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_gaussian_w2_of_identical_gaussians_is_zero(lib):
    # Before: 128 in float32 for S1 = S2 with covariances of order 1e8.
    rng = np.random.default_rng(10)
    B = rng.normal(size=(4, 4))
    for dtype in (np.float32, np.float64):
        S = (1e8 * (B @ B.T + np.eye(4))).astype(dtype)
        m = (1e4 * rng.normal(size=4)).astype(dtype)
        m1, S1, m2, S2 = as_lib([m, S, m.copy(), S.copy()], lib)
        r = gaussian_w2(m1, S1, m2, S2)
        # float64 inside: the trace formula's rounding is ~1e-15 of tr S.
        trace = float(np.trace(S.astype(np.float64)))
        assert 0 <= value_of(r.value) <= 1e-12 * trace


def bures_reference(m1, S1, m2, S2):
    """W_2^2 by SciPy's matrix square roots, in float64."""
    m1, S1, m2, S2 = (np.asarray(v, np.float64) for v in (m1, S1, m2, S2))
    r1 = sqrtm(S1)
    cross = np.trace(sqrtm(r1 @ S2 @ r1)).real
    return float(((m1 - m2) ** 2).sum() + np.trace(S1) + np.trace(S2) - 2 * cross)


@settings(max_examples=10, deadline=None)
@given(k=SCALE)
@example(k=12)
@example(k=-12)
@example(k="tiny")
@example(k="huge")
@pytest.mark.parametrize("lib", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gaussian_w2_is_scale_equivariant(k, lib, dtype):
    # Before: float32 gave nan from s = 1e12 (products of covariances overflow)
    # and a wrong value at 1e-12; float64 gave nan at 1e100.
    s = (
        10.0**k
        if isinstance(k, int)
        else {np.float64: (1e-150, 1e150), np.float32: (1e-15, 1e15)}[dtype][
            k == "huge"
        ]
    )
    rng = np.random.default_rng(29)
    B1, B2 = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    S1, S2 = B1 @ B1.T + 0.1 * np.eye(3), B2 @ B2.T + 0.1 * np.eye(3)
    m1, m2 = rng.normal(size=3), rng.normal(size=3)
    ref = bures_reference(m1, S1, m2, S2)
    args = [
        (s * m1).astype(dtype),
        (s * s * S1).astype(dtype),
        (s * m2).astype(dtype),
        (s * s * S2).astype(dtype),
    ]
    r = gaussian_w2(*as_lib(args, lib))
    # float32: the inputs' rounding (6e-8) through the square roots.
    rtol = 1e-9 if dtype == np.float64 else 2e-5
    assert_allclose(value_of(r.value) / (s * s), ref, rtol=rtol)
    assert_allclose(value_of(r.distance) / s, math.sqrt(ref), rtol=rtol)
