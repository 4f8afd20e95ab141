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
import itertools
import math
import warnings

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
from tests.conftest import NATIVE

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


# -- class 3: float32 Sinkhorn at eps far from the data scale -----------------


@pytest.mark.parametrize("backend", ["dense", "chunked", *NATIVE])
@pytest.mark.parametrize("eps, scale", [(1e-8, 1.0), (1e-4, 100.0)])
def test_float32_small_eps_reports_the_plans_marginal_error(backend, eps, scale):
    # Before: converged=True with marginal_error (0, 0) while the plan's
    # marginals were off by up to 4e16, and a value below W_2^2.
    ot = pytest.importorskip("ot")
    x = (scale * cloud(50, 2, 0)).astype(np.float32)
    y = (scale * cloud(50, 2, 1, shift=1.0)).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = otgen.sinkhorn(x, y, eps=eps, backend=backend)
    a = np.full(50, 1 / 50)
    P = r.plan.dense().astype(np.float64)
    err = (np.abs(P.sum(1) - a).sum(), np.abs(P.sum(0) - a).sum())
    # The reported errors are those of the returned plan (its float32 entries
    # carry a relative rounding of 6e-8 each).
    assert_allclose(r.marginal_error, err, rtol=1e-3, atol=1e-6)
    if r.converged:
        assert max(err) <= 1e-3 + 1e-6
        assert r.value >= ot.emd2(a, a, sqdist(x, y)) * (1 - 1e-6)  # OT_eps >= W
    else:
        assert any("did not converge" in str(w.message) for w in caught)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sinkhorn_value_for_eps_far_from_the_cost_scale(dtype):
    # Before: float32 lost 1e-5 of the value at eps = 1e2 C_max, 3e-3 at 1e4
    # and everything from 1e8; float64 returned -3.3 for 0.48 at 1e16 (all
    # "converged").
    x, y = cloud(30, 2, 2, dtype=dtype), cloud(25, 2, 3, shift=0.5, dtype=dtype)
    C = sqdist(x, y)
    # eps = 10^k times the largest cost: POT below 10^4, the large-eps
    # expansion from there (its error, (C / eps)^2, is below 1e-10 of it).
    for k in (-2, 0, 2, 3, 5, 8, 12, 17):
        eps = 10.0**k * C.max()
        ref = entropic_reference(C, eps) if k < 4 else large_eps_reference(C, eps)
        r = otgen.sinkhorn(x, y, eps=eps, tol=1e-7, max_iter=20_000)
        assert r.converged
        # float64: the stopping tolerance; float32: the output's rounding (the
        # loop runs in float64 wherever float32 cannot reach tol).
        rtol = 1e-7 if dtype == np.float64 else 3e-7
        assert_allclose(r.value, ref, rtol=rtol, err_msg=f"eps = 1e{k} C_max")


def test_unbalanced_sinkhorn_refuses_eps_beyond_float64():
    # Before: eps = 1e16 with reach = 1 returned -0.055 as converged.
    x, y = cloud(20, 2, 4), cloud(20, 2, 5)
    with pytest.raises(ValueError, match=r"eps must be at most 1e\+08 times the cost"):
        otgen.sinkhorn(x, y, eps=1e16, reach=1.0)
    r = otgen.sinkhorn(x, y, eps=1e6, reach=1.0)  # inside the range: fine
    assert r.converged and math.isfinite(r.value)


# -- class 5: equal measures, a divergence of exactly 0 -----------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sinkhorn_divergence_of_equal_measures_is_exactly_zero(dtype):
    # Before: -3.5e-6 (float64 probe) and -1.8e-7 (float32) for x and x.copy().
    x = cloud(100, 2, 11, dtype=dtype)
    assert otgen.sinkhorn_divergence(x, x.copy()) == 0.0
    assert otgen.sinkhorn(x, x.copy()).value == otgen.sinkhorn(x, x).value
    a = np.random.default_rng(12).random(100) + 0.1
    a /= a.sum()
    assert otgen.sinkhorn_divergence(x, x.copy(), a, a.copy()) == 0.0
    t = torch.tensor(x, requires_grad=True)
    u = torch.tensor(x.copy(), requires_grad=True)
    s = otgen.sinkhorn_divergence(t, u)
    gt, gu = torch.autograd.grad(s, (t, u))
    assert float(s) == 0.0
    # The minimum of S_eps: zero gradient up to the rounding of the potentials.
    assert float(gt.abs().max()) < 1e-6 and float(gu.abs().max()) < 1e-6


def test_sinkhorn_divergence_is_nonnegative_near_equal_measures():
    x = cloud(80, 2, 13)
    rng = np.random.default_rng(14)
    for y in (x[rng.permutation(80)], x + 1e-9 * rng.normal(size=x.shape)):
        for dtype in (np.float64, np.float32):
            assert otgen.sinkhorn_divergence(x.astype(dtype), y.astype(dtype)) >= 0.0


# -- class 6: Sinkhorn results beyond the dtype's range -----------------------


def test_sinkhorn_overflowing_result_is_an_error():
    x, y = cloud(20, 2, 16), cloud(20, 2, 17, shift=1.0)
    # W_2^2 of coordinates of 1e200 is beyond float64: refused, not nan or inf.
    with pytest.raises(ValueError, match="overflow"):
        otgen.sinkhorn(1e200 * x, 1e200 * y)
    with pytest.raises(ValueError, match="overflow"):
        otgen.sinkhorn(
            (1e20 * x).astype(np.float32), (1e20 * y).astype(np.float32), eps=1e39
        )


# -- class 7: the annealing schedule is bounded -------------------------------


def test_scaling_close_to_one_is_refused_before_any_work():
    # Before: the eps list grew until MemoryError (3 GB in 15 s).
    x, y = cloud(10, 2, 18), cloud(10, 2, 19)
    with pytest.raises(
        ValueError, match=r"scaling=0\.9999999999 would take .* pass scaling <="
    ):
        otgen.sinkhorn(x, y, eps=1e-3, scaling=0.9999999999)
    with pytest.raises(ValueError, match="scaling="):
        otgen.sinkhorn_divergence(x, y, eps=1e-3, scaling=0.9999999999)
    r = otgen.sinkhorn(x, y, eps=1e-2, scaling=0.999)  # within MAX_ANNEALING steps
    assert 1 < len(r.eps_schedule) <= sk.MAX_ANNEALING + 1


# -- Sinkhorn: clear errors and integers (class 12) ---------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda x, y: otgen.sinkhorn(x, y, reach=1e-300),
        lambda x, y: otgen.sinkhorn(x, y, reach=1e300),
        lambda x, y: otgen.sinkhorn_divergence(x, y, reach=1e300),
    ],
)
def test_reach_out_of_range_is_a_clear_error(call):
    # Before: ZeroDivisionError (1e-300) and OverflowError (1e300).
    x, y = cloud(12, 2, 20), cloud(12, 2, 21)
    with pytest.raises(ValueError, match=r"reach must be within \[") as info:
        call(x, y)
    assert "got reach=" in str(info.value) and "pass" in str(info.value)


def test_sinkhorn_accepts_numpy_integers():
    # Before: "max_iter must be an integer >= 1 (got np.int64(5))".
    x, y = cloud(15, 2, 22), cloud(15, 2, 23)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        r = otgen.sinkhorn(x, y, eps=0.1, max_iter=np.int64(5))
        assert r.value == otgen.sinkhorn(x, y, eps=0.1, max_iter=5).value
    vals, cols = otgen.sinkhorn(x, y, eps=0.1).plan.topk(np.int64(2))
    assert vals.shape == cols.shape == (15, 2)


# -- Sinkhorn: scale-equivariance ---------------------------------------------


@settings(max_examples=8, deadline=None)
@given(k=SCALE)
@example(k="tiny")
@example(k="huge")
@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_sinkhorn_is_scale_equivariant(k, lib):
    for dtype, (cost, p) in itertools.product(
        (np.float64, np.float32), (("euclidean", 1), ("sqeuclidean", 2))
    ):
        s = scale_of(k, dtype, p)
        x = cloud(12, 2, 24, dtype=dtype)
        y = cloud(10, 2, 25, shift=0.5, dtype=dtype)
        xs, ys = (s * x).astype(dtype), (s * y).astype(dtype)
        kw = dict(cost=cost, tol=1e-9, max_iter=10_000)
        v1 = value_of(otgen.sinkhorn(*as_lib([x, y], lib), eps=0.3, **kw).value)
        vs = otgen.sinkhorn(*as_lib([xs, ys], lib), eps=0.3 * s**p, **kw).value
        d1 = value_of(otgen.sinkhorn_divergence(*as_lib([x, y], lib), eps=0.3, **kw))
        ds = otgen.sinkhorn_divergence(*as_lib([xs, ys], lib), eps=0.3 * s**p, **kw)
        # float64: both runs stop within tol of the fixed point (their data
        # differ by the rounding of s * x). float32: the rounding of s * x
        # (6e-8) amplified by the solve, and the output's rounding.
        rtol = 1e-8 if dtype == np.float64 else 2e-5
        msg = f"{dtype.__name__}, {cost}, s = {s:g}"
        assert_allclose(value_of(vs) / s**p, v1, rtol=rtol, err_msg=msg)
        assert_allclose(
            value_of(ds) / s**p, d1, rtol=rtol, atol=1e-6 * abs(v1), err_msg=msg
        )
