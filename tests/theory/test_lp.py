"""The discrete theory solvers against independent references: POT's exact
OT, brute force over deterministic encoders, closed forms, random feasible
points (for the QP), and each LP against its dual."""

import itertools

import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.spatial.distance import cdist

from otgen.theory import lp, pot

LP = dict(rtol=1e-8, atol=1e-10)  # HiGHS at 1e-10 feasibility/optimality


def _problem(seed, n, m, d=2):
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    y = np.tanh(z) + 0.3
    return rng, x, z, y, rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(m))


@given(seed=st.integers(0, 2**31), n=st.integers(1, 7), m=st.integers(1, 7))
@settings(max_examples=25, deadline=None)
def test_encoder_lp_matches_pot_and_its_dual(seed, n, m):
    _, x, _, y, p, r = _problem(seed, n, m)
    C = cdist(x, y, "sqeuclidean")
    res = lp.encoder_lp(C, p, r)
    assert_allclose(res.value, ot.emd2(p, r, C), **LP)
    assert_allclose(res.plan.sum(1), p, atol=1e-9)
    assert_allclose(res.plan.sum(0), r, atol=1e-9)
    assert_allclose(res.encoder.sum(1), 1.0, atol=1e-9)
    # LP multipliers: dual feasible and tight.
    assert (res.u[:, None] - res.h[None] - C).max() <= 1e-9
    assert_allclose(p @ res.u - r @ res.h, res.value, **LP)
    assert_allclose(lp.encoder_dual_lp(C, p, r).value, res.value, **LP)


@given(seed=st.integers(0, 2**31), n=st.integers(1, 6), m=st.integers(1, 3))
@settings(max_examples=20, deadline=None)
def test_deterministic_encoder_matches_brute_force(seed, n, m):
    rng, x, _, y, _, _ = _problem(seed, n, m)
    p = np.full(n, 1.0 / n)
    r = (
        np.bincount(rng.integers(0, m, size=n), minlength=m) / n
        if rng.random() < 0.6
        else rng.dirichlet(np.ones(m))
    )
    C = cdist(x, y, "sqeuclidean")
    best = np.inf
    for e in itertools.product(range(m), repeat=n):
        if np.allclose(np.bincount(e, weights=p, minlength=m), r, atol=1e-12):
            best = min(best, float(p @ C[np.arange(n), e]))
    got = lp.deterministic_encoder(C, p, r).value
    if np.isinf(best):
        assert np.isinf(got)
    else:
        assert_allclose(got, best, **LP)


def test_deterministic_encoder_infeasible_is_inf():
    res = lp.deterministic_encoder(np.zeros((3, 2)), r=np.array([0.5, 0.5]))
    assert res.value == np.inf and res.encoder is None


@given(seed=st.integers(0, 2**31), lam=st.floats(0.0, 20.0))
@settings(max_examples=15, deadline=None)
def test_pot_tv_equals_pot_w1_with_discrete_metric(seed, lam):
    # TV(Q, P) = W_1 for the 0-1 metric: two different LPs, one value.
    _, x, _, y, p, r = _problem(seed, 5, 4)
    C = cdist(x, y)
    D01 = 1.0 - np.eye(4)
    tv = lp.pot_tv(C, p, r, lam=lam)
    w1 = lp.pot_w1(C, D01, p, r, lam=lam)
    assert_allclose(tv.value, w1.value, **LP)
    assert_allclose(tv.penalty, 0.5 * np.abs(tv.q - r).sum(), atol=1e-12)


def test_pot_w1_and_its_dual_and_the_limits():
    _, x, z, y, p, r = _problem(5, 6, 5)
    C, D = cdist(x, y), cdist(z, z)
    L = max(
        np.linalg.norm(y[j] - y[k]) / D[j, k]
        for j in range(5)
        for k in range(5)
        if j != k
    )
    w1 = ot.emd2(p, r, C)
    for lam in (0.0, 0.3 * L, L, 4 * L):
        prim = lp.pot_w1(C, D, p, r, lam=lam)
        assert_allclose(prim.value, lp.pot_w1_dual(C, D, p, r, lam=lam).value, **LP)
        assert prim.value <= w1 + 1e-10
        assert_allclose(prim.latent_plan.sum(1), prim.q, atol=1e-9)
        assert_allclose(prim.latent_plan.sum(0), r, atol=1e-9)
    assert_allclose(lp.pot_w1(C, D, p, r, lam=L).value, w1, **LP)
    assert_allclose(lp.pot_w1(C, D, p, r, lam=0.0).value, p @ C.min(1), **LP)


@given(seed=st.integers(0, 2**31), lam=st.sampled_from([0.0, 0.1, 1.0, 10.0, 1e3]))
@settings(max_examples=12, deadline=None)
def test_pot_mmd2_is_certified_and_beats_random_feasible_plans(seed, lam):
    rng, x, z, y, p, r = _problem(seed, 4, 3)
    C = cdist(x, y, "sqeuclidean")
    K = 1.0 / (1.0 + cdist(z, z, "sqeuclidean"))  # IMQ, positive definite
    res = lp.pot_mmd2(C, K, p, r, lam=lam)
    assert res.certificate <= 1e-10 * C.max()
    e = res.q - r
    assert_allclose(res.value, (C * res.plan).sum() + lam * e @ K @ e, rtol=1e-12)
    assert_allclose(res.plan.sum(1), p, atol=1e-12)
    for _ in range(200):
        P = rng.dirichlet(np.ones(3), size=4) * p[:, None]
        ee = P.sum(0) - r
        assert res.value <= (C * P).sum() + lam * ee @ K @ ee + res.certificate
    # Sandwich: D_POT(0) <= D_POT(lam) <= W_c.
    assert p @ C.min(1) - 1e-12 <= res.value <= ot.emd2(p, r, C) + 1e-10


def test_pot_mmd2_closed_form_two_atoms():
    # Both points decode at cost 0 at z_0, 2 at z_1; K = I, r = (1/2, 1/2):
    # min_t 2 t + 2 lam (1/2 - t)^2 gives t* = 1/2 - 1/(2 lam) for lam >= 1.
    C = np.array([[0.0, 2.0], [0.0, 2.0]])
    for lam in (0.5, 2.0, 10.0):
        t = max(0.0, 0.5 - 1 / (2 * lam))
        want = 2 * t + 2 * lam * (0.5 - t) ** 2
        assert_allclose(lp.pot_mmd2(C, np.eye(2), lam=lam).value, want, rtol=1e-10)


@given(seed=st.integers(0, 2**31), n=st.integers(1, 6), m=st.integers(1, 6))
@settings(max_examples=20, deadline=None)
def test_kr_dual_matches_pot_w1(seed, n, m):
    _, x, _, y, a, b = _problem(seed, n, m)
    val, U, f = lp.kr_dual(x, y, a, b)
    assert_allclose(val, ot.emd2(a, b, cdist(x, y)), **LP)
    assert (f[:, None] - f[None] - cdist(U, U)).max() <= 1e-9


def test_kr_dual_merges_shared_points():
    x = np.array([[0.0], [1.0]])
    val, U, _ = lp.kr_dual(x, x)
    assert len(U) == 2 and abs(val) < 1e-12


def test_c_transform_critic_is_an_optimal_wgan_critic():
    _, x, _, y, p, r = _problem(11, 6, 5)
    C = cdist(x, y)
    dual = lp.encoder_dual_lp(C, p, r)
    f = lp.c_transform_critic(dual.h, y)
    assert_allclose(p @ f(x) - r @ f(y), ot.emd2(p, r, C), **LP)
    assert (f(y) <= dual.h + 1e-12).all()  # h^d o G <= h


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: lp.encoder_lp(np.ones((2, 2)), p=np.array([0.5, -0.5])), "p must"),
        (lambda: lp.encoder_lp(np.ones((2, 2)), r=np.ones(3) / 3), "r must be"),
        (lambda: lp.encoder_lp(np.ones(3)), "C must be a 2-D"),
        (lambda: lp.pot_tv(np.ones((2, 2)), lam=-1.0), "lam must be finite"),
        (lambda: lp.pot_w1(np.ones((2, 2)), np.ones((3, 3)), lam=1.0), r"C must have"),
        (lambda: lp.pot_mmd2(np.ones((2, 2)), np.eye(2), lam=np.nan), "lam must be"),
    ],
)
def test_errors_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_pot_mmd2_slsqp_fallback(monkeypatch):
    # If the active set stalls, SLSQP plus polishing still certifies the optimum.
    _, x, z, y, p, r = _problem(4, 5, 4)
    C = cdist(x, y, "sqeuclidean")
    K = 1.0 / (1.0 + cdist(z, z, "sqeuclidean"))
    want = lp.pot_mmd2(C, K, p, r, lam=50.0)
    real, calls = pot._polish, []

    def stalled(P, *args, **kw):
        calls.append(kw.get("rounds"))
        if len(calls) == 1:
            return P, 1.0  # the first (active-set) attempt "fails"
        return real(P, *args, **kw)

    monkeypatch.setattr(pot, "_polish", stalled)
    got = lp.pot_mmd2(C, K, p, r, lam=50.0)
    assert len(calls) == 2
    assert got.certificate <= 1e-10 * C.max()
    assert_allclose(got.value, want.value, rtol=1e-10)


def test_pot_mmd2_warns_when_not_certified(monkeypatch):
    monkeypatch.setattr(pot, "_polish", lambda P, *a, **k: (P, 1.0))
    with pytest.warns(UserWarning, match="Frank-Wolfe gap"):
        lp.pot_mmd2(np.array([[0.0, 2.0], [0.0, 2.0]]), np.eye(2), lam=1.0)
