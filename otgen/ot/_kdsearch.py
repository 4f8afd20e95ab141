r"""Exact :math:`\min_j c(x_i, y_j) - g_j` by branch and bound on a k-d tree.

For the costs :math:`c(x, y) = \|x - y\|_q^p` and any potentials g, a node of
a k-d tree over the :math:`y_j` (a box B holding the points S) satisfies

.. math::
    \min_{j \in S}\; c(x, y_j) - g_j \;\ge\; \operatorname{dist}_q(x, B)^p
    - \max_{j \in S} g_j ,

so a depth-first search, nearer child first, that skips every node whose
bound is not below the best value found so far returns the exact minimiser.
Started from a good guess (the row's current partner) and with potentials
that vary smoothly in space (dual potentials do: for p = 1 they are
1-Lipschitz), it visits a few leaves per row in low dimension. The tree is
built once per cloud (median splits along the widest side); the per-node
maxima of g are recomputed for each call, in O(m).

Only :class:`otgen.ot._ctransform.TreeSearch` uses this module; Numba
compiles it on first use (cached on disk).
"""

from __future__ import annotations

import numpy as np
from numba import njit

LEAF = 16  # points per leaf


@njit(cache=True)
def build(y, leaf):
    """k-d tree over the rows of y: permutation, boxes and children per node."""
    m, d = y.shape
    cap = 4 * (m // leaf + 1) + 1  # leaves hold at least leaf / 2 points
    lo = np.empty((cap, d))
    hi = np.empty((cap, d))
    start = np.empty(cap, np.int64)
    end = np.empty(cap, np.int64)
    left = np.full(cap, -1, np.int64)
    right = np.full(cap, -1, np.int64)
    perm = np.arange(m)
    stack = np.empty(cap, np.int64)
    start[0], end[0] = 0, m
    count = 1
    top = 1
    stack[0] = 0
    while top > 0:
        top -= 1
        node = stack[top]
        s, e = start[node], end[node]
        for k in range(d):
            lo[node, k] = np.inf
            hi[node, k] = -np.inf
        for t in range(s, e):
            for k in range(d):
                v = y[perm[t], k]
                if v < lo[node, k]:
                    lo[node, k] = v
                if v > hi[node, k]:
                    hi[node, k] = v
        if e - s <= leaf:
            continue
        dim = 0
        for k in range(1, d):
            if hi[node, k] - lo[node, k] > hi[node, dim] - lo[node, dim]:
                dim = k
        sub = perm[s:e].copy()
        keys = np.empty(e - s)
        for t in range(e - s):
            keys[t] = y[sub[t], dim]
        order = np.argsort(keys)
        for t in range(e - s):
            perm[s + t] = sub[order[t]]
        mid = s + (e - s) // 2
        left[node], right[node] = count, count + 1
        start[count], end[count] = s, mid
        start[count + 1], end[count + 1] = mid, e
        stack[top] = count
        stack[top + 1] = count + 1
        top += 2
        count += 2
    return (
        perm,
        lo[:count],
        hi[:count],
        start[:count],
        end[:count],
        left[:count],
        right[:count],
    )


@njit(cache=True)
def node_max(G, start, end, left, right):
    """Largest g in each node (children are numbered after their parents)."""
    K = start.size
    out = np.empty(K)
    for node in range(K - 1, -1, -1):
        if left[node] < 0:
            best = -np.inf
            for t in range(start[node], end[node]):
                if G[t] > best:
                    best = G[t]
            out[node] = best
        else:
            out[node] = max(out[left[node]], out[right[node]])
    return out


@njit(inline="always")
def _dist(a, b, p, q):
    d = a.size
    if q == 2.0:
        s = 0.0
        for k in range(d):
            t = a[k] - b[k]
            s += t * t
        if p == 2.0:
            return s
        return np.sqrt(s) ** p
    if q == 1.0:
        s = 0.0
        for k in range(d):
            s += abs(a[k] - b[k])
        return s**p
    if q == np.inf:
        s = 0.0
        for k in range(d):
            t = abs(a[k] - b[k])
            if t > s:
                s = t
        return s**p
    s = 0.0
    for k in range(d):
        s += abs(a[k] - b[k]) ** q
    return s ** (p / q)


@njit(inline="always")
def _box(x, lo, hi, p, q):
    d = x.size
    s = 0.0
    for k in range(d):
        t = lo[k] - x[k]
        u = x[k] - hi[k]
        if u > t:
            t = u
        if t < 0.0:
            t = 0.0
        if q == 2.0:
            s += t * t
        elif q == 1.0:
            s += t
        elif q == np.inf:
            if t > s:
                s = t
        else:
            s += t**q
    if q == 2.0:
        return s if p == 2.0 else np.sqrt(s) ** p
    if q == 1.0 or q == np.inf:
        return s**p
    return s ** (p / q)


@njit(cache=True, nogil=True)
def query(x, Y, G, lo, hi, left, right, start, end, gmax, init, p, q):
    """Position (in the tree's order) of each row's minimiser of c - g."""
    n = x.shape[0]
    out = np.empty(n, np.int64)
    for i in range(n):
        xi = x[i]
        arg = init[i]
        best = _dist(xi, Y[arg], p, q) - G[arg]
        stack = np.empty(128, np.int64)
        top = 1
        stack[0] = 0
        while top > 0:
            top -= 1
            node = stack[top]
            if _box(xi, lo[node], hi[node], p, q) - gmax[node] >= best:
                continue
            if left[node] < 0:
                for t in range(start[node], end[node]):
                    v = _dist(xi, Y[t], p, q) - G[t]
                    if v < best:
                        best = v
                        arg = t
                continue
            a, b = left[node], right[node]
            la = _box(xi, lo[a], hi[a], p, q) - gmax[a]
            lb = _box(xi, lo[b], hi[b], p, q) - gmax[b]
            if la > lb:
                a, b = b, a
                la, lb = lb, la
            if lb < best:
                stack[top] = b
                top += 1
            if la < best:
                stack[top] = a
                top += 1
        out[i] = arg
    return out
