"""Bures-Wasserstein closed form against its own Monge map, 1-D and commuting
cases, batching, and exact OT between large samples.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from otgen import exact_ot, gaussian_w2, wasserstein
from tests.conftest import TOL

F64 = TOL[torch.float64]


def random_spd(rng, d, rank=None):
    B = rng.normal(size=(d, rank or d))
    return B @ B.T + (0.0 if rank else 0.1) * np.eye(d)


def problem(seed, d):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=d),
        random_spd(rng, d),
        rng.normal(size=d),
        random_spd(rng, d),
    )


def map_cost(m1, S1, m2, A):
    """E|X - T(X)|^2 for X ~ N(m1, S1), T(x) = m2 + A (x - m1): exact, by moments."""
    eye = np.eye(len(m1))
    return float(np.sum((m1 - m2) ** 2) + np.trace((eye - A) @ S1 @ (eye - A).T))


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 6))
@settings(max_examples=40, deadline=None)
def test_value_is_the_cost_of_its_monge_map(seed, d):
    m1, S1, m2, S2 = problem(seed, d)
    r = gaussian_w2(m1, S1, m2, S2)
    A = r.A
    # T pushes N(m1, S1) to N(m2, S2) (A S1 A^T = S2), A is symmetric PSD (the
    # gradient of a convex function: Brenier), and the cost of T is the value.
    assert_allclose(A @ S1 @ A.T, S2, rtol=1e-7, atol=1e-9 * np.abs(S2).max())
    assert_allclose(A, A.T, atol=1e-9 * np.abs(A).max())
    assert np.linalg.eigvalsh(0.5 * (A + A.T)).min() >= -1e-9 * np.abs(A).max()
    assert_allclose(r.value, map_cost(m1, S1, m2, A), rtol=1e-8, atol=1e-10)
    assert_allclose(r.distance, np.sqrt(r.value), **F64)


def test_pushed_samples_match_the_value():
    m1, S1, m2, S2 = problem(1, 3)
    r = gaussian_w2(m1, S1, m2, S2)
    rng = np.random.default_rng(2)
    x = rng.multivariate_normal(m1, S1, size=200_000)
    tx = r.map(x)
    cost = np.sum((x - tx) ** 2, axis=1)
    # Monte Carlo: 5 standard errors of the mean.
    assert abs(cost.mean() - r.value) < 5 * cost.std() / np.sqrt(len(cost))
    assert_allclose(tx.mean(0), m2, atol=5 * np.sqrt(np.diag(S2).max() / len(x)))
    assert_allclose(np.cov(tx.T), S2, atol=0.02 * np.abs(S2).max())


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 5))
@settings(max_examples=30, deadline=None)
def test_symmetry(seed, d):
    m1, S1, m2, S2 = problem(seed, d)
    assert_allclose(
        gaussian_w2(m1, S1, m2, S2).value,
        gaussian_w2(m2, S2, m1, S1).value,
        rtol=1e-8,
        atol=1e-10,
    )


def test_one_dimensional_and_commuting_closed_forms():
    r = gaussian_w2([1.0], [[4.0]], [-2.0], [[0.25]])
    assert_allclose(r.value, 9.0 + (2.0 - 0.5) ** 2, **F64)
    assert_allclose(r.A, [[0.25]], **F64)
    d1, d2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    r = gaussian_w2(np.zeros(3), np.diag(d1), np.ones(3), np.diag(d2))
    assert_allclose(r.value, 3.0 + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2), **F64)
    # Rotating both covariances by the same orthogonal matrix changes nothing.
    Q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    rq = gaussian_w2(
        np.zeros(3), Q @ np.diag(d1) @ Q.T, np.ones(3) @ Q.T, Q @ np.diag(d2) @ Q.T
    )
    assert_allclose(rq.value, r.value, rtol=1e-9)


def test_identical_and_singular_covariances():
    m, S = problem(3, 4)[:2]
    assert gaussian_w2(m, S, m, S).value <= 1e-9
    S2 = random_spd(np.random.default_rng(4), 4)
    # Dirac at m1: W2^2 = |m1 - m2|^2 + tr S2.
    r = gaussian_w2(m, np.zeros((4, 4)), np.zeros(4), S2)
    assert_allclose(r.value, m @ m + np.trace(S2), **F64)
    # Rank-deficient S1: still the exact value (checked against the commuting form).
    r = gaussian_w2(np.zeros(2), np.diag([1.0, 0.0]), np.zeros(2), np.diag([4.0, 9.0]))
    assert_allclose(r.value, 1.0 + 9.0, **F64)


def test_batched_shapes_match_unbatched():
    rng = np.random.default_rng(5)
    d = 3
    m1 = rng.normal(size=(2, 4, d))
    S1 = np.stack([[random_spd(rng, d) for _ in range(4)] for _ in range(2)])
    m2 = rng.normal(size=d)  # broadcast against the batch
    S2 = random_spd(rng, d)
    r = gaussian_w2(m1, S1, m2, S2)
    assert r.value.shape == (2, 4) and r.distance.shape == (2, 4)
    assert r.A.shape == (2, 4, d, d)
    for i in range(2):
        for j in range(4):
            one = gaussian_w2(m1[i, j], S1[i, j], m2, S2)
            assert_allclose(r.value[i, j], one.value, rtol=1e-9, atol=1e-12)
            assert_allclose(r.A[i, j], one.A, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_in_torch_out_and_gradients(dtype):
    m1, S1, m2, S2 = (torch.tensor(v, dtype=dtype) for v in problem(6, 3))
    m1.requires_grad_(True)
    r = gaussian_w2(m1, S1, m2, S2)
    assert isinstance(r.value, torch.Tensor) and r.value.dtype == dtype
    assert r.A.dtype == dtype
    r.value.backward()
    assert_allclose(m1.grad.numpy(), (2 * (m1 - m2)).detach().numpy(), **TOL[dtype])
    ref = gaussian_w2(*(v.detach().double().numpy() for v in (m1, S1, m2, S2)))
    assert_allclose(
        float(r.value.detach()),
        ref.value,
        rtol=1e-5 if dtype == torch.float32 else 1e-9,
    )


@pytest.mark.filterwarnings("error")  # no warning for inputs that require grad
def test_gradcheck_in_the_covariance():
    m1, S1, m2, S2 = (torch.tensor(v) for v in problem(7, 3))

    def value(B):
        return gaussian_w2(m1, S1, m2, B @ B.T + 0.1 * torch.eye(3)).value

    B = torch.randn(
        3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    assert torch.autograd.gradcheck(value, (B.requires_grad_(True),))


def moment_matched(rng, m, S, n):
    """Samples whose empirical mean and covariance are exactly m and S."""
    z = rng.normal(size=(n, len(m)))
    z -= z.mean(0)
    L = np.linalg.cholesky(z.T @ z / n)
    z = np.linalg.solve(L, z.T).T
    return m + z @ np.linalg.cholesky(S).T


def test_exact_ot_between_large_samples_2d():
    # Empirical measures with the Gaussians' exact first two moments: Gelbrich's
    # bound makes the closed form a rigorous lower bound on their exact OT, and
    # at n = 1000 in 2-D the empirical excess is ~0.8% (6 seeds measured,
    # 0.70-0.88%): 3% leaves room for other seeds.
    m1, m2 = np.array([0.0, 1.0]), np.array([1.0, -0.5])
    S1 = np.array([[2.0, 0.5], [0.5, 1.0]])
    S2 = np.array([[1.0, -0.3], [-0.3, 0.5]])
    ref = gaussian_w2(m1, S1, m2, S2).value
    rng = np.random.default_rng(8)
    x, y = moment_matched(rng, m1, S1, 1000), moment_matched(rng, m2, S2, 1000)
    got = exact_ot(x, y).value
    assert got >= ref * (1 - 1e-9)
    assert got <= ref * 1.03


def test_exact_ot_between_large_samples_1d():
    # 1-D, n = 1e5 independent samples per side: the sampling error of W2^2 is a
    # few 1e-3 (0.2% at this seed); 3% is far outside it.
    rng = np.random.default_rng(9)
    x = rng.normal(size=100_000) * 2 + 1
    y = rng.normal(size=100_000) * 0.5 - 1
    ref = gaussian_w2([1.0], [[4.0]], [-1.0], [[0.25]]).value
    assert_allclose(wasserstein(x, y) ** 2, ref, rtol=0.03)
