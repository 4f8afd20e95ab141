r"""Entropic optimal transport: one log-domain Sinkhorn loop.

For weighted clouds :math:`\alpha = \sum_i a_i \delta_{x_i}` and
:math:`\beta = \sum_j b_j \delta_{y_j}` and a cost :math:`C_{ij} = c(x_i, y_j)`,

.. math::
    \mathrm{OT}_\varepsilon(\alpha, \beta) = \min_{P \ge 0}
    \langle P, C\rangle + \varepsilon\, \mathrm{KL}(P \,\|\, a \otimes b)
    + \rho\, \mathrm{KL}(P 1 \,\|\, a) + \rho\, \mathrm{KL}(P^\top 1 \,\|\, b),

with :math:`\rho = \infty` (hard marginal constraints) in the balanced case.
The loop works on the dual potentials :math:`(f, g)` through the soft-min

.. math::
    \operatorname{smin}_\varepsilon(h)_i = -\varepsilon \log \sum_j
    \exp(h_j - C_{ij}/\varepsilon),

which is the only O(nm) operation; it is injected from
:mod:`otgen.ot._reduce` (dense, chunked torch, native C++ or KeOps), so the
algorithm is written once. Epsilon-scaling [2]_ anneals from the data's diameter to the
target with symmetric (averaged) updates, then alternating updates run at the
target until the marginal error is below ``tol``.

Gradients follow from the envelope theorem [2]_: at the returned potentials,
:math:`\partial \mathrm{OT}_\varepsilon / \partial C = P` and the weights get
the partial derivatives of the dual objective. They are attached by one final
differentiable soft-min (no unrolled iterations; O(n + m) memory with the
chunked and KeOps backends; no global autograd state is touched).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch

from otgen._arrays import ArrayLike, is_torch, scalar_output, to_output
from otgen._validation import (
    check_points,
    check_positive,
    check_same_mass,
    check_weights,
)
from otgen.ot._reduce import (
    DENSE_MAX_PAIRS,
    Backend,
    choose_backend,
    multiscale_support,
    native_support,
    plan_cost_sum,
    softmax_matvec,
    softmax_topk,
    softmin,
    softmin_op,
    stored_bytes,
)
from otgen.ot._reduce import _native_ready as native_available
from otgen.ot.costs import Cost, CostLike, resolve_cost
from otgen.ot.result import SinkhornResult

__all__ = ["sinkhorn", "EntropicPlan", "default_eps"]

_DENSE_PLAN_MAX = 250_000_000  # pairs: 2 GB in float64
# progress=None shows a bar from this many pairs (a soft-min pass takes about
# a second or more on a CPU from there).
PROGRESS_MIN_PAIRS = 10**9


def _default_tol(dtype: torch.dtype) -> float:
    # 0.1% of the mass misplaced. Tighter is affordable only at larger eps
    # (Sinkhorn slows down as eps -> 0), and float32 potentials carry ~6e-8 |f|
    # absolute error, i.e. a relative error ~6e-8 |f| / eps on the plan.
    del dtype
    return 1e-3


def _check_scaling(scaling: Any) -> float:
    try:
        s = float(scaling)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"scaling must be a number in (0, 1) (got {scaling!r}); pass e.g. 0.5."
        ) from err
    if not (0.0 < s < 1.0):
        raise ValueError(
            f"scaling must be in the open interval (0, 1) (got {scaling!r}): it is "
            "the ratio between successive eps of the annealing; pass e.g. 0.5 "
            "(fast) or 0.9 (gentle)."
        )
    return s


def _check_max_iter(max_iter: Any) -> int:
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(
            f"max_iter must be an integer >= 1 (got {max_iter!r}); pass e.g. "
            "max_iter=1000."
        )
    return max_iter


def _check_progress(progress: Any, n: int, m: int) -> bool:
    """Resolve ``progress``: a bool, or None (on from PROGRESS_MIN_PAIRS pairs)."""
    if progress is None:
        return n * m >= PROGRESS_MIN_PAIRS
    if not isinstance(progress, bool):
        raise ValueError(
            f"progress must be True, False or None (automatic: from "
            f"{PROGRESS_MIN_PAIRS:.0e} pairs), got {progress!r}"
        )
    return progress


def _scale(x: torch.Tensor, y: torch.Tensor) -> float:
    """Root-mean-square distance of the pooled points to their mean."""
    z = torch.cat([x.detach(), y.detach()]).to(torch.float64)
    return float(((z - z.mean(0)) ** 2).sum(1).mean().sqrt())


def _diameter(x: torch.Tensor, y: torch.Tensor, q: float) -> float:
    r"""An upper bound on the largest distance :math:`\|x_i - y_j\|_q`.

    The smaller of the bounding box's diagonal and :math:`\max_i \|x_i -
    c\|_q + \max_j \|y_j - c\|_q` (triangle inequality; c the common mean).
    In high dimension the second is far tighter (d = 64 Gaussian clouds: 28
    against 79, the true largest distance being 23), and the annealing that
    starts at its p-th power saves the steps above the cost's range.
    """
    xd, yd = x.detach().to(torch.float64), y.detach().to(torch.float64)
    z = torch.cat([xd, yd])
    box = float(torch.linalg.vector_norm(z.amax(0) - z.amin(0), ord=q))
    c = 0.5 * (xd.mean(0) + yd.mean(0))
    rx = torch.linalg.vector_norm(xd - c, ord=q, dim=1).max()
    ry = torch.linalg.vector_norm(yd - c, ord=q, dim=1).max()
    return min(box, float(rx + ry))


def default_eps(x: torch.Tensor, y: torch.Tensor, cost: Cost) -> float:
    r"""The eps used when none is given: :math:`(s / 10)^p`.

    :math:`s` is the root-mean-square distance of the pooled points to their
    mean and :math:`p` the power of the cost (2 for ``"sqeuclidean"``), so the
    entropic blur is 10% of the data's spread.
    """
    if cost.fn is not None:
        raise ValueError(
            "eps must be given for a callable cost (got eps=None): otgen cannot "
            "infer the scale of an arbitrary cost; pass e.g. eps=1e-3 * C.max()."
        )
    s = _scale(x, y)
    return (s / 10.0) ** cost.p if s > 0 else 1.0


@dataclass
class _Sol:
    f: torch.Tensor
    g: torch.Tensor
    sg: torch.Tensor  # smin(log b + g / eps) over j, shape (n,)
    sf: torch.Tensor  # smin(log a + f / eps) over i, shape (m,)
    n_iter: int
    converged: bool
    err: tuple[float, float]
    schedule: tuple[float, ...]


def _residual(w: torch.Tensor, f: torch.Tensor, ft: torch.Tensor, eps: float):
    """Relative L1 error ``sum_i w_i |exp((f_i - ft_i) / eps) - 1| / sum w``."""
    w64 = w.to(torch.float64)
    d = torch.expm1((f - ft).to(torch.float64) / eps).abs()
    return float((w64 * d).sum() / w64.sum())


def _shift(a, b, f, g, rho: float) -> float:
    """Best translation (f + t, g - t) of the unbalanced dual, in closed form.

    The balanced problem is invariant under it; with KL penalties it is the
    slowest mode of Sinkhorn (contraction 1 / (1 + eps / rho) per update), so
    it is solved exactly [Séjourné, Vialard, Peyré 2022].
    """
    d = torch.float64
    la = torch.logsumexp(a.to(d).log() - f.to(d) / rho, 0)
    lb = torch.logsumexp(b.to(d).log() - g.to(d) / rho, 0)
    return float(0.5 * rho * (la - lb))


def _shift_sym(a, f, sf, eps: float, rho: float) -> float:
    """Best common translation f + t of a symmetric unbalanced dual."""
    d = torch.float64
    la = a.to(d).log()
    lA = torch.logsumexp(la - f.to(d) / rho, 0)
    lM = torch.logsumexp(la + (f - sf).to(d) / eps, 0)  # log mass of the plan
    return float((lA - lM) / (1.0 / rho + 2.0 / eps))


def _loop(
    op,
    a,
    b,
    *,
    eps,
    eps0,
    rho,
    scaling,
    tol,
    max_iter,
    symmetric,
    init=None,
    progress: str | None = None,
) -> _Sol:
    """The log-domain Sinkhorn loop (no autograd).

    ``init=(f, g)``: potentials at ``eps0`` to start from (the multiscale
    solver's extension of its coarse solution); None: start from zero.
    ``progress``: the label of a tqdm bar on standard error (one step per
    annealing eps, one for the target eps); None: no bar.
    """
    loga, logb = a.log(), b.log()

    def lam(e: float) -> float:
        return 1.0 if rho is None else 1.0 / (1.0 + e / rho)

    if symmetric:
        # Averaged symmetric updates converge in a few steps at fixed eps
        # [Feydy et al. 2019]: a third of the annealing steps give the same
        # value to the tolerance (measured on benchmarks/bench_sinkhorn.py).
        scaling = scaling**3
    schedule = []
    e = eps0
    while e > eps:
        schedule.append(e)
        e *= scaling
    schedule.append(eps)
    e = schedule[0]
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(schedule),
        desc=progress,
        unit="eps",
        disable=progress is None,
        leave=False,
    )
    # Annealing: symmetric averaged updates, one per eps [Feydy et al. 2019].
    if init is None:
        f = lam(e) * op.rows(logb, e)
        g = f if symmetric else lam(e) * op.cols(loga, e)
    else:
        f, g = init
    n_iter = 0
    for e in schedule[:-1]:
        ft = lam(e) * op.rows(logb + g / e, e)
        if symmetric:
            f = g = 0.5 * (f + ft)
        else:
            gt = lam(e) * op.cols(loga + f / e, e)
            f, g = 0.5 * (f + ft), 0.5 * (g + gt)
        n_iter += 1
        bar.set_postfix_str(f"eps={e:.3g}", refresh=False)
        bar.update(1)
    # Target eps: alternating (symmetric problems: averaged) updates until the
    # marginal error of the current pair (f, g) is below tol.
    e, lm = eps, lam(eps)
    sf = None if symmetric else op.cols(loga + f / e, e)
    if not symmetric:
        g = lm * sf
    k = 0
    while True:
        sg = op.rows(logb + g / e, e)
        n_iter += 1
        k += 1
        err = _residual(a, f, lm * sg, e)
        bar.set_postfix_str(f"eps={e:.3g} iter={k} err={err:.2e}")
        if err <= tol or k >= max_iter:
            break
        if symmetric:
            f = g = 0.5 * (f + lm * sg)
            if rho is not None:
                f = g = f + _shift_sym(a, f, sg, e, rho)
        else:
            f = lm * sg
            sf = op.cols(loga + f / e, e)
            g = lm * sf
            if rho is not None:
                tau = _shift(a, b, f, g, rho)
                f, g, sf = f + tau, g - tau, sf + tau
    bar.update(1)
    bar.close()
    if symmetric:
        sf, err_b = sg, err
    else:
        err_b = _residual(b, g, lm * sf, e)
    return _Sol(f, g, sg, sf, n_iter, err <= tol, (err, err_b), tuple(schedule))


def _multiscale_start(x, y, a, b, cost, eps, *, rho, scaling, tol, max_iter, symmetric):
    """Coarse solve on grid cells, then the block-sparse op and its start.

    Returns ``(op, (f, g), eps_c)``: the :class:`MultiscaleOp` over the kept
    cell pairs and the potentials at ``eps_c = side^p`` extended to every
    point (see :mod:`otgen.ot._multiscale`).
    """
    from otgen.ot import _multiscale as ms

    side = ms.cell_side(x if symmetric else torch.cat([x.detach(), y.detach()]))
    cx = ms.grid_clusters(x, a, side)
    cy = cx if symmetric else ms.grid_clusters(y, b, side)
    eps0 = _diameter(x, y, cost.q) ** cost.p
    eps_c = max(eps, side**cost.p)
    ax, by = cx.weights, cy.weights
    xc, yc = cx.centres, cy.centres
    coarse_backend = choose_backend(
        "auto", xc.shape[0], yc.shape[0], x.device, native_support(x, cost=cost)
    )
    cop = softmin_op(xc, xc if symmetric else yc, cost, coarse_backend)
    csol = _loop(
        cop, ax, by, eps=eps_c, eps0=eps0, rho=rho, scaling=scaling,
        tol=max(tol, 1e-3), max_iter=max_iter, symmetric=symmetric,
    )  # fmt: skip
    # Extend the coarse potentials to the points: one soft-min each way.
    f = softmin_op(x, yc, cost, "native").rows(by.log() + csol.g / eps_c, eps_c)
    if symmetric:
        g = f
    else:
        g = softmin_op(y, xc, cost, "native").rows(ax.log() + csol.f / eps_c, eps_c)
    threshold = max(ms.TRUNCATE * eps_c, ms.FLOOR * eps)
    keep = ms.truncation_mask(xc, yc, csol.f, csol.g, cost.p, threshold)
    op = ms.MultiscaleOp(x, y, cost, cx, cy, keep)
    op.coarse_schedule = csol.schedule[:-1]
    op.coarse_iter = csol.n_iter
    return op, (f, g), eps_c


def _values(a, b, sol: _Sol, eps: float, rho: float | None):
    """Dual and primal objectives and the weight gradients, in float64."""
    d = torch.float64
    a, b = a.to(d), b.to(d)
    f, g, sg, sf = (t.to(d) for t in (sol.f, sol.g, sol.sg, sol.sf))
    ra = torch.exp((f - sg) / eps)  # (P 1)_i / a_i
    cb = torch.exp((g - sf) / eps)  # (P^T 1)_j / b_j
    r, c = a * ra, b * cb
    ma, mb = a.sum(), b.sum()
    mass = 0.5 * (r.sum() + c.sum())
    ent = eps * (mass - ma * mb)
    primal = (r * f).sum() + (c * g).sum() - ent
    if rho is None:
        dual = (a * f).sum() + (b * g).sum() - ent
        ga, gb = f, g
    else:
        dual = -rho * (a * torch.expm1(-f / rho)).sum()
        dual = dual - rho * (b * torch.expm1(-g / rho)).sum() - ent
        # KL(r | a) with log(r_i / a_i) = (f_i - sg_i) / eps.
        kl_a = (r * (f - sg) / eps - r + a).sum()
        kl_b = (c * (g - sf) / eps - c + b).sum()
        primal = primal + rho * (kl_a + kl_b)
        ga, gb = -rho * torch.expm1(-f / rho), -rho * torch.expm1(-g / rho)
    ga = ga - eps * (ra - mb)
    gb = gb - eps * (cb - ma)
    return dual, primal, r, ga, gb


def _solve(
    x, y, a, b, *, eps, cost: Cost, rho, scaling, tol, max_iter, backend, progress=None
):
    """Run the loop and attach envelope-theorem gradients.

    Returns ``(value, primal, sol, backend)``; ``value`` is a differentiable
    0-d tensor in the dtype of ``x``. ``x is y and a is b`` runs the symmetric
    loop (one soft-min per sweep). ``progress``: a bar label (see _loop).
    """
    symmetric = x is y and a is b
    n, m = x.shape[0], y.shape[0]
    native_why = native_support(x, cost=cost)
    backend = choose_backend(
        backend,
        n,
        m,
        x.device,
        native_why,
        multiscale_support(x, cost, rho),
        store=(x.shape[1], stored_bytes(n, m, x.dtype, symmetric)),
    )
    kw = dict(rho=rho, scaling=scaling, tol=tol, max_iter=max_iter, symmetric=symmetric)
    init = None
    with torch.no_grad():
        if backend == "multiscale":
            op, init, eps0 = _multiscale_start(
                x, y, a.detach(), b.detach(), cost, eps, **kw
            )
        else:
            op = softmin_op(x, y, cost, backend)
            eps0 = (
                _diameter(x, y, cost.q) ** cost.p if cost.fn is None else op.max_cost()
            )
        sol = _loop(
            op,
            a.detach(),
            b.detach(),
            eps=eps,
            eps0=eps0,
            init=init,
            progress=progress,
            **kw,
        )
        if backend == "multiscale":
            sol.schedule = op.coarse_schedule + sol.schedule
        dual, primal, r, ga, gb = _values(a.detach(), b.detach(), sol, eps, rho)
    value = dual.to(x.dtype)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, y, a, b)):
        expr = value.new_zeros(())
        if x.requires_grad or y.requires_grad:
            h = (b.detach().log() + sol.g / eps).detach()
            # d/dC_ij of sum_i r_i smin(h)_i is exactly P_ij (any f, g).
            if backend == "multiscale":
                ft = op.softmin(x, y, h, eps)
            else:
                gb_ = _grad_backend(backend, n, m, native_why)
                ft = softmin(x, y, h, eps, cost, gb_)  # (n,)
            expr = expr + (r.to(x.dtype) * ft).sum()
        if a.requires_grad:
            expr = expr + (a * ga.to(a.dtype)).sum()
        if b.requires_grad:
            expr = expr + (b * gb.to(b.dtype)).sum()
        value = value + (expr - expr.detach())
    return value, primal.to(x.dtype), sol, backend


def _grad_backend(backend: str, n: int, m: int, native_why: str | None) -> str:
    """The backend of the final differentiable soft-min.

    A stored problem beyond ``DENSE_MAX_PAIRS`` would keep several (n, m)
    tensors for autograd; its gradient pass runs on the native loops (or the
    chunked ones), whose backward recomputes the pairs in O(n + m) memory.
    """
    if backend != "dense" or n * m <= DENSE_MAX_PAIRS:
        return backend
    return "native" if native_why is None and native_available() else "chunked"


def _transposed(cost: Cost) -> Cost:
    if cost.fn is None:
        return cost
    fn = cost.fn
    return Cost(fn=lambda u, v: fn(v, u).T)


class EntropicPlan:
    r"""The entropic plan :math:`P_{ij} = a_i b_j e^{(f_i + g_j - C_{ij})/\varepsilon}`.

    Never stored: each method runs one pass over the pairs (dense for the
    ``"dense"`` backend, in row blocks otherwise), so it works at any size.

    Attributes
    ----------
    shape : tuple of int
        ``(n, m)``.
    """

    def __init__(self, x, y, a, b, f, g, eps, cost, backend, as_torch) -> None:
        self._x, self._y, self._a, self._b = x, y, a, b
        self._f, self._g, self._eps, self._cost = f, g, eps, cost
        self._backend = "dense" if backend == "dense" else "chunked"
        self._as_torch = as_torch
        self.shape = (x.shape[0], y.shape[0])

    def __repr__(self) -> str:
        return f"EntropicPlan(shape={self.shape}, eps={self._eps:g})"

    def _out(self, t):
        return to_output(t, self._as_torch)

    def _in(self, v, length: int, name: str) -> torch.Tensor:
        t = v if isinstance(v, torch.Tensor) else torch.as_tensor(v)
        t = t.to(dtype=self._x.dtype, device=self._x.device)
        if t.ndim not in (1, 2) or t.shape[0] != length:
            raise ValueError(
                f"{name} must have shape ({length},) or ({length}, k) (got "
                f"{tuple(t.shape)}); one entry per {'column' if name == 'v' else 'row'}"
                " of the plan."
            )
        return t

    @torch.no_grad()
    def dense(self):
        """The plan as an (n, m) array or tensor (refused beyond 2.5e8 pairs)."""
        n, m = self.shape
        if n * m > _DENSE_PLAN_MAX:
            raise ValueError(
                f"the dense plan would hold {n * m:.3g} entries (> "
                f"{_DENSE_PLAN_MAX:.3g}); use plan.matvec, plan.topk or "
                "plan.marginals, which never store it."
            )
        C = self._cost.pairwise(self._x, self._y)
        la = self._a.log() + self._f / self._eps
        lb = self._b.log() + self._g / self._eps
        return self._out(torch.exp(la[:, None] + lb[None, :] - C / self._eps))

    @torch.no_grad()
    def matvec(self, v):
        """:math:`P v`, for ``v`` of shape (m,) or (m, k)."""
        v = self._in(v, self.shape[1], "v")
        h = self._b.log() + self._g / self._eps
        lse, w = softmax_matvec(
            self._x, self._y, h, self._eps, self._cost, self._backend, v
        )
        scale = self._a * torch.exp(self._f / self._eps + lse)  # (n,)
        return self._out(scale * w if w.ndim == 1 else scale[:, None] * w)

    @torch.no_grad()
    def rmatvec(self, u):
        r""":math:`P^\top u`, for ``u`` of shape (n,) or (n, k)."""
        u = self._in(u, self.shape[0], "u")
        h = self._a.log() + self._f / self._eps
        lse, w = softmax_matvec(
            self._y,
            self._x,
            h,
            self._eps,
            _transposed(self._cost),
            self._backend,
            u,
        )
        scale = self._b * torch.exp(self._g / self._eps + lse)  # (m,)
        return self._out(scale * w if w.ndim == 1 else scale[:, None] * w)

    def marginals(self):
        r"""Row and column sums :math:`(P 1, P^\top 1)`."""
        x = self._x
        ones_m = torch.ones(self.shape[1], dtype=x.dtype, device=x.device)
        ones_n = torch.ones(self.shape[0], dtype=x.dtype, device=x.device)
        return self.matvec(ones_m), self.rmatvec(ones_n)

    @torch.no_grad()
    def topk(self, k: int):
        """The ``k`` largest entries of each row: ``(values (n, k), cols (n, k))``."""
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.shape[1]:
            raise ValueError(
                f"k must be an integer in [1, {self.shape[1]}] (got {k!r}); it is "
                "the number of entries kept per row."
            )
        h = self._b.log() + self._g / self._eps
        lse, s, idx = softmax_topk(
            self._x, self._y, h, self._eps, self._cost, self._backend, k
        )
        vals = self._a[:, None] * torch.exp(self._f[:, None] / self._eps + s)
        return self._out(vals), self._out(idx)

    @torch.no_grad()
    def transport_cost(self):
        r"""The linear part :math:`\langle P, C\rangle = \sum_{ij} P_{ij} C_{ij}`."""
        h = self._b.log() + self._g / self._eps
        la = self._a.log() + self._f / self._eps
        t = plan_cost_sum(self._x, self._y, h, la, self._eps, self._cost, self._backend)
        return scalar_output(t, self._as_torch)


def _describe(cost: Cost, rho: float | None) -> str:
    base = f"entropic OT dual objective, C = {cost.name}"
    if rho is None:
        return base + " (balanced; = <P,C> + eps KL(P|a x b) at convergence)"
    return base + " (unbalanced, KL marginal penalties of strength rho = reach^p)"


def _prepare(x, y, a, b, *, eps, cost, p, q, reach, scaling, tol, max_iter):
    """Validate the common arguments of sinkhorn and sinkhorn_divergence."""
    tx, ty = check_points(x, y)
    ta = check_weights(a, tx.shape[0], "a", tx)
    tb = check_weights(b, ty.shape[0], "b", tx)
    c = resolve_cost(cost, p=p, q=q)
    rho = None
    if reach is not None:
        rv = check_positive(reach, "reach")
        rho = rv if c.fn is not None else rv**c.p
    else:
        check_same_mass(ta, tb)
    e = default_eps(tx, ty, c) if eps is None else check_positive(eps, "eps")
    s = _check_scaling(scaling)
    t = _default_tol(tx.dtype) if tol is None else check_positive(tol, "tol")
    mi = _check_max_iter(max_iter)
    return tx, ty, ta, tb, c, rho, e, s, t, mi


def _warn(what: str, sol: _Sol, eps: float, tol: float, max_iter: int) -> None:
    warnings.warn(
        f"{what} did not converge: marginal error {sol.err[0]:.2e} > tol={tol:g} "
        f"after max_iter={max_iter} iterations at eps={eps:g}; the result is "
        "approximate (converged=False). Increase max_iter, loosen tol or "
        "increase eps.",
        UserWarning,
        stacklevel=3,
    )


def sinkhorn(
    x: ArrayLike,
    y: ArrayLike,
    a: ArrayLike | None = None,
    b: ArrayLike | None = None,
    *,
    eps: float | None = None,
    cost: CostLike = "sqeuclidean",
    p: float | None = None,
    q: float = 2.0,
    reach: float | None = None,
    scaling: float = 0.8,
    tol: float | None = None,
    max_iter: int = 1000,
    backend: Backend = "auto",
    progress: bool | None = None,
) -> SinkhornResult:
    r"""Entropic optimal transport between two weighted point clouds.

    .. math::
        \mathrm{OT}_\varepsilon(\alpha, \beta) = \min_{P \ge 0}
        \sum_{ij} P_{ij} C_{ij} + \varepsilon\, \mathrm{KL}(P \,\|\, a \otimes b)
        \quad \text{s.t. } P 1 = a,\ P^\top 1 = b,

    solved in the log domain [1]_ with epsilon-scaling [2]_. With ``reach``
    the marginal constraints become penalties
    :math:`\rho\,\mathrm{KL}(P 1 \| a) + \rho\,\mathrm{KL}(P^\top 1 \| b)`,
    :math:`\rho = \text{reach}^p` (unbalanced OT [3]_).

    Parameters
    ----------
    x, y : array or Tensor, shape (n, d) and (m, d)
        Supports (a 1-D input is points on the line).
    a, b : array or Tensor, shape (n,) and (m,), optional
        Non-negative weights; uniform (1/n) when None. Equal total masses
        unless ``reach`` is given.
    eps : float, optional
        Regularisation :math:`\varepsilon > 0` in units of the cost (for the
        default cost :math:`\|x - y\|^2`: GeomLoss's ``blur`` corresponds to
        ``eps = 2 * blur**2``, as GeomLoss uses :math:`\|x-y\|^2/2`). None:
        :func:`default_eps`, :math:`(s/10)^p` with :math:`s` the RMS spread of
        the pooled points.
    cost : {"sqeuclidean", "euclidean", "minkowski"}, Cost or callable
        Ground cost (see :func:`otgen.ot.costs.resolve_cost`).
    p, q : float, optional
        Power and norm for ``cost="minkowski"``: :math:`\|x - y\|_q^p`.
    reach : float, optional
        Unbalanced OT with :math:`\rho = \text{reach}^p` (a distance; in cost
        units for a callable cost). None: balanced.
    scaling : float in (0, 1), default=0.8
        Ratio between successive eps of the annealing, which starts at an
        upper bound D^p on the largest cost; D is the smaller of the bounding
        box's diagonal and the sum of the clouds' radii about their common
        mean (a callable cost starts at its largest entry). GeomLoss's
        ``scaling`` acts on the blur: its 0.9 is 0.81 here. Slower annealing
        (closer to 1) costs
        more iterations up front but far fewer at the target eps: at small
        eps the annealing is the efficient part of the solve.
    tol : float, optional
        Stop when the relative L1 error of the row marginal
        :math:`\|P 1 - a\|_1 / \|a\|_1` is below ``tol`` (the column marginal
        is exact after each update). Default 1e-3.
    max_iter : int, default=1000
        Cap on the iterations at the target eps (annealing excluded).
    backend : str, default="auto"
        The soft-min reduction: ``"auto"``, ``"dense"``, ``"chunked"``,
        ``"keops"``, ``"native"`` or ``"multiscale"`` (see
        :func:`otgen.ot._reduce.choose_backend`).
        ``"multiscale"`` solves coarse-to-fine: grid cells first, then the
        points over the cell pairs that can carry mass (balanced problems in
        d <= 3, named costs; see :mod:`otgen.ot._multiscale`). ``"auto"``
        on the CPU picks it from 1e8 pairs; in d >= 8 (or for costs the
        native loops cannot compute) ``"dense"`` while the stored cost
        matrices (C and C^T) fit in 2 GiB, reduced by the native loop over
        the stored matrix; otherwise ``"native"`` from 2.5e5 pairs, dense
        torch below.
    progress : bool, optional
        Show a progress bar on standard error (one step per annealing eps,
        then the iterations and marginal error at the target eps). None:
        shown from 1e9 pairs (``PROGRESS_MIN_PAIRS``), where one soft-min
        pass takes about a second or more on a CPU.

    Returns
    -------
    SinkhornResult
        ``value`` (dual objective; differentiable), ``primal``, potentials
        ``f``, ``g``, ``plan`` (:class:`EntropicPlan`), ``marginal_error``,
        ``n_iter``, ``converged``, ``eps_schedule``, ``backend``.

    Raises
    ------
    ValueError
        On invalid points or weights, unequal masses without ``reach``,
        ``eps <= 0``, ``reach <= 0``, ``scaling`` outside (0, 1), ``tol <= 0``,
        ``max_iter < 1`` or an unknown backend or cost.

    Warns
    -----
    UserWarning
        If ``max_iter`` is reached first; the result has ``converged=False``.

    References
    ----------
    .. [1] M. Cuturi. Sinkhorn distances: lightspeed computation of optimal
       transport. NeurIPS 2013.
    .. [2] J. Feydy, T. Séjourné, F.-X. Vialard, S. Amari, A. Trouvé,
       G. Peyré. Interpolating between optimal transport and MMD using
       Sinkhorn divergences. AISTATS 2019.
    .. [3] L. Chizat, G. Peyré, B. Schmitzer, F.-X. Vialard. Scaling
       algorithms for unbalanced optimal transport problems. Math. Comp. 2018.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((3, 2))  # all mass on one point: zero cost
    >>> r = sinkhorn(x, x, eps=0.1)
    >>> abs(r.value) < 1e-9, r.converged
    (True, True)
    """
    as_torch = is_torch(x, y, a, b)
    tx, ty, ta, tb, c, rho, e, s, t, mi = _prepare(
        x,
        y,
        a,
        b,
        eps=eps,
        cost=cost,
        p=p,
        q=q,
        reach=reach,
        scaling=scaling,
        tol=tol,
        max_iter=max_iter,
    )
    show = _check_progress(progress, tx.shape[0], ty.shape[0])
    if x is y and a is b:  # a symmetric problem: the faster symmetric loop
        ty, tb = tx, ta
    value, primal, sol, bk = _solve(
        tx,
        ty,
        ta,
        tb,
        eps=e,
        cost=c,
        rho=rho,
        scaling=s,
        tol=t,
        max_iter=mi,
        backend=backend,
        progress="sinkhorn" if show else None,
    )
    if not sol.converged:
        _warn("sinkhorn", sol, e, t, mi)
    det = [u.detach() for u in (tx, ty, ta, tb)]
    plan = EntropicPlan(*det, sol.f, sol.g, e, c, bk, as_torch)
    return SinkhornResult(
        value=scalar_output(value, as_torch),
        primal=scalar_output(primal, as_torch),
        f=to_output(sol.f, as_torch),
        g=to_output(sol.g, as_torch),
        plan=plan,
        marginal_error=sol.err,
        n_iter=sol.n_iter,
        converged=sol.converged,
        eps=e,
        eps_schedule=sol.schedule,
        backend=bk,
        cost=c.name,
        reach=None if reach is None else float(reach),
        value_description=_describe(c, rho),
    )
