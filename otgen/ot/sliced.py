r"""Sliced and max-sliced Wasserstein distances, by Monte Carlo over directions.

For measures :math:`\alpha, \beta` on :math:`\mathbb{R}^d` and a direction
:math:`\theta` on the unit sphere, :math:`\theta_\#\alpha` is the law of
:math:`\langle \theta, X\rangle`, :math:`X \sim \alpha`. The sliced distance
and its max-sliced variant are

.. math::
    SW_p(\alpha, \beta) = \Big(\mathbb{E}_{\theta \sim
    \mathcal{U}(S^{d-1})} W_p^p(\theta_\#\alpha, \theta_\#\beta)\Big)^{1/p},
    \qquad
    \max_\theta W_p(\theta_\#\alpha, \theta_\#\beta),

estimated over L directions :math:`\theta_1, \dots, \theta_L`: the mean
:math:`\widehat{SW}{}_p^p = \frac1L \sum_l w_l` of the 1-D costs
:math:`w_l = W_p^p(\theta_{l\#}\alpha, \theta_{l\#}\beta)`, each exact
(:mod:`otgen.ot.onedim`, sorting, accumulated in float64), with the Monte
Carlo standard error :math:`s_w / \sqrt{L}` (:math:`s_w` the sample standard
deviation of the :math:`w_l`), and for the max-sliced variant the largest
:math:`w_l` (a lower bound on the true maximum over the sphere).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from otgen._arrays import ArrayLike, is_torch, to_tensor
from otgen._validation import (
    check_finite,
    check_p,
    check_points,
    check_same_mass,
    check_weights,
    is_int,
)
from otgen.ot.onedim import sorted_1d, sorted_1d_value
from otgen.ot.result import _value_str

__all__ = [
    "SlicedResult",
    "sliced_wasserstein",
    "max_sliced_wasserstein",
    "random_projections",
]

# Entries of the projected block (directions x points) held at once, in float64.
_BLOCK = 1 << 22

SeedLike = int | np.random.Generator | None


@dataclass(frozen=True)
class SlicedResult:
    r"""A sliced (or max-sliced) Wasserstein estimate.

    Attributes
    ----------
    value : float or Tensor
        :math:`\widehat{SW}_p` (the p-th root of the mean of the 1-D costs;
        not :math:`SW_p^p`), or for the max-sliced variant
        :math:`\max_l W_p(\theta_{l\#}\alpha, \theta_{l\#}\beta)`. A torch
        result is differentiable in the points, the weights and the
        projections (envelope theorem on each 1-D problem).
    power : float or Tensor
        :math:`\widehat{SW}{}_p^p`, the Monte Carlo mean of the 1-D costs
        (max-sliced: the largest one); differentiable like ``value``.
    std_error : float
        Monte Carlo standard error of ``value`` over the projections, by the
        delta method: ``power_std_error / (p value^(p-1))``. NaN for a single
        projection or the max-sliced variant (a maximum has none).
    power_std_error : float
        Standard error of ``power``: :math:`s_w / \sqrt{L}`, with
        :math:`s_w` the sample standard deviation (ddof = 1) of the 1-D costs.
    n_projections : int
        L, the number of directions.
    p : float
        The order.
    projected : ndarray, shape (L,)
        The 1-D costs :math:`w_l = W_p^p` along each direction, in float64.
    projections : ndarray or Tensor, shape (d, L)
        The directions (columns), as used; pass them back as
        ``projections=`` to repeat the estimate (POT's layout).
    best : int or None
        Max-sliced: the index of the direction attaining the maximum.
    value_description : str
        What ``value`` is, in words.
    """

    value: Any
    power: Any
    std_error: float
    power_std_error: float
    n_projections: int
    p: float
    projected: np.ndarray
    projections: Any
    best: int | None
    value_description: str

    def __repr__(self) -> str:
        return (
            f"SlicedResult(value={_value_str(self.value)} "
            f"[{self.value_description}], std_error="
            f"{self.std_error:.2g}, n_projections={self.n_projections})"
        )


def _check_seed(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (is_int(seed) and seed >= 0):
        return np.random.default_rng(seed)
    raise ValueError(
        f"seed must be a non-negative integer, a numpy Generator or None (got "
        f"{seed!r}); pass e.g. seed=0 (the same seed gives the same directions)."
    )


def _check_n_projections(n_projections: Any) -> int:
    if not is_int(n_projections) or n_projections < 1:
        raise ValueError(
            f"n_projections must be an integer >= 1 (got {n_projections!r}); pass "
            "e.g. n_projections=100 (the standard error shrinks like 1/sqrt of it)."
        )
    return int(n_projections)


def random_projections(d: int, n_projections: int, seed: SeedLike = 0) -> np.ndarray:
    r"""``n_projections`` directions uniform on the unit sphere of :math:`\mathbb{R}^d`.

    Standard normal vectors (NumPy's ``default_rng(seed)``, float64) divided
    by their norms: the same seed gives the same directions on every machine,
    whatever the data's dtype or device.

    Returns
    -------
    ndarray, shape (d, n_projections)
        Unit columns (POT's layout).

    Examples
    --------
    >>> random_projections(3, 5, seed=1).shape
    (3, 5)
    """
    if not is_int(d) or d < 1:
        raise ValueError(f"d must be an integer >= 1 (got {d!r}); pass the dimension.")
    n_projections = _check_n_projections(n_projections)
    theta = _check_seed(seed).standard_normal((int(d), n_projections))
    return theta / np.linalg.norm(theta, axis=0, keepdims=True)


def _check_projections(projections: Any, d: int) -> torch.Tensor:
    t = to_tensor(projections, "projections")
    if t.ndim == 1 and d == 1:
        t = t[None, :]
    if t.ndim != 2 or t.shape[0] != d or t.shape[1] == 0:
        raise ValueError(
            f"projections must have shape (d, L) = ({d}, L) with L >= 1, one "
            f"direction per column (got shape {tuple(t.shape)}); pass e.g. "
            "otgen.ot.sliced.random_projections(d, L, seed) (POT's layout)."
        )
    check_finite(t, "projections")
    return t


def _np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64, copy=False)


def _costs(x64, y64, a64, b64, theta64, p) -> np.ndarray:
    """The exact 1-D costs W_p^p along each column of ``theta64``, float64."""
    n, m = x64.shape[0], y64.shape[0]
    L = theta64.shape[1]
    step = max(1, _BLOCK // max(n, m))
    w = np.empty(L)
    for s in range(0, L, step):
        tb = theta64[:, s : s + step].T  # (l, d): rows of (l, n) contiguous
        xp, yp = tb @ x64.T, tb @ y64.T
        for k in range(tb.shape[0]):
            w[s + k] = sorted_1d_value(xp[k], yp[k], a64, b64, p)
    return w


def _grad_terms(x, y, a, b, theta, x64, y64, a64, b64, th64, p, which):
    r"""Zero-valued expression carrying the gradient of the selected 1-D costs.

    For each direction l in ``which`` (with weights), the envelope theorem on
    the 1-D problem: :math:`\partial w_l` is that of :math:`\sum_k P_k
    |\langle \theta_l, x_{i_k} - y_{j_k}\rangle|^p + \langle a, f_l\rangle +
    \langle b, g_l\rangle` at the fixed optimal staircase plan P and centred
    potentials.
    """
    dt = torch.float64
    xt, yt, tt = x.to(dt), y.to(dt), theta.to(dt)
    at, bt = a.to(dt), b.to(dt)
    total = xt.new_zeros(())
    for l_idx, coef in which:
        xp, yp = x64 @ th64[:, l_idx], y64 @ th64[:, l_idx]
        sol = sorted_1d(xp, yp, a64, b64, p)
        rows = torch.as_tensor(sol.rows, device=x.device)
        cols = torch.as_tensor(sol.cols, device=x.device)
        vals = torch.as_tensor(sol.vals, dtype=dt, device=x.device)
        diff = (xt[rows] - yt[cols]) @ tt[:, l_idx]
        term = (vals * diff.abs() ** p).sum()
        if a.requires_grad:
            f = torch.as_tensor(sol.f - sol.f.mean(), dtype=dt, device=x.device)
            term = term + (at * f).sum()
        if b.requires_grad:
            g = torch.as_tensor(sol.g - sol.g.mean(), dtype=dt, device=x.device)
            term = term + (bt * g).sum()
        total = total + coef * term
    return total - total.detach()


def _sliced(x, y, a, b, p, n_projections, seed, projections, kind):
    as_torch = is_torch(x, y, a, b, projections)
    pv = check_p(p)
    tx, ty = check_points(x, y)
    n, m, d = tx.shape[0], ty.shape[0], tx.shape[1]
    ta = None if a is None else check_weights(a, n, "a", tx)
    tb = None if b is None else check_weights(b, m, "b", tx)
    if ta is not None or tb is not None:
        ta = check_weights(None, n, "a", tx) if ta is None else ta
        tb = check_weights(None, m, "b", tx) if tb is None else tb
        check_same_mass(ta, tb)
    if projections is None:
        L = _check_n_projections(n_projections)
        th64 = random_projections(d, L, seed)
        theta = torch.from_numpy(th64).to(tx.device)
    else:
        theta = _check_projections(projections, d)
        if not isinstance(projections, torch.Tensor):  # NumPy: onto the points
            theta = theta.to(tx.device)
        if theta.device != tx.device:
            raise ValueError(
                f"projections must be on the points' device (got {theta.device} "
                f"and {tx.device}); move them with .to(device)."
            )
        th64 = _np64(theta)
        L = th64.shape[1]
    x64, y64 = _np64(tx), _np64(ty)
    a64 = None if ta is None else _np64(ta)
    b64 = None if tb is None else _np64(tb)
    w = _costs(x64, y64, a64, b64, th64, pv)
    if kind == "max":
        best = int(np.argmax(w))
        power, se_p, which = float(w[best]), math.nan, [(best, 1.0)]
    else:
        best = None
        power = math.fsum(w.tolist()) / L
        se_p = float(np.std(w, ddof=1) / math.sqrt(L)) if L > 1 else math.nan
        which = [(l_idx, 1.0 / L) for l_idx in range(L)]
    value = power ** (1.0 / pv)
    # Delta method; all 1-D costs zero (value 0) give 0 (NaN for one direction).
    se = se_p / (pv * value ** (pv - 1.0)) if value > 0 else 0.0 * se_p
    out_power, out_value = power, value
    if as_torch:
        dtype = tx.dtype
        out_power = torch.tensor(power, dtype=torch.float64, device=tx.device)
        out_value = torch.tensor(value, dtype=torch.float64, device=tx.device)
        ts = [t for t in (tx, ty, ta, tb, theta) if t is not None]
        if torch.is_grad_enabled() and any(t.requires_grad for t in ts):
            ua = ta if ta is not None else check_weights(None, n, "a", tx)
            ub = tb if tb is not None else check_weights(None, m, "b", tx)
            ua64 = _np64(ua) if a64 is None else a64
            ub64 = _np64(ub) if b64 is None else b64
            expr = _grad_terms(
                tx, ty, ua, ub, theta, x64, y64, ua64, ub64, th64, pv, which
            )
            out_power = out_power + expr
            # d SW = SW^(1-p) / p d SW^p; a zero distance gets the subgradient 0.
            coef = value ** (1.0 - pv) / pv if value > 0 else 0.0
            out_value = out_value + coef * expr
        out_power, out_value = out_power.to(dtype), out_value.to(dtype)
        projections_out = theta
    else:
        projections_out = th64
    what = "max-sliced" if kind == "max" else "sliced"
    desc = f"{what} W_{pv:g} (the p-th root; power = the " + (
        "largest 1-D W_p^p)" if kind == "max" else "mean of the 1-D W_p^p)"
    )
    return SlicedResult(
        value=out_value,
        power=out_power,
        std_error=float(se),
        power_std_error=float(se_p),
        n_projections=L,
        p=pv,
        projected=w,
        projections=projections_out,
        best=best,
        value_description=desc,
    )


def sliced_wasserstein(
    x: ArrayLike,
    y: ArrayLike,
    p: float = 2,
    *,
    a: ArrayLike | None = None,
    b: ArrayLike | None = None,
    n_projections: int = 100,
    seed: SeedLike = 0,
    projections: ArrayLike | None = None,
) -> SlicedResult:
    r"""Sliced Wasserstein distance :math:`SW_p`, with its Monte Carlo error.

    .. math::
        \widehat{SW}_p = \Big(\frac1L \sum_{l=1}^L
        W_p^p(\theta_{l\#}\alpha, \theta_{l\#}\beta)\Big)^{1/p},
        \qquad \theta_l \sim \mathcal{U}(S^{d-1}),

    each 1-D :math:`W_p^p` exact by sorting (:mod:`otgen.ot.onedim`),
    computed and accumulated in float64 :cite:`bonneel2015sliced`.

    Parameters
    ----------
    x, y : array or Tensor, shape (n, d) and (m, d)
        Samples (a 1-D input is points on the line); n and m may differ.
    p : float, default=2
        Order, :math:`p \ge 1`.
    a, b : array or Tensor, shape (n,) and (m,), optional
        Non-negative weights of equal total mass; uniform when None.
    n_projections : int, default=100
        L, the number of random directions (ignored with ``projections``).
        The standard error shrinks like :math:`1/\sqrt{L}`.
    seed : int, numpy Generator or None, default=0
        Seed of the directions (:func:`random_projections`): the same seed
        gives the same directions. None draws fresh ones.
    projections : array or Tensor, shape (d, L), optional
        The directions to use, one per column, as given (POT's
        ``projections=``); unit columns give the sliced distance.

    Returns
    -------
    SlicedResult
        ``value`` (:math:`\widehat{SW}_p`, not its p-th power, which is
        ``power``), ``std_error`` and ``power_std_error`` (the Monte Carlo
        standard errors over the directions), ``n_projections``,
        ``projected`` (the 1-D costs) and ``projections``. NumPy in: floats;
        torch in: tensors of the input's dtype, differentiable in ``x``,
        ``y``, ``a``, ``b`` and ``projections``.

    Raises
    ------
    ValueError
        On NaN/inf or empty input, different dimensions, negative weights,
        unequal masses, ``p < 1``, ``n_projections < 1``, a bad seed or
        projections that are not (d, L).

    Notes
    -----
    The standard error says how many directions are enough: the estimate of
    :math:`SW_p^p` is a mean of L independent draws, so about 95% of
    repetitions with other seeds fall within two standard errors of the
    limit :math:`L \to \infty` (for the sample measures given). For
    :math:`N(m_1, s_1^2 I)` and :math:`N(m_2, s_2^2 I)`,
    :math:`SW_2^2 = \|m_1 - m_2\|^2 / d + (s_1 - s_2)^2`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(500, 3))
    >>> r = sliced_wasserstein(x, x + [3.0, 0.0, 0.0], n_projections=2000)
    >>> abs(r.power - 3.0) < 3 * r.power_std_error  # SW_2^2 = 9 / 3
    True
    """
    return _sliced(x, y, a, b, p, n_projections, seed, projections, "mean")


def max_sliced_wasserstein(
    x: ArrayLike,
    y: ArrayLike,
    p: float = 2,
    *,
    a: ArrayLike | None = None,
    b: ArrayLike | None = None,
    n_projections: int = 100,
    seed: SeedLike = 0,
    projections: ArrayLike | None = None,
) -> SlicedResult:
    r"""Max-sliced Wasserstein distance over L random directions.

    .. math::
        \max_{l \le L} W_p(\theta_{l\#}\alpha, \theta_{l\#}\beta)
        \;\le\; \max_{\theta \in S^{d-1}} W_p(\theta_\#\alpha, \theta_\#\beta)
        \;\le\; W_p(\alpha, \beta),

    the maximum over the directions drawn (as POT's
    ``max_sliced_wasserstein_distance``), a lower bound on the max-sliced
    distance :cite:`deshpande2019max`. Arguments as
    :func:`sliced_wasserstein`.

    Returns
    -------
    SlicedResult
        ``value`` the largest 1-D :math:`W_p`, ``power`` its p-th power,
        ``best`` the index of its direction (``projections[:, best]``);
        ``std_error`` is NaN (a maximum has no Monte Carlo standard error).
        Torch gradients are those of the best direction's 1-D problem.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 2))
    >>> r = max_sliced_wasserstein(x, x + [3.0, 0.0], n_projections=500)
    >>> bool(2.9 < r.value <= 3.0 + 1e-9)
    True
    """
    return _sliced(x, y, a, b, p, n_projections, seed, projections, "max")
