"""Entropic OT (otgen.sinkhorn) against POT, GeomLoss, exact OT and closed forms.

Conventions matched in these tests:

- otgen's ``eps`` multiplies KL(P | a x b) and is in units of the cost; POT's
  ``reg`` multiplies the negative entropy sum P (log P - 1). On the transport
  polytope the two regularisers differ by a constant, so the plans coincide
  and ``ot.sinkhorn2`` (which returns <P, C>) is compared with
  ``plan.transport_cost()``.
- POT's unbalanced ``reg_m`` is otgen's rho = reach**p (p = 2 here).
- GeomLoss uses the cost |x - y|^2 / 2 and eps = blur**2, so
  2 * SamplesLoss(blur) equals otgen with cost |x - y|^2 at eps = 2 * blur**2.
"""

import importlib
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import otgen
from otgen.ot.costs import Cost
from tests.conftest import NATIVE, TOL

# The module (otgen.ot.sinkhorn is also the name of the function).
sk = importlib.import_module("otgen.ot.sinkhorn")

# A converged float64 Sinkhorn matches POT's to the stopping tolerance.
TOL_SINK = dict(rtol=1e-8, atol=1e-10)
# GeomLoss runs one iteration per eps of its annealing; at scaling 0.999 it
# lags the converged value by ~1e-5 (relative), measured.
TOL_GEOMLOSS = dict(rtol=1e-4, atol=1e-6)
# float32: potentials carry ~6e-8 |f| / eps relative error on the plan.
TOL_F32 = dict(rtol=2e-3, atol=1e-4)


def clouds(n=30, m=25, d=3, seed=0, weights=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = 1.5 * rng.normal(size=(m, d)) + 1.0
    if not weights:
        return x, y, None, None
    a = rng.random(n) + 0.1
    b = rng.random(m) + 0.1
    return x, y, a / a.sum(), b / b.sum()


def sqdist(x, y):
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def kl(p, q):
    return float((p * np.log(p / q) - p + q).sum())


@pytest.mark.parametrize("backend", ["dense", "chunked", *NATIVE])
def test_matches_pot_balanced(backend):
    ot = pytest.importorskip("ot")
    x, y, a, b = clouds()
    eps = 0.5
    M = sqdist(x, y)
    G = ot.sinkhorn(
        a, b, M, eps, method="sinkhorn_log", stopThr=1e-14, numItermax=100_000
    )
    r = otgen.sinkhorn(x, y, a, b, eps=eps, tol=1e-12, backend=backend)
    assert r.converged and r.backend == backend
    assert_allclose(r.plan.dense(), G, **TOL_SINK)
    lin = ot.sinkhorn2(
        a, b, M, eps, method="sinkhorn_log", stopThr=1e-14, numItermax=100_000
    )
    assert_allclose(r.plan.transport_cost(), float(lin), **TOL_SINK)
    ref = float((G * M).sum()) + eps * kl(G, a[:, None] * b[None, :])
    assert_allclose(r.value, ref, **TOL_SINK)
    assert_allclose(r.primal, ref, **TOL_SINK)


@pytest.mark.parametrize("backend", ["dense", "chunked", *NATIVE])
def test_matches_pot_unbalanced(backend):
    ot = pytest.importorskip("ot")
    x, y, a, b = clouds(seed=1)
    b = 2.0 * b  # unequal masses: only the unbalanced problem accepts them
    eps, reach = 0.5, 1.5
    rho = reach**2
    M = sqdist(x, y)
    G = ot.unbalanced.sinkhorn_unbalanced(
        a, b, M, eps, rho, method="sinkhorn", stopThr=1e-14, numItermax=100_000
    )
    r = otgen.sinkhorn(x, y, a, b, eps=eps, reach=reach, tol=1e-12, backend=backend)
    assert r.converged
    assert_allclose(r.plan.dense(), G, **TOL_SINK)
    lin = ot.unbalanced.sinkhorn_unbalanced2(
        a, b, M, eps, rho, method="sinkhorn", stopThr=1e-14, numItermax=100_000
    )
    assert_allclose(r.plan.transport_cost(), float(lin), **TOL_SINK)
    # Full objective from POT's plan (its returnCost="total" is not this sum).
    ref = (
        float((G * M).sum())
        + eps * kl(G, a[:, None] * b[None, :])
        + rho * kl(G.sum(1), a)
        + rho * kl(G.sum(0), b)
    )
    assert_allclose(r.primal, ref, **TOL_SINK)
    assert_allclose(r.value, ref, **TOL_SINK)


def test_matches_geomloss_raw():
    geomloss = pytest.importorskip("geomloss")
    x, y, _, _ = clouds(40, 35, weights=False)
    blur = 0.3
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    loss = geomloss.SamplesLoss(
        "sinkhorn",
        p=2,
        blur=blur,
        debias=False,
        scaling=0.999,
        backend="tensorized",
    )
    ref = 2.0 * float(loss(tx, ty))
    got = otgen.sinkhorn(tx, ty, eps=2 * blur**2, tol=1e-12).value
    assert_allclose(float(got), ref, **TOL_GEOMLOSS)


def test_value_is_bounded_by_exact_plus_entropy():
    # 0 <= OT_eps - OT_0 <= eps * log(min(n, m)) for uniform weights (the
    # entropy of any coupling relative to a x b is at most log min(n, m)),
    # which is the O(eps log 1/eps) rate on a finite sample.
    x, y, _, _ = clouds(25, 25, weights=False)
    exact = otgen.exact_ot(x, y).value
    gaps = []
    # Sinkhorn needs O(exp(range(C) / eps)) iterations in the worst case: eps
    # stays where a tight tol is reached quickly (POT needs as many).
    for eps in (3.0, 1.0, 0.5, 0.3):
        r = otgen.sinkhorn(x, y, eps=eps, tol=1e-9, max_iter=20_000)
        assert r.converged
        gap = r.value - exact
        assert -1e-9 <= gap <= eps * np.log(25) + 1e-9
        assert r.plan.transport_cost() >= exact - 1e-9
        gaps.append(gap)
    assert all(g1 > g2 for g1, g2 in zip(gaps, gaps[1:]))


@pytest.mark.parametrize("reach", [None, 2.0])
def test_dense_and_chunked_agree(reach):
    x, y, a, b = clouds(80, 70, seed=3)
    kw = dict(eps=0.1, tol=1e-11, reach=reach, max_iter=5000)
    rd = otgen.sinkhorn(x, y, a, b, backend="dense", **kw)
    rc = otgen.sinkhorn(x, y, a, b, backend="chunked", **kw)
    assert rd.backend == "dense" and rc.backend == "chunked"
    assert_allclose(rc.value, rd.value, rtol=1e-9, atol=1e-9)
    assert_allclose(rc.f, rd.f, rtol=1e-6, atol=1e-6)
    assert_allclose(rc.g, rd.g, rtol=1e-6, atol=1e-6)


def test_callable_asymmetric_cost_matches_pot():
    ot = pytest.importorskip("ot")
    x, y, a, b = clouds(20, 15, d=2, seed=4)

    def cost(u, v):  # not symmetric: c(u, v) != c(v, u)
        return ((u[:, None, :] - v[None, :, :]) ** 2).sum(-1) + u[:, :1] - 0.5 * v[:, 0]

    M = cost(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    G = ot.sinkhorn(
        a, b, M, 0.4, method="sinkhorn_log", stopThr=1e-14, numItermax=100_000
    )
    for backend in ("dense", "chunked"):
        r = otgen.sinkhorn(x, y, a, b, eps=0.4, cost=cost, tol=1e-12, backend=backend)
        assert_allclose(r.plan.dense(), G, **TOL_SINK)
        assert_allclose(r.plan.marginals()[1], b, **TOL_SINK)


@pytest.mark.keops
def test_keops_agrees_with_dense():
    pytest.importorskip("pykeops")
    x, y, a, b = clouds(40, 30, seed=5)
    rd = otgen.sinkhorn(x, y, a, b, eps=0.2, tol=1e-11, backend="dense")
    rk = otgen.sinkhorn(x, y, a, b, eps=0.2, tol=1e-11, backend="keops")
    assert rk.backend == "keops"
    assert_allclose(rk.value, rd.value, rtol=1e-9, atol=1e-9)
    tx = torch.from_numpy(x).requires_grad_()
    gk = torch.autograd.grad(
        otgen.sinkhorn(tx, y, a, b, eps=0.2, tol=1e-11, backend="keops").value, tx
    )[0]
    gd = torch.autograd.grad(
        otgen.sinkhorn(tx, y, a, b, eps=0.2, tol=1e-11, backend="dense").value, tx
    )[0]
    assert_allclose(gk.numpy(), gd.numpy(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("tol", [1e-3, 1e-6, 1e-9])
def test_plan_marginals_within_tol(tol):
    x, y, a, b = clouds(50, 40, seed=6)
    r = otgen.sinkhorn(x, y, a, b, eps=0.05, tol=tol, max_iter=20_000)
    assert r.converged
    row, col = r.plan.marginals()
    assert np.abs(row - a).sum() <= tol * 1.0001
    assert np.abs(col - b).sum() <= max(tol, 1e-12)
    assert_allclose(r.marginal_error[0], np.abs(row - a).sum(), rtol=1e-6, atol=1e-14)


def test_plan_operator_matches_dense():
    x, y, a, b = clouds(40, 30, seed=7)
    r = otgen.sinkhorn(x, y, a, b, eps=0.2, tol=1e-10, backend="chunked")
    P = r.plan.dense()
    rng = np.random.default_rng(0)
    v, u = rng.normal(size=(30, 3)), rng.normal(size=40)
    assert_allclose(r.plan.matvec(v), P @ v, **TOL[torch.float64])
    assert_allclose(r.plan.rmatvec(u), P.T @ u, **TOL[torch.float64])
    vals, cols = r.plan.topk(4)
    order = np.argsort(-P, axis=1)[:, :4]
    assert_allclose(vals, np.take_along_axis(P, order, 1), **TOL[torch.float64])
    assert (cols == order).all()
    assert_allclose(
        r.plan.transport_cost(), (P * sqdist(x, y)).sum(), **TOL[torch.float64]
    )


def test_dense_plan_refused_when_too_large(monkeypatch):
    x, y, _, _ = clouds(10, 10, weights=False)
    r = otgen.sinkhorn(x, y, eps=0.5)
    monkeypatch.setattr(sk, "_DENSE_PLAN_MAX", 50)
    with pytest.raises(ValueError, match="dense plan would hold 100"):
        r.plan.dense()


def _weights_fn(backend, reach):
    def fn(x, y, wa, wb):
        return otgen.sinkhorn(
            x,
            y,
            wa / wa.sum(),
            wb / wb.sum(),
            eps=0.3,
            tol=1e-13,
            max_iter=10_000,
            backend=backend,
            reach=reach,
        ).value

    return fn


@pytest.mark.parametrize("backend", ["dense", "chunked", *NATIVE])
@pytest.mark.parametrize("reach", [None, 1.0])
def test_gradcheck(backend, reach):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, dtype=torch.float64, generator=g).requires_grad_()
    y = torch.randn(5, 2, dtype=torch.float64, generator=g).requires_grad_()
    wa = (torch.rand(6, dtype=torch.float64, generator=g) + 0.5).requires_grad_()
    wb = (torch.rand(5, dtype=torch.float64, generator=g) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(
        _weights_fn(backend, reach), (x, y, wa, wb), atol=1e-6, rtol=1e-5
    )


def test_gradcheck_unnormalised_unbalanced_weights():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 2, dtype=torch.float64, generator=g).requires_grad_()
    y = torch.randn(4, 2, dtype=torch.float64, generator=g).requires_grad_()
    a = (torch.rand(5, dtype=torch.float64, generator=g) + 0.5).requires_grad_()
    b = (torch.rand(4, dtype=torch.float64, generator=g) + 0.5).requires_grad_()

    def fn(x, y, a, b):
        return otgen.sinkhorn(x, y, a, b, eps=0.3, reach=0.8, tol=1e-13).value

    assert torch.autograd.gradcheck(fn, (x, y, a, b), atol=1e-6, rtol=1e-5)


def test_gradient_matches_finite_differences_and_pot():
    ot = pytest.importorskip("ot")
    x, y, a, b = clouds(12, 10, d=2, seed=8)
    eps = 0.2
    tx = torch.from_numpy(x).requires_grad_()
    ta = torch.from_numpy(a).requires_grad_()
    # tol=1e-12 is reached (about 1100 iterations, so max_iter=5000); 1e-13 is
    # below what float64 Sinkhorn attains here.
    res = otgen.sinkhorn(tx, y, ta, b, eps=eps, tol=1e-12, max_iter=5000)
    assert res.converged
    val = res.value
    gx, ga = torch.autograd.grad(val, (tx, ta))
    # Envelope theorem: d/dx_i = sum_j P_ij * 2 (x_i - y_j), with P from POT.
    G = ot.sinkhorn(
        a,
        b,
        sqdist(x, y),
        eps,
        method="sinkhorn_log",
        stopThr=1e-14,
        numItermax=100_000,
    )
    ref = 2 * (G.sum(1)[:, None] * x - G @ y)
    assert_allclose(gx.numpy(), ref, rtol=1e-7, atol=1e-9)
    # Central differences along a random direction that keeps sum(a) = 1.
    rng = np.random.default_rng(1)
    da = rng.normal(size=12)
    da -= da.mean()
    h = 1e-5

    def val_at(aa):
        return otgen.sinkhorn(x, y, aa, b, eps=eps, tol=1e-12, max_iter=5000).value

    fd = (val_at(a + h * da) - val_at(a - h * da)) / (2 * h)
    assert_allclose(float(ga.numpy() @ da), fd, rtol=1e-6, atol=1e-8)


def test_float32_matches_float64():
    x, y, _, _ = clouds(200, 150, seed=9, weights=False)
    # Same stopping rule in both precisions (a tighter float64 reference does
    # not converge within max_iter at this eps: Sinkhorn's rate degrades like
    # exp(-max C / eps); POT behaves alike), so the difference is precision.
    r64 = otgen.sinkhorn(x, y, eps=0.05)
    assert r64.converged
    for backend in ("dense", "chunked", *NATIVE):
        r32 = otgen.sinkhorn(
            torch.tensor(x, dtype=torch.float32),
            torch.tensor(y, dtype=torch.float32),
            eps=0.05,
            backend=backend,
        )
        assert r32.converged and r32.value.dtype == torch.float32
        assert_allclose(float(r32.value), r64.value, **TOL_F32)


def test_float32_far_from_origin():
    # Without centring, |x|^2 + |y|^2 - 2<x, y> in float32 loses every digit
    # at an offset of 1e4 (ulp(1e8) = 8): the cost of the shifted clouds must
    # match the unshifted float64 problem.
    x, y, _, _ = clouds(100, 100, seed=10, weights=False)
    r64 = otgen.sinkhorn(x, y, eps=0.1)
    assert r64.converged
    off = 1e4
    r32 = otgen.sinkhorn(
        torch.tensor(x + off, dtype=torch.float32),
        torch.tensor(y + off, dtype=torch.float32),
        eps=0.1,
        backend="chunked",
    )
    assert_allclose(float(r32.value), r64.value, **TOL_F32)


def test_numpy_in_numpy_out_and_torch_in_torch_out():
    x, y, a, b = clouds(10, 8, seed=11)
    r = otgen.sinkhorn(x, y, a, b, eps=0.3)
    assert isinstance(r.value, float) and isinstance(r.primal, float)
    assert isinstance(r.f, np.ndarray) and r.f.shape == (10,)
    assert isinstance(r.plan.dense(), np.ndarray)
    rt = otgen.sinkhorn(torch.from_numpy(x), torch.from_numpy(y), eps=0.3)
    assert isinstance(rt.value, torch.Tensor) and isinstance(rt.g, torch.Tensor)
    assert rt.eps_schedule[-1] == 0.3 and rt.eps_schedule[0] > 0.3
    assert "entropic OT" in rt.value_description


def test_no_global_autograd_side_effects():
    x = torch.randn(10, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(9, 2, dtype=torch.float64)
    with torch.no_grad():
        v = otgen.sinkhorn(x, y, eps=0.3).value
        assert not torch.is_grad_enabled()
    assert not v.requires_grad
    assert torch.is_grad_enabled()
    v = otgen.sinkhorn(x.detach(), y, eps=0.3).value
    assert not v.requires_grad


def test_symmetric_problem_uses_symmetric_loop():
    x, _, a, _ = clouds(30, 30, seed=12)
    r = otgen.sinkhorn(x, x, a, a, eps=0.5, tol=1e-10)
    assert r.converged
    assert_allclose(r.f, r.g, **TOL[torch.float64])
    ref = otgen.sinkhorn(x, x.copy(), a, a.copy(), eps=0.5, tol=1e-10)
    assert_allclose(r.value, ref.value, rtol=1e-8)


def test_identical_points_zero_diameter():
    x = np.ones((5, 3))
    r = otgen.sinkhorn(x, x.copy(), eps=0.1)
    assert r.converged and abs(r.value) < 1e-12
    assert r.eps_schedule == (0.1,)


@pytest.mark.parametrize("q", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("d", [2, 40])
def test_annealing_start_bounds_the_largest_distance(q, d):
    # eps0 = diameter^p must bound every cost: brute-force largest distance.
    from otgen.ot.sinkhorn import _diameter

    x, y, _, _ = clouds(60, 50, d=d, seed=21, weights=False)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    big = float(torch.cdist(xt, yt, p=q).max())
    z = np.concatenate([x, y])
    box = float(np.linalg.norm(z.max(0) - z.min(0), ord=q))
    bound = _diameter(xt, yt, q)
    # Rounding only: in d = 2 with q = 1 the box diagonal is attained.
    assert big <= bound * (1 + 1e-12) and bound <= box
    if d == 40 and q == 2:  # in high dimension the radii bound is far below
        assert bound < 0.5 * box


def test_default_eps_from_data_scale():
    x, y, _, _ = clouds(30, 30, seed=13, weights=False)
    r = otgen.sinkhorn(x, y)
    z = np.concatenate([x, y])
    s = np.sqrt(((z - z.mean(0)) ** 2).sum(1).mean())
    assert_allclose(r.eps, (s / 10) ** 2, rtol=1e-12)


@settings(max_examples=15, deadline=None)
@given(s=st.floats(0.1, 10.0), seed=st.integers(0, 2**16))
def test_cost_scaling(s, seed):
    # OT_{sC, s eps} = s OT_{C, eps}.
    x, y, a, b = clouds(8, 7, d=2, seed=seed)
    # max_iter: some seeds (13183) need ~5600 sweeps to reach tol=1e-10.
    r1 = otgen.sinkhorn(x, y, a, b, eps=0.5, tol=1e-10, max_iter=50_000)
    scaled = Cost(fn=lambda u, v: s * ((u[:, None] - v[None]) ** 2).sum(-1))
    rs = otgen.sinkhorn(
        x, y, a, b, eps=0.5 * s, tol=1e-10, cost=scaled, max_iter=50_000
    )
    assert_allclose(rs.value, s * r1.value, rtol=1e-8, atol=1e-10)


def test_non_convergence_warns():
    x, y, _, _ = clouds(30, 30, seed=14, weights=False)
    with pytest.warns(UserWarning, match="did not converge"):
        r = otgen.sinkhorn(x, y, eps=1e-3, max_iter=2, tol=1e-12)
    assert not r.converged and r.marginal_error[0] > 1e-12


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(eps=0.0), "eps must be finite and > 0"),
        (dict(eps=-1.0), "eps must be finite and > 0"),
        (dict(eps=float("nan")), "eps must be finite and > 0"),
        (dict(scaling=1.0), "scaling must be in the open interval"),
        (dict(scaling=0.0), "scaling must be in the open interval"),
        (dict(scaling="x"), "scaling must be a number"),
        (dict(reach=0.0), "reach must be finite and > 0"),
        (dict(tol=-1e-3), "tol must be finite and > 0"),
        (dict(max_iter=0), "max_iter must be an integer >= 1"),
        (dict(max_iter=2.5), "max_iter must be an integer >= 1"),
        (dict(backend="gpu"), "backend must be one of"),
        (dict(cost="cosine"), "cost must be one of"),
        (dict(progress="yes"), "progress must be True, False or None"),
    ],
)
def test_invalid_arguments(kwargs, match):
    x, y, _, _ = clouds(5, 4, weights=False)
    with pytest.raises(ValueError, match=match):
        otgen.sinkhorn(x, y, **{"eps": 0.1, **kwargs})


def test_progress_bar(capsys, monkeypatch):
    x, y, _, _ = clouds(30, 20, weights=False)
    kw = dict(eps=0.5, tol=1e-6)
    quiet = otgen.sinkhorn(x, y, **kw)  # None: automatic, off at 600 pairs
    assert capsys.readouterr().err == ""
    shown = otgen.sinkhorn(x, y, progress=True, **kw)
    err = capsys.readouterr().err
    # One step per annealing eps and one for the target; the final marginal
    # error is in the bar's last state.
    assert "sinkhorn" in err and f"/{len(shown.eps_schedule)} " in err
    assert "err=" in err
    assert shown.value == quiet.value and shown.n_iter == quiet.n_iter
    otgen.sinkhorn_divergence(x, y, progress=True, **kw)
    err = capsys.readouterr().err
    assert all(s in err for s in ("OT(a,b)", "OT(a,a)", "OT(b,b)"))
    # None turns it on from PROGRESS_MIN_PAIRS pairs.
    monkeypatch.setattr(sk, "PROGRESS_MIN_PAIRS", 600)
    otgen.sinkhorn(x, y, **kw)
    assert "sinkhorn" in capsys.readouterr().err
    otgen.sinkhorn(x, y, progress=False, **kw)
    assert capsys.readouterr().err == ""


def test_invalid_inputs():
    x, y, a, b = clouds(5, 4)
    with pytest.raises(ValueError, match="same total mass"):
        otgen.sinkhorn(x, y, a, 2 * b, eps=0.1)
    with pytest.raises(ValueError, match="must be non-negative"):
        otgen.sinkhorn(x, y, -a, b, eps=0.1)
    with pytest.raises(ValueError, match="must be finite"):
        otgen.sinkhorn(np.full((3, 2), np.nan), y[:, :2], eps=0.1)
    with pytest.raises(ValueError, match="same dimension"):
        otgen.sinkhorn(x, y[:, :2], eps=0.1)
    with pytest.raises(ValueError, match="eps must be given for a callable"):
        otgen.sinkhorn(x, y, cost=lambda u, v: torch.cdist(u, v))
    r = otgen.sinkhorn(x, y, a, b, eps=0.1)
    with pytest.raises(ValueError, match="k must be an integer"):
        r.plan.topk(0)
    with pytest.raises(ValueError, match="v must have shape"):
        r.plan.matvec(np.ones(5))


def test_unbalanced_reach_large_approaches_balanced():
    x, y, a, b = clouds(20, 20, seed=15)
    bal = otgen.sinkhorn(x, y, a, b, eps=1.0, tol=1e-11).value
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unb = otgen.sinkhorn(x, y, a, b, eps=1.0, reach=1e3, tol=1e-11).value
    # The KL penalty rho = 1e6 perturbs the value by O(1 / rho).
    assert abs(unb - bal) < 1e-4 * abs(bal)
