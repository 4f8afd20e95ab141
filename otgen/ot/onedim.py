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
    return _merge(x, y, a, b, p, with_plan=False)[0]


def _merge(x, y, a, b, p, with_plan):
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
    cost = _power_abs(xs[i] - ys[j], p)
    value = float(np.dot(dt, cost))
    if not with_plan:
        return value, None
    return value, (ix, iy, xs, ys, i, j, dt, cost)


def _fill_unvisited(f, visited, g, xs, ys, p):
    r"""c-transform for points of zero mass (absent from the staircase), in place.

    :math:`f_i = \min_j |x_i - y_j|^p - g_j` keeps the certificate feasible.
    """
    seen = np.zeros(f.shape[0], dtype=bool)
    seen[visited] = True
    missing = np.nonzero(~seen)[0]
    chunk = max(1, (1 << 22) // max(ys.shape[0], 1))  # <= 32 MiB per block
    for s in range(0, missing.shape[0], chunk):
        idx = missing[s : s + chunk]
        f[idx] = (_power_abs(xs[idx, None] - ys[None, :], p) - g[None, :]).min(1)


def sorted_1d(
    x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray, p: float
) -> Solution:
    """Full solution on the line: plan, value and potentials.

    Potentials follow the staircase of the monotone plan, a spanning tree of
    the support (with a zero-mass edge inserted where both indices advance
    together): along it :math:`f_i + g_j = C_{ij}`, and since the cost matrix
    of sorted supports is Monge, the resulting potentials are feasible.
    """
    value, (ix, iy, xs, ys, i, j, dt, cost) = _merge(x, y, a, b, p, with_plan=True)
    # h_k = f[i_k] along the staircase. When i advances from edge k-1 to edge k,
    # f[i_k] = C(i_k, j_{k-1}) - g[j_{k-1}] = h_{k-1} + C(i_k, j_{k-1}) - C_{k-1}.
    step_i = np.zeros(i.shape[0], dtype=bool)
    step_i[1:] = i[1:] != i[:-1]
    incr = np.zeros(i.shape[0])
    k = np.nonzero(step_i)[0]
    incr[k] = _power_abs(xs[i[k]] - ys[j[k - 1]], p) - cost[k - 1]
    h = np.cumsum(incr)
    # -inf marks points of zero mass until their c-transform fills them in.
    f_sorted = np.full(x.shape[0], -np.inf)
    g_sorted = np.full(y.shape[0], -np.inf)
    f_sorted[i] = h  # later writes of the same i carry the same value
    g_sorted[j] = cost - h
    _fill_unvisited(f_sorted, i, g_sorted, xs, ys, p)
    _fill_unvisited(g_sorted, j, f_sorted, ys, xs, p)
    f = np.empty_like(f_sorted)
    g = np.empty_like(g_sorted)
    f[ix] = f_sorted
    g[iy] = g_sorted
    return Solution(ix[i], iy[j], dt, f, g, value, "sorted_1d", True)
