r"""Dual potentials of an optimal assignment by label-correcting shortest paths.

SciPy's ``linear_sum_assignment`` returns the matching :math:`\sigma` but no
potentials. With :math:`u_i = C_{i\sigma_i} - v_{\sigma_i}`, dual feasibility
:math:`u_i + v_j \le C_{ij}` reads

.. math::
    v_j \le v_{\sigma_i} + C_{ij} - C_{i\sigma_i},

the triangle inequalities of shortest paths in a graph with one arc per pair
(from column :math:`\sigma_i` to column :math:`j`), which has no negative
cycle because :math:`\sigma` is optimal. Bellman-Ford with a FIFO queue of
rows (a row is queued again only when the column it starts from improved),
each relaxation visible at once to the next row, finds them; Numba compiles
the loop on first use (cached on disk).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["assignment_potentials"]


@njit(cache=True, nogil=True)
def _relax(C, sigma, row_of, diag, v, max_work):
    n = C.shape[0]
    queue = np.arange(n)
    queued = np.ones(n, np.bool_)
    head = 0
    size = n
    work = 0
    while size > 0:
        if work >= max_work:
            return work, False
        i = queue[head]
        head = (head + 1) % n
        size -= 1
        queued[i] = False
        work += 1
        base = v[sigma[i]] - diag[i]
        for j in range(n):
            c = base + C[i, j]
            if c < v[j]:
                v[j] = c
                r = row_of[j]
                if not queued[r]:
                    queue[(head + size) % n] = r
                    size += 1
                    queued[r] = True
    return work, True


def assignment_potentials(
    C: np.ndarray, sigma: np.ndarray, max_rounds: int
) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Potentials ``(u, v)`` of the optimal assignment ``sigma`` of ``C``.

    Also returns the work in full passes over C and whether the relaxation
    settled within ``max_rounds`` passes.
    """
    n = C.shape[0]
    C = np.ascontiguousarray(C, dtype=np.float64)
    sigma = np.ascontiguousarray(sigma, dtype=np.int64)
    diag = C[np.arange(n), sigma]
    row_of = np.empty(n, dtype=np.int64)
    row_of[sigma] = np.arange(n)
    v = np.zeros(n)
    work, ok = _relax(C, sigma, row_of, diag, v, max_rounds * n)
    return diag - v[sigma], v, -(-int(work) // n), bool(ok)
