r"""Exact optimal transport: value, sparse plan and dual potentials.

Solves the Kantorovich linear program

.. math::
    \mathrm{OT}_c(\alpha, \beta) = \min_{P \ge 0,\; P 1 = a,\; P^\top 1 = b}
    \sum_{ij} P_{ij} C_{ij}
    = \max_{f_i + g_j \le C_{ij}} \langle a, f\rangle + \langle b, g\rangle,

with four solvers behind one result type: POT's C++ network simplex (general
weights, :math:`n \ne m`), SciPy's Jonker-Volgenant assignment (:math:`n = m`,
uniform weights), the sorted closed form on the line, and a certified
multiscale solver for point clouds that never forms the n x m matrix
(:mod:`otgen.ot._exact_multiscale`).

Every result carries a certificate: dual potentials with
:math:`f_i + g_j \le C_{ij}` up to ``max_dual_violation`` and a duality gap.
Both are judged relative to the cost scale (the largest cost the solver saw);
a result whose certificate fails is never ``converged=True``.
"""

from __future__ import annotations

import warnings
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
from otgen.ot._batch import is_batched, over_batch
from otgen.ot._exact_multiscale import dense_costs, multiscale_exact, pair_costs
from otgen.ot._solvers import (
    Solution,
    assignment,
    fill_zero_weight_duals,
    network_simplex,
    sparse_simplex,
)
from otgen.ot.costs import Cost, CostLike, resolve_cost
from otgen.ot.onedim import is_uniform, sorted_1d, sorted_1d_distance
from otgen.ot.result import OTResult, TransportPlan

__all__ = ["emd", "exact_ot", "wasserstein"]

Solver = Literal["auto", "network_simplex", "assignment", "sorted_1d", "multiscale"]
_SOLVERS = ("auto", "network_simplex", "assignment", "sorted_1d", "multiscale")
_GIVEN = "given matrix C"
_MAX_CHECK = 4_000_000  # pairs up to which the certificate is checked on the line
# 'auto' rules, measured by benchmarks/bench_exact.py (benchmarks/README.md).
# sqeuclidean: the multiscale solver from this many pairs (n = m = 2000 in 2-D,
# 3000 in 3-D to 8-D, where its k-d tree c-transform still prunes).
MULTISCALE_MIN_PAIRS = {2: 4_000_000} | dict.fromkeys(range(3, 9), 9_000_000)
DENSE_MAX_PAIRS = 250_000_000  # dense solvers: C, POT's copy and plan (6 GB)
# Entries above this multiple of the typical cost are solved as forbidden and
# checked by the certificate: POT's simplex loses the others' digits next to
# them (its artificial costs scale with the largest entry).
_HUGE = 1e8


def _np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64, copy=False)


def _scan():
    """:mod:`otgen.ot._scan`, imported on first use.

    Numba (0.4 s to import) is not loaded by ``import otgen``.
    """
    from otgen.ot import _scan

    return _scan


def _frame(x: torch.Tensor, y: torch.Tensor, cost: Cost) -> tuple[np.ndarray, float]:
    """Centre and diagonal D of the pooled bounding box; D^p is the cost scale.

    Named costs are solved on ``(x - centre) / D`` (every cost at most 1) and
    scaled back by :math:`D^p`: no overflow or underflow of the costs, and
    values scale-equivariant.
    """
    lo = torch.minimum(x.detach().amin(0), y.detach().amin(0)).double().cpu()
    hi = torch.maximum(x.detach().amax(0), y.detach().amax(0)).double().cpu()
    lo, hi = lo.numpy(), hi.numpy()
    centre = 0.5 * lo + 0.5 * hi
    half = 0.5 * hi - 0.5 * lo  # no overflow for coordinates near the float max
    top = float(half.max(initial=0.0))
    log_d = np.log(2.0 * top) + 0.5 * np.log(((half / top) ** 2).sum()) if top else 0.0
    if log_d * cost.p >= 709.0:  # D^p would overflow float64
        raise ValueError(
            f"the transport cost overflows float64: the points span about "
            f"e^{log_d:.0f} (bounding-box diagonal), and costs reach e^"
            f"{log_d * cost.p:.0f}; rescale x and y (the transport cost scales by "
            "s^p for points scaled by s)."
        )
    D = 2.0 * top * float(np.sqrt(((half / top) ** 2).sum())) if top else 1.0
    return centre, (D if D > 0 else 1.0)


def _choose(n: int, m: int, d: int, cost: Cost) -> str:
    """The solver ``'auto'`` runs for point clouds (rules measured on this CPU).

    - d = 1 and a cost :math:`|x - y|^p`: the sorted closed form.
    - the squared Euclidean cost from ``MULTISCALE_MIN_PAIRS[d]`` pairs in
      d = 2 to 8, and any named cost past ``DENSE_MAX_PAIRS`` (the dense
      matrix would not fit): the multiscale solver. Not W1 below that: there
      the multiscale solver is 2-4x slower than the dense simplex (n = 3000
      to 5000), its reduced costs being flat along transport rays.
    - otherwise the dense network simplex. SciPy's assignment with its
      certificate (duals by shortest paths) was slower than the simplex at
      every uniform n = m measured (500 to 1500 points, d = 10 and 16), so
      ``'auto'`` never picks it.
    """
    if d == 1 and cost.fn is None:
        return "sorted_1d"
    if cost.fn is None and (
        n * m > DENSE_MAX_PAIRS
        or (cost.is_sqeuclidean and n * m >= MULTISCALE_MIN_PAIRS.get(d, np.inf))
    ):
        return "multiscale"
    return "network_simplex"


def _solve_matrix(
    a: np.ndarray,
    b: np.ndarray,
    C: np.ndarray,
    solver: str,
    max_iter: int | None,
    bounds: tuple[float, float] | None = None,
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
        lo, hi = bounds if bounds is not None else (float(C.min()), float(C.max()))
        scale = max(hi, -lo) or 1.0  # max |C|, without an (n, m) temporary
        scale = 1.0 if 1e-2 <= scale <= 1e4 else scale  # as network_simplex
        sol = assignment(C / scale if scale != 1.0 else C, max_iter)
        mass = float(a.sum())
        sol.vals *= mass
        sol.f, sol.g = sol.f * scale, sol.g * scale
        sol.value = float(np.dot(sol.vals, C[sol.rows, sol.cols]))
        return sol
    return network_simplex(a, b, C, max_iter, bounds=bounds)


def _solve_masked(
    a: np.ndarray, b: np.ndarray, C: np.ndarray, allowed: np.ndarray, max_iter
) -> Solution:
    """Exact OT on the ``allowed`` pairs only (forbidden or huge entries)."""
    rows, cols = np.nonzero(allowed)
    sol = sparse_simplex(a, b, rows, cols, C[rows, cols], max_iter)
    if sol is None:
        raise ValueError(
            "no transport plan avoids the forbidden pairs (C = inf): some mass "
            "of a cannot reach b through the allowed pairs; allow more pairs."
        )
    # Potentials of points without mass: c-transforms over the allowed pairs.
    Cm = np.where(allowed, C, np.inf)
    fill_zero_weight_duals(a, b, Cm, sol.f, sol.g)
    return sol


def _abs_max(C: np.ndarray) -> float:
    r""":math:`\max |C|` without an (n, m) temporary."""
    return max(float(C.max(initial=0.0)), -float(C.min(initial=0.0)))


def _certify(
    sol: Solution,
    a64: np.ndarray,
    b64: np.ndarray,
    viol: float | None,
    scale: float,
    tol: float,
) -> tuple[float, bool]:
    """Duality gap, and whether the certificate holds relative to ``scale``.

    ``scale`` is the largest cost the solver saw: the violation and the gap
    are judged against ``tol * scale`` (times the mass for the gap).
    """
    # b at a's mass, as the solvers see it: weights given in float32 differ in
    # mass by rounding, which would otherwise enter the gap times the
    # potentials' arbitrary constant.
    mass = float(a64.sum())
    b_eq = b64 * (mass / float(b64.sum()))
    gap = abs(sol.value - (float(a64 @ sol.f) + float(b_eq @ sol.g)))
    ok = gap <= tol * scale * max(mass, 1.0) and (viol is None or viol <= tol * scale)
    if sol.converged and not ok:
        warnings.warn(
            f"the {sol.solver} result fails its own certificate (largest dual "
            f"violation {viol if viol is not None else 0.0:.3g}, duality gap "
            f"{gap:.3g}, against {tol:g} x the cost scale {scale:.3g}): the value "
            "may not be optimal (converged=False). This happens when costs span "
            "more than about 12 orders of magnitude; rescale them, or mark "
            "forbidden pairs with inf in emd().",
            UserWarning,
            stacklevel=4,
        )
    return gap, sol.converged and ok


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
    tol: float,
    allowed: np.ndarray | None = None,
    stats: Any = None,
    frame: tuple[np.ndarray, np.ndarray, float] | None = None,
    scale: float | None = None,
) -> OTResult:
    like = a
    dtype, device = like.dtype, like.device
    a64, b64 = _np64(a), _np64(b)
    viol = sol.max_violation
    if frame is not None:
        # The value from coordinate differences on the plan's support: exact
        # for identical inputs, no cancellation in |x|^2 + |y|^2 - 2<x, y>.
        # ``frame``: the normalised points and the cost unit D^p.
        xn, yn, unit = frame
        pc = pair_costs(xn, yn, sol.rows, sol.cols, cost)
        sol.value = float(np.dot(sol.vals, pc)) * unit
        scale = unit
    if viol is None and C64 is not None:
        Cv = C64 if allowed is None else np.where(allowed, C64, np.inf)
        viol = _scan().max_violation(sol.f, sol.g, Cv)
        if scale is None:
            scale = _abs_max(C64)
    scale = scale if scale else 1.0
    gap, converged = _certify(sol, a64, b64, viol, scale, tol)
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
    extra = {"cost_scale": scale}
    if stats is not None:
        extra.update(
            levels=stats.levels, violations=stats.violations, seconds=stats.seconds
        )
    return OTResult(
        value=value,
        plan=plan,
        f=f,
        g=g,
        solver=sol.solver,
        converged=converged,
        duality_gap=gap,
        max_dual_violation=viol,
        cost=cost_name,
        value_description=desc,
        n_iter=sol.n_iter,
        rounds=None if stats is None else stats.rounds,
        n_edges=None if stats is None else stats.edges,
        extra=extra,
    )


def _check_tol(tol: Any) -> float:
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)):
        raise ValueError(
            f"tol must be a number in (0, 1) (got {tol!r}); it is the certificate's "
            "tolerance relative to the largest cost, e.g. tol=1e-9."
        )
    if not 0.0 < float(tol) < 1.0:
        raise ValueError(
            f"tol must be in (0, 1) (got {tol!r}); it is the certificate's "
            "tolerance relative to the largest cost, e.g. tol=1e-9."
        )
    return float(tol)


def _check_max_iter(max_iter: Any) -> int | None:
    if max_iter is None:
        return None
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)):
        raise ValueError(
            f"max_iter must be a positive integer or None (got {max_iter!r}); leave "
            "it as None for no cap."
        )
    if max_iter < 1:
        raise ValueError(
            f"max_iter must be >= 1 (got {max_iter}); leave it as None for no cap."
        )
    return int(max_iter)


def _cost_input(
    C: ArrayLike,
) -> tuple[torch.Tensor, np.ndarray | None, tuple[float, float] | None]:
    """Validate C, allowing +inf (forbidden pairs): (tensor, allowed mask, bounds).

    ``bounds``: the smallest and largest finite entry, each including 0 (None
    for input that is not a float matrix on the CPU). One pass over C
    (:func:`otgen.ot._scan.cost_stats`) finds NaN, -inf and +inf entries and
    the bounds together.
    """
    if isinstance(C, torch.Tensor):
        arr = C.detach().cpu().numpy() if C.is_floating_point() else None
    else:
        arr = np.asarray(C)
    if arr is None or arr.ndim != 2 or arr.dtype.kind != "f" or arr.size == 0:
        return check_cost_matrix(C), None, None
    n_bad, n_inf, lo, hi = _scan().cost_stats(arr)
    if not n_inf:
        # Raises if there are NaN or -inf entries, naming the first.
        return check_cost_matrix(C, known_finite=not n_bad), None, (lo, hi)
    allowed = ~np.isposinf(arr)
    t = C if isinstance(C, torch.Tensor) else torch.from_numpy(arr)
    Ct = check_cost_matrix(  # raises on NaN or -inf, not counting the +inf
        torch.where(torch.from_numpy(~allowed).to(t.device), 0.0, t),
        known_finite=not n_bad,
    )
    return torch.where(torch.from_numpy(allowed).to(t.device), Ct, t), allowed, (lo, hi)


def emd(
    a: ArrayLike | None,
    b: ArrayLike | None,
    C: ArrayLike,
    *,
    solver: Solver = "auto",
    max_iter: int | None = None,
    tol: float = 1e-9,
) -> OTResult:
    r"""Exact OT for a given cost matrix (the earth mover's problem).

    .. math::
        \min_{P \ge 0,\, P 1 = a,\, P^\top 1 = b} \sum_{ij} P_{ij} C_{ij}

    Parameters
    ----------
    a, b : array or Tensor, shape (n,) and (m,), or None
        Non-negative weights of equal total mass; None means uniform (1/n).
    C : array or Tensor, shape (n, m)
        Cost matrix (any sign). ``+inf`` marks a forbidden pair: no mass moves
        along it (a ``ValueError`` if no plan avoids the forbidden pairs).
        Entries more than 1e8 times the typical cost are handled the same way
        and then checked by the certificate, so that they cannot cost the
        other entries their digits.
    solver : {"auto", "network_simplex", "assignment"}, default="auto"
        ``"auto"`` runs the network simplex, which is faster than the
        assignment solver on every geometric workload measured
        (``benchmarks/bench_exact.py``). ``"assignment"`` needs n = m and
        uniform weights.
    max_iter : int, optional
        Iteration cap of the solver; None means no cap. A reached cap gives a
        ``UserWarning`` and ``converged=False``.
    tol : float, default=1e-9
        Certificate tolerance relative to the largest (allowed) cost: the
        result is ``converged`` only if the largest dual violation and the
        duality gap are at most ``tol`` times that cost.

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
        On NaN or -inf entries, negative weights, unequal masses, shapes that
        do not match, or forbidden pairs that leave no feasible plan.

    Notes
    -----
    The costs are divided by their largest magnitude and the weights by their
    mass before the solver runs (POT's network simplex has absolute
    tolerances), so ``emd(a, b, s * C).value == s * emd(a, b, C).value`` for
    every s > 0 :cite:`bonneel2011displacement`.

    Examples
    --------
    >>> import numpy as np
    >>> r = emd(None, None, np.array([[0.0, 1.0], [1.0, 0.0]]))
    >>> r.value, r.plan.nnz
    (0.0, 2)
    >>> float(emd(None, None, np.array([[0.0, np.inf], [1.0, 5.0]])).value)
    2.5
    """
    as_torch = is_torch(a, b, C)
    Ct, allowed, bounds = _cost_input(C)
    n, m = Ct.shape
    ta = check_weights(a, n, "a", Ct)
    tb = check_weights(b, m, "b", Ct)
    check_same_mass(ta, tb)
    check_choice(solver, "solver", _SOLVERS[:3])
    tol = _check_tol(tol)
    max_iter = _check_max_iter(max_iter)
    C64 = _np64(Ct)
    finite = (C64[allowed] if allowed is not None else C64).ravel()
    # The typical cost: the median of about 2000 evenly spaced entries (a full
    # median of C costs a tenth of the solve).
    step = max(1, finite.size // 2_000)
    typical = float(np.median(np.abs(finite[::step]))) if finite.size else 0.0
    largest = max(bounds[1], -bounds[0]) if bounds else _abs_max(finite)
    if typical > 0 and largest > _HUGE * typical:
        huge = np.abs(C64) > _HUGE * typical
        allowed = ~huge if allowed is None else allowed & ~huge
        largest = _abs_max(C64[allowed])  # the certificate's scale: allowed costs
    if allowed is not None:
        sol = _solve_masked(_np64(ta), _np64(tb), C64, allowed, max_iter)
    else:
        sol = _solve_matrix(_np64(ta), _np64(tb), C64, solver, max_iter, bounds=bounds)
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
        tol=tol,
        allowed=allowed,
        scale=largest,
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
    tol: float = 1e-9,
    progress: bool | None = None,
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
    solver : {"auto", "network_simplex", "assignment", "sorted_1d", "multiscale"}
        ``"multiscale"`` never forms the n x m matrix: coarse-to-fine column
        generation on POT's sparse network simplex, certified by exact
        c-transforms over all pairs (:mod:`otgen.ot._exact_multiscale`); O(n
        log n) memory and, for named costs up to 8-D, a k-d tree search per
        round (callable costs and higher dimensions: O(nm) per round).
        ``"auto"`` (the rules, measured on ``benchmarks/bench_exact.py`` and
        ``benchmarks/bench_exact_clouds.py``):

        - the sorted closed form when d = 1 and the cost is :math:`|x - y|^p`;
        - ``"multiscale"`` for the squared Euclidean cost from 4e6 pairs in
          d = 2 (n = m = 2000) and 9e6 in d = 3 to 8 (``MULTISCALE_MIN_PAIRS``), and
          for any named cost past ``DENSE_MAX_PAIRS`` = 2.5e8 pairs (the dense
          solvers would need more than 6 GB);
        - the dense network simplex otherwise (SciPy's assignment, with its
          certificate, was slower at every size measured).
    max_iter : int, optional
        Iteration cap (the multiscale solver: network-simplex pivots per
        solve); None means none (see :func:`emd`).
    tol : float, default=1e-9
        Certificate tolerance relative to the cost scale :math:`D^p`, with
        :math:`D` the diagonal of the pooled bounding box (the largest
        possible cost). ``converged`` is True only if the largest dual
        violation over all pairs and the duality gap are within it; the
        value then exceeds the optimum by at most the violation times the
        mass.
    progress : bool, optional
        A progress bar on standard error for the multiscale solver (one step
        per level, with the round and violation); None shows it from 1e9
        pairs.

    Returns
    -------
    OTResult
        ``value`` is the transport cost (:math:`W_2^2` for the default cost),
        computed from coordinate differences on the plan's support, with the
        sparse plan and a certificate (``max_dual_violation``,
        ``duality_gap``; ``rounds`` and ``n_edges`` for the multiscale
        solver). Torch input gives torch output, differentiable in ``x``,
        ``y``, ``a``, ``b`` (envelope theorem; GPU tensors are solved on the
        CPU and returned on their device).

    Raises
    ------
    ValueError
        On NaN/inf, empty input, mismatched dimensions or devices, negative
        weights, unequal masses, an unknown cost or solver, or a callable cost
        with ``solver="multiscale"``.

    Notes
    -----
    Network simplex :cite:`bonneel2011displacement`; multiscale column
    generation after :cite:`schmitzer2016sparse` and
    :cite:`gerber2017multiscale`; background in :cite:`peyre2019computational`.

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
    tol = _check_tol(tol)
    max_iter = _check_max_iter(max_iter)
    if progress is not None and not isinstance(progress, bool):
        raise ValueError(
            f"progress must be True, False or None (automatic: from 1e9 pairs), "
            f"got {progress!r}"
        )
    c = resolve_cost(cost, p=p, q=q)
    n, m, d = tx.shape[0], ty.shape[0], tx.shape[1]
    line = d == 1 and c.fn is None
    if solver == "sorted_1d" and not line:
        raise ValueError(
            f"solver='sorted_1d' needs points on the line and a cost |x - y|^p (got "
            f"dimension {tx.shape[1]}, cost {c.name}); use solver='auto'."
        )
    if solver == "multiscale" and c.fn is not None:
        raise ValueError(
            "solver='multiscale' needs a named cost ('sqeuclidean', 'euclidean', "
            f"'minkowski' or a Cost), got the callable {c.name}; use "
            "solver='network_simplex' (it builds the matrix)."
        )
    if solver == "auto":
        solver = _choose(n, m, d, c)
    common = dict(a=ta, b=tb, x=tx, y=ty, cost=c, as_torch=as_torch)
    common.update(cost_name=c.name, tol=tol)
    a64, b64 = _np64(ta), _np64(tb)
    if c.fn is not None:
        # A callable cost is differentiated through its matrix.
        with torch.set_grad_enabled(torch.is_grad_enabled()):
            Ct = c.pairwise(tx, ty)
        C64 = _np64(Ct)
        sol = _solve_matrix(a64, b64, C64, solver, max_iter)
        return _finish(sol, C_t=Ct, C64=C64, **common)
    # Named costs: solved on normalised points (every cost <= 1), scaled back;
    # differentiated on the plan's support only (envelope theorem).
    centre, D = _frame(tx, ty, c)
    unit = D**c.p
    xn, yn = (_np64(tx) - centre) / D, (_np64(ty) - centre) / D
    common["frame"] = (xn, yn, unit)
    stats, C64 = None, None
    if line and solver == "sorted_1d":
        sol = sorted_1d(xn[:, 0], yn[:, 0], a64, b64, c.p)
    elif solver == "multiscale":
        show = n * m >= 10**9 if progress is None else progress
        sol, stats = multiscale_exact(
            xn, yn, a64, b64, c, tol=tol, max_iter=max_iter, progress=show
        )
    else:
        C64 = dense_costs(xn, yn, c)
        sol = _solve_matrix(a64, b64, C64, solver, max_iter)
    if sol.max_violation is None and (C64 is not None or n * m <= _MAX_CHECK):
        if C64 is None:  # the line: the certificate is checked up to 4e6 pairs
            C64 = dense_costs(xn, yn, c)
        sol.max_violation = _scan().max_violation(sol.f, sol.g, C64)
    sol.f, sol.g = sol.f * unit, sol.g * unit
    if sol.max_violation is not None:
        sol.max_violation *= unit
    return _finish(sol, C_t=None, C64=None, stats=stats, **common)


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
    x, y : array or Tensor, shape (n, d) and (m, d), or (B, n, d) and (B, m, d)
        Samples (a 1-D input is points on the line). With a leading batch
        axis, the B pairs ``(x[i], y[i])`` are solved one after the other
        (each keeps its own scales, schedule and certificate) and B values
        are returned.
    p : float, default=2
        Order, :math:`p \ge 1`.
    a, b : array or Tensor, optional
        Weights of equal mass; uniform when None. Batched: shape (B, n) (one
        vector per pair) or (n,) (shared).
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
        transport cost). Torch in, torch out (differentiable). Batched
        input: an array (NumPy, float64) or tensor of shape (B,).

    References
    ----------
    :cite:`santambrogio2015optimal` (chapter 2 for the line, chapter 5 for
    W_p); :cite:`peyre2019computational`.

    Examples
    --------
    >>> import numpy as np
    >>> wasserstein(np.array([0.0, 1.0]), np.array([2.0, 3.0]), p=1)
    2.0
    """
    if is_batched(x, y):  # (B, n, d): one value per pair, solved in turn
        return over_batch(wasserstein, x, y, a, b, p=p, method=method, **kwargs)
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
            # W_p itself (the root before the scale is restored): finite
            # wherever W_p is, even when W_p^p overflows float64.
            w = sorted_1d_distance(
                xs,
                ys,
                None if ta is None else _np64(ta),
                None if tb is None else _np64(tb),
                pv,
            )
            if as_torch:
                return torch.tensor(w, dtype=tx.dtype, device=tx.device)
            return w
    res = exact_ot(x, y, a, b, cost=Cost(q=2.0, p=pv), **kwargs)
    v = res.value
    if as_torch:
        return v.clamp_min(0.0) ** (1.0 / pv)
    return max(v, 0.0) ** (1.0 / pv)
