r"""Shared pieces of the discrete theory solvers: result types and LP helpers.

The finite problems of :mod:`otgen.theory.lp` are built on the row-major
vectorisation of an encoder plan :math:`\pi \in \mathbb{R}^{n \times m}`;
:func:`_row_sum` and :func:`_col_sum` are its marginal operators, and
:func:`_linprog` calls HiGHS at the tolerance every check assumes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from otgen._validation import check_cost_matrix, check_weights

__all__ = ["EncoderLP", "POTResult"]

_LP_TOL = 1e-10  # HiGHS feasibility / optimality tolerance


@dataclass(frozen=True)
class EncoderLP:
    r"""An optimal (possibly random) encoder on the prior atoms.

    Attributes
    ----------
    value : float
        :math:`\sum_{ij} \pi_{ij} C_{ij}` at the optimum (:math:`+\infty` if
        infeasible).
    plan : ndarray, shape (n, m)
        :math:`\pi_{ij} = p_i Q(z_j | x_i)`.
    encoder : ndarray, shape (n, m)
        :math:`Q(z_j | x_i)`, rows summing to 1.
    u, h : ndarray, shape (n,) and (m,)
        Dual variables: :math:`u_i - h_j \le C_{ij}` and
        :math:`p^\top u - r^\top h` = ``value`` (None where not computed).
    """

    value: float
    plan: np.ndarray | None
    encoder: np.ndarray | None
    u: np.ndarray | None = None
    h: np.ndarray | None = None


@dataclass(frozen=True)
class POTResult:
    r"""The penalised value :math:`D_{POT}(\lambda)` of a finite problem.

    Attributes
    ----------
    value : float
        :math:`D_{POT}(\lambda)` (for :func:`pot_mmd2`: the objective at the
        returned plan, an upper bound within ``certificate`` of the optimum).
    reconstruction : float
        :math:`\langle C, \pi\rangle`.
    penalty : float
        :math:`D_Z(Q_Z, P_Z)` at the optimum (not multiplied by lambda).
    plan : ndarray, shape (n, m)
        The encoder plan :math:`\pi`.
    q : ndarray, shape (m,)
        The aggregated posterior :math:`Q_Z = \pi^\top 1`.
    latent_plan : ndarray, shape (m, m) or None
        The coupling of :math:`Q_Z` and :math:`P_Z` (``pot_w1`` only).
    certificate : float
        An upper bound on ``value`` minus the true optimum (0 for the LPs,
        solved to HiGHS tolerance; the Frank-Wolfe gap for the QP).
    """

    value: float
    reconstruction: float
    penalty: float
    plan: np.ndarray
    q: np.ndarray
    latent_plan: np.ndarray | None
    certificate: float


def _setup(C, p, r) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Ct = check_cost_matrix(C)
    n, m = Ct.shape
    pt = check_weights(p, n, "p", Ct.double())
    rt = check_weights(r, m, "r", Ct.double())
    pn = pt.numpy().astype(np.float64)
    rn = rt.numpy().astype(np.float64)
    pn, rn = pn / pn.sum(), rn / rn.sum()
    return Ct.double().numpy(), pn, rn


def _row_sum(n: int, m: int) -> sp.csr_matrix:
    """(n, n m) matrix A with (A vec(pi))_i = sum_j pi_ij (row-major vec)."""
    return sp.kron(sp.eye(n), np.ones((1, m)), format="csr")


def _col_sum(n: int, m: int) -> sp.csr_matrix:
    """(m, n m) matrix B with (B vec(pi))_j = sum_i pi_ij."""
    return sp.kron(np.ones((1, n)), sp.eye(m), format="csr")


def _linprog(c, A_ub=None, b_ub=None, A_eq=None, b_eq=None, bounds=(0, None)):
    res = linprog(
        c,
        A_ub=A_ub,
        b_ub=b_ub,
        A_eq=A_eq,
        b_eq=b_eq,
        bounds=bounds,
        method="highs",
        options={
            "primal_feasibility_tolerance": _LP_TOL,
            "dual_feasibility_tolerance": _LP_TOL,
        },
    )
    if res.status not in (0, 2):
        warnings.warn(f"HiGHS stopped: {res.message}", UserWarning, stacklevel=3)
    return res


def _encoder(plan: np.ndarray, p: np.ndarray) -> np.ndarray:
    Q = np.zeros_like(plan)
    pos = p > 0
    Q[pos] = plan[pos] / p[pos, None]
    Q[~pos] = 1.0 / plan.shape[1]
    return Q


def _pot_finish(C, plan, q, pen, lam, latent=None, cert=0.0) -> POTResult:
    rec = float((C * plan).sum())
    return POTResult(rec + lam * pen, rec, float(pen), plan, q, latent, cert)
