r"""Positive-definite kernels for MMD: definitions, scales and Gram matrices.

Every named kernel is a function of the squared distance
:math:`r^2 = \|x - y\|_2^2` and of a scale :math:`s > 0`:

================  ==============================================  ==================
name              :math:`k_s(x, y)`                                meaning of ``s``
================  ==============================================  ==================
``"gaussian"``    :math:`\exp(-r^2 / (2 s^2))`                     bandwidth (length)
``"laplacian"``   :math:`\exp(-r / s)`                             bandwidth (length)
``"imq"``         :math:`C / (C + r^2)`, :math:`C = s`              squared length
``"energy"``      :math:`-(r / s)^{\beta}`, :math:`0 < \beta \le 2`  length
================  ==============================================  ==================

The inverse multiquadric (IMQ) keeps the convention of the WAE paper, where the
scale :math:`C` is in squared units (:func:`wae_imq_scale` gives
:math:`C = 2 d_z \sigma_z^2`). The energy kernel is only conditionally positive
definite; its MMD² is the energy distance (times :math:`s^{-\beta}`). A sequence
of scales means the sum :math:`\sum_s k_s` (multi-scale kernel), whose MMD² is the
sum of the single-scale MMD² values. A user callable ``fn(x, y) -> (n, m)``
returns a Gram block and is used as is.

The Gaussian and Laplacian conventions are GeomLoss's with ``blur = s``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from otgen._arrays import ArrayLike, is_torch, to_output
from otgen._validation import (
    check_finite,
    check_points,
    check_positive,
    is_int,
    pow2_exponent,
    times_pow2,
)

__all__ = [
    "KERNELS",
    "WAE_IMQ_MULTISCALE",
    "Kernel",
    "KernelLike",
    "ScaleLike",
    "kernel_matrix",
    "median_heuristic",
    "resolve_kernel",
    "wae_imq_scale",
    "working_kernel",
]

KERNELS = ("gaussian", "laplacian", "imq", "energy")
# Relative scales of the multi-scale IMQ kernel of the released WAE code.
WAE_IMQ_MULTISCALE = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
# Points used by the median heuristic (evenly spaced subsample beyond this).
MEDIAN_MAX_POINTS = 1000
# Kernel scales (lengths; sqrt(C) for IMQ) relative to the extent of the
# centred data, in the working units of :func:`working_kernel`:
# - below MIN_RELATIVE_SCALE, 1 / s^2 overflows float64 (refused);
# - below FLOAT32_MIN_SCALE, float32 distances (error ~ u |z|^2) cost the
#   kernel more than 1e-4 of its argument r^2 / s^2: computed in float64;
# - below EXACT_MIN_SCALE, float64 |x|^2 + |y|^2 - 2 <x, y> costs it more
#   than 1e-9: distances from coordinate differences (Kernel.exact).
MIN_RELATIVE_SCALE = 1e-150
FLOAT32_MIN_SCALE = 0.05
EXACT_MIN_SCALE = 3e-4

KernelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ScaleLike = str | float | Sequence[float] | None


def _sqrt(d2: Any) -> Any:
    """Square root of squared distances; zero (not NaN) gradient at 0 in torch."""
    if isinstance(d2, torch.Tensor):
        pos = d2 > 0
        return torch.where(pos, d2, torch.ones_like(d2)).sqrt() * pos
    return d2.sqrt()  # KeOps LazyTensor


def _pow_half(d2: Any, beta: float) -> Any:
    r""":math:`r^\beta` from :math:`r^2`, safe at 0."""
    if beta == 1.0:
        return _sqrt(d2)
    if beta == 2.0:
        return d2
    if isinstance(d2, torch.Tensor):
        pos = d2 > 0
        return torch.where(pos, d2, torch.ones_like(d2)).pow(beta / 2) * pos
    return d2 ** (beta / 2)


def _exp_floor(t: torch.Tensor) -> float:
    """Smallest argument whose exp is a normal float (subnormals: ~3x slower)."""
    return -87.0 if t.dtype in (torch.float32, torch.float16) else -708.0


@dataclass(frozen=True)
class Kernel:
    r"""A kernel :math:`k(x, y) = \sum_{s \in \text{scales}} k_s(x, y)`.

    Parameters
    ----------
    name : {"gaussian", "laplacian", "imq", "energy", "callable"}, default="imq"
        The kernel family (see the module docstring for the formulas).
    scales : tuple of float, default=()
        The scales :math:`s`; empty until resolved by :func:`resolve_kernel`
        (which picks a default). Several scales sum the kernels.
    beta : float, default=1
        Exponent of the energy kernel :math:`-(r/s)^\beta`, :math:`0 < \beta \le 2`.
    fn : callable, optional
        A user kernel ``fn(x, y) -> (n, m)`` Gram block (``name="callable"``).
    exact : bool, default=False
        Compute squared distances from coordinate differences in
        :meth:`block` instead of :math:`\|x\|^2 + \|y\|^2 - 2\langle x,
        y\rangle` (slower; exact for pairs much closer than the points'
        norms). :func:`working_kernel` sets it where the scale needs it.

    Examples
    --------
    >>> Kernel("energy", beta=1.5).beta
    1.5
    """

    name: str = "imq"
    scales: tuple[float, ...] = ()
    beta: float = 1.0
    fn: KernelFn | None = None
    exact: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.fn is not None:
            object.__setattr__(self, "name", "callable")
        elif self.name not in KERNELS:
            raise ValueError(
                f"kernel must be one of {', '.join(map(repr, KERNELS))} or a "
                f"callable (got {self.name!r}); pass e.g. kernel='imq'."
            )
        b = float(self.beta)
        if not (0 < b <= 2):
            raise ValueError(
                f"beta must be in (0, 2] for the energy kernel to be conditionally "
                f"positive definite (got {self.beta!r}); pass e.g. beta=1."
            )

    @property
    def translation_invariant(self) -> bool:
        """True for the named kernels (functions of :math:`x - y`)."""
        return self.fn is None

    # -- formulas -----------------------------------------------------------
    def _one(self, d2: Any, s: float) -> Any:
        """:math:`k_s` from squared distances (torch tensor or KeOps LazyTensor)."""
        if self.name == "gaussian":
            return (d2 * (-0.5 / (s * s))).exp()
        if self.name == "laplacian":
            return (_sqrt(d2) * (-1.0 / s)).exp()
        if self.name == "imq":
            return s / (d2 + s)
        return _pow_half(d2, self.beta) * (-(s ** (-self.beta)))

    def _one_(self, d2: torch.Tensor, s: float) -> torch.Tensor:
        """In-place :math:`k_s` (no autograd), overwriting ``d2``."""
        if self.name == "gaussian":
            return d2.mul_(-0.5 / (s * s)).clamp_min_(_exp_floor(d2)).exp_()
        if self.name == "laplacian":
            return d2.sqrt_().mul_(-1.0 / s).clamp_min_(_exp_floor(d2)).exp_()
        if self.name == "imq":
            return d2.add_(s).reciprocal_().mul_(s)
        if self.beta == 1.0:
            d2.sqrt_()
        elif self.beta != 2.0:
            d2.pow_(self.beta / 2)
        return d2.mul_(-(s ** (-self.beta)))

    def _affine(self) -> tuple[float, float] | None:
        r"""Fast-path constants: :math:`t = \alpha r^2 + \beta`, or None."""
        if self.fn is not None or len(self.scales) != 1:
            return None
        s = self.scales[0]
        if self.name == "gaussian":
            return -0.5 / (s * s), 0.0
        if self.name == "imq":
            return 1.0 / s, 1.0
        return 1.0 / (s * s), 0.0  # laplacian, energy: t = (r / s)^2

    def _finish_(self, t: torch.Tensor) -> torch.Tensor:
        r"""In place: kernel values from :math:`t = \alpha r^2 + \beta`."""
        if self.name == "gaussian":
            return t.clamp_(_exp_floor(t), 0.0).exp_()
        if self.name == "imq":
            return t.clamp_min_(1.0).reciprocal_()
        if self.name == "laplacian":
            return t.clamp_(0.0, _exp_floor(t) ** 2).sqrt_().neg_().exp_()
        t.clamp_min_(0.0)
        if self.beta == 1.0:
            t.sqrt_()
        elif self.beta != 2.0:
            t.pow_(self.beta / 2)
        return t.neg_()

    def from_sqdist(self, d2: Any, inplace: bool = False) -> Any:
        r"""Kernel values from squared distances :math:`r^2` (any shape).

        ``inplace=True`` (torch, no autograd) overwrites ``d2``. Works on KeOps
        LazyTensors with ``inplace=False``.
        """
        if self.fn is not None:
            raise TypeError("a callable kernel is not a function of distances")
        if inplace and len(self.scales) == 1:
            return self._one_(d2, self.scales[0])
        if inplace:
            out = torch.zeros_like(d2)
            tmp = torch.empty_like(d2)
            for s in self.scales:
                out.add_(self._one_(tmp.copy_(d2), s))
            return out
        total = None
        for s in self.scales:
            k = self._one(d2, s)
            total = k if total is None else total + k
        return total

    @property
    def value_at_zero(self) -> float | None:
        """:math:`k(x, x)` for the named kernels; None for a callable."""
        if self.fn is not None:
            return None
        return 0.0 if self.name == "energy" else float(len(self.scales))

    # -- evaluation ---------------------------------------------------------
    def _call_fn(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        K = self.fn(x, y)
        if not isinstance(K, torch.Tensor):
            K = torch.as_tensor(K, dtype=x.dtype, device=x.device)
        if K.shape != (x.shape[0], y.shape[0]):
            raise ValueError(
                f"kernel must return a Gram block of shape ({x.shape[0]}, "
                f"{y.shape[0]}) (got {tuple(K.shape)}); a callable kernel maps "
                "x (n, d) and y (m, d) to K[i, j] = k(x[i], y[j])."
            )
        check_finite(K, "the Gram matrix returned by kernel")
        return K.to(x.dtype)

    def block(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        diag_offset: int | None = None,
        inplace: bool = False,
    ) -> torch.Tensor:
        """Gram block :math:`K_{ij} = k(x_i, y_j)`, shape (n, m).

        ``diag_offset=o`` marks the pairs ``(r, r + o)`` as the same point
        (distance exactly 0). ``inplace=True`` is the fast no-autograd path.
        Named kernels expect centred inputs (see :mod:`otgen.ot.mmd`).
        """
        if self.fn is not None:
            return self._call_fn(x, y)
        if self.exact:
            d = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")
            d2 = d * d  # (n, m)
            if diag_offset is not None:
                d2 = d2.diagonal_scatter(d2.diagonal(diag_offset) * 0, diag_offset)
            return self.from_sqdist(d2, inplace=inplace)
        x2 = (x * x).sum(-1)  # (n,)
        y2 = (y * y).sum(-1)  # (m,)
        affine = self._affine() if inplace else None
        if affine is not None:
            # t = alpha |x - y|^2 + beta as one GEMM of augmented factors
            # [-2 alpha x, alpha |x|^2 + beta, 1] . [y, 1, alpha |y|^2]: one
            # pass fewer than addmm + add, and the constants folded in.
            al, be = affine
            ones_x = torch.ones_like(x2).unsqueeze(1)
            ones_y = torch.ones_like(y2).unsqueeze(1)
            xa = torch.cat([x * (-2 * al), (x2 * al + be).unsqueeze(1), ones_x], 1)
            ya = torch.cat([y, ones_y, (y2 * al).unsqueeze(1)], 1)
            t = xa @ ya.T  # (n, m)
            if diag_offset is not None:
                t.diagonal(diag_offset).fill_(be)
            return self._finish_(t)
        if inplace:
            d2 = torch.addmm(y2.unsqueeze(0), x, y.T, alpha=-2.0)  # (n, m)
            d2.add_(x2.unsqueeze(1)).clamp_min_(0.0)
            if diag_offset is not None:
                d2.diagonal(diag_offset).zero_()
            return self.from_sqdist(d2, inplace=True)
        d2 = torch.addmm(y2.unsqueeze(0), x, y.T, alpha=-2.0) + x2.unsqueeze(1)
        d2 = d2.clamp_min(0.0)
        if diag_offset is not None:
            diag = d2.diagonal(diag_offset)
            d2 = torch.diagonal_scatter(d2, torch.zeros_like(diag), diag_offset)
        return self.from_sqdist(d2)

    def paired(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Kernel values :math:`k(x_r, y_r)` of aligned rows, shape (k,)."""
        if self.fn is None:
            diff = x - y
            return self.from_sqdist((diff * diff).sum(-1))
        step = 256
        parts = [
            self._call_fn(x[i : i + step], y[i : i + step]).diagonal()
            for i in range(0, x.shape[0], step)
        ]
        return torch.cat(parts)

    def diag(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`k(x_r, x_r)`, shape (n,)."""
        if self.fn is None:
            return torch.full(
                (x.shape[0],), self.value_at_zero, dtype=x.dtype, device=x.device
            )
        return self.paired(x, x)

    def lazy(self, x_i: Any, y_j: Any) -> Any:
        """The kernel as a KeOps LazyTensor of ``x_i`` (n,1,d) and ``y_j`` (1,m,d)."""
        if self.fn is not None:
            raise ValueError(
                "backend='keops' cannot compile a Python callable kernel (got "
                f"{getattr(self.fn, '__name__', 'callable')}); pass "
                "backend='chunked' or 'dense', or a named kernel."
            )
        return self.from_sqdist(((x_i - y_j) ** 2).sum(-1))

    def describe(self) -> str:
        """A short description, e.g. ``imq(C=6)``."""
        if self.fn is not None:
            return getattr(self.fn, "__name__", "callable")
        sym = "C" if self.name == "imq" else "s"
        sc = ", ".join(f"{s:.6g}" for s in self.scales)
        extra = f", beta={self.beta:g}" if self.name == "energy" else ""
        return f"{self.name}({sym}={sc}{extra})"


KernelLike = str | Kernel | KernelFn


def median_heuristic(
    x: ArrayLike, y: ArrayLike | None = None, *, squared: bool = False
) -> float:
    r"""Median pairwise distance of the pooled sample (the median heuristic).

    .. math::
        s = \operatorname{median}_{i < j} \|z_i - z_j\|_2, \qquad
        z = (x_1, \dots, x_n, y_1, \dots, y_m),

    over at most 1000 evenly spaced points of the pooled sample
    (deterministic). The result depends on the data, so an MMD computed with it
    is not a U-statistic any more (biased); in a permutation test it is
    harmless because the pooled sample does not change under permutations
    :cite:`gretton2012kernel`.

    Parameters
    ----------
    x : array or Tensor, shape (n, d)
        First sample.
    y : array or Tensor, shape (m, d), optional
        Second sample, pooled with ``x``.
    squared : bool, default=False
        Return the median of squared distances (the IMQ scale :math:`C`).

    Returns
    -------
    float
        The median distance (or squared distance).

    Raises
    ------
    ValueError
        If the median is 0 (more than half of the pairs coincide).

    Examples
    --------
    >>> import numpy as np
    >>> median_heuristic(np.array([[0.0], [1.0], [3.0]]))
    2.0
    """
    tx, ty = check_points(x, x if y is None else y)
    z = tx if y is None else torch.cat([tx, ty])
    z = z.detach().to(torch.float64)
    # On z / 2^e (exact): no overflow of the squares at 1e154, no underflow.
    e = pow2_exponent(float(z.abs().max()))
    z = times_pow2(z, -e)
    if z.shape[0] > MEDIAN_MAX_POINTS:
        idx = torch.linspace(0, z.shape[0] - 1, MEDIAN_MAX_POINTS).round().long()
        z = z[idx.to(z.device)]
    if z.shape[0] < 2:
        raise ValueError(
            f"the median heuristic needs at least 2 points (got {z.shape[0]}); "
            "pass scale=<float> explicitly."
        )
    i, j = torch.triu_indices(z.shape[0], z.shape[0], offset=1, device=z.device)
    d2 = ((z[i] - z[j]) ** 2).sum(-1)
    med = float(d2.median())
    if not med > 0:
        raise ValueError(
            "the median heuristic gave scale 0 (more than half of the pairs of "
            "points coincide); pass scale=<float> explicitly."
        )
    out = times_pow2(med, 2 * e) if squared else times_pow2(math.sqrt(med), e)
    if not (0 < out < math.inf):
        raise ValueError(
            f"the median {'squared ' if squared else ''}distance of these points, "
            f"{math.sqrt(med):.3g} x 2^{e}{' squared' if squared else ''}, is not "
            "a normal float64 number; divide the data by a common length first "
            "(kernel values are unchanged when the scale is divided too)."
        )
    return out


def wae_imq_scale(
    d_z: int, prior_std: float = 1.0, *, multiscale: bool = False
) -> float | tuple[float, ...]:
    r"""The IMQ scale of WAE-MMD for a Gaussian prior :math:`N(0, \sigma_z^2 I)`.

    .. math::
        C = 2 d_z \sigma_z^2 = \mathbb{E}\|Z - Z'\|^2, \quad Z, Z' \sim P_Z
        \text{ i.i.d.}

    References: :cite:`tolstikhin2018wae`.

    Parameters
    ----------
    d_z : int
        Latent dimension :math:`d_z \geq 1`.
    prior_std : float, default=1
        Prior standard deviation :math:`\sigma_z > 0`.
    multiscale : bool, default=False
        Return the scales :math:`s C` for :math:`s \in \{0.1, 0.2, 0.5, 1, 2, 5,
        10\}` (the released WAE code) instead of :math:`C`.

    Returns
    -------
    float or tuple of float
        Pass it as ``scale=`` to :func:`otgen.mmd` with ``kernel="imq"``.

    Examples
    --------
    >>> wae_imq_scale(8)
    16.0
    """
    if not is_int(d_z) or d_z < 1:
        raise ValueError(
            f"d_z must be a positive integer latent dimension (got {d_z!r}); "
            "pass e.g. d_z=8."
        )
    sigma = check_positive(prior_std, "prior_std")
    c = 2.0 * d_z * sigma * sigma
    if multiscale:
        return tuple(s * c for s in WAE_IMQ_MULTISCALE)
    return c


def _default_scale(name: str, d: int) -> float:
    # IMQ: the WAE choice for a standard normal prior, C = 2 d; others: 1.
    return 2.0 * d if name == "imq" else 1.0


def resolve_kernel(
    kernel: KernelLike,
    scale: ScaleLike,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
) -> Kernel:
    """Turn ``kernel`` and ``scale`` into a :class:`Kernel` with concrete scales.

    ``scale=None`` keeps the scales of a :class:`Kernel` instance, else the
    default: :math:`C = 2d` for IMQ (WAE, standard normal prior), 1 otherwise.
    ``"median"`` applies :func:`median_heuristic` to the pooled sample (squared
    distances for IMQ). A number or a sequence of numbers gives the scales.
    """
    if isinstance(kernel, Kernel):
        k = kernel
    elif isinstance(kernel, str):
        k = Kernel(kernel)
    elif callable(kernel):
        k = Kernel(fn=kernel)
    else:
        raise ValueError(
            f"kernel must be one of {', '.join(map(repr, KERNELS))}, a Kernel or a "
            f"callable (got {type(kernel).__name__}); pass e.g. kernel='imq'."
        )
    if k.fn is not None:
        if scale is not None:
            raise ValueError(
                f"scale has no effect for a callable kernel (got scale={scale!r}); "
                "put the bandwidth inside the callable and pass scale=None."
            )
        return k
    if scale is None:
        if k.scales:
            return k
        return Kernel(k.name, (_default_scale(k.name, x.shape[1]),), k.beta)
    if isinstance(scale, str):
        if scale != "median":
            raise ValueError(
                f"scale must be a positive number, a sequence of them, 'median' or "
                f"None (got {scale!r}); pass e.g. scale=1.0 or scale='median'."
            )
        s = median_heuristic(x, y, squared=k.name == "imq")
        return Kernel(k.name, (s,), k.beta)
    if isinstance(scale, torch.Tensor):
        scale = scale.detach().cpu().reshape(-1).tolist()
    if isinstance(scale, Sequence) or hasattr(scale, "__len__"):
        values = list(scale)
        if not values:
            raise ValueError(
                "scale must not be an empty sequence (got []); pass at least one "
                "positive scale, e.g. scale=[1.0]."
            )
        return Kernel(k.name, tuple(check_positive(v, "scale") for v in values), k.beta)
    return Kernel(k.name, (check_positive(scale, "scale"),), k.beta)


def working_kernel(
    kernel: KernelLike,
    scale: ScaleLike,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
) -> tuple[Kernel, Kernel, torch.Tensor, torch.Tensor | None]:
    r"""The kernel and the points in working units, for safe Gram blocks.

    A named kernel depends on the points only through :math:`(x - y) / s`, so
    both clouds are centred on their common mean and divided by a power of
    two :math:`2^e` (exact) with the scales (IMQ's :math:`C` by
    :math:`4^e`): the Gram values are unchanged while the squared distances
    are at most 4 (no overflow at coordinates of 1e154, no subnormals at
    1e-160). ``"median"`` is resolved on the working points. float32 points
    are computed in float64 where a scale is below ``FLOAT32_MIN_SCALE``
    times the data's extent, and with exact distances below
    ``EXACT_MIN_SCALE``. A callable kernel is returned as it is.

    Returns
    -------
    tuple
        ``(kernel in the data's units, working kernel, xw, yw)``.

    Raises
    ------
    ValueError
        On an invalid kernel or scale, or a scale below
        ``MIN_RELATIVE_SCALE`` times the data's extent.

    Examples
    --------
    >>> x = torch.tensor([[0.0], [3e200]], dtype=torch.float64)
    >>> k, kw, xw, _ = working_kernel("gaussian", 1e200, x)
    >>> K = kernel_matrix(x / 1e200, kernel="gaussian", scale=1.0)
    >>> torch.allclose(kw.block(xw, xw), K, rtol=1e-12, atol=0)
    True
    """
    probe = resolve_kernel(kernel, None, x, y)
    if probe.fn is not None:
        k = resolve_kernel(kernel, scale, x, y)
        return k, k, x, y
    d = torch.float64
    clouds = [x.detach().to(d)] + ([] if y is None else [y.detach().to(d)])
    e1 = pow2_exponent(max(float(t.abs().max()) for t in clouds))
    clouds = [times_pow2(t, -e1) for t in clouds]
    c = 0.5 * (clouds[0].mean(0) + clouds[-1].mean(0))
    r = max(float(torch.linalg.vector_norm(t - c, dim=1).max()) for t in clouds)
    e2 = pow2_exponent(r)
    e, pw = e1 + e2, 2 if probe.name == "imq" else 1

    def work(t: torch.Tensor) -> torch.Tensor:
        return times_pow2(times_pow2(t.to(d), -e1) - c, -e2)

    xw, yw = work(x), (None if y is None else work(y))
    if isinstance(scale, str) and scale == "median":
        kw = resolve_kernel(kernel, scale, xw, yw)
        user = tuple(times_pow2(v, e * pw) for v in kw.scales)
        k = Kernel(kw.name, user, kw.beta)
    else:
        k = resolve_kernel(kernel, scale, x, y)
        kw = Kernel(k.name, tuple(times_pow2(v, -e * pw) for v in k.scales), k.beta)
    lengths = [v ** (1 / pw) for v in kw.scales]  # in units of the extent
    extent = times_pow2(r, e1)
    if r == 0:  # one point repeated: every kernel value is k(0)
        kw = Kernel(kw.name, (1.0,) * len(kw.scales), kw.beta)
    elif min(lengths) < MIN_RELATIVE_SCALE:
        what = "sqrt(scale)" if pw == 2 else "scale"
        raise ValueError(
            f"scale must be at least {MIN_RELATIVE_SCALE:g} times the extent of "
            f"the data ({extent:.3g}, the largest distance to the common mean) "
            f"for the {kw.name} kernel, counting {what} (got scale={scale!r}): "
            "below, kernel values between distinct points underflow to 0 and "
            "1 / scale^2 overflows; pass scale='median' or a scale near the "
            "typical distance between points."
        )
    dtype = x.dtype
    if dtype == torch.float32 and min(lengths) < FLOAT32_MIN_SCALE:
        dtype = d
    if min(lengths) < EXACT_MIN_SCALE:
        kw = Kernel(kw.name, kw.scales, kw.beta, exact=True)
    return k, kw, xw.to(dtype), (None if yw is None else yw.to(dtype))


def kernel_matrix(
    x: ArrayLike,
    y: ArrayLike | None = None,
    *,
    kernel: KernelLike = "imq",
    scale: ScaleLike = None,
):
    r"""Gram matrix :math:`K_{ij} = k(x_i, y_j)` of a (multi-scale) kernel.

    References: :cite:`tolstikhin2018wae`.

    Parameters
    ----------
    x : array or Tensor, shape (n, d)
        First points (a 1-D input is n points on the line).
    y : array or Tensor, shape (m, d), optional
        Second points; None means ``y = x`` (the diagonal is then exactly
        :math:`k(x_i, x_i)`).
    kernel : {"gaussian", "laplacian", "imq", "energy"}, Kernel or callable
        See :class:`Kernel`; default ``"imq"``, :math:`C / (C + \|x - y\|^2)`.
    scale : float, sequence of float, "median" or None
        See :func:`resolve_kernel`.

    Returns
    -------
    array or Tensor, shape (n, m)
        Same kind as the input; differentiable for torch input.

    Raises
    ------
    ValueError
        On invalid points, kernel or scale.

    Examples
    --------
    >>> import numpy as np
    >>> kernel_matrix(np.array([[0.0], [1.0]]), kernel="imq", scale=1.0).tolist()
    [[1.0, 0.5], [0.5, 1.0]]
    """
    as_torch = is_torch(x, y)
    tx, ty = check_points(x, x if y is None else y)
    _, k, xw, yw = working_kernel(kernel, scale, tx, None if y is None else ty)
    K = k.block(xw, xw if yw is None else yw, diag_offset=0 if y is None else None)
    return to_output(K.to(tx.dtype), as_torch)
