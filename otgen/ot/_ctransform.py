r"""Exact c-transforms over all pairs without the n x m matrix.

For potentials :math:`g` on the points :math:`y_j`, the c-transform at
:math:`x_i` is

.. math::
    g^c(x_i) = \min_j\; c(x_i, y_j) - g_j ,

and the largest violation of the dual constraints :math:`f_i + g_j \le c_{ij}`
is :math:`\max_i (f_i - g^c(x_i))^+`. The certified sparse solver
(:mod:`otgen.ot._multiscale_exact`) needs this minimum, and its minimiser, for
every row at each round. Two reductions compute it, behind one protocol:

- :class:`HullWalk`, for the squared Euclidean cost in dimension d <= 3. With
  :math:`H_j = \|y_j\|^2 - g_j`,

  .. math::
      \|x - y_j\|^2 - g_j = \|x\|^2 + H_j - 2\langle x, y_j\rangle ,

  so the minimiser is the vertex of the lower convex hull of the lifted points
  :math:`(y_j, H_j) \in \mathbb{R}^{d+1}` that is extreme in the direction
  :math:`(2x, -1)` (the lower hull is the regular triangulation of the power
  diagram of the :math:`y_j` with weights :math:`g_j`). The objective is
  concave and piecewise linear over that triangulation, so a walk that moves
  to a strictly better neighbour until none exists ends at the global
  minimum; started at the row's current partner it takes a few steps. Hull:
  O(m log m) by Qhull; walks: O(n x steps x degree). The argument is exact;
  floating point adds an error of the order of the rounding of
  :math:`\|y\|^2 + |g|`, which the solver's relative tolerance absorbs.
- :class:`BlockScan`, for any cost and dimension: the rows in blocks of about
  2^22 pairs, O(nm) time and O(m) extra memory per row.

Both return the minimiser ``j*`` per row; the solver recomputes
:math:`c(x_i, y_{j^*}) - g_{j^*}` from coordinate differences, so the reported
violation carries no cancellation error.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from otgen.ot.costs import Cost

__all__ = ["CTransform", "HullWalk", "BlockScan", "choose_ctransform"]

_BLOCK_PAIRS = 1 << 22  # pairs per block of BlockScan (32 MiB in float64)
HULL_MAX_DIM = 3  # Qhull's lifted hull in d + 1 <= 4 dimensions stays O(m log m)


class CTransform(Protocol):
    """Minimiser of :math:`c(x_i, y_j) - g_j` over all j, for every row i."""

    def argmin(
        self, x: np.ndarray, y: np.ndarray, g: np.ndarray, start: np.ndarray
    ) -> np.ndarray:
        """Indices ``j*`` of shape (n,); ``start`` is a guess per row."""
        ...

    def ring(self, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours of the columns ``j`` in the last structure searched.

        Returns ``(owner, col)``: ``col[k]`` neighbours ``j[owner[k]]``. Likely
        partners of a row next to its minimiser (empty when there is no
        structure, as for a scan).
        """
        ...


def _empty_ring() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)


def _csr_adjacency(simplices: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertex adjacency (CSR ``indptr``, ``indices``) of a simplicial complex."""
    k = simplices.shape[1]
    src, dst = [], []
    for s in range(k):
        for t in range(k):
            if s != t:
                src.append(simplices[:, s])
                dst.append(simplices[:, t])
    key = np.unique(np.concatenate(src) * np.int64(m) + np.concatenate(dst))
    u, v = np.divmod(key, m)
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(u, minlength=m), out=indptr[1:])
    return indptr, v


class HullWalk:
    """Exact argmin for the squared Euclidean cost by walks on the lower hull."""

    def __init__(self) -> None:
        self._adj: tuple[np.ndarray, np.ndarray] | None = None

    def ring(self, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours of ``j`` on the last lower hull (see :class:`CTransform`)."""
        if self._adj is None:
            return _empty_ring()
        indptr, nbr = self._adj
        deg = indptr[j + 1] - indptr[j]
        owner = np.repeat(np.arange(j.size), deg)
        first = np.repeat(indptr[j] - np.cumsum(deg) + deg, deg)
        return owner, nbr[first + np.arange(owner.size)]

    def argmin(
        self, x: np.ndarray, y: np.ndarray, g: np.ndarray, start: np.ndarray
    ) -> np.ndarray:
        r"""Indices ``j*`` of :math:`\min_j \|x_i - y_j\|^2 - g_j`, shape (n,)."""
        from scipy.spatial import ConvexHull, QhullError, cKDTree

        m, d = y.shape
        self._adj = None
        H = np.einsum("ij,ij->i", y, y) - g
        if m <= d + 1:
            return BlockScan(Cost()).argmin(x, y, g, start)
        try:
            hull = ConvexHull(np.column_stack([y, H]), qhull_options="Qt Qbb")
        except QhullError:  # flat or degenerate input: no hull to walk on
            return BlockScan(Cost()).argmin(x, y, g, start)
        lower = hull.simplices[hull.equations[:, d] < 0]
        indptr, nbr = self._adj = _csr_adjacency(lower, m)
        on_hull = np.zeros(m, dtype=bool)
        on_hull[lower.ravel()] = True
        cur = np.asarray(start, dtype=np.int64).copy()
        off = ~on_hull[cur]
        if off.any():
            verts = np.flatnonzero(on_hull)
            _, k = cKDTree(y[verts]).query(y[cur[off]])
            cur[off] = verts[k]
        val = H[cur] - 2.0 * np.einsum("ij,ij->i", x, y[cur])
        active = np.arange(x.shape[0])
        while active.size:
            owner, cand = self.ring(cur[active])
            deg = np.bincount(owner, minlength=active.size)
            cv = H[cand] - 2.0 * np.einsum("ij,ij->i", x[active[owner]], y[cand])
            starts = np.cumsum(deg) - deg
            best = np.minimum.reduceat(cv, starts)
            moved = best < val[active]
            if not moved.any():
                break
            # the best neighbour of each moving row (first among equal values)
            hit = np.flatnonzero(cv == np.repeat(best, deg))
            pick = np.full(active.size, -1, dtype=np.int64)
            pick[owner[hit[::-1]]] = hit[::-1]
            mv = active[moved]
            cur[mv] = cand[pick[moved]]
            val[mv] = best[moved]
            active = mv
        return cur


class BlockScan:
    """Exact argmin for any cost by a scan over row blocks (O(nm) time)."""

    def __init__(self, cost: Cost) -> None:
        self.cost = cost

    def ring(self, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """No structure: no neighbours (see :class:`CTransform`)."""
        del j
        return _empty_ring()

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


def choose_ctransform(cost: Cost, d: int) -> CTransform:
    """The hull walk for the squared Euclidean cost in d <= 3, else a scan."""
    if cost.is_sqeuclidean and 1 < d <= HULL_MAX_DIM:
        return HullWalk()
    return BlockScan(cost)
