r"""Ground costs between point clouds.

A cost is resolved once into a :class:`Cost`, which evaluates it two ways:
``pairwise(x, y)`` gives the (n, m) matrix :math:`C_{ij} = c(x_i, y_j)`, and
``paired(x, y)`` gives :math:`c(x_k, y_k)` row by row (used to differentiate a
transport cost on the support of a sparse plan without forming C).

Squared Euclidean distances are computed from
:math:`\|x\|^2 + \|y\|^2 - 2\langle x, y\rangle` *after centring both clouds on a
common mean and in float64*, then cast back: in float32 the naive expansion loses
every significant digit when the points are far from the origin relative to
their spread (catastrophic cancellation), which this avoids.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

import torch

from otgen._arrays import ArrayLike, is_torch, to_output
from otgen._validation import check_choice, check_finite, check_p, check_points

__all__ = ["Cost", "CostLike", "resolve_cost", "cost_matrix", "sqeuclidean"]

CostLike = Union[str, "Cost", Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]

_NAMES = ("sqeuclidean", "euclidean", "minkowski")


def sqeuclidean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Pairwise :math:`\|x_i - y_j\|_2^2`, shape (n, m), without cancellation.

    Differentiable; float32 input is accumulated in float64 and returned in
    float32.
    """
    work = torch.float64 if x.dtype == torch.float32 else x.dtype
    xd, yd = x.to(work), y.to(work)
    center = 0.5 * (xd.detach().mean(0) + yd.detach().mean(0))
    xd, yd = xd - center, yd - center
    x2 = (xd * xd).sum(-1)[:, None]  # (n, 1)
    y2 = (yd * yd).sum(-1)[None, :]  # (1, m)
    d2 = torch.addmm(x2 + y2, xd, yd.T, alpha=-2.0).clamp_min_(0.0)
    return d2.to(x.dtype)


def _safe_sqrt(d2: torch.Tensor) -> torch.Tensor:
    """Square root with a zero (not NaN) gradient at 0."""
    pos = d2 > 0
    return torch.where(pos, d2, torch.ones_like(d2)).sqrt() * pos


@dataclass(frozen=True)
class Cost:
    r"""The ground cost :math:`c(x, y) = \|x - y\|_q^{\,p}`, or a user callable.

    Parameters
    ----------
    q : float, default=2
        The norm, :math:`q \geq 1`.
    p : float, default=2
        The power applied to the norm, :math:`p \geq 1` (``p=2, q=2`` is the
        squared Euclidean cost of :math:`W_2^2`).
    fn : callable, optional
        A user cost ``fn(x, y) -> (n, m)`` tensor; overrides ``q`` and ``p``.
    """

    q: float = 2.0
    p: float = 2.0
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    @property
    def name(self) -> str:
        """A short human-readable name."""
        if self.fn is not None:
            return getattr(self.fn, "__name__", "callable")
        if self.q == 2 and self.p == 2:
            return "sqeuclidean"
        if self.q == 2 and self.p == 1:
            return "euclidean"
        return f"||x-y||_{self.q:g}^{self.p:g}"

    @property
    def is_sqeuclidean(self) -> bool:
        r"""True for the squared Euclidean cost."""
        return self.fn is None and self.q == 2 and self.p == 2

    def pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cost matrix :math:`C_{ij} = c(x_i, y_j)`, shape (n, m)."""
        if self.fn is not None:
            C = self.fn(x, y)
            if not isinstance(C, torch.Tensor):
                C = torch.as_tensor(C, dtype=x.dtype, device=x.device)
            if C.shape != (x.shape[0], y.shape[0]):
                raise ValueError(
                    f"cost must return a matrix of shape ({x.shape[0]}, "
                    f"{y.shape[0]}) (got {tuple(C.shape)}); a callable cost "
                    "maps x (n, d) and y (m, d) to C[i, j] = c(x[i], y[j])."
                )
            check_finite(C, "the cost matrix returned by cost")
            return C
        if self.q == 2:
            d2 = sqeuclidean(x, y)
            if self.p == 2:
                return d2
            return _safe_sqrt(d2) if self.p == 1 else d2.pow(self.p / 2)
        d = torch.cdist(x, y, p=self.q)
        return d if self.p == 1 else d.pow(self.p)

    def paired(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Costs :math:`c(x_k, y_k)` of aligned rows, shape (k,)."""
        if self.fn is not None:
            raise TypeError("paired costs are not available for a callable cost")
        diff = x - y
        if self.q == 2:
            d2 = (diff * diff).sum(-1)
            if self.p == 2:
                return d2
            return _safe_sqrt(d2) if self.p == 1 else d2.pow(self.p / 2)
        if math.isinf(self.q):
            d = diff.abs().amax(-1)
        else:
            d = diff.abs().pow(self.q).sum(-1).pow(1.0 / self.q)
        return d if self.p == 1 else d.pow(self.p)


def resolve_cost(
    cost: CostLike = "sqeuclidean", *, p: float | None = None, q: float = 2.0
) -> Cost:
    r"""Turn a cost specification into a :class:`Cost`.

    Parameters
    ----------
    cost : {"sqeuclidean", "euclidean", "minkowski"}, Cost or callable
        ``"sqeuclidean"`` is :math:`\|x-y\|_2^2`; ``"euclidean"`` is
        :math:`\|x-y\|_2`; ``"minkowski"`` is :math:`\|x-y\|_q^p` (give
        ``q`` and ``p``); a callable ``fn(x, y) -> (n, m)`` is used as is.
    p : float, optional
        Power for ``"minkowski"`` (default 1).
    q : float, default=2
        Norm for ``"minkowski"``.
    """
    if isinstance(cost, Cost):
        return cost
    if callable(cost):
        return Cost(fn=cost)
    check_choice(cost, "cost", _NAMES + ("a Cost or a callable",))
    fixed = {"sqeuclidean": 2.0, "euclidean": 1.0}.get(cost)
    if fixed is not None and p is not None and float(p) != fixed:
        raise ValueError(
            f"p={p!r} does not apply to cost={cost!r} (whose power is {fixed:g}); "
            f"pass cost='minkowski', p={p!r} for ||x-y||_q^p, or drop p."
        )
    if cost == "sqeuclidean":
        return Cost(q=2.0, p=2.0)
    if cost == "euclidean":
        return Cost(q=2.0, p=1.0)
    qv = float(q)
    if not (qv >= 1):
        raise ValueError(
            f"q must be >= 1 for a norm (got {q!r}); pass e.g. q=1, 2 or inf."
        )
    return Cost(q=qv, p=check_p(1.0 if p is None else p))


def cost_matrix(
    x: ArrayLike, y: ArrayLike, cost: CostLike = "sqeuclidean", *, p=None, q=2.0
):
    r"""Pairwise cost matrix :math:`C_{ij} = c(x_i, y_j)`.

    References: :cite:`peyre2019computational`.

    Parameters
    ----------
    x, y : array or Tensor, shape (n, d) and (m, d)
        Point clouds (a 1-D input is n points on the line).
    cost : str, Cost or callable, default="sqeuclidean"
        See :func:`resolve_cost`.
    p, q : float, optional
        Power and norm for ``cost="minkowski"``.

    Returns
    -------
    array or Tensor, shape (n, m)
        Same kind as the input; differentiable for torch input.

    Examples
    --------
    >>> import numpy as np
    >>> cost_matrix(np.array([[0.0], [1.0]]), np.array([[3.0]])).ravel().tolist()
    [9.0, 4.0]
    """
    as_torch = is_torch(x, y)
    tx, ty = check_points(x, y)
    return to_output(resolve_cost(cost, p=p, q=q).pairwise(tx, ty), as_torch)
