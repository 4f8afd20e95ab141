r"""Exact c-transforms over all pairs without the n x m matrix.

For potentials :math:`g` on the points :math:`y_j`, the c-transform at
:math:`x_i` is

.. math::
    g^c(x_i) = \min_j\; c(x_i, y_j) - g_j ,

and the largest violation of the dual constraints :math:`f_i + g_j \le c_{ij}`
is :math:`\max_i (f_i - g^c(x_i))^+`. The certified sparse solver
(:mod:`otgen.ot._exact_multiscale`) needs this minimum, and its minimiser, for
every row at each round. Two reductions compute it, behind one protocol:

- :class:`TreeSearch`, for the costs :math:`\|x - y\|_q^p` up to
  ``TREE_MAX_DIM`` dimensions: branch and bound on a k-d tree over the
  :math:`y_j`, each node bounded below by its distance to :math:`x_i` minus
  the largest :math:`g_j` it holds (:mod:`otgen.ot._kdsearch`). Exact for any
  potentials; fast when they vary smoothly in space, as dual potentials do
  for the squared Euclidean cost (about a second per 1e5 rows in 2-D and
  3-D). For :math:`p = 1` the reduced costs are nearly flat along transport
  rays, and the search visits many more leaves.
- :class:`BlockScan`, for callable costs and high dimension: the rows in
  blocks of about 2^22 pairs, O(nm) time and O(m) extra memory per row.

Both return the minimiser ``j*`` per row; the solver recomputes
:math:`c(x_i, y_{j^*}) - g_{j^*}` from coordinate differences, so the reported
violation carries no cancellation error.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np
import torch

from otgen.ot.costs import Cost

__all__ = ["CTransform", "TreeSearch", "BlockScan", "choose_ctransform"]

_BLOCK_PAIRS = 1 << 22  # pairs per block of BlockScan (32 MiB in float64)
TREE_MAX_DIM = 8  # k-d tree search up to here, a scan beyond
_MIN_ROWS = 2048  # rows per thread of the tree search, at least


class CTransform(Protocol):
    """Minimiser of :math:`c(x_i, y_j) - g_j` over all j, for every row i."""

    def argmin(
        self, x: np.ndarray, y: np.ndarray, g: np.ndarray, start: np.ndarray
    ) -> np.ndarray:
        """Indices ``j*`` of shape (n,); ``start`` is a guess per row."""
        ...


class BlockScan:
    """Exact argmin for any cost by a scan over row blocks (O(nm) time)."""

    def __init__(self, cost: Cost) -> None:
        self.cost = cost

    def argmin(
        self, x: np.ndarray, y: np.ndarray, g: np.ndarray, start: np.ndarray
    ) -> np.ndarray:
        r"""Indices ``j*`` of :math:`\min_j c(x_i, y_j) - g_j`, shape (n,)."""
        tx, ty, tg = (torch.from_numpy(np.ascontiguousarray(t)) for t in (x, y, g))
        step = max(1, _BLOCK_PAIRS // max(y.shape[0], 1))
        out = np.empty(x.shape[0], dtype=np.int64)
        with torch.no_grad():
            for s in range(0, x.shape[0], step):
                red = self.cost.pairwise(tx[s : s + step], ty) - tg[None, :]
                out[s : s + step] = red.argmin(1).numpy()
        return out


class TreeSearch:
    r"""Exact argmin for the costs :math:`\|x - y\|_q^p` by branch and bound.

    A k-d tree over the columns (built once per cloud), per-node maxima of g,
    and a depth-first search from each row's guess (:mod:`otgen.ot._kdsearch`).
    """

    def __init__(self, cost: Cost) -> None:
        self.cost = cost
        self._y: np.ndarray | None = None
        self._tree: tuple | None = None

    def argmin(
        self, x: np.ndarray, y: np.ndarray, g: np.ndarray, start: np.ndarray
    ) -> np.ndarray:
        r"""Indices ``j*`` of :math:`\min_j c(x_i, y_j) - g_j`, shape (n,)."""
        from otgen.ot import _kdsearch as kd

        if self._y is not y:  # the same cloud in every round: one tree
            perm, lo, hi, st, en, le, ri = kd.build(np.ascontiguousarray(y), kd.LEAF)
            inv = np.empty_like(perm)
            inv[perm] = np.arange(perm.size)
            self._y, self._tree = (
                y,
                (perm, inv, np.ascontiguousarray(y[perm]), lo, hi, st, en, le, ri),
            )
        perm, inv, Y, lo, hi, st, en, le, ri = self._tree
        G = np.ascontiguousarray(g[perm], dtype=np.float64)
        gmax = kd.node_max(G, st, en, le, ri)
        x = np.ascontiguousarray(x, dtype=np.float64)
        init = inv[np.asarray(start, dtype=np.int64)]
        p, q = float(self.cost.p), float(self.cost.q)

        def rows(s: slice) -> np.ndarray:
            return kd.query(x[s], Y, G, lo, hi, le, ri, st, en, gmax, init[s], p, q)

        # The search releases the GIL: rows split over torch's thread count
        # (the user's setting, one pool size for all of otgen's loops).
        parts = min(torch.get_num_threads(), max(1, x.shape[0] // _MIN_ROWS))
        if parts == 1:
            return perm[rows(slice(None))]
        cut = np.linspace(0, x.shape[0], parts + 1).astype(int)
        with ThreadPoolExecutor(parts) as pool:
            pos = list(pool.map(rows, [slice(u, v) for u, v in zip(cut, cut[1:])]))
        return perm[np.concatenate(pos)]


def choose_ctransform(cost: Cost, d: int) -> CTransform:
    """The k-d tree search for named costs up to ``TREE_MAX_DIM``, else a scan.

    Beyond about eight dimensions a k-d tree prunes almost nothing, and the
    scan's vectorised blocks are faster.
    """
    if cost.fn is None and d <= TREE_MAX_DIM:
        return TreeSearch(cost)
    return BlockScan(cost)
