"""Exact discrete OT solvers on a dense cost matrix, in float64 NumPy.

Each solver returns a :class:`Solution`: the sparse optimal plan, dual
potentials forming a certificate, and whether it converged. The public
functions in :mod:`otgen.ot.exact` dispatch here and wrap the result.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from otgen._imports import quiet_import

__all__ = [
    "Solution",
    "network_simplex",
    "sparse_simplex",
    "assignment",
    "fill_zero_weight_duals",
]

# POT's network simplex counts iterations in a uint64; this cap is never reached
# by a terminating run (see ANCHORS.md: POT's own default of 1e5 stops early).
UNBOUNDED_ITER = 2**62


@dataclass
class Solution:
    """Raw float64 solution of a discrete OT problem."""

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    f: np.ndarray
    g: np.ndarray
    value: float
    solver: str
    converged: bool
    n_iter: int | None = None
    max_violation: float | None = None  # over all pairs, where the solver knows it


def fill_zero_weight_duals(
    a: np.ndarray, b: np.ndarray, C: np.ndarray, f: np.ndarray, g: np.ndarray
) -> None:
    """Make potentials of zero-weight points feasible by c-transforms, in place.

    Points of zero mass do not enter the value, but the certificate
    ``f_i + g_j <= C_ij`` must hold for them too.
    """
    za, zb = a == 0, b == 0
    if za.any():
        f[za] = (C[za] - g[None, :]).min(axis=1)
    if zb.any():
        g[zb] = (C[:, zb] - f[:, None]).min(axis=0)


def _normalise(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    bounds: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    r"""Unit masses and costs in [-1, 1]: POT's simplex has absolute tolerances.

    Returns ``a / mass``, ``b`` scaled to the same mass to the last bit (as the
    C++ requires), the mass, the cost scale :math:`\max |c|` (1 if all zero)
    and a shift making the costs non-negative (see ``network_simplex``).
    """
    mass = float(a.sum())
    an = a / mass
    bn = b / float(b.sum())
    bn = bn * an.sum() / bn.sum()
    if bounds is None:
        bounds = float(c.min(initial=0.0)), float(c.max(initial=0.0))
    lo, hi = bounds
    scale = max(hi, -lo)  # max |c| without an (n, m) temporary
    scale = scale if scale > 0 else 1.0
    return an, bn, mass, scale, min(lo, 0.0)


def _check_code(code: int, cap: int) -> bool:
    if code in (0, 2):  # infeasible or unbounded: impossible after validation
        raise RuntimeError(
            f"the network simplex reported an infeasible or unbounded problem "
            f"(code {code}); please report this with the input that caused it."
        )
    if code != 1:
        warnings.warn(
            f"the network simplex stopped at max_iter={cap} before optimality: the "
            "plan and value are not optimal (converged=False). Increase max_iter "
            "or leave it as None (no cap).",
            UserWarning,
            stacklevel=5,
        )
    return code == 1


def network_simplex(
    a: np.ndarray,
    b: np.ndarray,
    C: np.ndarray,
    max_iter: int | None = None,
    bounds: tuple[float, float] | None = None,
) -> Solution:
    r"""Solve by POT's C++ network simplex (any weights, n != m).

    The costs are divided by :math:`\max |C|` and the weights by their mass
    before the call, and the potentials and plan scaled back: POT's
    tolerances are absolute, so this makes the solver scale-equivariant.
    ``bounds``: C's smallest and largest entry (each including 0), when the
    caller has them (a pass over C saved).
    """
    emd_c = quiet_import("ot.lp.emd_wrap").emd_c
    cap = UNBOUNDED_ITER if max_iter is None else int(max_iter)
    C = np.ascontiguousarray(C, dtype=np.float64)
    an, bn, mass, scale, shift = _normalise(a, b, C, bounds)
    # The C++ solver reports a 1 x 1 problem (after it drops zero weights) with
    # a negative cost as infeasible; a constant shift changes neither the plan
    # nor the certificate (f shifts by the same constant).
    if shift == 0 and 1e-2 <= scale <= 1e4:
        # Costs of moderate size go in as they are (no copy, POT's own bits):
        # the absolute tolerances bite only far from this range (costs of
        # 1e-12 gave W2^2 off by 1e-4, of 1e-16 six times too large).
        scale = 1.0
        Cs = C
    else:
        Cs = (C - shift) / scale
    G, _, f, g, code = emd_c(an, bn, Cs, cap, 1, None, None)
    converged = _check_code(code, cap)
    f = np.array(f, dtype=np.float64) * scale + shift
    g = np.array(g, dtype=np.float64) * scale
    fill_zero_weight_duals(a, b, C, f, g)
    # The plan's non-zeros and the certificate in one pass over G and C.
    from otgen.ot._scan import support_and_violation  # Numba: not at import

    rows, cols, vals, viol = support_and_violation(G, C, f, g)
    vals = vals * mass
    value = float(np.dot(vals, C[rows, cols]))
    return Solution(
        rows, cols, vals, f, g, value, "network_simplex", converged, max_violation=viol
    )


def sparse_simplex(
    a: np.ndarray,
    b: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    c: np.ndarray,
    max_iter: int | None = None,
) -> Solution | None:
    """The network simplex on the pairs (rows[k], cols[k]) only.

    None if no plan is supported on those pairs. Normalised as
    :func:`network_simplex`; the potentials are those of the sparse problem.
    """
    emd_c_sparse = quiet_import("ot.lp.emd_wrap").emd_c_sparse
    cap = UNBOUNDED_ITER if max_iter is None else int(max_iter)
    an, bn, mass, scale, shift = _normalise(a, b, c)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # POT warns on infeasible supports
        fs, ft, fv, _, f, g, code = emd_c_sparse(
            an,
            bn,
            rows.astype(np.uint64),
            cols.astype(np.uint64),
            (c - shift) / scale,
            cap,
        )
    if code == 0:
        return None
    converged = _check_code(code, cap)
    r, k = fs.astype(np.int64), ft.astype(np.int64)
    keep = fv != 0
    r, k, vals = r[keep], k[keep], fv[keep] * mass
    f = np.array(f, dtype=np.float64) * scale + shift
    g = np.array(g, dtype=np.float64) * scale
    key = rows.astype(np.int64) * b.size + cols
    order = np.argsort(key)
    at = order[np.searchsorted(key[order], r * b.size + k)]
    value = float(np.dot(vals, c[at]))
    return Solution(r, k, vals, f, g, value, "network_simplex", converged)


def assignment(C: np.ndarray, max_iter: int | None = None) -> Solution:
    """Solve a square problem with uniform weights by SciPy's Jonker-Volgenant.

    Potentials come from a queue-based Bellman-Ford relaxation (at most ``n``
    passes; typically a few): :mod:`otgen.ot._shortest_paths`.
    """
    from scipy.optimize import linear_sum_assignment

    from otgen.ot._shortest_paths import assignment_potentials  # Numba: lazily

    n = C.shape[0]
    rows, sigma = linear_sum_assignment(C)
    rounds = n + 1 if max_iter is None else int(max_iter)
    u, v, it, ok = assignment_potentials(C, sigma, rounds)
    if not ok:
        warnings.warn(
            f"the dual potentials of the assignment did not settle within "
            f"max_iter={rounds} relaxation rounds (converged=False); the plan is "
            "optimal but the certificate is not. Leave max_iter=None.",
            UserWarning,
            stacklevel=4,
        )
    vals = np.full(n, 1.0 / n)
    value = float(C[rows, sigma].mean())
    return Solution(rows, sigma, vals, u, v, value, "assignment", ok, it)
