"""Result types shared by every OT solver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["TransportPlan", "OTResult", "SinkhornResult"]


def _value_str(v: Any) -> str:
    """A result's value (float or 0-d tensor, detached) for ``__repr__``."""
    return f"{float(v.detach()) if isinstance(v, torch.Tensor) else v:.6g}"


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
        The algorithm that ran: ``"network_simplex"``, ``"assignment"``,
        ``"sorted_1d"`` or ``"multiscale"``.
    converged : bool
        True only if the solver finished and its certificate holds: the
        largest dual violation and the duality gap are at most ``tol`` times
        the cost scale (``extra["cost_scale"]``, the largest cost). False (with
        a warning) if an iteration cap stopped the solver or the certificate
        failed.
    duality_gap : float
        :math:`|\text{value} - \langle a, f\rangle - \langle b, g\rangle|`.
    max_dual_violation : float or None
        :math:`\max_{ij}(f_i + g_j - C_{ij})^+` over **all** pairs (the
        multiscale solver computes it by exact c-transforms, without the
        matrix); None where it was not computed (large 1-D problems, where it
        holds by construction). The value exceeds the optimum by at most this
        times the mass.
    cost : str
        The ground cost.
    value_description : str
        What ``value`` is, in words.
    n_iter : int or None
        Iterations, where the solver reports them (the multiscale solver:
        column-generation rounds at the finest level).
    rounds : int or None
        Column-generation rounds at the finest level (multiscale solver).
    n_edges : int or None
        Largest number of candidate pairs the multiscale solver held at the
        finest level (the dense problem has n m).
    extra : dict
        Solver details: ``cost_scale``; for the multiscale solver also
        ``levels``, the violation after each round and the seconds spent.
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
    rounds: int | None = None
    n_edges: int | None = None
    extra: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        vs = _value_str(self.value)
        return (
            f"OTResult(value={vs} [{self.value_description}], solver={self.solver!r},"
            f" converged={self.converged}, duality_gap={self.duality_gap:.2e}, "
            f"plan={self.plan!r})"
        )


@dataclass(frozen=True)
class SinkhornResult:
    r"""The solution of an entropic (possibly unbalanced) OT problem.

    Attributes
    ----------
    value : float or Tensor
        The dual objective at the returned potentials (see
        ``value_description``); it equals the primal entropic cost at
        convergence. A torch result is differentiable in the points and the
        weights (envelope theorem, no unrolled iterations).
    primal : float or Tensor
        The primal entropic cost :math:`\langle P, C\rangle + \varepsilon
        \mathrm{KL}(P \| a \otimes b)` (+ the marginal KL penalties when
        unbalanced) of the returned plan; not differentiable.
    f, g : array or Tensor, shape (n,) and (m,)
        Dual potentials, in units of the cost.
    plan : EntropicPlan
        The plan :math:`P_{ij} = a_i b_j e^{(f_i + g_j - C_{ij})/\varepsilon}`
        on demand: ``dense()``, ``matvec(v)``, ``rmatvec(u)``, ``marginals()``,
        ``topk(k)`` (see :class:`otgen.ot.sinkhorn.EntropicPlan`).
    marginal_error : tuple of float
        :math:`(\|P 1 - a\|_1, \|P^\top 1 - b\|_1)` relative to the masses;
        for unbalanced problems the fixed-point residual in the same units.
    n_iter : int
        Soft-min sweeps (each updates both potentials), annealing included.
    converged : bool
        False if ``max_iter`` stopped the solver first (a warning was issued).
    eps : float
        The target regularisation, in units of the cost.
    eps_schedule : tuple of float
        The epsilon-scaling schedule that was run (ends with ``eps``).
    backend : str
        The reduction that ran: ``"dense"``, ``"chunked"`` or ``"keops"``.
    cost : str
        The ground cost.
    reach : float or None
        The unbalanced reach (None: balanced).
    value_description : str
        What ``value`` is, in words.
    """

    value: Any
    primal: Any
    f: Any
    g: Any
    plan: Any
    marginal_error: tuple[float, float]
    n_iter: int
    converged: bool
    eps: float
    eps_schedule: tuple[float, ...]
    backend: str
    cost: str
    reach: float | None
    value_description: str

    @property
    def dual(self) -> Any:
        """The dual objective (same as ``value``)."""
        return self.value

    def __repr__(self) -> str:
        vs = _value_str(self.value)
        return (
            f"SinkhornResult(value={vs} [{self.value_description}], eps={self.eps:g},"
            f" n_iter={self.n_iter}, converged={self.converged}, marginal_error="
            f"({self.marginal_error[0]:.1e}, {self.marginal_error[1]:.1e}), "
            f"backend={self.backend!r})"
        )
