"""Coarse-to-fine Sinkhorn against the all-pairs native solver and brute force."""

import importlib

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

import otgen
from otgen import mmd
from otgen.ot import _multiscale as ms
from otgen.ot import _native
from otgen.ot._reduce import Native
from otgen.ot._stopping import Stop
from otgen.ot.costs import Cost

sk = importlib.import_module("otgen.ot.sinkhorn")

pytestmark = pytest.mark.skipif(
    not _native.available(), reason=f"native backend: {_native.unavailable_reason()}"
)


def cloud(n, d, seed, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


def test_grid_clusters_partition_the_points():
    x = cloud(500, 3, 0)
    a = torch.rand(500, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    side = 0.7
    c = ms.grid_clusters(x, a, side)
    # Brute force: group by the integer cell of each point.
    cells: dict[tuple, list[int]] = {}
    for i, key in enumerate(map(tuple, np.floor(x.numpy() / side).astype(int))):
        cells.setdefault(key, []).append(i)
    assert c.ptr.shape[0] - 1 == len(cells)
    xs = x[c.perm]
    assert sorted(c.perm.tolist()) == list(range(500))
    assert torch.equal(c.perm[c.inv], torch.arange(500))
    for k in range(len(cells)):
        members = c.perm[c.ptr[k] : c.ptr[k + 1]].tolist()
        key = tuple(np.floor(x[members[0]].numpy() / side).astype(int))
        assert sorted(members) == cells[key]
        w = a[members]
        assert_allclose(float(c.weights[k]), float(w.sum()), rtol=1e-12)
        want = (xs[c.ptr[k] : c.ptr[k + 1]] * w[:, None]).sum(0) / w.sum()
        assert_allclose(c.centres[k].numpy(), want.numpy(), rtol=1e-12)


def test_ranges_cover_exactly_the_kept_cells():
    g = torch.Generator().manual_seed(2)
    keep = torch.rand(7, 9, generator=g) < 0.4
    keep[3] = False  # a row cell without columns
    sizes = torch.randint(1, 5, (9,), generator=g)
    ptr = torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)])
    cptr, rg = ms._ranges(keep, ptr)
    for i in range(7):
        cols = set()
        for k in range(int(cptr[i]), int(cptr[i + 1])):
            cols |= set(range(int(rg[k, 0]), int(rg[k, 1])))
        want = set()
        for j in np.flatnonzero(keep[i].numpy()):
            want |= set(range(int(ptr[j]), int(ptr[j + 1])))
        assert cols == want
    # consecutive kept cells are merged into one range
    assert rg.shape[0] <= int(keep.sum())


def test_all_pairs_mask_equals_dense_native():
    x, y = cloud(300, 2, 3), cloud(250, 2, 4, shift=0.5)
    a = torch.full((300,), 1 / 300, dtype=torch.float64)
    b = torch.full((250,), 1 / 250, dtype=torch.float64)
    cx, cy = ms.grid_clusters(x, a, 0.5), ms.grid_clusters(y, b, 0.5)
    keep = torch.ones(cx.ptr.shape[0] - 1, cy.ptr.shape[0] - 1, dtype=torch.bool)
    op = ms.MultiscaleOp(x, y, Cost(), cx, cy, keep)
    assert op.pairs == 300 * 250
    dense = Native().bind(x, y, Cost())
    h = cloud(250, 1, 5)[:, 0]
    k = cloud(300, 1, 6)[:, 0]
    assert_allclose(op.rows(h, 0.1).numpy(), dense.rows(h, 0.1).numpy(), rtol=1e-13)
    assert_allclose(op.cols(k, 0.1).numpy(), dense.cols(k, 0.1).numpy(), rtol=1e-13)


@pytest.fixture
def small_grid(monkeypatch):
    # About 400 cells: a 2000-point problem is truncated for real.
    monkeypatch.setattr(ms, "CLUSTERS", 400)
    monkeypatch.setattr(ms, "MAX_CLUSTERS", 400)


def box(n, seed, shift=0.0):
    """Uniform points in [0, 4]^2 (plus a shift)."""
    g = torch.Generator().manual_seed(seed)
    return 4.0 * torch.rand(n, 2, generator=g, dtype=torch.float64) + shift


@pytest.mark.parametrize("cost", ["sqeuclidean", "euclidean"])
def test_multiscale_matches_all_pairs(cost, small_grid):
    x = box(2000, 7).requires_grad_()
    y = box(1800, 8, shift=0.3).requires_grad_()
    # eps far below the coarse level (eps_c = side^p, side ~ 0.2); tol 1e-4
    # keeps the run short (Sinkhorn converges slowly at eps / diameter^p ~ 1e-3).
    eps = 0.01 if cost == "sqeuclidean" else 0.05
    kw = dict(eps=eps, cost=cost, tol=1e-4, max_iter=5000)
    rn = otgen.sinkhorn(x, y, backend="native", **kw)
    rm = otgen.sinkhorn(x, y, backend="multiscale", **kw)
    assert rm.backend == "multiscale" and rm.converged
    # Dropped pairs weigh < e^-12 of the kept ones: values agree far below tol.
    assert_allclose(rm.value.item(), rn.value.item(), rtol=1e-6)
    gn = torch.autograd.grad(rn.value, (x, y))
    gm = torch.autograd.grad(rm.value, (x, y))
    for u, v in zip(gm, gn):
        # The two runs stop at different iterates with marginal error < tol:
        # gradients agree to ~tol relative to their largest entry.
        scale = float(v.abs().max())
        assert_allclose(u.numpy(), v.numpy(), rtol=1e-3, atol=1e-3 * scale)


def test_multiscale_truncates(small_grid):
    x, y = box(2000, 9), box(2000, 10, shift=0.3)
    a = torch.full((2000,), 1 / 2000, dtype=torch.float64)
    stop = Stop(tol=1e-6, rtol=None, marginal=True)
    kw = dict(rho=None, scaling=0.8, stop=stop, max_iter=1000, symmetric=False)
    op, (f, g), eps_c = sk._multiscale_start(x, y, a, a, Cost(), 0.01, **kw)
    assert 0.01 <= eps_c < 0.1
    assert op.pairs < 0.25 * 2000 * 2000  # most pairs are dropped


def test_divergence_multiscale_matches_native(small_grid):
    x, y = box(1500, 11), box(1600, 12, shift=0.5)
    kw = dict(eps=0.01, tol=1e-4, max_iter=5000)
    sn = otgen.sinkhorn_divergence(x, y, backend="native", **kw)
    sm = otgen.sinkhorn_divergence(x, y, backend="multiscale", **kw)
    assert_allclose(float(sm), float(sn), rtol=1e-6)


def test_multiscale_errors_say_why():
    x, y = cloud(20, 5, 0), cloud(20, 5, 1)
    with pytest.raises(ValueError, match="multiscale' cannot run.*dimension 5 > 3"):
        otgen.sinkhorn(x, y, eps=0.5, backend="multiscale")
    with pytest.raises(ValueError, match="multiscale' cannot run.*unbalanced"):
        otgen.sinkhorn(x[:, :2], y[:, :2], eps=0.5, reach=1.0, backend="multiscale")
    with pytest.raises(ValueError, match="multiscale' cannot run.*only Sinkhorn"):
        mmd(x, y, backend="multiscale")
