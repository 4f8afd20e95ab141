r"""One-pass scans of a dense cost matrix, without (n, m) temporaries.

:func:`otgen.ot.exact.emd` needs four facts about C before it solves (are there
NaN or :math:`-\infty` entries, are there :math:`+\infty` entries, and the
smallest and largest finite entry) and two after (the non-zeros of the dense
plan POT returns, and the largest dual violation
:math:`\max_{ij} (f_i + g_j - C_{ij})^+`). NumPy needs a pass over C, and
often a boolean or float temporary of C's size, per fact; each loop here
reads C once. On dense problems the solve itself is O(nm) pivots' worth of
work, so these passes decide how far otgen's total sits above the bare solver
(``benchmarks/bench_exact.py``, the overhead columns).

Numba compiles the loops on first use (cached on disk).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["cost_stats", "max_violation", "support_and_violation"]


@njit(cache=True, nogil=True)
def _stats(C):
    n_bad = 0
    n_inf = 0
    lo = 0.0
    hi = 0.0
    for i in range(C.shape[0]):
        for j in range(C.shape[1]):
            v = C[i, j]
            if lo <= v <= hi:  # the common case; NaN fails both tests
                continue
            if v != v or v == -np.inf:
                n_bad += 1
            elif v == np.inf:
                n_inf += 1
            elif v > hi:
                hi = v
            else:
                lo = v
    return n_bad, n_inf, lo, hi


def cost_stats(C: np.ndarray) -> tuple[int, int, float, float]:
    r"""NaN or :math:`-\infty` count, :math:`+\infty` count, min and max of C.

    The min and max are over the finite entries and include 0 (as
    ``C.min(initial=0.0)`` and ``C.max(initial=0.0)``): ``max(hi, -lo)`` is
    :math:`\max |C|` over the finite entries.
    """
    n_bad, n_inf, lo, hi = _stats(C)
    return int(n_bad), int(n_inf), float(lo), float(hi)


@njit(cache=True, nogil=True)
def _support(G, C, f, g, rows, cols):
    k = 0
    worst = 0.0
    bad = False
    for i in range(G.shape[0]):
        fi = f[i]
        for j in range(G.shape[1]):
            v = fi + g[j] - C[i, j]
            if v > worst:
                worst = v
            elif v != v:
                bad = True
            if G[i, j] != 0.0:
                if k < rows.size:
                    rows[k] = i
                    cols[k] = j
                k += 1
    return k, np.nan if bad else worst


def support_and_violation(
    G: np.ndarray, C: np.ndarray, f: np.ndarray, g: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    r"""The non-zeros of a dense plan G and :func:`max_violation`, in one pass.

    Returns rows, columns and values of G's non-zero entries (row-major
    order) and :math:`\max_{ij} (f_i + g_j - C_{ij})^+` (NaN if a potential is
    NaN).
    """
    # A basic solution (what POT returns) has at most n + m - 1 non-zeros.
    cap = G.shape[0] + G.shape[1]
    rows, cols = np.empty(cap, np.int64), np.empty(cap, np.int64)
    k, worst = _support(G, C, f, g, rows, cols)
    if k > cap:  # not a basis: read the non-zeros again
        rows, cols = np.nonzero(G)
    else:
        rows, cols = rows[:k], cols[:k]
    return rows, cols, G[rows, cols], float(worst)


def max_violation(f: np.ndarray, g: np.ndarray, C: np.ndarray) -> float:
    r""":math:`\max_{ij} (f_i + g_j - C_{ij})^+` (forbidden pairs: C = +inf).

    NaN if a potential is NaN, so that a broken solve fails its certificate.
    The same loop as :func:`support_and_violation`, with C standing in for the
    plan and no room for its non-zeros (they are counted, not stored).
    """
    empty = np.empty(0, np.int64)
    return float(_support(C, C, f, g, empty, empty)[1])
