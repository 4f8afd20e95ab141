"""The debiased Sinkhorn divergence against GeomLoss, exact OT and properties.

Conventions: GeomLoss's SamplesLoss("sinkhorn", p=2, blur, debias=True) uses
the cost |x - y|^2 / 2 and eps = blur**2, so twice its value equals
otgen.sinkhorn_divergence with the cost |x - y|^2 at eps = 2 * blur**2.
"""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

import otgen

# GeomLoss runs one iteration per eps of its annealing; at scaling 0.999 it
# lags the converged value by ~1e-5 (relative), measured.
TOL_GEOMLOSS = dict(rtol=1e-4, atol=1e-6)


def clouds(n=30, m=25, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), 1.5 * rng.normal(size=(m, d)) + 1.0


def test_matches_geomloss_debiased():
    geomloss = pytest.importorskip("geomloss")
    x, y = clouds(40, 35)
    blur = 0.3
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    loss = geomloss.SamplesLoss(
        "sinkhorn", p=2, blur=blur, debias=True, scaling=0.999, backend="tensorized"
    )
    ref = 2.0 * float(loss(tx, ty))
    got = otgen.sinkhorn_divergence(tx, ty, eps=2 * blur**2, tol=1e-12)
    assert_allclose(float(got), ref, **TOL_GEOMLOSS)


def test_matches_geomloss_gradient():
    geomloss = pytest.importorskip("geomloss")
    x, y = clouds(30, 20, seed=1)
    blur = 0.4
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.from_numpy(y)
    loss = geomloss.SamplesLoss(
        "sinkhorn", p=2, blur=blur, debias=True, scaling=0.999, backend="tensorized"
    )
    ref = torch.autograd.grad(2.0 * loss(tx, ty), tx)[0]
    got = torch.autograd.grad(
        otgen.sinkhorn_divergence(tx, ty, eps=2 * blur**2, tol=1e-12), tx
    )[0]
    # GeomLoss's annealing lag also shows in its gradient: measured 3e-3 of
    # the largest entry at scaling 0.999 (our gradcheck pins otgen's own).
    assert_allclose(got.numpy(), ref.numpy(), rtol=0, atol=5e-3 * ref.abs().max())


def test_non_negative_and_zero_for_identical_inputs():
    x, y = clouds(25, 25, seed=2)
    for eps in (3.0, 1.0, 0.3):
        assert otgen.sinkhorn_divergence(x, y, eps=eps, tol=1e-9) > 0
        # The same object: three symmetric problems, exactly equal.
        assert otgen.sinkhorn_divergence(x, x, eps=eps, tol=1e-9) == 0.0
    for eps in (3.0, 1.0):
        # A copy: the alternating loop on a symmetric problem, within tol.
        s0 = otgen.sinkhorn_divergence(x, x.copy(), eps=eps, tol=1e-10)
        assert abs(s0) < 1e-8


def test_tends_to_exact_wasserstein():
    x, y = clouds(20, 20, seed=3)
    exact = otgen.exact_ot(x, y).value
    errs = [
        abs(otgen.sinkhorn_divergence(x, y, eps=eps, tol=1e-7, max_iter=20_000) - exact)
        for eps in (3.0, 1.0, 0.3)
    ]
    assert errs[0] > errs[1] > errs[2]
    # Measured 2.2% at eps = 0.3 on this 20-point sample (bias O(eps^2)).
    assert errs[2] < 5e-2 * exact


def test_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, dtype=torch.float64, generator=g).requires_grad_()
    y = torch.randn(5, 2, dtype=torch.float64, generator=g).requires_grad_()
    wa = (torch.rand(6, dtype=torch.float64, generator=g) + 0.5).requires_grad_()
    wb = (torch.rand(5, dtype=torch.float64, generator=g) + 0.5).requires_grad_()

    def fn(x, y, wa, wb):
        return otgen.sinkhorn_divergence(
            x, y, wa / wa.sum(), wb / wb.sum(), eps=0.3, tol=1e-13
        )

    assert torch.autograd.gradcheck(fn, (x, y, wa, wb), atol=1e-6, rtol=1e-5)


def test_gradcheck_unbalanced_chunked():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 2, dtype=torch.float64, generator=g).requires_grad_()
    y = torch.randn(4, 2, dtype=torch.float64, generator=g).requires_grad_()
    a = (torch.rand(5, dtype=torch.float64, generator=g) + 0.5).requires_grad_()
    b = (torch.rand(4, dtype=torch.float64, generator=g) + 0.5).requires_grad_()

    def fn(x, y, a, b):
        return otgen.sinkhorn_divergence(
            x, y, a, b, eps=0.3, reach=1.0, tol=1e-13, backend="chunked"
        )

    assert torch.autograd.gradcheck(fn, (x, y, a, b), atol=1e-6, rtol=1e-5)


def test_gradient_vanishes_at_identical_inputs():
    x, _ = clouds(15, 15, seed=4)
    tx = torch.from_numpy(x).requires_grad_()
    s = otgen.sinkhorn_divergence(tx, torch.from_numpy(x.copy()), eps=1.0, tol=1e-11)
    (gx,) = torch.autograd.grad(s, tx)
    assert gx.abs().max() < 1e-7


def test_unbalanced_matches_geomloss():
    geomloss = pytest.importorskip("geomloss")
    x, y = clouds(30, 25, seed=5)
    blur, reach = 0.3, 1.0
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    loss = geomloss.SamplesLoss(
        "sinkhorn",
        p=2,
        blur=blur,
        reach=reach,
        debias=True,
        scaling=0.999,
        backend="tensorized",
    )
    ref = 2.0 * float(loss(tx, ty))
    # GeomLoss's reach is in its cost units |x-y|^2/2: rho = reach^2 there is
    # 2 * reach^2 in otgen's units, i.e. otgen reach = sqrt(2) * reach.
    got = otgen.sinkhorn_divergence(
        tx, ty, eps=2 * blur**2, reach=np.sqrt(2) * reach, tol=1e-12
    )
    assert_allclose(float(got), ref, **TOL_GEOMLOSS)


def test_output_types_and_errors():
    x, y = clouds(8, 6, seed=6)
    assert isinstance(otgen.sinkhorn_divergence(x, y, eps=0.2), float)
    s = otgen.sinkhorn_divergence(torch.from_numpy(x), torch.from_numpy(y), eps=0.2)
    assert isinstance(s, torch.Tensor) and s.ndim == 0
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        otgen.sinkhorn_divergence(x, y, eps=-0.1)
    with pytest.raises(ValueError, match="scaling must be in the open interval"):
        otgen.sinkhorn_divergence(x, y, scaling=1.5)
    with pytest.raises(ValueError, match="reach must be finite and > 0"):
        otgen.sinkhorn_divergence(x, y, reach=-1.0)
    with pytest.warns(UserWarning, match="sinkhorn_divergence did not converge"):
        otgen.sinkhorn_divergence(x, y, eps=1e-3, max_iter=1, tol=1e-12)


def test_wasserstein_sinkhorn_method():
    x, y = clouds(20, 20, seed=7)
    w = otgen.wasserstein(x, y, method="sinkhorn", eps=0.3, tol=1e-7)
    s = otgen.sinkhorn_divergence(x, y, eps=0.3, tol=1e-7)
    assert_allclose(w, s**0.5, rtol=1e-12)
    exact = otgen.wasserstein(x, y)
    # S_eps^(1/2) -> W_2: 2.2% off in S at eps = 0.3 (above), ~1% in W_2.
    assert abs(w - exact) < 0.03 * exact
    tx = torch.from_numpy(x).requires_grad_()
    wt = otgen.wasserstein(tx, torch.from_numpy(y), method="sinkhorn", eps=0.3)
    (g,) = torch.autograd.grad(wt, tx)
    assert torch.isfinite(g).all() and g.abs().max() > 0
