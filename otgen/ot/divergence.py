r"""The debiased Sinkhorn divergence.

.. math::
    S_\varepsilon(\alpha, \beta) = \mathrm{OT}_\varepsilon(\alpha, \beta)
    - \tfrac12 \mathrm{OT}_\varepsilon(\alpha, \alpha)
    - \tfrac12 \mathrm{OT}_\varepsilon(\beta, \beta)
    + \tfrac{\varepsilon}{2} (m(\alpha) - m(\beta))^2,

(the last term vanishes for balanced problems) is non-negative, zero iff
:math:`\alpha = \beta`, and tends to the exact :math:`\mathrm{OT}_0 = W_p^p` as
:math:`\varepsilon \to 0` :cite:`feydy2019interpolating`
:cite:`sejourne2019unbalanced`.
"""

from __future__ import annotations

from typing import Any

import torch

from otgen._arrays import ArrayLike, is_torch, scalar_output
from otgen.ot._batch import is_batched, over_batch
from otgen.ot._reduce import Backend
from otgen.ot.costs import CostLike
from otgen.ot.sinkhorn import (
    _not_converged,
    _prepare,
    _solve,
    _warn,
)

__all__ = ["sinkhorn_divergence"]


def sinkhorn_divergence(
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
):
    r"""Debiased Sinkhorn divergence between two weighted point clouds.

    .. math::
        S_\varepsilon(\alpha, \beta) = \mathrm{OT}_\varepsilon(\alpha, \beta)
        - \tfrac12 \mathrm{OT}_\varepsilon(\alpha, \alpha)
        - \tfrac12 \mathrm{OT}_\varepsilon(\beta, \beta)
        + \tfrac{\varepsilon}{2}\,(m(\alpha) - m(\beta))^2,

    with :math:`\mathrm{OT}_\varepsilon` as in
    :func:`otgen.ot.sinkhorn.sinkhorn` and :math:`m(\cdot)` the total mass (the
    last term is zero unless ``reach`` is given and the masses differ
    :cite:`sejourne2019unbalanced`). The symmetric terms run a symmetric loop
    (one soft-min per iteration) :cite:`feydy2019interpolating`.

    Parameters
    ----------
    x, y : array or Tensor, shape (n, d) and (m, d), or (B, n, d) and (B, m, d)
        Supports. With a leading batch axis the B pairs are solved one after
        the other (see :mod:`otgen.ot._batch`) and B values are returned.
    a, b : array or Tensor, shape (n,) and (m,), optional
        Non-negative weights; uniform when None. Batched: (B, n) or shared
        (n,).
    eps : float, optional
        Regularisation in units of the cost; None: the data-scale default
        :func:`otgen.ot.sinkhorn.default_eps`. For the default cost
        :math:`\|x-y\|^2`, GeomLoss's ``SamplesLoss("sinkhorn", p=2, blur)``
        times 2 equals this function at ``eps = 2 * blur**2``.
    cost, p, q, reach, scaling, tol, rtol, max_iter, backend
        As in :func:`otgen.ot.sinkhorn.sinkhorn`. By default each of the three
        problems stops when its value cannot move by more than ``rtol`` = 1e-4
        of itself, so :math:`S_\varepsilon` is within about 1e-4 of
        :math:`\mathrm{OT}_\varepsilon(\alpha, \beta) + \tfrac12
        \mathrm{OT}_\varepsilon(\alpha, \alpha) + \tfrac12
        \mathrm{OT}_\varepsilon(\beta, \beta)` (plus eps times the mass).
    progress : bool, optional
        A progress bar per problem (``OT(a,b)``, ``OT(a,a)``, ``OT(b,b)``)
        on standard error; None: from 1e9 pairs, as in
        :func:`otgen.ot.sinkhorn.sinkhorn`.
    group : torch.distributed ProcessGroup or "world", optional
        Sharded clouds: each rank passes its rows of x (and a) and of y (and
        b); the three problems run sharded as in
        :func:`otgen.ot.sinkhorn.sinkhorn` (``OT(a,a)`` over the rows of x
        on each rank, ``OT(b,b)`` over those of y). The value is global on
        every rank; every rank calls ``backward()`` and gets the gradient on
        its rows. Balanced, unbatched problems only.

    Returns
    -------
    float or Tensor
        :math:`S_\varepsilon` (a Python float for NumPy input, a 0-d tensor
        for torch input, differentiable in ``x``, ``y``, ``a``, ``b``). It is
        non-negative (a negative sum of the three terms, which only the
        solver tolerance can produce, is returned as 0), exactly 0 for equal
        measures, and tends to :math:`W_p^p` (not :math:`W_p`) as eps -> 0.
        Batched input: a float64 array or a tensor of shape (B,).

    Raises
    ------
    ValueError
        As :func:`otgen.ot.sinkhorn.sinkhorn`.

    Warns
    -----
    UserWarning
        If one of the three problems stops at ``max_iter``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0]])
    >>> s = sinkhorn_divergence(x, x + 3.0, eps=1e-3)  # W_2^2 = 9
    >>> round(s, 4)
    9.0
    """
    if is_batched(x, y) and group is None:  # (B, n, d): one per pair, in turn
        kw = dict(eps=eps, cost=cost, p=p, q=q, reach=reach, scaling=scaling)
        kw.update(tol=tol, rtol=rtol, max_iter=max_iter, backend=backend)
        kw.update(progress=progress)
        return over_batch(sinkhorn_divergence, x, y, a, b, **kw)
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
    kw = dict(eps=e, cost=c, reach=rv, scaling=s, stop=t, max_iter=mi, backend=backend)
    total = torch.zeros((), dtype=tx.dtype, device=tx.device)
    why = []  # one warning for the three problems
    for u, v, wu, wv, coef, label, sides in (
        (tx, ty, ta, tb, 1.0, "OT(a,b)", ("x", "y")),
        (tx, tx, ta, ta, -0.5, "OT(a,a)", ("x", "x")),
        (ty, ty, tb, tb, -0.5, "OT(b,b)", ("y", "y")),
    ):
        view = None if shard is None else shard.view(*sides)
        res = _solve(u, v, wu, wv, progress=label if show else None, shard=view, **kw)
        if not res.sol.converged:
            why.append(f"{label}: {_not_converged(res.sol, e, t, mi)}")
        total = total + coef * res.value
    if why:
        _warn("sinkhorn_divergence", "; ".join(why))
    if rv is not None:
        total = total + 0.5 * e * (ta.sum() - tb.sum()) ** 2
    # S_eps >= 0 [1, Thm 1; 2]: a negative total is the stopping tolerance of
    # the three solves (each value is within ~tol of its limit), not a
    # distance; it is returned as 0 (equal measures give exactly 0: the three
    # problems are then the same symmetric one).
    return scalar_output(total.clamp_min(0.0), as_torch)
