r"""Coarse-to-fine ("multiscale") soft-min reductions for large Sinkhorn problems.

At a small eps the entropic plan of two large clouds is concentrated near the
graph of the transport map: the pairs (i, j) with
:math:`C_{ij} - f_i - g_j \gg \varepsilon` carry a weight
:math:`e^{(f_i + g_j - C_{ij}) / \varepsilon}` below float precision. The
multiscale solver :cite:`schmitzer2019stabilized` :cite:`feydy2020geometric`
(ch. 3) exploits it:

1. Both clouds are cut into the cells of a regular grid of side ``s``
   (:func:`grid_clusters`); each cell becomes one point at its barycentre
   carrying the cell's mass.
2. Sinkhorn runs on the cell barycentres (a small problem) with eps-scaling
   from the diameter down to :math:`\varepsilon_c = s^p`, where the
   clustering error is of the order of eps.
3. The coarse potentials are extended to every point by one soft-min
   (:math:`f(x) = \mathrm{smin}_J (\log b_J + g_J / \varepsilon_c -
   C(x, y_J) / \varepsilon_c)`), and cell pairs (I, J) are kept when
   :math:`C(x_I, y_J) - f_I - g_J \le \max(\tau \varepsilon_c, 30
   \varepsilon)` (``TRUNCATE`` = :math:`\tau`, ``FLOOR`` = 30), plus each
   cell's best partner (:func:`truncation_mask`).
4. The annealing continues on the points, each soft-min summing over the
   kept cell pairs only (:class:`MultiscaleOp`): the same native loops as the
   dense backend, over lists of column ranges.

At the target eps the dropped pairs weigh below :math:`e^{-30}` relative to
the kept ones, to the accuracy of the coarse potentials (which the margin
:math:`\tau \varepsilon_c` absorbs).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from otgen.ot._reduce import Native

__all__ = [
    "CLUSTERS",
    "MAX_CLUSTERS",
    "TRUNCATE",
    "FLOOR",
    "Clusters",
    "grid_clusters",
    "cell_side",
    "truncation_mask",
    "MultiscaleOp",
]

# Target number of grid cells per cloud: about 16 points per cell, within
# [CLUSTERS, MAX_CLUSTERS]. The coarse problem and the truncation mask have
# K^2 pairs (MAX_CLUSTERS: 2.7e8, a fraction of a second per coarse soft-min
# and 270 MB of mask).
CLUSTERS = 4096
MAX_CLUSTERS = 16384
# Keep the cell pairs whose reduced cost C - f - g is below
# max(TRUNCATE * eps_c, FLOOR * eps): TRUNCATE absorbs the error of the coarse
# potentials (measured at n = 2e4: 3, 6 and 12 gave the same value to 5e-10),
# FLOOR makes every dropped pair weigh below e^-30 at the target eps.
TRUNCATE = 4.0
FLOOR = 30.0


@dataclass
class Clusters:
    """A cloud sorted by grid cell.

    ``perm`` sorts the points by cell (``x[perm]``), ``inv`` undoes it;
    the points of cell ``k`` are ``x[perm][ptr[k]:ptr[k + 1]]``; ``centres``
    and ``weights`` are the cells' barycentres and masses.
    """

    perm: torch.Tensor
    inv: torch.Tensor
    ptr: torch.Tensor
    centres: torch.Tensor
    weights: torch.Tensor


def cell_side(z: torch.Tensor, target: int | None = None) -> float:
    """A grid side giving about ``target`` non-empty cells (default: see CLUSTERS).

    Starts from the bounding box of the central 98% of the points (outliers
    would make most cells empty) and halves the cell volume until the count
    of non-empty cells reaches ``target / 2``.
    """
    if target is None:
        target = min(MAX_CLUSTERS, max(CLUSTERS, z.shape[0] // 16))
    d = z.shape[1]
    zz = z.detach().to(torch.float64)
    if zz.shape[0] > 100_000:  # quantiles of a subsample (torch caps the size)
        g = torch.Generator().manual_seed(0)
        zz = zz[torch.randperm(zz.shape[0], generator=g)[:100_000]]
    lo = torch.quantile(zz, 0.01, dim=0)
    hi = torch.quantile(zz, 0.99, dim=0)
    extent = float((hi - lo).clamp_min(1e-12).prod()) ** (1.0 / d)
    side = extent / target ** (1.0 / d)
    for _ in range(12):
        cells = torch.unique(torch.floor(zz / side).to(torch.int64), dim=0).shape[0]
        if cells >= target / 2:
            break
        side /= 2.0 ** (1.0 / d)
    return side


def grid_clusters(x: torch.Tensor, a: torch.Tensor, side: float) -> Clusters:
    """Group the points ``x`` (weights ``a``) by the cells of a grid of ``side``."""
    idx = torch.floor(x.detach().to(torch.float64) / side).to(torch.int64)  # (n, d)
    idx = idx - idx.amin(0)
    key = torch.zeros(x.shape[0], dtype=torch.int64)
    stride = 1
    for k in range(x.shape[1] - 1, -1, -1):
        key += idx[:, k] * stride
        stride *= int(idx[:, k].max()) + 1
    key_sorted, perm = torch.sort(key, stable=True)
    _, counts = torch.unique_consecutive(key_sorted, return_counts=True)
    ptr = torch.zeros(counts.shape[0] + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(counts, 0)
    labels = torch.repeat_interleave(torch.arange(counts.shape[0]), counts)
    xs = x.detach()[perm].to(torch.float64)
    w = a.detach()[perm].to(torch.float64)
    K = counts.shape[0]
    weights = torch.zeros(K, dtype=torch.float64).index_add_(0, labels, w)
    sums = torch.zeros(K, x.shape[1], dtype=torch.float64)
    sums.index_add_(0, labels, xs * w[:, None])
    plain = torch.zeros_like(sums).index_add_(0, labels, xs) / counts[:, None]
    centres = torch.where(
        weights[:, None] > 0, sums / weights.clamp_min(1e-300)[:, None], plain
    )
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.shape[0])
    return Clusters(perm, inv, ptr, centres.to(x.dtype), weights.to(a.dtype))


def truncation_mask(
    cx: torch.Tensor,
    cy: torch.Tensor,
    f: torch.Tensor,
    g: torch.Tensor,
    p: float,
    threshold: float,
) -> torch.Tensor:
    """Cell pairs to keep: ``C(cx_I, cy_J) - f_I - g_J <= threshold``.

    Also keeps each cell's best partner (row and column minima), so that no
    point is left without columns. Returns a (K_x, K_y) boolean tensor.
    """
    keep = torch.zeros(cx.shape[0], cy.shape[0], dtype=torch.bool)
    cy64 = cy.to(torch.float64)
    g64 = g.to(torch.float64)
    col_best = torch.full((cy.shape[0],), math.inf, dtype=torch.float64)
    col_arg = torch.zeros(cy.shape[0], dtype=torch.int64)
    step = max(1, 4_000_000 // max(cy.shape[0], 1))
    for s in range(0, cx.shape[0], step):
        blk = slice(s, min(s + step, cx.shape[0]))
        C = torch.cdist(cx[blk].to(torch.float64), cy64) ** p
        red = C - f[blk].to(torch.float64)[:, None] - g64[None, :]
        keep[blk] = red <= threshold
        rows = torch.arange(red.shape[0])
        keep[blk][rows, red.argmin(1)] = True
        bmin, barg = red.min(0)
        better = bmin < col_best
        col_best = torch.where(better, bmin, col_best)
        col_arg = torch.where(better, barg + s, col_arg)
    keep[col_arg, torch.arange(cy.shape[0])] = True
    return keep


def _ranges(keep: torch.Tensor, col_ptr: torch.Tensor):
    """CSR lists of column ranges per row cell, consecutive cells merged."""
    ri, cj = (t.numpy() for t in keep.nonzero(as_tuple=True))  # by row, then col
    ptr = col_ptr.numpy()
    new = np.ones(ri.shape[0], dtype=bool)
    new[1:] = (ri[1:] != ri[:-1]) | (cj[1:] != cj[:-1] + 1)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], ri.shape[0]) - 1
    rg = np.stack([ptr[cj[starts]], ptr[cj[ends] + 1]], 1).astype(np.int64)
    cptr = np.zeros(keep.shape[0] + 1, dtype=np.int64)
    np.add.at(cptr, ri[starts] + 1, 1)
    return torch.from_numpy(np.cumsum(cptr)), torch.from_numpy(np.ascontiguousarray(rg))


class MultiscaleOp:
    """Block-sparse soft-mins over the kept cell pairs (native loops, no autograd).

    The :class:`otgen.ot._reduce.SoftminOp` of the
    :class:`otgen.ot._reduce.Multiscale` reduction (``rows``, ``cols``,
    ``softmin``, ``astype``), by the :class:`otgen.ot._reduce.Native` loops
    restricted to the kept pairs; inputs and outputs are in the callers' point
    order.
    """

    backend = "multiscale"

    def __init__(self, x, y, cost, cx: Clusters, cy: Clusters, keep: torch.Tensor):
        self.native = Native()
        self.cost, self.p = cost, int(cost.p)
        self.cx, self.cy = cx, cy
        self.n, self.m = x.shape[0], y.shape[0]
        self.xs = x.detach()[cx.perm].contiguous()
        self.ys = y.detach()[cy.perm].contiguous()
        self.xt, self.yt = self.xs.T.contiguous(), self.ys.T.contiguous()
        cptr, rg = _ranges(keep, cy.ptr)
        self.units_rows = (cx.ptr.contiguous(), cptr, rg)
        cptr_t, rg_t = _ranges(keep.T.contiguous(), cx.ptr)
        self.units_cols = (cy.ptr.contiguous(), cptr_t, rg_t)
        self.pairs = self._pairs(keep)  # pairs summed per soft-min

    def _pairs(self, keep: torch.Tensor) -> int:
        nx = (self.cx.ptr[1:] - self.cx.ptr[:-1]).to(torch.float64)
        ny = (self.cy.ptr[1:] - self.cy.ptr[:-1]).to(torch.float64)
        return int(nx @ keep.to(torch.float64) @ ny)

    def rows(self, h: torch.Tensor, eps: float) -> torch.Tensor:
        """``-eps log sum_j exp(h_j - C_ij / eps)`` over the kept pairs, (n,)."""
        hs = h[self.cy.perm]
        lse = self.native.lse_units(self.xs, self.yt, hs, eps, self.p, self.units_rows)
        return lse.mul_(-eps)[self.cx.inv]

    def cols(self, h: torch.Tensor, eps: float) -> torch.Tensor:
        """``-eps log sum_i exp(h_i - C_ij / eps)`` over the kept pairs, (m,)."""
        hs = h[self.cx.perm]
        lse = self.native.lse_units(self.ys, self.xt, hs, eps, self.p, self.units_cols)
        return lse.mul_(-eps)[self.cy.inv]

    def softmin(self, x, y, h, eps: float) -> torch.Tensor:
        """Differentiable soft-min over the kept pairs (see ``Native.softmin``)."""
        out = self.native.softmin(
            x[self.cx.perm],
            y[self.cy.perm],
            h[self.cy.perm],
            eps,
            self.cost,
            self.units_rows,
            self.units_cols,
        )
        return out[self.cx.inv]

    def astype(self, dtype: torch.dtype) -> MultiscaleOp:
        """The same kept pairs over the points cast to ``dtype``."""
        op = copy.copy(self)
        op.xs, op.ys = self.xs.to(dtype), self.ys.to(dtype)
        op.xt, op.yt = op.xs.T.contiguous(), op.ys.T.contiguous()
        return op
