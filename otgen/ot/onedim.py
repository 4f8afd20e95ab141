r"""Exact OT on the real line by sorting.

For a cost :math:`c(x, y) = h(x - y)` with :math:`h` convex (here
:math:`|x - y|^p`, :math:`p \ge 1`), the monotone (north-west corner) coupling of
the sorted supports is optimal, and

.. math::
    W_p^p(\alpha, \beta) = \int_0^1 |F_\alpha^{-1}(t) - F_\beta^{-1}(t)|^p\,dt,

a sum over the :math:`\le n + m - 1` intervals between the merged cumulative
weights. All accumulation is in float64, so float32 input stays exact at
:math:`n = 10^7` (the cumulative sums of float32 weights do not).
"""

from __future__ import annotations

import numpy as np

from otgen.ot._solvers import Solution

__all__ = ["sorted_1d", "sorted_1d_value", "is_uniform"]


def is_uniform(w: np.ndarray) -> bool:
    """True if all entries of ``w`` are equal."""
    return bool(w.size == 0 or (w == w[0]).all())


def _power_abs(d: np.ndarray, p: float) -> np.ndarray:
    d = np.abs(d)
    if p == 1:
        return d
    if p == 2:
        return d * d
    return d**p


def sorted_1d_value(
    x: np.ndarray, y: np.ndarray, a: np.ndarray | None, b: np.ndarray | None, p: float
) -> float:
    """:math:`W_p^p` only: the fast path (two sorts and a mean when n = m uniform).

    ``a``/``b`` None mean uniform weights of total mass 1.
    """
    if a is None and b is None and x.shape[0] == y.shape[0]:
        xs = np.sort(x)
        ys = np.sort(y)
        d = xs.astype(np.float64, copy=False) - ys
        return float(np.mean(_power_abs(d, p)))
    return _merge(x, y, a, b, p)


def _merge(x, y, a, b, p):
    n, m = x.shape[0], y.shape[0]
    ix = np.argsort(x, kind="stable")
    iy = np.argsort(y, kind="stable")
    wa = np.full(n, 1.0 / n) if a is None else a[ix].astype(np.float64)
    wb = np.full(m, 1.0 / m) if b is None else b[iy].astype(np.float64)
    ca, cb = np.cumsum(wa), np.cumsum(wb)
    total = ca[-1]
    cb *= total / cb[-1]
    cb[-1] = total
    t = np.concatenate([ca, cb])
    t.sort(kind="stable")
    dt = np.diff(t, prepend=0.0)
    keep = dt > 0
    t, dt = t[keep], dt[keep]
    i = np.minimum(np.searchsorted(ca, t, side="left"), n - 1)
    j = np.minimum(np.searchsorted(cb, t, side="left"), m - 1)
    xs = x[ix].astype(np.float64)
    ys = y[iy].astype(np.float64)
    return float(np.dot(dt, _power_abs(xs[i] - ys[j], p)))


def sorted_1d(
    x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray, p: float
) -> Solution:
    """Full solution on the line: plan, value and potentials.

    The north-west corner staircase over *all* points, zero masses included:
    each of the n + m - 2 inner breakpoints of the merged cumulative weights
    advances the row (ties first) or the column, so edge k is (i_k, j_k) with
    mass t_k - t_{k-1} (zero for ties and zero weights). It is a spanning tree;
    along it :math:`f_i + g_j = C_{ij}`, and since the cost matrix of sorted
    supports is Monge, these potentials are feasible for every pair, points of
    zero mass included, in O((n + m) log(n + m)).
    """
    n, m = x.shape[0], y.shape[0]
    ix = np.argsort(x, kind="stable")
    iy = np.argsort(y, kind="stable")
    ca = np.cumsum(a[ix].astype(np.float64))
    cb = np.cumsum(b[iy].astype(np.float64))
    total = ca[-1]
    cb *= total / cb[-1]
    cb[-1] = total
    t = np.concatenate([ca[:-1], cb[:-1]])
    order = np.argsort(t, kind="stable")
    from_a = order < n - 1  # this breakpoint advances the row
    i = np.concatenate([[0], np.cumsum(from_a)])
    j = np.concatenate([[0], np.cumsum(~from_a)])
    dt = np.diff(np.concatenate([[0.0], t[order], [total]]))
    xs = x[ix].astype(np.float64)
    ys = y[iy].astype(np.float64)
    cost = _power_abs(xs[i] - ys[j], p)  # C along the staircase
    value = float(np.dot(dt, cost))
    # h_k = f[i_k]. When the row steps the column is shared with edge k - 1:
    # f[i_k] = C_k - g[j_{k-1}] = h_{k-1} + C_k - C_{k-1}; then g[j_k] = C_k - h_k.
    incr = np.zeros(i.shape[0])
    incr[1:] = np.where(from_a, cost[1:] - cost[:-1], 0.0)
    h = np.cumsum(incr)
    f = np.empty(n)
    g = np.empty(m)
    f[ix[i]] = h  # later writes of the same row carry the same value
    g[iy[j]] = cost - h
    keep = dt > 0
    return Solution(ix[i[keep]], iy[j[keep]], dt[keep], f, g, value, "sorted_1d", True)
