r"""Exact optimal transport: value, sparse plan and dual potentials.

Solves the Kantorovich linear program

.. math::
    \mathrm{OT}_c(\alpha, \beta) = \min_{P \ge 0,\; P 1 = a,\; P^\top 1 = b}
    \sum_{ij} P_{ij} C_{ij}
    = \max_{f_i + g_j \le C_{ij}} \langle a, f\rangle + \langle b, g\rangle,

with three solvers behind one result type: POT's C++ network simplex (general
weights, :math:`n \ne m`), SciPy's Jonker-Volgenant assignment (:math:`n = m`,
uniform weights) and the sorted closed form on the line.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from otgen._arrays import ArrayLike, is_torch
from otgen._validation import (
    check_choice,
    check_cost_matrix,
    check_p,
    check_points,
    check_same_mass,
    check_weights,
)
from otgen.ot._solvers import Solution, assignment, network_simplex
from otgen.ot.costs import Cost, CostLike, resolve_cost
from otgen.ot.onedim import is_uniform, sorted_1d, sorted_1d_value
from otgen.ot.result import OTResult, TransportPlan

__all__ = ["emd", "exact_ot", "wasserstein"]

Solver = Literal["auto", "network_simplex", "assignment", "sorted_1d"]
_SOLVERS = ("auto", "network_simplex", "assignment", "sorted_1d")
_GIVEN = "given matrix C"
_MAX_CHECK = 4_000_000  # pairs up to which the certificate is checked on the line


def _np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64, copy=False)


def _max_violation(f: np.ndarray, g: np.ndarray, C: np.ndarray) -> float:
    r""":math:`\max_{ij} (f_i + g_j - C_{ij})^+` in row blocks of ~2^20 entries.

    Blocks keep the check's memory at 8 MiB instead of a second (n, m) matrix
    (200 MB at n = m = 5000, next to POT's C and plan) and out of page faults.
    """
    step = max(1, (1 << 20) // max(C.shape[1], 1))
    worst = 0.0
    for s in range(0, C.shape[0], step):
        inner = (g[None, :] - C[s : s + step]).max(1)  # max_j (g_j - C_ij)
        worst = max(worst, float((f[s : s + step] + inner).max()))
    return worst


def _solve_matrix(
    a: np.ndarray, b: np.ndarray, C: np.ndarray, solver: str, max_iter: int | None
) -> Solution:
    n, m = C.shape
    square_uniform = n == m and is_uniform(a) and is_uniform(b)
    if solver == "assignment":
        if not square_uniform:
            raise ValueError(
                f"solver='assignment' needs n == m and uniform weights (got n={n}, "
                f"m={m}, uniform a: {is_uniform(a)}, uniform b: {is_uniform(b)}); "
                "use solver='network_simplex' or 'auto'."
            )
        sol = assignment(C, max_iter)
        mass = float(a.sum())
        sol.vals *= mass
        sol.value *= mass
        return sol
    # 'auto' and 'network_simplex': the simplex is faster on geometric costs at
    # every size measured (benchmarks/bench_exact.py, ANCHORS.md).
    return network_simplex(a, b, C, max_iter)


def _finish(
    sol: Solution,
    *,
    a: torch.Tensor,
    b: torch.Tensor,
    x: torch.Tensor | None,
    y: torch.Tensor | None,
    C_t: torch.Tensor | None,
    C64: np.ndarray | None,
    cost: Cost,
    as_torch: bool,
    cost_name: str,
) -> OTResult:
    like = a
    dtype, device = like.dtype, like.device
    a64, b64 = _np64(a), _np64(b)
    gap = abs(sol.value - (float(a64 @ sol.f) + float(b64 @ sol.g)))
    viol = None
    if C64 is not None:
        viol = _max_violation(sol.f, sol.g, C64)
    elif x is not None and x.shape[0] * y.shape[0] <= _MAX_CHECK and cost.fn is None:
        xs, ys = _np64(x)[:, 0], _np64(y)[:, 0]
        Cl = np.abs(xs[:, None] - ys[None, :]) ** cost.p
        viol = _max_violation(sol.f, sol.g, Cl)
    if as_torch:
        rows = torch.from_numpy(np.asarray(sol.rows, dtype=np.int64)).to(device)
        cols = torch.from_numpy(np.asarray(sol.cols, dtype=np.int64)).to(device)
        vals = torch.from_numpy(sol.vals).to(dtype=dtype, device=device)
        f = torch.from_numpy(sol.f).to(dtype=dtype, device=device)
        g = torch.from_numpy(sol.g).to(dtype=dtype, device=device)
        value = torch.tensor(sol.value, dtype=dtype, device=device)
        grads = [t for t in (a, b, x, y, C_t) if t is not None and t.requires_grad]
        if grads:
            # Envelope theorem: d value / dC = P, d value / da = f (centred),
            # d value / db = g (centred). `expr - expr.detach()` is zero-valued
            # and carries exactly those gradients.
            pair = C_t[rows, cols] if C_t is not None else cost.paired(x[rows], y[cols])
            expr = (vals * pair).sum()
            expr = expr + ((a - a.detach()) * (f - f.mean())).sum()
            expr = expr + ((b - b.detach()) * (g - g.mean())).sum()
            value = value + (expr - expr.detach())
        plan = TransportPlan(rows, cols, vals, (a.shape[0], b.shape[0]))
    else:
        rows = np.asarray(sol.rows, dtype=np.int64)
        cols = np.asarray(sol.cols, dtype=np.int64)
        np_dtype = a64.dtype if dtype == torch.float64 else np.float32
        plan = TransportPlan(
            rows, cols, sol.vals.astype(np_dtype), (a.shape[0], b.shape[0])
        )
        f, g = sol.f.astype(np_dtype), sol.g.astype(np_dtype)
        value = sol.value
    desc = f"transport cost sum_ij P_ij C_ij, C = {cost_name}"
    if cost_name == _GIVEN:
        pass
    elif cost.fn is None and cost.q == 2 and cost.p in (1, 2):
        desc += f" (= W_{cost.p:g}^{cost.p:g})" if cost.p == 2 else " (= W_1)"
    elif cost.fn is None:
        desc += f" (= W_{cost.p:g}^{cost.p:g} for the {cost.q:g}-norm)"
    return OTResult(
        value=value,
        plan=plan,
        f=f,
        g=g,
        solver=sol.solver,
        converged=sol.converged,
        duality_gap=gap,
        max_dual_violation=viol,
        cost=cost_name,
        value_description=desc,
        n_iter=sol.n_iter,
    )


def emd(
    a: ArrayLike | None,
    b: ArrayLike | None,
    C: ArrayLike,
    *,
    solver: Solver = "auto",
    max_iter: int | None = None,
) -> OTResult:
    r"""Exact OT for a given cost matrix (the earth mover's problem).

    .. math::
        \min_{P \ge 0,\, P 1 = a,\, P^\top 1 = b} \sum_{ij} P_{ij} C_{ij}

    Parameters
    ----------
    a, b : array or Tensor, shape (n,) and (m,), or None
        Non-negative weights of equal total mass; None means uniform (1/n).
    C : array or Tensor, shape (n, m)
        Finite cost matrix (any sign).
    solver : {"auto", "network_simplex", "assignment"}, default="auto"
        ``"auto"`` runs the network simplex, which is faster than the
        assignment solver on every geometric workload measured
        (``benchmarks/bench_exact.py``). ``"assignment"`` needs n = m and
        uniform weights.
    max_iter : int, optional
        Iteration cap of the solver; None means no cap. A reached cap gives a
        ``UserWarning`` and ``converged=False``.

    Returns
    -------
    OTResult
        ``value`` is :math:`\sum_{ij} P_{ij} C_{ij}`; plan, potentials and
        certificate as described there. Torch input: differentiable in
        ``a``, ``b`` and ``C`` (envelope theorem: :math:`\partial/\partial C = P`,
        :math:`\partial/\partial a = f - \bar f`).

    Raises
    ------
    ValueError
        On non-finite entries, negative weights, unequal masses, or shapes
        that do not match.

    References
    ----------
    .. [1] N. Bonneel, M. van de Panne, S. Paris, W. Heidrich. Displacement
       interpolation using Lagrangian mass transport. ACM TOG 2011.

    Examples
    --------
    >>> import numpy as np
    >>> r = emd(None, None, np.array([[0.0, 1.0], [1.0, 0.0]]))
    >>> r.value, r.plan.nnz
    (0.0, 2)
    """
    as_torch = is_torch(a, b, C)
    Ct = check_cost_matrix(C)
    n, m = Ct.shape
    ta = check_weights(a, n, "a", Ct)
    tb = check_weights(b, m, "b", Ct)
    check_same_mass(ta, tb)
    check_choice(solver, "solver", _SOLVERS[:3])
    C64 = _np64(Ct)
    sol = _solve_matrix(_np64(ta), _np64(tb), C64, solver, max_iter)
    return _finish(
        sol,
        a=ta,
        b=tb,
        x=None,
        y=None,
        C_t=Ct,
        C64=C64,
        cost=Cost(),
        as_torch=as_torch,
        cost_name=_GIVEN,
    )


def exact_ot(
    x: ArrayLike,
    y: ArrayLike,
    a: ArrayLike | None = None,
    b: ArrayLike | None = None,
    *,
    cost: CostLike = "sqeuclidean",
    p: float | None = None,
    q: float = 2.0,
    solver: Solver = "auto",
    max_iter: int | None = None,
) -> OTResult:
    r"""Exact OT between two weighted point clouds.

    .. math::
        \mathrm{OT}_c(\alpha, \beta) = \min_{P \in \Pi(a, b)}
        \sum_{ij} P_{ij}\, c(x_i, y_j), \quad
        \alpha = \sum_i a_i \delta_{x_i},\ \beta = \sum_j b_j \delta_{y_j}.

    Parameters
    ----------
    x, y : array or Tensor, shape (n, d) and (m, d)
        Supports (a 1-D input of length n is n points on the line).
    a, b : array or Tensor, shape (n,) and (m,), optional
        Non-negative weights of equal total mass; uniform when None.
    cost : {"sqeuclidean", "euclidean", "minkowski"}, Cost or callable
        Ground cost :math:`c`; ``"minkowski"`` is :math:`\|x - y\|_q^p`. A
        callable ``fn(x, y)`` receives torch tensors and returns the (n, m)
        matrix.
    p, q : float, optional
        Power and norm for ``cost="minkowski"``.
    solver : {"auto", "network_simplex", "assignment", "sorted_1d"}
        ``"auto"``: the sorted closed form when d = 1 and the cost is
        :math:`|x - y|^p` (O((n + m) log(n + m)), no cost matrix), else the
        network simplex.
    max_iter : int, optional
        Iteration cap; None means none (see :func:`emd`).

    Returns
    -------
    OTResult
        ``value`` is the transport cost (:math:`W_2^2` for the default cost),
        with the sparse plan and a certificate. Torch input gives torch output,
        differentiable in ``x``, ``y``, ``a``, ``b`` (envelope theorem; GPU
        tensors are solved on the CPU and returned on their device).

    Raises
    ------
    ValueError
        On NaN/inf, empty input, mismatched dimensions or devices, negative
        weights, unequal masses, an unknown cost or solver.

    References
    ----------
    .. [1] N. Bonneel, M. van de Panne, S. Paris, W. Heidrich. Displacement
       interpolation using Lagrangian mass transport. ACM TOG 2011.
    .. [2] G. Peyré, M. Cuturi. Computational optimal transport. Foundations
       and Trends in Machine Learning 11(5-6), 2019.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> r = exact_ot(x, x + [0.0, 2.0])
    >>> r.value, r.solver
    (4.0, 'network_simplex')
    """
    as_torch = is_torch(x, y, a, b)
    tx, ty = check_points(x, y)
    ta = check_weights(a, tx.shape[0], "a", tx)
    tb = check_weights(b, ty.shape[0], "b", tx)
    check_same_mass(ta, tb)
    check_choice(solver, "solver", _SOLVERS)
    c = resolve_cost(cost, p=p, q=q)
    line = tx.shape[1] == 1 and c.fn is None
    if solver == "sorted_1d" and not line:
        raise ValueError(
            f"solver='sorted_1d' needs points on the line and a cost |x - y|^p (got "
            f"dimension {tx.shape[1]}, cost {c.name}); use solver='auto'."
        )
    if line and solver in ("auto", "sorted_1d"):
        sol = sorted_1d(_np64(tx)[:, 0], _np64(ty)[:, 0], _np64(ta), _np64(tb), c.p)
        return _finish(
            sol,
            a=ta,
            b=tb,
            x=tx,
            y=ty,
            C_t=None,
            C64=None,
            cost=c,
            as_torch=as_torch,
            cost_name=c.name,
        )
    # A callable cost is differentiated through its matrix; a named cost on the
    # plan's support only (cheaper), so its matrix is built without a graph.
    needs_graph = c.fn is not None and torch.is_grad_enabled()
    with torch.set_grad_enabled(needs_graph):
        Ct = c.pairwise(tx, ty)
    C64 = _np64(Ct)
    sol = _solve_matrix(_np64(ta), _np64(tb), C64, solver, max_iter)
    return _finish(
        sol,
        a=ta,
        b=tb,
        x=tx,
        y=ty,
        C_t=Ct if needs_graph else None,
        C64=C64,
        cost=c,
        as_torch=as_torch,
        cost_name=c.name,
    )


def wasserstein(
    x: ArrayLike,
    y: ArrayLike,
    p: float = 2,
    a: ArrayLike | None = None,
    b: ArrayLike | None = None,
    *,
    method: Literal["auto", "exact", "sinkhorn"] = "auto",
    **kwargs: Any,
):
    r"""The Wasserstein distance :math:`W_p` (the p-th root), for any p >= 1.

    .. math::
        W_p(\alpha, \beta) = \Big(\min_{P \in \Pi(a, b)}
        \sum_{ij} P_{ij} \|x_i - y_j\|_2^p\Big)^{1/p}

    Parameters
    ----------
    x, y : array or Tensor, shape (n, d) and (m, d)
        Samples (a 1-D input is points on the line).
    p : float, default=2
        Order, :math:`p \ge 1`.
    a, b : array or Tensor, optional
        Weights of equal mass; uniform when None.
    method : {"auto", "exact", "sinkhorn"}, default="auto"
        ``"exact"`` (``"auto"`` = ``"exact"``) solves the LP: sorting on the
        line, network simplex otherwise. ``"sinkhorn"`` returns
        :math:`S_\varepsilon^{1/p}`, the p-th root of the debiased Sinkhorn
        divergence (:func:`otgen.ot.divergence.sinkhorn_divergence`), which
        tends to :math:`W_p` as eps -> 0; without ``eps`` it uses
        :math:`\varepsilon = (s/10)^p`, :math:`s` the RMS spread of the pooled
        points (:func:`otgen.ot.sinkhorn.default_eps`).
    **kwargs
        Passed to :func:`exact_ot` (``solver``, ``max_iter``), or for
        ``method="sinkhorn"`` to the divergence (``eps``, ``tol``, ...).

    Returns
    -------
    float or Tensor
        :math:`W_p`, not :math:`W_p^p` (use :func:`exact_ot` for the
        transport cost). Torch in, torch out (differentiable).

    References
    ----------
    .. [1] F. Santambrogio. Optimal transport for applied mathematicians.
       Birkhäuser, 2015 (chapter 2 for the line, chapter 5 for W_p).
    .. [2] G. Peyré, M. Cuturi. Computational optimal transport. Foundations
       and Trends in Machine Learning 11(5-6), 2019.

    Examples
    --------
    >>> import numpy as np
    >>> wasserstein(np.array([0.0, 1.0]), np.array([2.0, 3.0]), p=1)
    2.0
    """
    pv = check_p(p)
    check_choice(method, "method", ("auto", "exact", "sinkhorn"))
    if method == "sinkhorn":
        from otgen.ot.divergence import sinkhorn_divergence

        s = sinkhorn_divergence(x, y, a, b, cost=Cost(q=2.0, p=pv), **kwargs)
        if isinstance(s, torch.Tensor):
            return s.clamp_min(0.0) ** (1.0 / pv)
        return max(s, 0.0) ** (1.0 / pv)
    as_torch = is_torch(x, y, a, b)
    needs_grad = (
        as_torch
        and torch.is_grad_enabled()
        and any(isinstance(t, torch.Tensor) and t.requires_grad for t in (x, y, a, b))
    )
    if not needs_grad and not kwargs:
        tx, ty = check_points(x, y)
        if tx.shape[1] == 1:
            ta = None if a is None else check_weights(a, tx.shape[0], "a", tx)
            tb = None if b is None else check_weights(b, ty.shape[0], "b", tx)
            if ta is not None or tb is not None:
                ta = ta if ta is not None else check_weights(None, tx.shape[0], "a", tx)
                tb = tb if tb is not None else check_weights(None, ty.shape[0], "b", tx)
                check_same_mass(ta, tb)
            xs = tx[:, 0].detach().cpu().numpy()
            ys = ty[:, 0].detach().cpu().numpy()
            val = sorted_1d_value(
                xs,
                ys,
                None if ta is None else _np64(ta),
                None if tb is None else _np64(tb),
                pv,
            )
            w = max(val, 0.0) ** (1.0 / pv)
            if as_torch:
                return torch.tensor(w, dtype=tx.dtype, device=tx.device)
            return w
    res = exact_ot(x, y, a, b, cost=Cost(q=2.0, p=pv), **kwargs)
    v = res.value
    if as_torch:
        return v.clamp_min(0.0) ** (1.0 / pv)
    return max(v, 0.0) ** (1.0 / pv)
