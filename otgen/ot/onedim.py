r"""Exact OT on the real line by sorting.

For a cost :math:`c(x, y) = h(x - y)` with :math:`h` convex (here
:math:`|x - y|^p`, :math:`p \ge 1`), the monotone (north-west corner) coupling of
the sorted supports is optimal, and

.. math::
    W_p^p(\alpha, \beta) = \int_0^1 |F_\alpha^{-1}(t) - F_\beta^{-1}(t)|^p\,dt,

a sum over the :math:`\le n + m - 1` intervals between the merged cumulative
weights. All accumulation is in float64, so float32 input stays exact at
:math:`n = 10^7` (the cumulative sums of float32 weights do not).

The differences :math:`x_i - y_j` along the coupling are computed on the
points divided by a power of two :math:`2^{e_1}` (exact) and raised to the
power p after a division by the power of two :math:`2^{e_2}` just above the
largest of them: :math:`W_p^p = 2^{(e_1 + e_2) p} \sum_k \Delta t_k |d_k /
2^{e_1 + e_2}|^p`, so no square overflows at coordinates of 1e154 or
underflows at 1e-160, and :func:`sorted_1d_distance` returns :math:`W_p` even
where :math:`W_p^p` is beyond float64.
"""

from __future__ import annotations

import math

import numpy as np

from otgen._validation import pow2_exponent, times_pow2
from otgen.ot._solvers import Solution

__all__ = ["sorted_1d", "sorted_1d_value", "sorted_1d_distance", "is_uniform"]


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


def _scaled(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(x / 2^e, y / 2^e, e)`` in float64 with all entries in [-1, 1]."""
    x64, y64 = x.astype(np.float64, copy=False), y.astype(np.float64, copy=False)
    e = pow2_exponent(max(float(np.abs(x64).max()), float(np.abs(y64).max())))
    return times_pow2(x64, -e), times_pow2(y64, -e), e


def _sum_powers(dt: np.ndarray | None, d: np.ndarray, p: float) -> tuple[float, int]:
    """``(s, e)`` with ``sum_k dt_k |d_k|^p = s 2^(e p)`` (``dt=None``: the mean)."""
    e = pow2_exponent(float(np.abs(d).max()) if d.size else 0.0)
    c = _power_abs(times_pow2(d, -e), p)
    return float(np.mean(c) if dt is None else np.dot(dt, c)), e


def _normalised(x, y, a, b, p) -> tuple[float, int]:
    """``(s, e)`` with W_p^p = s 2^(e p)."""
    xs, ys, e1 = _scaled(x, y)
    if a is None and b is None and x.shape[0] == y.shape[0]:
        s, e2 = _sum_powers(None, np.sort(xs) - np.sort(ys), p)
    else:
        s, e2 = _sum_powers(*_merge(xs, ys, a, b), p)
    return s, e1 + e2


def _overflow(what: str, s: float, e: float) -> ValueError:
    return ValueError(
        f"the {what} of these points, {s:.6g} x 2^{e:g}, overflows float64; "
        "divide x and y by a common length L first (W_p^p scales by L^p, W_p "
        "by L), or use otgen.ot.onedim.sorted_1d_distance for W_p."
    )


def sorted_1d_value(
    x: np.ndarray, y: np.ndarray, a: np.ndarray | None, b: np.ndarray | None, p: float
) -> float:
    """:math:`W_p^p` only: the fast path (two sorts and a mean when n = m uniform).

    ``a``/``b`` None mean uniform weights of total mass 1.

    Raises
    ------
    ValueError
        If :math:`W_p^p` overflows float64 (:func:`sorted_1d_distance` gives
        :math:`W_p`).
    """
    s, e = _normalised(x, y, a, b, p)
    value = times_pow2(s, e * p)
    if not math.isfinite(value):
        raise _overflow("transport cost W_p^p", s, e * p)
    return value


def sorted_1d_distance(
    x: np.ndarray, y: np.ndarray, a: np.ndarray | None, b: np.ndarray | None, p: float
) -> float:
    """:math:`W_p = (W_p^p)^{1/p}`, finite whenever :math:`W_p` is.

    Same arguments as :func:`sorted_1d_value`; the p-th root is taken before
    the power of two is restored.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([0.0, 1.0]) * 1e200  # W_2^2 = 4e400 overflows float64
    >>> sorted_1d_distance(x, x + 2e200, None, None, 2.0)
    2e+200
    """
    s, e = _normalised(x, y, a, b, p)
    return times_pow2(s ** (1.0 / p), e)


def _merge(x, y, a, b):
    """Interval lengths and differences of the north-west corner coupling."""
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
    return dt, x[ix][i] - y[iy][j]


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
    zero mass included, in O((n + m) log(n + m)). Costs, value and potentials
    are computed in units of :math:`2^{(e_1 + e_2) p}` (see the module
    docstring) and rescaled at the end.

    Raises
    ------
    ValueError
        If the value or the potentials overflow float64.
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
    xs, ys, e1 = _scaled(x, y)
    d = xs[ix][i] - ys[iy][j]
    e = e1 + pow2_exponent(float(np.abs(d).max()))
    cost = _power_abs(times_pow2(d, e1 - e), p)  # C along the staircase / 2^(e p)
    s = float(np.dot(dt, cost))
    # h_k = f[i_k]. When the row steps the column is shared with edge k - 1:
    # f[i_k] = C_k - g[j_{k-1}] = h_{k-1} + C_k - C_{k-1}; then g[j_k] = C_k - h_k.
    incr = np.zeros(i.shape[0])
    incr[1:] = np.where(from_a, cost[1:] - cost[:-1], 0.0)
    h = np.cumsum(incr)
    f = np.empty(n)
    g = np.empty(m)
    f[ix[i]] = h  # later writes of the same row carry the same value
    g[iy[j]] = cost - h
    value = times_pow2(s, e * p)
    f, g = times_pow2(f, e * p), times_pow2(g, e * p)
    if not (math.isfinite(value) and np.isfinite(f).all() and np.isfinite(g).all()):
        raise _overflow("transport cost W_p^p or its potentials", s, e * p)
    keep = dt > 0
    return Solution(ix[i[keep]], iy[j[keep]], dt[keep], f, g, value, "sorted_1d", True)
