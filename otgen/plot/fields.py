r"""Functions over the plane drawn by :mod:`otgen.plot`: potentials and witnesses.

- :func:`extend_potential`: a dual potential of an OT result evaluated at any
  point, by the (soft) c-transform of the other potential;
- :func:`mmd_witness`: the MMD witness function of two samples.

Both work in any dimension; the drawing functions use them on a grid.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import numpy as np
import torch

from otgen.ot.costs import Cost, CostLike, resolve_cost
from otgen.ot.kernels import (
    Kernel,
    KernelLike,
    ScaleLike,
    resolve_kernel,
    working_kernel,
)
from otgen.ot.result import OTResult, SinkhornResult
from otgen.plot._common import as_numpy

__all__ = ["extend_potential", "mmd_witness"]

# Grid points per block of the c-transform (keeps the block under ~32 MB).
_BLOCK_PAIRS = 4_000_000


def _points(v: Any, name: str, d: int | None = None) -> np.ndarray:
    out = as_numpy(v, name)
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2 or out.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (n, d) with n >= 1 (got shape {out.shape}); "
            "pass one point per row."
        )
    if d is not None and out.shape[1] != d:
        raise ValueError(
            f"{name} must have {d} columns, the dimension of x and y (got shape "
            f"{out.shape}); evaluate at points of the same space."
        )
    if not np.isfinite(out).all():
        raise ValueError(
            f"{name} must be finite (got {int((~np.isfinite(out)).sum())} NaN or "
            "inf entries); remove those points."
        )
    return out


def _weights(w: Any, n: int, name: str) -> np.ndarray:
    if w is None:
        return np.full(n, 1.0 / n)
    out = as_numpy(w, name).ravel()
    if out.shape != (n,) or not np.isfinite(out).all() or (out < 0).any():
        raise ValueError(
            f"{name} must be {n} finite non-negative weights (got shape "
            f"{out.shape}); pass the weights given to the solver, or None for "
            "uniform ones."
        )
    return out


def _cost_of(result: Any, cost: CostLike | None) -> Cost:
    """The result's ground cost, from its name (or ``cost``, checked against it)."""
    name = result.cost
    from_matrix = name == "given matrix C"  # otgen.emd on a cost matrix
    if cost is not None:
        c = resolve_cost(cost)
        if c.fn is None and c.name != name and not from_matrix:
            raise ValueError(
                f"cost={c.name!r} does not match the cost the result was solved "
                f"with ({name!r}); pass the solver's cost or None."
            )
        return c
    if name == "sqeuclidean":
        return Cost(q=2.0, p=2.0)
    if name == "euclidean":
        return Cost(q=2.0, p=1.0)
    m = re.fullmatch(r"\|\|x-y\|\|_(.+)\^(.+)", name)
    if m:
        return Cost(q=float(m.group(1)), p=float(m.group(2)))
    if from_matrix:
        raise ValueError(
            "the result was solved from a cost matrix (otgen.emd), whose cost "
            "function it does not know; pass the cost that built the matrix, e.g. "
            "cost='sqeuclidean'."
        )
    raise ValueError(
        f"the result was solved with the callable cost {name!r}, which cannot be "
        "recovered from it; pass the same callable as cost=..."
    )


def extend_potential(
    x: Any,
    y: Any,
    result: OTResult | SinkhornResult,
    points: Any,
    *,
    which: Literal["f", "g"] = "f",
    a: Any = None,
    b: Any = None,
    cost: CostLike | None = None,
) -> np.ndarray:
    r"""A dual potential of an OT result, evaluated anywhere by a c-transform.

    The solvers return the potentials on the samples only. Off the samples,
    ``f`` is the (soft) c-transform of ``g`` and ``g`` that of ``f``. For an
    exact result (:class:`~otgen.ot.result.OTResult`)

    .. math::
        f(t) = \min_j \big[c(t, y_j) - g_j\big], \qquad
        g(t) = \min_i \big[c(x_i, t) - f_i\big],

    the largest potential compatible with :math:`f(t) + g_j \le c(t, y_j)`
    (at the samples it is at least the solver's :math:`f_i`, and equal where
    :math:`x_i` ships mass). For an entropic result
    (:class:`~otgen.ot.result.SinkhornResult`, regularisation
    :math:`\varepsilon`)

    .. math::
        f(t) = -\lambda\, \varepsilon \log \sum_j b_j
        \exp\big((g_j - c(t, y_j)) / \varepsilon\big), \qquad
        \lambda = \frac{1}{1 + \varepsilon / \rho},

    the Sinkhorn update itself (:math:`\lambda = 1` when balanced,
    :math:`\rho = \text{reach}^p` when unbalanced): at the samples it
    reproduces the solver's :math:`f_i` up to the marginal error
    :cite:`feydy2019interpolating`.

    Parameters
    ----------
    x, y : array or Tensor, shape (n, d) and (m, d)
        The samples the result was computed on.
    result : OTResult or SinkhornResult
        From :func:`otgen.exact_ot` (or :func:`otgen.emd` on ``cost_matrix(x,
        y)``) or :func:`otgen.sinkhorn`.
    points : array or Tensor, shape (k, d)
        Where to evaluate the potential.
    which : {"f", "g"}, default="f"
        The potential on the side of ``x`` (``"f"``) or of ``y`` (``"g"``).
    a, b : array or Tensor, optional
        The weights given to the solver (uniform when None); an entropic
        extension needs them (``b`` for ``f``, ``a`` for ``g``).
    cost : str, Cost or callable, optional
        The ground cost; None reads it from ``result.cost`` (a callable cost,
        or the cost that built the matrix given to :func:`otgen.emd`, must be
        passed).

    Returns
    -------
    ndarray, shape (k,)
        The potential at ``points`` (float64).

    Raises
    ------
    TypeError
        If ``result`` is not an OT result with potentials.
    ValueError
        On points of the wrong shape, potentials that do not match ``x`` and
        ``y``, or a cost other than the solver's.

    Examples
    --------
    >>> import numpy as np
    >>> from otgen import exact_ot
    >>> x, y = np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]])
    >>> r = exact_ot(x, y)
    >>> float(extend_potential(x, y, r, x)[0] + r.g[0])  # = c(x, y) = 1
    1.0
    """
    if not isinstance(result, (OTResult, SinkhornResult)):
        raise TypeError(
            "result must be an OTResult (otgen.exact_ot, otgen.emd) or a "
            f"SinkhornResult (otgen.sinkhorn) (got {type(result).__name__}); solve "
            "the problem first, e.g. result = otgen.exact_ot(x, y)."
        )
    if which not in ("f", "g"):
        raise ValueError(
            f"which must be 'f' (the potential of x) or 'g' (of y) (got {which!r})."
        )
    xs = _points(x, "x")
    ys = _points(y, "y", xs.shape[1])
    t = _points(points, "points", xs.shape[1])
    c = _cost_of(result, cost)
    f = as_numpy(result.f, "result.f").ravel()
    g = as_numpy(result.g, "result.g").ravel()
    if f.shape[0] != xs.shape[0] or g.shape[0] != ys.shape[0]:
        raise ValueError(
            f"the result's potentials have lengths ({f.shape[0]}, {g.shape[0]}) but "
            f"x and y hold ({xs.shape[0]}, {ys.shape[0]}) points; pass the samples "
            "the result was computed on."
        )
    other, pot = (ys, g) if which == "f" else (xs, f)
    tt = torch.from_numpy(t)
    to = torch.from_numpy(other)
    pt = torch.from_numpy(pot)
    entropic = isinstance(result, SinkhornResult)
    if entropic:
        w = (
            _weights(b, ys.shape[0], "b")
            if which == "f"
            else _weights(a, xs.shape[0], "a")
        )
        with np.errstate(divide="ignore"):
            logw = torch.from_numpy(np.log(w))
        eps = float(result.eps)
        lam = 1.0
        if result.reach is not None:
            rho = result.reach if c.fn is not None else result.reach**c.p
            lam = 0.0 if math.isinf(eps / rho) else 1.0 / (1.0 + eps / rho)
    out = np.empty(t.shape[0])
    step = max(1, _BLOCK_PAIRS // other.shape[0])
    with torch.no_grad():
        for s in range(0, t.shape[0], step):
            blk = tt[s : s + step]
            # C[k, j] = c(t_k, y_j) for f; c(x_i, t_k) (transposed) for g.
            C = c.pairwise(blk, to) if which == "f" else c.pairwise(to, blk).T
            C = C.to(torch.float64)
            if entropic:
                v = -lam * eps * torch.logsumexp(logw + (pt - C) / eps, dim=1)
            else:
                v = (C - pt).min(dim=1).values
            out[s : s + step] = v.numpy()
    return out


def _gram(k: Kernel, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """k(t_i, s_j) in float64, distances from coordinate differences.

    Exact distances keep k(t, t) = k(0) at a sample point (the expanded form
    leaves ~1e-20 there, which the Laplacian's square root turns into 1e-10).
    """
    _, kw, tw, sw = working_kernel(k, None, t, s)
    if kw.fn is None:
        kw = Kernel(kw.name, kw.scales, kw.beta, exact=True)
    return kw.block(tw, sw).to(torch.float64)


def mmd_witness(
    x: Any,
    y: Any,
    points: Any,
    *,
    a: Any = None,
    b: Any = None,
    kernel: KernelLike = "imq",
    scale: ScaleLike = None,
) -> np.ndarray:
    r"""The MMD witness function of two weighted samples.

    .. math::
        w(t) = \sum_i a_i\, k(t, x_i) - \sum_j b_j\, k(t, y_j),

    the difference of the kernel mean embeddings (uniform weights: means over
    the samples), positive where :math:`x` is denser than :math:`y` and
    negative where :math:`y` is. Its RKHS norm is the biased (V-statistic)
    MMD: :math:`\sum_i a_i w(x_i) - \sum_j b_j w(y_j) = \mathrm{MMD}_b^2`
    :cite:`gretton2012kernel`.

    Parameters
    ----------
    x, y : array or Tensor, shape (n, d) and (m, d)
        The samples.
    points : array or Tensor, shape (k, d)
        Where to evaluate the witness.
    a, b : array or Tensor, optional
        Weights (uniform 1/n and 1/m when None).
    kernel : {"gaussian", "laplacian", "imq", "energy"}, Kernel or callable
        As in :func:`otgen.mmd` (default IMQ).
    scale : float, sequence of float, "median" or None
        As in :func:`otgen.mmd`; ``"median"`` is resolved on the pooled
        samples ``x`` and ``y`` (never on ``points``).

    Returns
    -------
    ndarray, shape (k,)
        The witness at ``points`` (float64).

    Raises
    ------
    ValueError
        On points or weights of the wrong shape, or an invalid kernel or scale.

    Examples
    --------
    >>> import numpy as np
    >>> x, y = np.array([[0.0, 0.0]]), np.array([[3.0, 0.0]])
    >>> w = mmd_witness(x, y, np.array([[0.0, 0.0], [3.0, 0.0]]), kernel="gaussian",
    ...                 scale=1.0)
    >>> bool(w[0] > 0 > w[1])
    True
    """
    xs = _points(x, "x")
    ys = _points(y, "y", xs.shape[1])
    t = _points(points, "points", xs.shape[1])
    wa = _weights(a, xs.shape[0], "a")
    wb = _weights(b, ys.shape[0], "b")
    tx, ty = torch.from_numpy(xs), torch.from_numpy(ys)
    k = resolve_kernel(kernel, scale, tx, ty)
    tt = torch.from_numpy(t)
    out = np.empty(t.shape[0])
    step = max(1, _BLOCK_PAIRS // max(xs.shape[0], ys.shape[0]))
    with torch.no_grad():
        for s in range(0, t.shape[0], step):
            blk = tt[s : s + step]
            kx, ky = _gram(k, blk, tx), _gram(k, blk, ty)
            out[s : s + step] = (
                kx @ torch.from_numpy(wa) - ky @ torch.from_numpy(wb)
            ).numpy()
    return out
