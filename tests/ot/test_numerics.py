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
from scipy.stats import wasserstein_distance

from otgen.ot import onedim

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
