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

which is the only O(nm) operation; it is injected from :mod:`otgen.ot._reduce`
(dense, chunked torch, native C++ or KeOps), so the algorithm is written once.
Epsilon-scaling :cite:`feydy2019interpolating` anneals from the data's diameter
to the target with symmetric (averaged) updates, then alternating updates run
at the target until the stopping rule holds: by default until more iterations
cannot move the value by more than ``rtol`` of it (balanced problems), or until
the marginal error is below ``tol`` (see :mod:`otgen.ot._stopping`).

Gradients follow from the envelope theorem :cite:`feydy2019interpolating`: at
the returned potentials, :math:`\partial \mathrm{OT}_\varepsilon / \partial C =
P` and the weights get the partial derivatives of the dual objective. They are
attached by one final differentiable soft-min (no unrolled iterations; O(n + m)
memory with the chunked and KeOps backends; no global autograd state is
touched).
"""

from __future__ import annotations

import math
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
    is_int,
    pow2_exponent,
    times_pow2,
)
from otgen.ot._reduce import (
    Backend,
    Native,
    Reduction,
    choose_reduction,
    multiscale_support,
    native_support,
    plan_cost_sum,
    row_chunks,
    softmax_matvec,
    softmax_topk,
    stored_bytes,
)
from otgen.ot._sharded import ShardedOp
from otgen.ot._stopping import (
    DEFAULT_RTOL,
    DEFAULT_TOL,
    Stop,
    ValueRule,
)
from otgen.ot.costs import Cost, CostLike, resolve_cost
from otgen.ot.result import SinkhornResult

__all__ = ["sinkhorn", "EntropicPlan", "default_eps"]

_DENSE_PLAN_MAX = 250_000_000  # pairs: 2 GB in float64
# progress=None shows a bar from this many pairs (a soft-min pass takes about
# a second or more on a CPU from there).
PROGRESS_MIN_PAIRS = 10**9
# Longest annealing schedule (soft-min sweeps before the target eps); the
# default scaling 0.8 would need it only for eps / eps0 < 1e-969.
MAX_ANNEALING = 10_000
# Where eps sits relative to the cost scale cs (D^p, D the bound of _diameter
# on the largest distance), the precision the loop can reach (measured on
# n = 200 clouds against a float64 reference, see tests/ot/test_numerics.py):
# - the exponents (f_i + g_j - C_ij) / eps carry an error ~ u cs / eps (u the
#   unit roundoff), so the measured marginal error has a floor ~ 0.4 u cs / eps:
#   float32 runs in float64 when eps < 3 u cs / tol, and float64 below
#   u cs / tol cannot certify tol (converged=False);
# - log b_j + (g_j - C_ij) / eps loses C / eps against log b_j, a relative
#   error ~ u eps / cs on the value (float32: 1.5e-5 at eps = 1e2 cs):
#   float32 runs in float64 from FLOAT32_MAX_EPS cs; balanced problems from
#   LARGE_EPS cs use the expansion of _large_eps (error (cs / eps)^2, below
#   the loop's from there), unbalanced ones are refused beyond
#   UNBALANCED_MAX_EPS cs (float64 error ~ 1e-8).
# - float32 rounds log b_j + g_j / eps to ~u |log b_j|: marginal errors below
#   ~1e-6 are noise, so a tol below FLOAT32_MIN_TOL runs in float64.
FLOAT32_MAX_EPS = 1e2
FLOAT32_MIN_TOL = 1e-5
LARGE_EPS = 1e5
UNBALANCED_MAX_EPS = 1e8
# rho = reach^p is accepted within [1 / REACH_RANGE, REACH_RANGE] * cs.
REACH_RANGE = 1e12


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
    if not is_int(max_iter) or max_iter < 1:
        raise ValueError(
            f"max_iter must be an integer >= 1 (got {max_iter!r}); pass e.g. "
            "max_iter=1000."
        )
    return int(max_iter)


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
    """Root-mean-square distance of the pooled points to their mean.

    Computed on the points divided by a power of two (no overflow of the
    squares at coordinates of 1e154, no underflow at 1e-160).
    """
    z = torch.cat([x.detach(), y.detach()]).to(torch.float64)
    k = pow2_exponent(float(z.abs().max()))
    z = times_pow2(z, -k)
    return times_pow2(float(((z - z.mean(0)) ** 2).sum(1).mean().sqrt()), k)


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
    if not s > 0:
        return 1.0
    try:
        return (s / 10.0) ** cost.p
    except OverflowError:
        raise ValueError(
            f"the default eps (s / 10)^p overflows float64 (spread s = {s:.3g}, p = "
            f"{cost.p:g}), and so would the costs; divide x and y by {s:.3g} "
            "(the value scales by s^p)."
        ) from None


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
    capped: bool = False  # max_iter stopped the loop before its rule held
    why: str = ""  # a further reason for converged=False
    value_ok: bool = True  # the value rule held (or was off)
    remaining: float = 0.0  # what the value may still gain, relative to it
    last_step: float = 0.0  # the value's last increment, relative to it


def _residual(
    w: torch.Tensor, f: torch.Tensor, ft: torch.Tensor, eps: float, total=None
):
    """Relative L1 error ``sum_i w_i |exp((f_i - ft_i) / eps) - 1| / sum w``.

    ``total``: the sum over the ranks of a sharded problem (one ``all_reduce``
    of the two sums), None in one process.
    """
    w64 = w.to(torch.float64)
    d = torch.expm1((f - ft).to(torch.float64) / eps).abs()
    if total is not None:
        num, den = total(torch.stack([(w64 * d).sum(), w64.sum()]))
        return float(num / den)
    return float((w64 * d).sum() / w64.sum())


def _errors(a, f, ft, b, g, gt, eps: float, symmetric: bool, total=None):
    """The row and column residuals (see :func:`_residual`).

    A sharded problem (``total``: the sum over the ranks) adds the four sums
    of both in one ``all_reduce``.
    """
    if total is None or symmetric:
        err = _residual(a, f, ft, eps, total)
        return err, (err if symmetric else _residual(b, g, gt, eps, total))
    sums = []
    for w, p, pt in ((a, f, ft), (b, g, gt)):
        w64 = w.to(torch.float64)
        d = torch.expm1((p - pt).to(torch.float64) / eps).abs()
        sums += [(w64 * d).sum(), w64.sum()]
    na, da, nb, db = total(torch.stack(sums))
    return float(na / da), float(nb / db)


def _shift(a, b, f, g, rho: float) -> float:
    """Best translation (f + t, g - t) of the unbalanced dual, in closed form.

    The balanced problem is invariant under it; with KL penalties it is the
    slowest mode of Sinkhorn (contraction 1 / (1 + eps / rho) per update), so
    it is solved exactly :cite:`sejourne2022faster`.
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
    stop: Stop,
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
    total = getattr(op, "total", None)  # sharded problems sum over the ranks

    def lam(e: float) -> float:
        return 1.0 if rho is None else 1.0 / (1.0 + e / rho)

    if symmetric:
        # Averaged symmetric updates converge in a few steps at fixed eps
        # (feydy2019interpolating in docs/references.bib): a third of the
        # annealing steps give the same value to the tolerance (measured on
        # benchmarks/bench_sinkhorn.py).
        scaling = scaling**3
    schedule = []
    e = eps0
    while e > eps and len(schedule) <= MAX_ANNEALING:  # see _check_annealing
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
    # Annealing: symmetric averaged updates, one per eps (feydy2019interpolating
    # in docs/references.bib).
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
    # stopping rule holds for the current pair (f, g) (see _stopping).
    e, lm = eps, lam(eps)
    sf = None if symmetric else op.cols(loga + f / e, e)
    if not symmetric:
        g = lm * sf
    rule = None
    if stop.rtol is not None:
        rule = ValueRule(stop.rtol, torch.finfo(f.dtype).eps / 2)
        last, f_last, g_last = math.nan, f, g  # no increment before iteration 1
    k = 0
    while True:
        sg = op.rows(logb + g / e, e)
        n_iter += 1
        k += 1
        # The column residual: 0 for balanced updates (g = sf), not after the
        # unbalanced translation.
        gt = None if symmetric else lm * sf
        err, err_b = _errors(a, f, lm * sg, b, g, gt, e, symmetric, total)
        done = max(err, err_b) <= stop.tol if stop.marginal else True
        if rule is not None:
            value, step, size, ma = _value_terms(
                a, b, f, g, sg, f_last, g_last, e, symmetric, total
            )
            if symmetric or k == 1:
                step = value - last
            last, f_last, g_last = value, f, g
            done = rule.update(value, step, size, e * ma) and done
        bar.set_postfix_str(f"eps={e:.3g} iter={k} err={max(err, err_b):.2e}")
        if done or k >= max_iter:
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
                f, g, sf = f + tau, g - tau, sf - tau
    bar.update(1)
    bar.close()
    if symmetric:
        sf = sg
    sol = _Sol(f, g, sg, sf, n_iter, done, (err, err_b), tuple(schedule))
    sol.capped = not done
    if rule is not None:
        sol.remaining, sol.last_step = rule.remaining, rule.last
        sol.value_ok = rule.remaining <= rule.rtol
    return sol


def _value_terms(a, b, f, g, sg, f_last, g_last, eps, symmetric, total=None):
    """What the value rule needs, in float64: ``(F, step, size, m(a))``.

    F is the balanced dual objective of the loop's current pair. Asymmetric:
    g is the soft c-transform of f, so the plan's columns sum to b and
    F = <a, f> + <b, g> - eps (m(b) - m(a) m(b)); ``step`` = <a, f - f_last> +
    <b, g - g_last>, from differences of the working-dtype potentials (exact
    where they are close). Symmetric (g = f, ``sg`` the soft-min of f): the
    rows sum to a_i exp((f_i - sg_i) / eps). ``size``: the potentials' largest
    entries times the masses (the rounding floor's scale). A sharded problem
    (``total``) sums every term over the ranks in one ``all_reduce``, so that
    all ranks see the same numbers and stop together.
    """
    d = torch.float64
    a64, f64, b64, g64 = a.to(d), f.to(d), b.to(d), g.to(d)
    zero = a64.new_zeros(())
    big_f = f64.abs().max() if f64.numel() else zero
    big_g = g64.abs().max() if g64.numel() else zero
    if symmetric:
        extra = (a64 * torch.expm1((f64 - sg.to(d)) / eps)).sum()
        step = zero
    else:
        extra = zero
        step = (a64 * (f - f_last).to(d)).sum() + (b64 * (g - g_last).to(d)).sum()
    terms = torch.stack(
        [(a64 * f64).sum(), (b64 * g64).sum(), a64.sum(), b64.sum(), extra, step,
         big_f * a64.sum(), big_g * b64.sum()]
    )  # fmt: skip
    if total is not None:
        terms = total(terms)
    af, bg, ma, mb, extra, step, sa, sb = (float(t) for t in terms)
    if symmetric:
        value = 2 * af - eps * (ma + extra - ma * ma)
    else:
        value = af + bg - eps * (mb - ma * mb)
    return value, step, sa + sb, ma


def _check_annealing(eps0: float, eps: float, scaling: float) -> None:
    """Refuse a schedule longer than MAX_ANNEALING (eps in working units)."""
    if not eps0 > eps:
        return
    steps = math.log(eps / eps0) / math.log(scaling)
    if steps > MAX_ANNEALING:
        fit = (eps / eps0) ** (1.0 / MAX_ANNEALING)
        raise ValueError(
            f"scaling={scaling!r} would take {steps:.3g} annealing steps from the "
            f"cost scale down to eps (a ratio of {eps0 / eps:.3g}), more than "
            f"MAX_ANNEALING={MAX_ANNEALING}; pass scaling <= {fit:.6f}, e.g. "
            "scaling=0.9 (each step is a pass over all pairs)."
        )


def _multiscale_start(
    x, y, a, b, cost, eps, *, rho, scaling, stop, max_iter, symmetric
):
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
    K, L = xc.shape[0], yc.shape[0]
    coarse = choose_reduction(
        "auto", K, L, x.device, native_support(x, cost=cost),
        store=(x.shape[1], stored_bytes(K, L, x.dtype, symmetric)),
    )  # fmt: skip
    cop = coarse.bind(xc, xc if symmetric else yc, cost)
    csol = _loop(
        cop, ax, by, eps=eps_c, eps0=eps0, rho=rho, scaling=scaling,
        stop=Stop(max(stop.tol, 1e-3), None, True), max_iter=max_iter,
        symmetric=symmetric,
    )  # fmt: skip
    # Extend the coarse potentials to the points: one soft-min each way.
    f = Native().bind(x, yc, cost).rows(by.log() + csol.g / eps_c, eps_c)
    if symmetric:
        g = f
    else:
        g = Native().bind(y, xc, cost).rows(ax.log() + csol.f / eps_c, eps_c)
    threshold = max(ms.TRUNCATE * eps_c, ms.FLOOR * eps)
    keep = ms.truncation_mask(xc, yc, csol.f, csol.g, cost.p, threshold)
    op = ms.MultiscaleOp(x, y, cost, cx, cy, keep)
    op.coarse_schedule = csol.schedule[:-1]
    op.coarse_iter = csol.n_iter
    return op, (f, g), eps_c


def _values(
    a, b, sol: _Sol, eps: float, rho: float | None, unit_mass=False, total=None
):
    r"""Dual and primal objectives and the weight gradients, in float64.

    The plan's relative marginals :math:`(P 1)_i / a_i = e^{(f_i - sg_i) /
    \varepsilon}` enter through ``expm1``: at large eps they differ from 1 by
    less than the float spacing, and ``eps (mass - m(a) m(b))`` would cancel.
    ``unit_mass``: take m(a) = m(b) = 1 exactly (probability vectors whose
    float sums differ from 1 by rounding, which eps would amplify).
    ``total``: for a sharded problem (this rank's entries of a, b and the
    potentials), the sum over the ranks; the sums are then global.
    """
    d = torch.float64

    def S(t: torch.Tensor) -> torch.Tensor:
        return t.sum() if total is None else total(t.sum())

    a, b = a.to(d), b.to(d)
    f, g, sg, sf = (t.to(d) for t in (sol.f, sol.g, sol.sg, sol.sf))
    da = torch.expm1((f - sg) / eps)  # (P 1)_i / a_i - 1
    db = torch.expm1((g - sf) / eps)  # (P^T 1)_j / b_j - 1
    r, c = a + a * da, b + b * db
    ma, mb = (a.new_ones(()), b.new_ones(())) if unit_mass else (S(a), S(b))
    # eps (mass - ma mb), mass = (sum r + sum c) / 2, without cancellation.
    ent = eps * (0.5 * (S(a * da) + S(b * db)) + 0.5 * (ma + mb) - ma * mb)
    primal = S(r * f) + S(c * g) - ent
    if rho is None:
        dual = S(a * f) + S(b * g) - ent
        ga, gb = f, g
    else:
        dual = -rho * S(a * torch.expm1(-f / rho))
        dual = dual - rho * S(b * torch.expm1(-g / rho)) - ent
        # KL(r | a) = sum r log(r / a) - r + a, log(r_i / a_i) = (f_i - sg_i) / eps.
        kl_a = S(r * (f - sg) / eps - a * da)
        kl_b = S(c * (g - sf) / eps - b * db)
        primal = primal + rho * (kl_a + kl_b)
        ga, gb = -rho * torch.expm1(-f / rho), -rho * torch.expm1(-g / rho)
    ga = ga - eps * da - eps * (1 - mb)
    gb = gb - eps * db - eps * (1 - ma)
    return dual, primal, r, ga, gb


def _normalise(x: torch.Tensor, y: torch.Tensor, same: bool, q: float):
    """Working coordinates ``(z - c) / 2^k`` of both clouds, in float64.

    ``c`` is the common mean and ``2^k`` the power of two just above the
    bound of :func:`_diameter` on the largest distance, so the costs are at
    most 1 whatever the data's scale (no overflow of squares at coordinates of
    1e154, no subnormals at 1e-160). Returns ``(xw, yw, k)``; ``xw`` keeps the
    graph of ``x`` (float64), and ``yw is xw`` when ``same``.
    """
    d = torch.float64
    xd = x.detach().to(d)
    yd = xd if same else y.detach().to(d)
    e1 = pow2_exponent(max(float(xd.abs().max()), float(yd.abs().max())))
    xs, ys = times_pow2(xd, -e1), times_pow2(yd, -e1)  # |z| <= 1: no overflow
    c = 0.5 * (xs.mean(0) + ys.mean(0))
    e2 = pow2_exponent(_diameter(xs - c, ys - c, q))

    def work(t: torch.Tensor) -> torch.Tensor:
        return times_pow2(times_pow2(t.to(d), -e1) - c, -e2)

    xw = work(x)
    return xw, (xw if same else work(y)), e1 + e2


def _max_cost(x: torch.Tensor, y: torch.Tensor, cost: Cost) -> float:
    """Largest entry of a callable cost's matrix, by row blocks."""
    best = 0.0
    for blk in row_chunks(x.shape[0], y.shape[0]):
        best = max(best, float(cost.pairwise(x[blk].detach(), y.detach()).max()))
    return best


def _identical(x, y, a, b) -> bool:
    """True if the two measures are the same arrays of numbers."""
    return (
        x.shape == y.shape
        and a.shape == b.shape
        and bool(torch.equal(x.detach(), y.detach()))
        and bool(torch.equal(a.detach(), b.detach()))
    )


def _large_eps(x, y, a, b, cost: Cost, eps: float, stop: Stop, unit_mass) -> _Sol:
    r"""Balanced :math:`\mathrm{OT}_\varepsilon` for eps >= LARGE_EPS x the cost scale.

    With :math:`\hat a = a / m(a)`, :math:`\hat b = b / m(b)`, the weighted
    means :math:`\bar C_{i\cdot} = \sum_j \hat b_j C_{ij}`, :math:`\bar
    C_{\cdot j}`, :math:`\bar C` and the double-centred cost :math:`\tilde C =
    C - \bar C_{i\cdot} - \bar C_{\cdot j} + \bar C`, the potentials
    :math:`f_i = \bar C_{i\cdot} - \bar C / 2 - \tfrac{\varepsilon}{2} \log m`
    (and :math:`g_j` likewise), :math:`m = \sqrt{m(a) m(b)}`, give the plan
    :math:`\hat a \otimes \hat b\, m\, e^{-\tilde C / \varepsilon}`, whose
    marginals err by :math:`O((\tilde C / \varepsilon)^2)`, and the value
    :math:`m \bar C - m \|\tilde C\|^2_{\hat a \otimes \hat b} / (2
    \varepsilon) + \varepsilon\, m (m - 1 - \log m)`, exact to a relative
    :math:`O((C / \varepsilon)^2)` (:math:`\mathrm{OT}_\varepsilon \to \langle a
    \otimes b, C\rangle`, :cite:`genevay2019sample`). ``sg`` and ``sf`` carry
    the second moments of :math:`\tilde C`, so that :func:`_values` sees the
    marginals to second order. Two passes over the pairs, in float64.
    ``unit_mass``: m(a) = m(b) = 1 exactly (see :func:`_as_probabilities`).
    """
    d = torch.float64
    xd, yd = x.detach().to(d), y.detach().to(d)
    a, b = a.detach().to(d), b.detach().to(d)
    ah, bh = a / a.sum(), b / b.sum()
    n, m = xd.shape[0], yd.shape[0]
    row = torch.empty(n, dtype=d, device=xd.device)
    col = torch.zeros(m, dtype=d, device=xd.device)
    for blk in row_chunks(n, m):
        C = cost.pairwise(xd[blk], yd).to(d)  # (rows, m)
        row[blk] = C @ bh
        col += ah[blk] @ C
    mean = (ah * row).sum()
    s = torch.empty(n, dtype=d, device=xd.device)
    t = torch.zeros(m, dtype=d, device=xd.device)
    for blk in row_chunks(n, m):
        Ct = cost.pairwise(xd[blk], yd).to(d) - row[blk, None] - col[None, :] + mean
        Ct.mul_(Ct)
        s[blk] = Ct @ bh
        t += ah[blk] @ Ct
    la, lb = (0.0, 0.0) if unit_mass else (float(a.sum().log()), float(b.sum().log()))
    f = row - 0.5 * mean - 0.25 * eps * (la + lb)
    g = col - 0.5 * mean - 0.25 * eps * (la + lb)
    # (P 1)_i / a_i = sqrt(m(b) / m(a)) (1 + s_i / (2 eps^2)); likewise P^T 1.
    sg = f - eps * (0.5 * (lb - la) + torch.log1p(s / (2 * eps * eps)))
    sf = g - eps * (0.5 * (la - lb) + torch.log1p(t / (2 * eps * eps)))
    err = (_residual(a, f, sg, eps), _residual(b, g, sf, eps))
    # The expansion's value is exact to (C / eps)^2, far below any rtol.
    ok = max(err) <= stop.tol if stop.marginal else True
    return _Sol(f, g, sg, sf, 0, ok, err, (eps,))


def _as_probabilities(a, b, dtype: torch.dtype):
    """``(a, b, True)`` normalised in float64 if each sums to 1 up to rounding.

    At large eps the balanced value moves by eps m(m - 1 - log m) ~ eps
    (m - 1)^2 / 2 with the mass m: float32 weights 1/n, which sum to 1 - 2e-8,
    would add 1e-16 eps to a value of order the cost. Weights summing to 1
    within n u (u the unit roundoff of their dtype) are taken for the
    probability vectors they stand for (``dtype``: the weights' input dtype).
    """
    d = torch.float64
    a, b = a.to(d), b.to(d)
    ma, mb = a.sum(), b.sum()
    slack = max(a.shape[0], b.shape[0]) * torch.finfo(dtype).eps
    if abs(float(ma) - 1) <= slack and abs(float(mb) - 1) <= slack:
        return a / ma, b / mb, True
    return a, b, False


def _recheck(op, a, b, sol: _Sol, eps, rho, symmetric: bool):
    """Measure the plan's marginal errors in float64, in place.

    A float32 loop compares potentials rounded alike: at small eps it reaches
    a fixed point of its own rounding (error 0) while the plan it describes is
    off by orders of magnitude. One more pass in float64 over the float32
    potentials gives the marginals of the plan they define; ``sg``, ``sf``
    and the value come from it.
    """
    d = torch.float64
    op64 = op.astype(d)  # never two stored cost matrices at once
    a, b = a.to(d), b.to(d)
    f, g = sol.f.to(d), sol.g.to(d)
    lm = 1.0 if rho is None else 1.0 / (1.0 + eps / rho)
    total = getattr(op, "total", None)  # sharded problems sum over the ranks
    sg = op64.rows(b.log() + g / eps, eps)
    sf = sg if symmetric else op64.cols(a.log() + f / eps, eps)
    err_a, err_b = _errors(a, f, lm * sg, b, g, lm * sf, eps, symmetric, total)
    sol.f, sol.g, sol.sg, sol.sf, sol.err = f, g, sg, sf, (err_a, err_b)


@dataclass
class _Solved:
    """A solved problem: the user's value, and the solution in working units.

    Working units: coordinates ``(z - c) / 2^k``, costs, eps, rho and the
    potentials divided by ``2^kp`` (``kp = k p``; 0 for a callable cost), in
    ``dtype`` (float64 where the input's float32 cannot reach tol).
    """

    value: torch.Tensor
    primal: torch.Tensor
    sol: _Sol
    reduction: Reduction
    x: torch.Tensor
    y: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    eps: float
    kp: float

    def user(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """A potential in the user's cost units and dtype."""
        return times_pow2(t.to(torch.float64), self.kp).to(dtype)

    @property
    def schedule(self) -> tuple[float, ...]:
        """The eps schedule in the user's cost units."""
        return tuple(times_pow2(e, self.kp) for e in self.sol.schedule)


def _solve(
    x,
    y,
    a,
    b,
    *,
    eps,
    cost: Cost,
    reach,
    scaling,
    stop: Stop,
    max_iter,
    backend,
    progress=None,
    shard=None,
):
    """Normalise, run the loop, attach envelope-theorem gradients.

    Returns a :class:`_Solved`; its ``value`` is a differentiable 0-d tensor
    in the dtype of ``x``. Equal measures (``x is y and a is b``, or the same
    numbers) run the symmetric loop (one soft-min per sweep). ``progress``: a
    bar label (see _loop).

    ``shard``: a problem split over the ranks of a process group
    (:mod:`otgen.ot._sharded`). ``x``, ``y``, ``a``, ``b`` are then the global
    clouds gathered on every rank (differentiable in each rank's rows); the
    soft-mins run through a :class:`~otgen.ot._sharded.ShardedOp`, the loop
    on this rank's entries of the weights and potentials, and the value's
    graph is this rank's share (see :meth:`~otgen.ot._sharded.Shard.share`).
    The potentials of ``sol`` are this rank's.
    """
    same = x is y and a is b
    symmetric = same or _identical(x, y, a, b)
    if shard is not None and not shard.aligned:
        symmetric = False  # equal measures split differently: both sides
    n, m = x.shape[0], y.shape[0]
    # Working units (see _Solved) and the cost scale cs there.
    if cost.fn is None:
        xg, yg, k = _normalise(x, y, same, cost.q)
        kp = k * cost.p
        cs = _diameter(xg, yg, cost.q) ** cost.p
    else:
        xg, yg, kp = x, y, 0.0
        cs = _max_cost(x, y, cost)
    eps_w = times_pow2(eps, -kp)
    ratio = eps_w / cs if cs > 0 else 1.0
    cs_user = times_pow2(cs, kp)
    rho = None
    if reach is not None:
        if cost.fn is None:
            try:
                rho = times_pow2(reach, -k) ** cost.p
            except OverflowError:
                rho = math.inf
        else:
            rho = reach
        if cs > 0 and not (1 / REACH_RANGE <= rho / cs <= REACH_RANGE):
            lo, hi = (times_pow2(cs, kp) * REACH_RANGE**t for t in (-1, 1))
            if cost.fn is None:
                lo, hi = (v ** (1 / cost.p) for v in (lo, hi))
            raise ValueError(
                f"reach must be within [{lo:.3g}, {hi:.3g}] for these data (got "
                f"reach={reach:g}): rho = reach^p is accepted within "
                f"[{1 / REACH_RANGE:g}, {REACH_RANGE:g}] times the cost scale "
                f"{cs_user:.3g}; pass reach=None for balanced OT, or a reach in "
                "that range."
            )
        if ratio > UNBALANCED_MAX_EPS:
            raise ValueError(
                f"eps must be at most {UNBALANCED_MAX_EPS:g} times the cost scale "
                f"for unbalanced OT (got eps={eps:g}, {ratio:.3g} times the cost "
                f"scale {cs_user:.3g}): beyond, float64 cannot resolve C / eps; "
                f"pass eps <= {UNBALANCED_MAX_EPS * cs_user:.3g}."
            )
    eps0 = cs
    _check_annealing(eps0, eps_w, scaling)
    tol = stop.tol  # the precision the working dtype must reach
    # The working dtype: see FLOAT32_MAX_EPS.
    wd = x.dtype
    u = torch.finfo(wd).eps / 2
    low = ratio < 3 * u / tol or tol < FLOAT32_MIN_TOL
    if wd == torch.float32 and (low or ratio > FLOAT32_MAX_EPS):
        wd = torch.float64
        u = torch.finfo(wd).eps / 2
    xw = xg.detach().to(wd)
    yw = xw if same else yg.detach().to(wd)
    aw, bw = a.detach().to(wd), b.detach().to(wd)
    if rho is None:  # equal masses to the last bit (float32 sums differ by 1e-8)
        bw = bw * (aw.sum() / bw.sum())
    if symmetric:
        yw, bw = xw, aw
    # A sharded problem: each rank reduces over all rows against its columns.
    cm = m if shard is None else shard.ny[shard.rank]
    red = choose_reduction(
        backend,
        n,
        cm,
        x.device,
        native_support(xw, cost=cost),
        multiscale_support(xw, cost, rho)
        if shard is None
        else "sharded problems (group=...) run on all pairs",
        store=(x.shape[1], stored_bytes(n, cm, wd, symmetric)),
    )
    # The loop's weights: this rank's entries for a sharded problem.
    al, bl = (aw, bw) if shard is None else (aw[shard.rows], bw[shard.cols])
    total = None if shard is None else shard.total
    kw = dict(rho=rho, scaling=scaling, stop=stop, max_iter=max_iter)
    kw.update(symmetric=symmetric)
    init, op, unit_mass = None, None, False
    with torch.no_grad():
        if rho is None and cs > 0 and ratio >= LARGE_EPS:
            aw, bw, unit_mass = _as_probabilities(aw, bw, a.dtype)
            if symmetric:
                bw = aw
            sol = _large_eps(xw, yw, aw, bw, cost, eps_w, stop, unit_mass)
            red = red.all_pairs()  # no op: the gradient runs on all pairs
            al, bl = (aw, bw) if shard is None else (aw[shard.rows], bw[shard.cols])
            if shard is not None:  # solved whole on every rank: keep its rows
                sol.f, sol.sg = sol.f[shard.rows], sol.sg[shard.rows]
                sol.g, sol.sf = sol.g[shard.cols], sol.sf[shard.cols]
                op = ShardedOp(xw, yw, cost, red, shard)
        else:
            if red.coarse_to_fine:
                op, init, eps0 = _multiscale_start(xw, yw, aw, bw, cost, eps_w, **kw)
            elif shard is not None:
                op = ShardedOp(xw, yw, cost, red, shard)
            else:
                op = red.bind(xw, yw, cost)
            sol = _loop(
                op, al, bl, eps=eps_w, eps0=eps0, init=init, progress=progress, **kw
            )
            if red.coarse_to_fine:
                sol.schedule = op.coarse_schedule + sol.schedule
            if wd != torch.float64:
                _recheck(op, al, bl, sol, eps_w, rho, symmetric)
                if stop.marginal:
                    sol.converged = sol.value_ok and max(sol.err) <= tol
            if cs > 0 and ratio < u / tol:
                sol.converged = False
                sol.why = (
                    f"eps={eps:g} is {ratio:.2g} times the cost scale {cs_user:.3g}, "
                    f"and below {u / tol:.2g} times it {wd} cannot compute "
                    "exp((f_i + g_j - C_ij) / eps) to tol, so the plan's marginals "
                    f"cannot be certified: pass eps >= {u / tol * cs_user:.3g} or a "
                    "larger tol, or use exact_ot for unregularised OT"
                )
        dual, primal, r, ga, gb = _values(al, bl, sol, eps_w, rho, unit_mass, total)
    value = times_pow2(dual, kp)
    f_user, g_user = (times_pow2(t.to(torch.float64), kp) for t in (sol.f, sol.g))
    bad = [
        name
        for name, t in (("value", value), ("f", f_user), ("g", g_user))
        if not bool(torch.isfinite(t.to(x.dtype)).all())
    ]
    if shard is not None and shard.any(bool(bad)) and not bad:
        bad = ["potentials (on another rank)"]
    if bad:
        raise ValueError(
            f"the {' and '.join(bad)} of this problem overflow {x.dtype} (the cost "
            f"scale is {cs_user:.3g}); divide x and y by a common length s (the "
            "value scales by s^p), or pass float64 data."
        )
    value = value.to(x.dtype)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, y, a, b)):
        expr = torch.zeros((), dtype=torch.float64, device=x.device)
        if x.requires_grad or y.requires_grad:
            h = (bl.log() + sol.g.to(wd) / eps_w).detach()
            xt, yt = xg.to(wd), yg.to(wd)
            # d/dC_ij of sum_i r_i smin(h)_i is exactly P_ij (any f, g).
            if op is not None:
                ft = op.softmin(xt, yt, h, eps_w)  # (n,)
            else:
                ft = red.for_gradient(n, m).softmin(xt, yt, h, eps_w, cost)
            expr = expr + (r.to(wd) * ft).sum().to(torch.float64)
        # Sharded: this rank's rows (the gradient of the gather adds the ranks).
        ar, br = (a, b) if shard is None else (a[shard.rows], b[shard.cols])
        if a.requires_grad:
            expr = expr + (ar.to(torch.float64) * ga).sum()
        if b.requires_grad:
            expr = expr + (br.to(torch.float64) * gb).sum()
        expr = times_pow2(expr, kp)
        value = value + (expr - expr.detach()).to(x.dtype)
    return _Solved(
        value,
        times_pow2(primal, kp).to(x.dtype),
        sol,
        red,
        xw,
        yw,
        aw,
        bw,
        eps_w,
        kp,
    )


def _transposed(cost: Cost) -> Cost:
    if cost.fn is None:
        return cost
    fn = cost.fn
    return Cost(fn=lambda u, v: fn(v, u).T)


class EntropicPlan:
    r"""The entropic plan :math:`P_{ij} = a_i b_j e^{(f_i + g_j - C_{ij})/\varepsilon}`.

    Never stored: each method runs one pass over the pairs (dense for the
    ``"dense"`` backend, in row blocks otherwise), so it works at any size.
    It is evaluated in the solver's working units (coordinates divided by a
    power of two :math:`2^k`, costs, eps and potentials by :math:`2^{kp}`)
    and precision, and returned in the input's dtype.

    Attributes
    ----------
    shape : tuple of int
        ``(n, m)``.
    """

    def __init__(
        self, x, y, a, b, f, g, eps, cost, pairs, as_torch, *, unit=0.0, dtype=None
    ) -> None:
        self._x, self._y, self._a, self._b = x, y, a, b
        self._f, self._g = f.to(x.dtype), g.to(x.dtype)
        self._eps, self._cost, self._unit = eps, cost, unit
        self._dtype = x.dtype if dtype is None else dtype
        self._pairs = pairs  # row blocks of the one-pass products
        self._as_torch = as_torch
        self.shape = (x.shape[0], y.shape[0])

    def __repr__(self) -> str:
        eps = times_pow2(self._eps, self._unit)
        return f"EntropicPlan(shape={self.shape}, eps={eps:g})"

    def _out(self, t):
        return to_output(t.to(self._dtype), self._as_torch)

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
            self._x, self._y, h, self._eps, self._cost, self._pairs, v
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
            self._pairs,
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
        if not is_int(k) or not 1 <= k <= self.shape[1]:
            raise ValueError(
                f"k must be an integer in [1, {self.shape[1]}] (got {k!r}); it is "
                "the number of entries kept per row."
            )
        h = self._b.log() + self._g / self._eps
        lse, s, idx = softmax_topk(
            self._x, self._y, h, self._eps, self._cost, self._pairs, int(k)
        )
        vals = self._a[:, None] * torch.exp(self._f[:, None] / self._eps + s)
        return self._out(vals), to_output(idx, self._as_torch)

    @torch.no_grad()
    def transport_cost(self):
        r"""The linear part :math:`\langle P, C\rangle = \sum_{ij} P_{ij} C_{ij}`."""
        h = self._b.log() + self._g / self._eps
        la = self._a.log() + self._f / self._eps
        t = plan_cost_sum(self._x, self._y, h, la, self._eps, self._cost, self._pairs)
        t = times_pow2(t.to(torch.float64), self._unit).to(self._dtype)
        return scalar_output(t, self._as_torch)


def _describe(cost: Cost, rho: float | None) -> str:
    base = f"entropic OT dual objective, C = {cost.name}"
    if rho is None:
        return base + " (balanced; = <P,C> + eps KL(P|a x b) at convergence)"
    return base + " (unbalanced, KL marginal penalties of strength rho = reach^p)"


def _prepare(
    x,
    y,
    a,
    b,
    *,
    eps,
    cost,
    p,
    q,
    reach,
    scaling,
    tol,
    rtol,
    max_iter,
    group=None,
    progress=None,
):
    """Validate the common arguments of sinkhorn and sinkhorn_divergence.

    ``group``: the process group of a sharded problem (see
    :mod:`otgen.ot._sharded`); the ranks' inputs are checked together and
    gathered, and the checks below run on the global clouds. Returns the
    validated arguments, the :class:`~otgen.ot._sharded.Shard` (None in one
    process) and whether to show a progress bar (rank 0 only). Identical
    inputs (``x is y and a is b`` on every rank) come back as the same
    tensors, which selects the faster symmetric loop.
    """
    same = x is y and a is b
    shard = None
    if group is not None:
        from otgen.ot._sharded import open_shard

        if reach is not None:
            raise ValueError(
                f"reach={reach!r} with group=...: sharded Sinkhorn solves balanced "
                "problems only; pass reach=None, or solve the unbalanced problem "
                "in one process (group=None)."
            )
        shard, x, y, a, b = open_shard(group, x, y, a, b)
    tx, ty = check_points(x, y)
    ta = check_weights(a, tx.shape[0], "a", tx)
    tb = check_weights(b, ty.shape[0], "b", tx)
    c = resolve_cost(cost, p=p, q=q)
    rv = None
    if reach is not None:
        rv = check_positive(reach, "reach")
    else:
        try:
            check_same_mass(ta, tb)
        except ValueError as err:
            if shard is None:
                raise
            raise ValueError(
                f"{err} With group=..., a and b are each rank's entries of the "
                "global weights: the totals are summed over all ranks (normalise "
                "by the global sum, not per rank)."
            ) from None
    e = default_eps(tx, ty, c) if eps is None else check_positive(eps, "eps")
    s = _check_scaling(scaling)
    t = _stop_rule(tol, rtol, reach)
    mi = _check_max_iter(max_iter)
    show = _check_progress(progress, tx.shape[0], ty.shape[0])
    if shard is not None:
        show = show and shard.rank == 0
    if shard.same if shard is not None else same:
        ty, tb = tx, ta
    return tx, ty, ta, tb, c, rv, e, s, t, mi, shard, show


def _stop_rule(tol, rtol, reach) -> Stop:
    """The stopping rule from ``tol`` and ``rtol`` (see :mod:`._stopping`)."""
    t = DEFAULT_TOL if tol is None else check_positive(tol, "tol")
    if rtol is not None:
        r = check_positive(rtol, "rtol")
        if reach is not None:
            raise ValueError(
                f"rtol applies to balanced problems (got rtol={rtol!r} with "
                f"reach={reach!r}): the unbalanced loop stops on its marginal "
                "fixed-point error; pass tol= instead of rtol=, or reach=None."
            )
        return Stop(t, r, tol is not None)
    if tol is not None or reach is not None:
        return Stop(t, None, True)
    return Stop(t, DEFAULT_RTOL, False)


def _not_converged(sol: _Sol, eps: float, stop: Stop, max_iter: int) -> str:
    """Why a solve did not converge, in words (for the warning)."""
    err, tol = max(sol.err), stop.tol
    parts = []
    if sol.capped and stop.marginal and err > tol:
        parts.append(
            f"marginal error {err:.2e} > tol={tol:g} after max_iter={max_iter} "
            f"iterations at eps={eps:g} (increase max_iter, loosen tol or "
            "increase eps)"
        )
    if sol.capped and not sol.value_ok:
        after = f"after max_iter={max_iter} iterations at eps={eps:g}"
        if math.isfinite(sol.remaining):
            parts.append(
                f"{after} the value may still move by about {sol.remaining:.2e} of "
                f"itself (estimated), more than rtol={stop.rtol:g} (increase "
                "max_iter, loosen rtol or increase eps)"
            )
        else:  # too few increments, or increments that do not shrink yet
            parts.append(
                f"{after} what the value may still gain has no estimate to hold "
                f"against rtol={stop.rtol:g}: its increments had not begun to "
                f"shrink steadily (the last was {sol.last_step:.2e} of the value; "
                "increase max_iter or eps)"
            )
    if not sol.capped and stop.marginal and err > tol:
        # a float32 loop stopped by its own rounding
        parts.append(
            f"the plan's marginal error measured in float64 is {err:.2e} > "
            f"tol={tol:g} at eps={eps:g} (pass float64 data or increase eps)"
        )
    if sol.why:
        parts.append(sol.why)
    return "; ".join(parts)


def _warn(what: str, why: str) -> None:
    warnings.warn(
        f"{what} did not converge: {why}. The result is approximate (converged=False).",
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
    rtol: float | None = None,
    max_iter: int = 1000,
    backend: Backend = "auto",
    progress: bool | None = None,
    group: Any = None,
) -> SinkhornResult:
    r"""Entropic optimal transport between two weighted point clouds.

    .. math::
        \mathrm{OT}_\varepsilon(\alpha, \beta) = \min_{P \ge 0}
        \sum_{ij} P_{ij} C_{ij} + \varepsilon\, \mathrm{KL}(P \,\|\, a \otimes b)
        \quad \text{s.t. } P 1 = a,\ P^\top 1 = b,

    solved in the log domain :cite:`cuturi2013sinkhorn` with epsilon-scaling
    :cite:`feydy2019interpolating`. With ``reach`` the marginal constraints
    become penalties :math:`\rho\,\mathrm{KL}(P 1 \| a) +
    \rho\,\mathrm{KL}(P^\top 1 \| b)`, :math:`\rho = \text{reach}^p`
    (unbalanced OT :cite:`chizat2018scaling`).

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
        units for a callable cost). None: balanced. :math:`\rho` must lie
        within ``REACH_RANGE`` = 1e12 times the cost scale :math:`D^p` either
        way (the error says the range in units of reach).
    scaling : float in (0, 1), default=0.8
        Ratio between successive eps of the annealing, which starts at an
        upper bound D^p on the largest cost; D is the smaller of the bounding
        box's diagonal and the sum of the clouds' radii about their common
        mean (a callable cost starts at its largest entry). GeomLoss's
        ``scaling`` acts on the blur: its 0.9 is 0.81 here. Slower annealing
        (closer to 1) costs
        more iterations up front but far fewer at the target eps: at small
        eps the annealing is the efficient part of the solve. A schedule of
        more than ``MAX_ANNEALING`` = 10000 steps is refused.
    tol : float, optional
        The marginal rule: stop when the relative L1 errors of the marginals
        :math:`\|P 1 - a\|_1 / \|a\|_1` and :math:`\|P^\top 1 - b\|_1 /
        \|b\|_1` are below ``tol`` (the column marginal is exact after each
        balanced update). Pass it when the plan's marginals matter (a plan to
        use, potentials to compare). Default: off for balanced problems, 1e-3
        for unbalanced ones.
    rtol : float, optional
        The value rule: stop when further iterations cannot move the value by
        more than ``rtol`` times :math:`|\mathrm{OT}_\varepsilon| +
        \varepsilon\, m(a)` (estimated from the geometric decay of the dual
        increments; see :mod:`otgen.ot._stopping`). Default: 1e-4
        (``DEFAULT_RTOL``) for balanced problems when ``tol`` is not given;
        with both, both must hold. Balanced problems only.
    max_iter : int, default=1000
        Cap on the iterations at the target eps (annealing excluded).
    backend : str, default="auto"
        The soft-min reduction: ``"auto"``, ``"dense"``, ``"chunked"``,
        ``"keops"``, ``"native"`` or ``"multiscale"`` (see
        :func:`otgen.ot._reduce.choose_reduction`).
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
    group : torch.distributed ProcessGroup or "world", optional
        Sharded OT (see Notes): ``x``, ``a`` are this rank's rows of the
        global cloud :math:`\alpha` and ``y``, ``b`` its rows of
        :math:`\beta`, in rank order. ``"world"``: the default group. None
        (default): one process.

    Returns
    -------
    SinkhornResult
        ``value`` (dual objective; differentiable), ``primal``, potentials
        ``f``, ``g``, ``plan`` (:class:`EntropicPlan`), ``marginal_error``,
        ``n_iter``, ``converged``, ``eps_schedule``, ``backend``. With
        ``group``: ``value``, ``primal``, ``marginal_error``, ``n_iter`` are
        global (the same on every rank), ``f`` and ``g`` this rank's rows,
        and ``plan`` is None.

    Raises
    ------
    ValueError
        On invalid points or weights, unequal masses without ``reach``,
        ``eps <= 0``, ``reach`` outside its range, ``scaling`` outside (0, 1)
        or needing more than ``MAX_ANNEALING`` steps, ``tol <= 0``,
        ``rtol <= 0`` (or ``rtol`` with ``reach``),
        ``max_iter < 1``, an unknown backend or cost, or a result that
        overflows the input's dtype.

    Warns
    -----
    UserWarning
        If ``max_iter`` is reached first, or the marginal error cannot be
        certified (see Notes); the result has ``converged=False``.

    Notes
    -----
    **Scale.** Named costs are solved on the points centred on their common
    mean and divided by a power of two :math:`2^k` just above the bound D on
    the largest distance (exact in binary floating point), with eps and
    :math:`\rho` divided by :math:`2^{kp}`; the value, potentials and
    schedule are multiplied back. The result is scale-equivariant, and
    coordinates of :math:`10^{\pm 200}` cost no accuracy; a value or
    potentials beyond the input's dtype raise a ValueError.

    **Precision.** The exponents :math:`(f_i + g_j - C_{ij}) / \varepsilon`
    carry an error of about :math:`u D^p / \varepsilon` (u the unit roundoff),
    and :math:`\log b_j + g_j / \varepsilon` loses :math:`C / \varepsilon` at
    large eps. float32 input therefore runs in float64 (results returned in
    float32) when eps is below :math:`3u/\mathrm{tol}` or above 100 times
    :math:`D^p`, or tol is below 1e-5; otherwise the float32 run's marginal
    errors are measured once more in float64 before ``converged`` is decided.
    Below :math:`u / \mathrm{tol}\, D^p` even float64 cannot certify the
    marginals (``converged=False`` with a warning). Balanced problems with
    :math:`\varepsilon \ge 10^5 D^p` use the expansion :math:`\langle a \otimes
    b, C\rangle - \|\tilde C\|^2 / (2\varepsilon)` (exact to
    :math:`(D^p/\varepsilon)^2`, :math:`\tilde C` the doubly centred cost)
    instead of iterations :cite:`genevay2019sample`; unbalanced ones are
    refused beyond :math:`10^8 D^p`. The returned ``f``, ``g`` are rounded to
    the input's dtype; ``plan`` is evaluated in the working precision.

    **Sharded OT** (``group=...``, :mod:`otgen.ot._sharded`). Rank :math:`r`
    holds rows :math:`I_r` of x and :math:`J_r` of y (at least one each). The
    weights are each rank's entries of the global weight vectors: their sums
    over all ranks must be equal (checked; a ValueError names ``a`` and ``b``
    otherwise); None on every rank means uniform :math:`1/n` over the global
    cloud. Each rank gathers both clouds once (one ``all_gather`` each), so
    the scale, eps and the checks are those of one process. The soft-min
    :math:`\operatorname{smin}_\varepsilon(h)_i = -\varepsilon \log \sum_r
    \sum_{j \in J_r} e^{h_j - C_{ij}/\varepsilon}` is combined from per-rank
    partial log-sum-exps :math:`L^{(r)}_i` over the rank's columns:
    :math:`M = \max_r L^{(r)}` (``all_reduce`` MAX), :math:`S = \sum_r
    e^{L^{(r)} - M}` (``all_reduce`` SUM), :math:`-\varepsilon (M + \log
    S)`, and each rank keeps its rows; the marginal errors and the dual
    objective are per-rank sums and an ``all_reduce``, so every rank stops
    after the same iteration. Per iteration: 4 ``all_reduce`` of n, n, m, m
    numbers and one of 4 (the two errors), i.e. :math:`16 (n + m) + 32` bytes
    of payload in float64 (:math:`16 n + 16` for a symmetric problem); the
    :math:`n \times m` matrix is never gathered, each rank reduces over
    :math:`n |J_r| + m |I_r|` pairs per iteration. Gradients: every rank
    calls ``backward()`` on the value and gets the single-process gradient on
    its rows of ``x``, ``y``, ``a``, ``b`` (the backward is collective).
    Balanced problems only; ``backend="multiscale"`` is refused and
    ``"auto"`` runs all pairs; equal measures split differently over the
    ranks run the two-sided loop (the same value to ``tol``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((3, 2))  # all mass on one point: zero cost
    >>> r = sinkhorn(x, x, eps=0.1)
    >>> abs(r.value) < 1e-9, r.converged
    (True, True)
    """
    as_torch = is_torch(x, y, a, b)
    tx, ty, ta, tb, c, rv, e, s, t, mi, shard, show = _prepare(
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
        rtol=rtol,
        max_iter=max_iter,
        group=group,
        progress=progress,
    )
    res = _solve(
        tx,
        ty,
        ta,
        tb,
        eps=e,
        cost=c,
        reach=rv,
        scaling=s,
        stop=t,
        max_iter=mi,
        backend=backend,
        progress="sinkhorn" if show else None,
        shard=shard,
    )
    sol = res.sol
    if not sol.converged:
        _warn("sinkhorn", _not_converged(sol, e, t, mi))
    plan = None
    if shard is None:
        plan = EntropicPlan(
            res.x, res.y, res.a, res.b, sol.f, sol.g, res.eps, c,
            res.reduction.plan_pairs, as_torch,
            unit=res.kp, dtype=tx.dtype,
        )  # fmt: skip
    return SinkhornResult(
        value=scalar_output(res.value, as_torch),
        primal=scalar_output(res.primal, as_torch),
        f=to_output(res.user(sol.f, tx.dtype), as_torch),
        g=to_output(res.user(sol.g, tx.dtype), as_torch),
        plan=plan,
        marginal_error=sol.err,
        n_iter=sol.n_iter,
        converged=sol.converged,
        eps=e,
        eps_schedule=res.schedule[:-1] + (e,),
        backend=res.reduction.name,
        cost=c.name,
        reach=rv,
        value_description=_describe(c, rv),
    )
