"""Exact OT on the line (sorted closed form) against SciPy, POT and brute force.

The 1-D solver handles every p >= 1, weights (zeros included), n != m, ties,
and float32 input accumulated in float64 (exact at n = 1e6; 1e7 under slow).
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import wasserstein_distance

from otgen import exact_ot, wasserstein
from tests.conftest import TOL

ot = pytest.importorskip("ot")

F64 = TOL[torch.float64]
POT_ITER = 10**9
P_VALUES = (1.0, 1.5, 2.0, 3.0)


def weights(rng, n, zeros=False):
    w = rng.random(n) + 0.05
    if zeros and n > 1:
        w[rng.random(n) < 0.3] = 0.0
        if w.sum() == 0:
            w[rng.integers(n)] = 1.0
    return w / w.sum()


def line_cost(x, y, p):
    return np.abs(x[:, None] - y[None, :]) ** p


def quantile_integral(x, y, a, b, p):
    """W_p^p = int_0^1 |F^-1(t) - G^-1(t)|^p dt, evaluated on the merged grid."""
    ix, iy = np.argsort(x), np.argsort(y)
    ca, cb = np.cumsum(a[ix]), np.cumsum(b[iy])
    cb = cb * (ca[-1] / cb[-1])
    t = np.unique(np.r_[ca, cb])
    lo = np.r_[0.0, t[:-1]]
    mid = 0.5 * (lo + t)  # inside each interval both quantiles are constant
    qx = x[ix][np.minimum(np.searchsorted(ca, mid), len(x) - 1)]
    qy = y[iy][np.minimum(np.searchsorted(cb, mid), len(y) - 1)]
    return float(np.sum((t - lo) * np.abs(qx - qy) ** p))


@given(
    n=st.integers(1, 30),
    m=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
    zeros=st.booleans(),
    ties=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_w1_matches_scipy(n, m, seed, zeros, ties):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=n), rng.normal(size=m) * 2 + 0.5
    if ties:
        x, y = np.round(x), np.round(y)  # many equal points, within and across
    a, b = weights(rng, n, zeros), weights(rng, m, zeros)
    ref = wasserstein_distance(x, y, a, b)
    assert_allclose(wasserstein(x, y, p=1, a=a, b=b), ref, **F64)
    res = exact_ot(x, y, a, b, cost="euclidean")
    assert res.solver == "sorted_1d"
    assert_allclose(res.value, ref, **F64)
    if n == m:
        ref_u = wasserstein_distance(x, y)
        assert_allclose(wasserstein(x, y, p=1), ref_u, **F64)


@given(
    n=st.integers(1, 12),
    m=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    p=st.sampled_from(P_VALUES),
    zeros=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_every_p_matches_pot_and_quantile_integral(n, m, seed, p, zeros):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=n), rng.normal(size=m) + 1
    a, b = weights(rng, n, zeros), weights(rng, m, zeros)
    ref = ot.emd2(a, b, line_cost(x, y, p), numItermax=POT_ITER)
    assert_allclose(quantile_integral(x, y, a, b, p), ref, **F64)
    res = exact_ot(x, y, a, b, cost="minkowski", p=p)
    assert_allclose(res.value, ref, **F64)
    assert_allclose(wasserstein(x, y, p, a, b) ** p, ref, **F64)
    if n == m:
        u = np.full(n, 1 / n)
        ref_u = ot.emd2(u, u, line_cost(x, y, p), numItermax=POT_ITER)
        assert_allclose(wasserstein(x, y, p) ** p, ref_u, **F64)


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_matches_pot_wasserstein_1d_weighted_n_ne_m(p):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=5000), rng.normal(size=3001) * 1.5 + 1
    a, b = weights(rng, 5000, True), weights(rng, 3001, True)
    ref = ot.wasserstein_1d(x, y, a, b, p=p)  # W_p^p in POT's convention
    assert_allclose(exact_ot(x, y, a, b, cost="minkowski", p=p).value, ref, **F64)
    assert_allclose(wasserstein(x, y, p, a, b) ** p, ref, **F64)


@given(
    n=st.integers(1, 15),
    m=st.integers(1, 15),
    seed=st.integers(0, 2**32 - 1),
    p=st.sampled_from(P_VALUES),
)
@settings(max_examples=40, deadline=None)
def test_plan_is_monotone_with_exact_marginals(n, m, seed, p):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=n), rng.normal(size=m)
    a, b = weights(rng, n, True), weights(rng, m, True)
    res = exact_ot(x, y, a, b, cost="minkowski", p=p)
    r, c = res.plan.marginals()
    assert_allclose(r, a, rtol=1e-12, atol=1e-15)
    assert_allclose(c, b, rtol=1e-12, atol=1e-15)
    assert res.plan.nnz <= n + m - 1
    # No two transported pairs cross: x_i < x_k implies y_j <= y_l.
    xi, yj = x[res.plan.rows], y[res.plan.cols]
    cross = (xi[:, None] < xi[None, :]) & (yj[:, None] > yj[None, :])
    assert not cross.any()
    C = line_cost(x, y, p)
    assert_allclose((res.plan.dense() * C).sum(), res.value, rtol=1e-12, atol=1e-15)


def test_certificate_at_moderate_n_with_zero_weights():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=700), rng.normal(size=900) * 0.3
    a, b = weights(rng, 700, True), weights(rng, 900, True)
    for p in P_VALUES:
        res = exact_ot(x, y, a, b, cost="minkowski", p=p)
        C = line_cost(x, y, p)
        assert (res.f[:, None] + res.g[None, :] - C).max() <= 1e-10 * C.max()
        assert_allclose(a @ res.f + b @ res.g, res.value, rtol=1e-9, atol=1e-12)
        assert res.max_dual_violation is not None
        assert res.max_dual_violation <= 1e-10 * C.max()


def test_single_points_and_identical_samples():
    assert_allclose(wasserstein([3.0], [-1.0], p=3), 4.0, **F64)
    assert_allclose(wasserstein([3.0], [-1.0, 1.0], p=2), np.sqrt(10.0), **F64)
    x = np.random.default_rng(3).normal(size=50)
    assert wasserstein(x, x[::-1], p=1) == 0.0
    assert exact_ot(x, x, cost="euclidean").value == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_in_torch_out(dtype):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=100), rng.normal(size=60) + 1
    tx, ty = torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype)
    w = wasserstein(tx, ty, p=1)
    assert isinstance(w, torch.Tensor) and w.dtype == dtype
    ref = wasserstein_distance(tx.double().numpy(), ty.double().numpy())
    # Accumulated in float64: exact up to the final rounding to the output dtype.
    one_rounding = dict(rtol=max(float(torch.finfo(dtype).eps), 1e-12), atol=0.0)
    assert_allclose(float(w), ref, **one_rounding)
    res = exact_ot(tx, ty, cost="euclidean")
    assert res.value.dtype == dtype and res.f.dtype == dtype
    assert res.plan.values.dtype == dtype
    assert_allclose(float(res.value), ref, **TOL[dtype])
    w2 = wasserstein(tx[:60], ty, p=2)  # n == m uniform: the two-sorts fast path
    assert w2.dtype == dtype
    ref2 = np.mean((np.sort(x[:60]) - np.sort(y)) ** 2) ** 0.5
    assert_allclose(float(w2), ref2, **one_rounding)


def large_pair(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n).astype(np.float32)
    y = (rng.normal(size=n) * 1.5 + 1).astype(np.float32)
    return x, y


def check_float32_exact(n, seed):
    x, y = large_pair(n, seed)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    sx, sy = np.sort(x64), np.sort(y64)  # reference on the same data, in float64
    for p in (1.0, 2.0):
        ref = np.mean(np.abs(sx - sy) ** p)
        assert_allclose(wasserstein(x, y, p) ** p, ref, rtol=1e-9)
        assert_allclose(
            float(wasserstein(torch.from_numpy(x), torch.from_numpy(y), p)),
            ref ** (1 / p),
            rtol=1e-6,
        )  # float32 output: one rounding
    # Weighted, n != m: float32 weights whose float32 running sum drifts.
    a = np.full(n, 1.0, dtype=np.float32)
    b = np.full(n - 1, 1.0, dtype=np.float32)
    got = wasserstein(x, y[:-1], 1, a / np.float32(n), b / np.float32(n - 1))
    ref = wasserstein_distance(x64, y64[:-1])
    assert_allclose(got, ref, rtol=1e-7)


def test_float32_input_is_exact_at_1e6():
    check_float32_exact(10**6, 5)


@pytest.mark.slow
def test_float32_input_is_exact_at_1e7():
    check_float32_exact(10**7, 6)


def test_zero_weights_at_large_n_in_bounded_memory():
    # Zero-mass points get their potentials on the staircase like the others:
    # no c-transform against all m targets (once O(zeros x m) time and 1024 x m
    # floats per block: here 1e5 x 2e5 pairs, minutes and 1.6 GB).
    import tracemalloc

    rng = np.random.default_rng(7)
    n = 200_000
    x, y = rng.normal(size=n), rng.normal(size=n - 3) + 0.5
    a = rng.random(n)
    a[rng.random(n) < 0.5] = 0.0
    a /= a.sum()
    tracemalloc.start()
    res = exact_ot(x, y, a, None, cost="euclidean")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 150 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert_allclose(res.value, wasserstein_distance(x, y, a), **F64)
    z = np.flatnonzero(a == 0)[:50]
    C = np.abs(x[z, None] - y[None, :])
    # The c-transform is the largest feasible potential; the staircase's may be
    # smaller but must stay feasible (rounding: sums along 4e5 edges).
    assert (res.f[z, None] + res.g[None, :] - C).max() <= 1e-10
    b = np.full(n - 3, 1 / (n - 3))
    assert_allclose(a @ res.f + b @ res.g, res.value, rtol=1e-9)
