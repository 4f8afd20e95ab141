"""Exact OT (`emd`, `exact_ot`, `wasserstein`) against independent references.

References: POT's ``ot.emd2``, SciPy's ``linear_sum_assignment``, an LP solved
by ``scipy.optimize.linprog`` (HiGHS dual simplex) for the primal and the dual
value, and costs built here in NumPy (never by otgen). Properties (Hypothesis):
symmetry, permutation and translation invariance, homogeneity, triangle
inequality, marginals of the plan and the dual certificate for every solver.
"""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from otgen import emd, exact_ot, wasserstein
from tests.conftest import TOL
from tests.ot.lp_reference import transport_lp

ot = pytest.importorskip("ot")

F64 = TOL[torch.float64]
# The certificate f_i + g_j <= C_ij holds up to rounding in the potentials,
# which are sums of O(n + m) costs along the spanning tree of the plan.
CERT_RTOL = 1e-10
# POT's own cap must never stop it early in a reference computation.
POT_ITER = 10**9
SOLVERS_2D = ("network_simplex", "assignment")
P_VALUES = (1.0, 1.5, 2.0, 3.0)


def weights(rng, n, zeros=False):
    w = rng.random(n) + 0.05
    if zeros and n > 1:
        w[rng.random(n) < 0.3] = 0.0
        if w.sum() == 0:
            w[rng.integers(n)] = 1.0
    return w / w.sum()


def np_cost(x, y, p=2.0):
    """||x_i - y_j||_2^p in float64, by SciPy (independent of otgen)."""
    x, y = np.atleast_2d(x.T).T, np.atleast_2d(y.T).T
    return cdist(x, y, "euclidean") ** p


def check_certificate(res, a, b, C):
    """Primal feasibility, dual feasibility, zero gap and a basic plan."""
    n, m = C.shape
    P = np.asarray(res.plan.dense(), dtype=np.float64)
    f, g = np.asarray(res.f, np.float64), np.asarray(res.g, np.float64)
    value = float(res.value)
    scale = np.abs(C).max() + 1.0
    assert np.isfinite(f).all() and np.isfinite(g).all()
    assert (P >= 0).all()
    assert_allclose(P.sum(1), a, rtol=1e-12, atol=1e-15)
    assert_allclose(P.sum(0), b, rtol=1e-12, atol=1e-15)
    assert res.plan.nnz <= n + m - 1
    assert_allclose((P * C).sum(), value, rtol=1e-12, atol=1e-15 * scale)
    assert (f[:, None] + g[None, :] - C).max() <= CERT_RTOL * scale
    assert_allclose(a @ f + b @ g, value, rtol=1e-9, atol=1e-12 * scale)
    assert res.duality_gap <= 1e-9 * scale
    if res.max_dual_violation is not None:
        assert res.max_dual_violation <= CERT_RTOL * scale
    assert res.converged


def lp_reference(a, b, C):
    """Primal and dual optimum of the transport LP by HiGHS (tiny problems)."""
    return transport_lp(a, b, C)


# --------------------------------------------------------------- references


@pytest.mark.parametrize("n,m", [(1, 1), (1, 5), (6, 1), (20, 20), (37, 23)])
@pytest.mark.parametrize("d", [2, 5])
def test_emd_matches_pot(n, m, d):
    rng = np.random.default_rng(n * 100 + m + d)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) + 1
    a, b = weights(rng, n), weights(rng, m)
    C = np_cost(x, y)
    ref = ot.emd2(a, b, C, numItermax=POT_ITER)
    res = emd(a, b, C)
    assert isinstance(res.value, float)
    assert_allclose(res.value, ref, **F64)
    assert res.solver == "network_simplex"
    check_certificate(res, a, b, C)


@pytest.mark.parametrize(
    "cost,kw,p,metric",
    [
        ("sqeuclidean", {}, 2.0, "euclidean"),
        ("euclidean", {}, 1.0, "euclidean"),
        ("minkowski", dict(p=1.5, q=1.0), 1.5, "cityblock"),
        ("minkowski", dict(p=3.0, q=2.0), 3.0, "euclidean"),
        ("minkowski", dict(p=1.0, q=np.inf), 1.0, "chebyshev"),
    ],
)
def test_exact_ot_matches_pot_for_each_cost(cost, kw, p, metric):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(25, 3)) * 2
    a, b = weights(rng, 30), weights(rng, 25)
    C = cdist(x, y, metric) ** p
    res = exact_ot(x, y, a, b, cost=cost, **kw)
    assert_allclose(res.value, ot.emd2(a, b, C, numItermax=POT_ITER), **F64)
    check_certificate(res, a, b, C)


@given(n=st.integers(1, 9), seed=st.integers(0, 2**32 - 1), d=st.sampled_from([1, 3]))
@settings(max_examples=40, deadline=None)
def test_uniform_square_matches_linear_sum_assignment(n, seed, d):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    C = np_cost(x, y)
    i, j = linear_sum_assignment(C)
    ref = C[i, j].mean()
    for solver in ("auto", "network_simplex", "assignment"):
        res = emd(None, None, C, solver=solver)
        assert_allclose(res.value, ref, **F64)
    assert_allclose(exact_ot(x, y).value, ref, **F64)
    assert_allclose(wasserstein(x, y, p=2) ** 2, ref, **F64)


@given(
    n=st.integers(1, 5),
    m=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
    zeros=st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_primal_and_dual_value_match_linprog(n, m, seed, zeros):
    rng = np.random.default_rng(seed)
    C = rng.normal(size=(n, m))  # any sign
    a, b = weights(rng, n, zeros), weights(rng, m, zeros)
    primal, dual = lp_reference(a, b, C)
    res = emd(a, b, C)
    assert_allclose(res.value, primal, **F64)
    assert_allclose(a @ res.f + b @ res.g, dual, **F64)
    check_certificate(res, a, b, C)


def test_linprog_on_points_every_p():
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(4, 2))
    a, b = weights(rng, 5), weights(rng, 4)
    for p in P_VALUES:
        primal, dual = lp_reference(a, b, np_cost(x, y, p))
        assert_allclose(wasserstein(x, y, p, a, b), primal ** (1 / p), **F64)
        res = exact_ot(x, y, a, b, cost="minkowski", p=p, q=2)
        assert_allclose(a @ res.f + b @ res.g, dual, **F64)


def test_total_mass_other_than_one():
    # Balanced OT is homogeneous in the common mass: 3 a, 3 b gives 3 x value.
    rng = np.random.default_rng(5)
    C = rng.random((6, 4))
    a, b = weights(rng, 6), weights(rng, 4)
    ref = ot.emd2(a, b, C, numItermax=POT_ITER)
    res = emd(3 * a, 3 * b, C)
    assert_allclose(res.value, 3 * ref, **F64)
    check_certificate(res, 3 * a, 3 * b, C)
    C5 = C[:5, :4] @ rng.random((4, 5))
    i, j = linear_sum_assignment(C5)
    res = emd(np.full(5, 2.0), np.full(5, 2.0), C5, solver="assignment")
    assert_allclose(res.value, 10 * C5[i, j].mean(), **F64)
    check_certificate(res, np.full(5, 2.0), np.full(5, 2.0), C5)


def test_negative_costs_single_pair_after_zero_weights():
    # POT's C++ simplex called such problems infeasible (found by the linprog
    # comparison above): a 1 x 1 problem, given or left by zero weights.
    res = emd(None, None, np.array([[-1.5]]))
    assert res.value == -1.5 and res.converged
    check_certificate(res, np.ones(1), np.ones(1), np.array([[-1.5]]))
    C = np.array([[2.0], [-2.5]])
    res = emd([0.0, 1.0], [1.0], C)
    assert_allclose(res.value, -2.5, **F64)
    check_certificate(res, np.array([0.0, 1.0]), np.ones(1), C)
    C = -np.random.default_rng(1).random((4, 3)) - 10
    a, b = np.array([0.0, 0.5, 0.0, 0.5]), np.array([0.0, 1.0, 0.0])
    primal, _ = lp_reference(a, b, C)
    assert_allclose(emd(a, b, C).value, primal, **F64)


# --------------------------------------------------- certificate, all solvers


@given(
    n=st.integers(1, 8),
    m=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
    p=st.sampled_from(P_VALUES),
    zeros=st.booleans(),
    d=st.sampled_from([1, 2]),
)
@settings(max_examples=60, deadline=None)
def test_certificate_network_simplex_and_sorted_1d(n, m, seed, p, zeros, d):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    if d == 1 and n > 1:
        x[-1] = x[0]  # a tie on the line
    a, b = weights(rng, n, zeros), weights(rng, m, zeros)
    C = np_cost(x, y, p)
    ref = ot.emd2(a, b, C, numItermax=POT_ITER)
    solvers = ["network_simplex"] + (["sorted_1d"] if d == 1 else [])
    for solver in solvers:
        res = exact_ot(x, y, a, b, cost="minkowski", p=p, q=2, solver=solver)
        assert res.solver == solver
        assert_allclose(res.value, ref, **F64)
        check_certificate(res, a, b, C)
    auto = exact_ot(x, y, a, b, cost="minkowski", p=p, q=2)
    assert auto.solver == solvers[-1]


@given(n=st.integers(1, 9), seed=st.integers(0, 2**32 - 1), p=st.sampled_from(P_VALUES))
@settings(max_examples=40, deadline=None)
def test_certificate_assignment(n, seed, p):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    C = np_cost(x, y, p)
    res = exact_ot(x, y, cost="minkowski", p=p, solver="assignment")
    assert res.solver == "assignment"
    check_certificate(res, np.full(n, 1 / n), np.full(n, 1 / n), C)
    i, j = linear_sum_assignment(C)
    assert_allclose(res.value, C[i, j].mean(), **F64)


def test_certificate_on_integer_costs_with_many_ties():
    # Degenerate problems: many optimal plans and non-unique potentials.
    rng = np.random.default_rng(2)
    C = rng.integers(0, 3, size=(12, 12)).astype(float)
    u = np.full(12, 1 / 12)
    for solver in SOLVERS_2D:
        res = emd(u, u, C, solver=solver)
        check_certificate(res, u, u, C)
        i, j = linear_sum_assignment(C)
        assert_allclose(res.value, C[i, j].mean(), **F64)


# --------------------------------------------------------------- properties

points = dict(
    n=st.integers(1, 7),
    m=st.integers(1, 7),
    seed=st.integers(0, 2**32 - 1),
    d=st.sampled_from([1, 2]),
    p=st.sampled_from(P_VALUES),
)


def sample(n, m, seed, d):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = rng.normal(size=(m, d)) * 1.5 + 1
    return rng, x, y, weights(rng, n, True), weights(rng, m, True)


def close(u, v, scale=1.0):
    assert_allclose(u, v, rtol=1e-9, atol=1e-12 * scale)


@given(**points)
@settings(max_examples=40, deadline=None)
def test_symmetry(n, m, seed, d, p):
    _, x, y, a, b = sample(n, m, seed, d)
    close(wasserstein(x, y, p, a, b), wasserstein(y, x, p, b, a))


@given(**points)
@settings(max_examples=40, deadline=None)
def test_permutation_invariance(n, m, seed, d, p):
    rng, x, y, a, b = sample(n, m, seed, d)
    s, t = rng.permutation(n), rng.permutation(m)
    close(wasserstein(x, y, p, a, b), wasserstein(x[s], y[t], p, a[s], b[t]))


@given(**points, shift=st.floats(-10, 10))
@settings(max_examples=40, deadline=None)
def test_translation_invariance(n, m, seed, d, p, shift):
    rng, x, y, a, b = sample(n, m, seed, d)
    t = shift * rng.normal(size=d)
    # Rounding of x + t is relative to |t|, so the tolerance scales with it.
    got = wasserstein(x + t, y + t, p, a, b)
    assert_allclose(got, wasserstein(x, y, p, a, b), rtol=1e-9, atol=1e-13 * abs(shift))


@given(**points, s=st.floats(1e-3, 1e3))
@settings(max_examples=40, deadline=None)
def test_homogeneity(n, m, seed, d, p, s):
    _, x, y, a, b = sample(n, m, seed, d)
    close(wasserstein(s * x, s * y, p, a, b), s * wasserstein(x, y, p, a, b), s)


@given(
    sizes=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)),
    seed=st.integers(0, 2**32 - 1),
    d=st.sampled_from([1, 2]),
    p=st.sampled_from([1.0, 2.0]),
)
@settings(max_examples=40, deadline=None)
def test_triangle_inequality(sizes, seed, d, p):
    rng = np.random.default_rng(seed)
    pts = [rng.normal(size=(k, d)) * rng.uniform(0.2, 3) for k in sizes]
    w = [weights(rng, k, True) for k in sizes]
    dist = {
        (i, j): wasserstein(pts[i], pts[j], p, w[i], w[j])
        for i in range(3)
        for j in range(3)
        if i < j
    }
    assert dist[0, 2] <= dist[0, 1] + dist[1, 2] + 1e-12
    assert dist[0, 1] <= dist[0, 2] + dist[1, 2] + 1e-12
    assert dist[1, 2] <= dist[0, 1] + dist[0, 2] + 1e-12


@given(**points)
@settings(max_examples=30, deadline=None)
def test_identity_gives_zero(n, m, seed, d, p):
    _, x, _, a, _ = sample(n, m, seed, d)
    assert wasserstein(x, x, p, a, a) <= 1e-12


def test_wasserstein_is_pth_root_of_value():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(15, 2)), rng.normal(size=(11, 2)) + 2
    a, b = weights(rng, 15), weights(rng, 11)
    for p in P_VALUES:
        val = ot.emd2(a, b, np_cost(x, y, p), numItermax=POT_ITER)
        assert_allclose(wasserstein(x, y, p, a, b), val ** (1 / p), **F64)
        res = exact_ot(x, y, a, b, cost="minkowski", p=p, q=2)
        assert_allclose(res.value, val, **F64)
        assert "W_" in res.value_description


# ------------------------------------------------------------ input/output


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 3])
def test_torch_in_torch_out_same_dtype(dtype, d):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(9, d)), rng.normal(size=(7, d))
    a, b = weights(rng, 9), weights(rng, 7)
    tx, ty, ta, tb = (torch.tensor(v, dtype=dtype) for v in (x, y, a, b))
    res = exact_ot(tx, ty, ta, tb)
    for t in (res.value, res.f, res.g, res.plan.values, res.plan.dense()):
        assert isinstance(t, torch.Tensor) and t.dtype == dtype
    assert res.plan.rows.dtype == torch.int64
    w = wasserstein(tx, ty, 2, ta, tb)
    assert isinstance(w, torch.Tensor) and w.dtype == dtype and w.ndim == 0
    ref = ot.emd2(a, b, np_cost(x, y), numItermax=POT_ITER)
    tol = TOL[dtype]
    assert_allclose(float(res.value), ref, **tol)
    assert_allclose(float(w) ** 2, ref, **tol)
    C = torch.tensor(np_cost(x, y), dtype=dtype)
    r2 = emd(ta, tb, C)
    assert r2.value.dtype == dtype and r2.f.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_in_numpy_out(dtype):
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(8, 2)).astype(dtype), rng.normal(size=(8, 2)).astype(dtype)
    res = exact_ot(x, y)
    assert isinstance(res.value, float)
    for v in (res.f, res.g, res.plan.values, res.plan.dense()):
        assert isinstance(v, np.ndarray) and v.dtype == dtype
    assert isinstance(wasserstein(x, y), float)
    assert isinstance(wasserstein(x[:, 0], y[:, 0], p=1), float)
    assert isinstance(emd(None, None, np_cost(x, y)).value, float)


def test_lists_and_integer_input():
    res = exact_ot([[0], [1]], [[2], [4]], cost="euclidean")
    assert_allclose(res.value, 2.5, **F64)
    assert_allclose(wasserstein([0, 1, 2], [1, 2, 3], p=1), 1.0, **F64)


def test_float32_far_from_origin_has_no_cancellation():
    # Spread 1 around 1e4: the naive |x|^2 + |y|^2 - 2<x, y> in float32 loses
    # every digit (|x|^2 ~ 1e8, float32 eps ~ 1e-7 -> errors ~ 10).
    rng = np.random.default_rng(9)
    x = (1e4 + rng.normal(size=(40, 3))).astype(np.float32)
    y = (1e4 + 0.5 + rng.normal(size=(40, 3))).astype(np.float32)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    ref = ot.emd2(
        np.full(40, 1 / 40), np.full(40, 1 / 40), np_cost(x64, y64), numItermax=POT_ITER
    )
    got = exact_ot(x, y).value
    # float32 costs: each C_ij carries a relative error of ~6e-8.
    assert_allclose(got, ref, **TOL[torch.float32])
    got_t = exact_ot(torch.from_numpy(x), torch.from_numpy(y)).value
    assert got_t.dtype == torch.float32
    assert_allclose(float(got_t), ref, **TOL[torch.float32])
    assert_allclose(wasserstein(x, y, p=1), wasserstein(x64, y64, p=1), rtol=1e-5)


# ------------------------------------------------------------ iteration cap


def test_max_iter_one_warns_and_reports_not_converged():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + 1
    with pytest.warns(UserWarning, match="max_iter"):
        res = exact_ot(x, y, weights(rng, 40), weights(rng, 40), max_iter=1)
    assert res.converged is False
    with pytest.warns(UserWarning, match="max_iter"):
        res = exact_ot(x, y, solver="assignment", max_iter=1)
    assert res.converged is False
    with pytest.warns(UserWarning, match="max_iter"):
        res = emd(None, None, np_cost(x, y), max_iter=1)
    assert res.converged is False


def test_default_cap_never_stops_early():
    # POT's default numItermax (1e5) stops early on this size; otgen must not.
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(400, 2)), rng.normal(size=(400, 2)) * 1.5 + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = exact_ot(x, y)
    assert res.converged
    i, j = linear_sum_assignment(np_cost(x, y))
    assert_allclose(res.value, np_cost(x, y)[i, j].mean(), **F64)


def test_enough_iterations_converge():
    rng = np.random.default_rng(13)
    C = rng.random((10, 12))
    a, b = weights(rng, 10), weights(rng, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = emd(a, b, C, max_iter=10**6)
    assert res.converged
    assert_allclose(res.value, ot.emd2(a, b, C, numItermax=POT_ITER), **F64)


def test_result_describes_its_value():
    x = np.array([[0.0, 0.0], [1.0, 0.0]])
    res = exact_ot(x, x + [0.0, 2.0])
    assert res.value == 4.0
    assert "W_2^2" in res.value_description
    assert "W_1" in exact_ot(x, x, cost="euclidean").value_description
    assert "sqeuclidean" in repr(res) or "W_2" in repr(res)


@pytest.mark.gpu
def test_cuda_tensors_come_back_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    rng = np.random.default_rng(14)
    x = torch.tensor(rng.normal(size=(20, 2)), device="cuda")
    y = torch.tensor(rng.normal(size=(15, 2)), device="cuda", requires_grad=True)
    res = exact_ot(x, y)
    assert res.value.device.type == "cuda" and res.f.device.type == "cuda"
    res.value.backward()
    assert y.grad.device.type == "cuda"
    ref = exact_ot(x.cpu(), y.detach().cpu()).value
    assert_allclose(float(res.value), float(ref), **F64)
