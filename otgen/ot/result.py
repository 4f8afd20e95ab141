"""Result types shared by every OT solver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["TransportPlan", "OTResult"]


@dataclass(frozen=True)
class TransportPlan:
    r"""A sparse transport plan :math:`P \in \mathbb{R}_+^{n \times m}`.

    Stored as coordinates: ``P[rows[k], cols[k]] = values[k]``. Exact solvers
    return basic solutions with at most :math:`n + m - 1` nonzeros.

    Attributes
    ----------
    rows, cols : array or Tensor of int64, shape (k,)
        Row and column indices of the nonzeros.
    values : array or Tensor, shape (k,)
        The transported masses (NumPy or torch, as the solver's input).
    shape : tuple of int
        ``(n, m)``.
    """

    rows: Any
    cols: Any
    values: Any
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        """Number of stored nonzeros."""
        return int(self.values.shape[0])

    def dense(self):
        """The plan as a dense (n, m) array or tensor (same kind as ``values``)."""
        if isinstance(self.values, torch.Tensor):
            P = torch.zeros(
                self.shape, dtype=self.values.dtype, device=self.values.device
            )
            P.index_put_((self.rows, self.cols), self.values, accumulate=True)
            return P
        P = np.zeros(self.shape, dtype=self.values.dtype)
        np.add.at(P, (self.rows, self.cols), self.values)
        return P

    def marginals(self):
        """Row and column sums ``(P 1, P^T 1)``."""
        if isinstance(self.values, torch.Tensor):
            r = torch.zeros(
                self.shape[0], dtype=self.values.dtype, device=self.values.device
            )
            c = torch.zeros(
                self.shape[1], dtype=self.values.dtype, device=self.values.device
            )
            return r.index_add(0, self.rows, self.values), c.index_add(
                0, self.cols, self.values
            )
        r = np.bincount(self.rows, weights=self.values, minlength=self.shape[0])
        c = np.bincount(self.cols, weights=self.values, minlength=self.shape[1])
        return r, c

    def __repr__(self) -> str:
        return f"TransportPlan(shape={self.shape}, nnz={self.nnz})"


@dataclass(frozen=True)
class OTResult:
    r"""The solution of a (balanced, exact) optimal transport problem.

    Attributes
    ----------
    value : float or Tensor
        The transport cost :math:`\sum_{ij} P_{ij} C_{ij}` at the optimum. For
        the cost :math:`\|x - y\|^p` this is :math:`W_p^p`, *not* :math:`W_p`
        (see ``value_description``). A torch result is differentiable with
        respect to the points, weights and cost matrix (envelope theorem).
    plan : TransportPlan
        The optimal coupling, sparse; ``plan.dense()`` gives the matrix.
    f, g : array or Tensor, shape (n,) and (m,)
        Dual potentials: :math:`f_i + g_j \le C_{ij}` for all pairs and
        :math:`\langle a, f\rangle + \langle b, g\rangle` = ``value`` (the
        certificate of optimality).
    solver : str
        The algorithm that ran: ``"network_simplex"``, ``"assignment"`` or
        ``"sorted_1d"``.
    converged : bool
        False if an iteration cap stopped the solver (a warning was issued).
    duality_gap : float
        :math:`|\text{value} - \langle a, f\rangle - \langle b, g\rangle|`.
    max_dual_violation : float or None
        :math:`\max_{ij}(f_i + g_j - C_{ij})^+`; None where it was not computed
        (large 1-D problems, where it holds by construction).
    cost : str
        The ground cost.
    value_description : str
        What ``value`` is, in words.
    n_iter : int or None
        Iterations, where the solver reports them.
    """

    value: Any
    plan: TransportPlan
    f: Any
    g: Any
    solver: str
    converged: bool
    duality_gap: float
    max_dual_violation: float | None
    cost: str
    value_description: str
    n_iter: int | None = None
    extra: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        v = self.value
        vs = f"{float(v.detach()) if isinstance(v, torch.Tensor) else v:.6g}"
        return (
            f"OTResult(value={vs} [{self.value_description}], solver={self.solver!r},"
            f" converged={self.converged}, duality_gap={self.duality_gap:.2e}, "
            f"plan={self.plan!r})"
        )
