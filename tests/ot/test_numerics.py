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

import otgen
from otgen.ot import onedim
from otgen.ot.gaussian import gaussian_w2
from otgen.ot.kernels import wae_imq_scale

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


# -- MMD: kernels that underflow (class 4), extreme coordinates (6) -----------


def naive_mmd2_unbiased(x, y, s):
    """Brute-force unbiased MMD^2 with the Gaussian kernel exp(-r^2 / 2 s^2)."""

    def k(u, v):
        return np.exp(-sqdist(u, v) / (2 * s * s))

    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * k(x, y).mean()
    )


@pytest.mark.parametrize("s", [1e-160, 1e154, 1e200])
@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_mmd_test_at_extreme_coordinates(s, lib):
    # Before: stat = nan and p = 0.0099, rejecting H0 on a NaN.
    x, y = cloud(40, 2, 6), cloud(45, 2, 7, shift=0.4)
    z = np.concatenate([x, y])
    i, j = np.triu_indices(len(z), 1)
    d2 = np.sort(((z[i] - z[j]) ** 2).sum(-1))
    med = np.sqrt(d2[(len(d2) - 1) // 2])  # the median heuristic (lower median)
    ref = naive_mmd2_unbiased(x, y, med)
    xs, ys = as_lib([s * x, s * y], lib)
    got = otgen.mmd_test(xs, ys, n_permutations=99, seed=1)
    assert math.isfinite(got.statistic)
    assert_allclose(got.statistic, ref, rtol=1e-9)
    assert got.p_value == otgen.mmd_test(x, y, n_permutations=99, seed=1).p_value
    v = otgen.mmd(xs, ys, kernel="gaussian", scale=s * med)
    assert_allclose(value_of(v), ref, rtol=1e-9)


def test_mmd_kernel_underflow_gives_zero_not_nan():
    # Every kernel value between distinct points underflows to 0: the
    # statistics are exact (0 unbiased, 1/n + 1/m biased), the test never rejects.
    x, y = cloud(30, 2, 8), cloud(30, 2, 9, shift=3.0)
    for s in (1.0, 1e-160, 1e160):
        u, v, scale = s * x, s * y, s * 1e-3
        assert otgen.mmd(u, v, kernel="gaussian", scale=scale) == pytest.approx(
            0.0, abs=1e-15
        )
        b = otgen.mmd(u, v, kernel="gaussian", scale=scale, estimator="biased")
        assert_allclose(b, 1 / 30 + 1 / 30, rtol=1e-12)
        res = otgen.mmd_test(u, v, kernel="gaussian", scale=scale, n_permutations=19)
        assert math.isfinite(res.statistic) and res.p_value == 1.0


KERNELS = [
    ("gaussian", 1.0, 1),
    ("laplacian", 1.5, 1),
    ("imq", 2.0, 2),
    ("energy", 1.0, 1),
]


@settings(max_examples=8, deadline=None)
@given(k=SCALE)
@example(k="tiny")
@example(k="huge")
@pytest.mark.parametrize("lib", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("estimator", ["unbiased", "biased"])
def test_mmd_is_invariant_when_the_kernel_scales_with_the_data(
    k, lib, dtype, estimator
):
    s = scale_of(k, dtype, 1)
    x, y = cloud(25, 3, 27, dtype=dtype), cloud(20, 3, 28, shift=0.3, dtype=dtype)
    xs, ys = (s * x).astype(dtype), (s * y).astype(dtype)
    for name, scale, power in KERNELS:
        if power == 2 and not 1e-150 < s < 1e150:
            continue  # IMQ's scale, a squared length, is beyond float64
        ref = value_of(
            otgen.mmd(
                *as_lib([x, y], lib), kernel=name, scale=scale, estimator=estimator
            )
        )
        got = value_of(
            otgen.mmd(
                *as_lib([xs, ys], lib),
                kernel=name,
                scale=scale * s**power,
                estimator=estimator,
            )
        )
        # float32: kernel values carry 6e-8 relative rounding (the data's scaled
        # copies round differently); MMD^2 is a difference of sums of order 1.
        tol = (
            dict(rtol=1e-9, atol=1e-14)
            if dtype == np.float64
            else dict(rtol=1e-4, atol=1e-6)
        )
        assert_allclose(got, ref, **tol)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(scale=1e-300), "scale must be at least 1e-150"),
        (dict(kernel="gaussian", scale=1e-300), "scale must be at least 1e-150"),
        (dict(squared="no"), "squared must be True or False"),
        (dict(squared=1), "squared must be True or False"),
    ],
)
def test_mmd_errors_name_the_parameter_and_a_fix(kw, match):
    # Before: ZeroDivisionError, or "no" taken as True.
    x, y = cloud(12, 2, 20), cloud(12, 2, 21)
    with pytest.raises(ValueError, match=match) as info:
        otgen.mmd(x, y, **kw)
    assert "got" in str(info.value) and "pass" in str(info.value)


def test_mmd_accepts_numpy_integers():
    # Before: "n_permutations must be a positive integer (got np.int32(30))".
    x, y = cloud(15, 2, 22), cloud(15, 2, 23)
    t1 = otgen.mmd_test(x, y, n_permutations=np.int32(30), seed=np.uint8(3))
    assert t1.p_value == otgen.mmd_test(x, y, n_permutations=30, seed=3).p_value
    assert wae_imq_scale(np.int64(8)) == wae_imq_scale(8)
