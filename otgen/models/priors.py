r"""Latent priors :math:`P_Z`: sampling, log-density and the IMQ scale hint.

Each prior reports :attr:`Prior.imq_scale` :math:`= \mathbb{E}\|Z - Z'\|^2 = 2
\operatorname{tr} \operatorname{Cov}(Z)` for :math:`Z, Z'` i.i.d., which for
:math:`N(0, \sigma_z^2 I)` is the WAE choice :math:`C = 2 d_z \sigma_z^2`.
"""

from __future__ import annotations

import math

import torch

from otgen._validation import check_positive, is_int

__all__ = ["GaussianPrior", "Prior", "SpherePrior", "UniformPrior", "make_prior"]


def _check_dim(d_z: int) -> int:
    if not is_int(d_z) or d_z < 1:
        raise ValueError(f"d_z must be an integer >= 1 (got {d_z!r}); pass e.g. 2.")
    return int(d_z)


class Prior:
    r"""Base class: a fixed law on :math:`\mathbb{R}^{d_z}`."""

    d_z: int
    name: str = "prior"

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """Draw ``n`` codes, shape (n, d_z), from ``generator``."""
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Log-density at ``z`` (shape (n, d_z)) -> (n,)."""
        raise NotImplementedError

    @property
    def imq_scale(self) -> float:
        r""":math:`C = \mathbb{E}\|Z - Z'\|^2`, the IMQ scale of WAE-MMD."""
        raise NotImplementedError

    def config(self) -> dict:
        """JSON description (rebuilds the prior through :func:`make_prior`)."""
        raise NotImplementedError


class GaussianPrior(Prior):
    r"""Isotropic Gaussian :math:`N(0, \sigma_z^2 I_{d_z})`.

    Parameters
    ----------
    d_z : int
        Latent dimension.
    std : float, default=1
        :math:`\sigma_z` (a standard deviation, not a variance; docs/paper.md 6.4).

    Examples
    --------
    >>> GaussianPrior(8, std=1.0).imq_scale  # 2 d_z sigma_z^2
    16.0
    """

    name = "gaussian"

    def __init__(self, d_z: int, *, std: float = 1.0) -> None:
        self.d_z = _check_dim(d_z)
        self.std = check_positive(std, "prior_std")

    def sample(self, n, *, generator=None, dtype=torch.float32, device="cpu"):
        """Draw ``n`` codes, shape (n, d_z)."""
        z = torch.randn(n, self.d_z, generator=generator, dtype=dtype, device=device)
        return z * self.std

    def log_prob(self, z):
        r""":math:`-\|z\|^2/(2\sigma_z^2) - (d_z/2)\log(2\pi\sigma_z^2)`."""
        return -(z**2).sum(-1) / (2 * self.std**2) - self.d_z / 2 * math.log(
            2 * math.pi * self.std**2
        )

    @property
    def imq_scale(self) -> float:
        r""":math:`2 d_z \sigma_z^2`."""
        return 2.0 * self.d_z * self.std**2

    def config(self) -> dict:
        """JSON description."""
        return {"name": "gaussian", "d_z": self.d_z, "std": self.std}


class UniformPrior(Prior):
    r"""Uniform on the box :math:`[-h, h]^{d_z}`.

    Examples
    --------
    >>> round(UniformPrior(2, half_width=1.0).imq_scale, 6)  # 2 d_z (2h)^2 / 12
    1.333333
    """

    name = "uniform"

    def __init__(self, d_z: int, *, half_width: float = 1.0) -> None:
        self.d_z = _check_dim(d_z)
        self.half_width = check_positive(half_width, "half_width")

    def sample(self, n, *, generator=None, dtype=torch.float32, device="cpu"):
        """Draw ``n`` codes, shape (n, d_z)."""
        u = torch.rand(n, self.d_z, generator=generator, dtype=dtype, device=device)
        return (2 * u - 1) * self.half_width

    def log_prob(self, z):
        r""":math:`-d_z \log(2h)` inside the box, :math:`-\infty` outside."""
        inside = (z.abs() <= self.half_width).all(-1)
        val = -self.d_z * math.log(2 * self.half_width)
        return torch.where(inside, val, -math.inf).to(z.dtype)

    @property
    def imq_scale(self) -> float:
        """:math:`2 d_z (2h)^2/12`."""
        return 2.0 * self.d_z * (2 * self.half_width) ** 2 / 12

    def config(self) -> dict:
        """JSON description."""
        return {"name": "uniform", "d_z": self.d_z, "half_width": self.half_width}


class SpherePrior(Prior):
    r"""Uniform on the sphere :math:`r S^{d_z - 1}` (needs :math:`d_z \ge 2`).

    ``log_prob`` is the log-density with respect to the surface measure,
    :math:`-\log |r S^{d_z-1}|`, at every point of the sphere (the law has no
    Lebesgue density).

    Examples
    --------
    >>> SpherePrior(3, radius=1.0).imq_scale  # 2 r^2
    2.0
    """

    name = "sphere"

    def __init__(self, d_z: int, *, radius: float = 1.0) -> None:
        self.d_z = _check_dim(d_z)
        if d_z < 2:
            raise ValueError(
                f"d_z must be >= 2 for a sphere prior (got {d_z}); the 0-sphere "
                "is two points: use d_z >= 2 or a Gaussian prior."
            )
        self.radius = check_positive(radius, "radius")

    def sample(self, n, *, generator=None, dtype=torch.float32, device="cpu"):
        """Draw ``n`` codes, shape (n, d_z)."""
        g = torch.randn(n, self.d_z, generator=generator, dtype=dtype, device=device)
        return self.radius * g / g.norm(dim=-1, keepdim=True).clamp_min(1e-30)

    def log_prob(self, z):
        r"""Constant :math:`-\log` (surface area), with respect to surface measure."""
        k = self.d_z
        log_area = (
            math.log(2)
            + k / 2 * math.log(math.pi)
            - math.lgamma(k / 2)
            + (k - 1) * math.log(self.radius)
        )
        return torch.full(z.shape[:-1], -log_area, dtype=z.dtype, device=z.device)

    @property
    def imq_scale(self) -> float:
        """:math:`2 r^2`."""
        return 2.0 * self.radius**2

    def config(self) -> dict:
        """JSON description."""
        return {"name": "sphere", "d_z": self.d_z, "radius": self.radius}


def make_prior(name: str = "gaussian", *, d_z: int, **options: float) -> Prior:
    """Build a prior by name.

    ``"gaussian"`` takes ``std``, ``"uniform"`` ``half_width``, ``"sphere"``
    ``radius``.

    Examples
    --------
    >>> make_prior("gaussian", d_z=2, std=2.0).imq_scale
    16.0
    """
    kinds = {"gaussian": GaussianPrior, "uniform": UniformPrior, "sphere": SpherePrior}
    if name not in kinds:
        raise ValueError(
            f"prior must be one of {', '.join(kinds)} (got {name!r}); pass e.g. "
            "prior='gaussian'."
        )
    try:
        return kinds[name](d_z, **options)
    except TypeError as err:
        raise ValueError(
            f"prior {name!r} got unknown options {sorted(options)} ({err}); "
            "gaussian takes std, uniform half_width, sphere radius."
        ) from err
