r"""Toy distributions with analytic definitions, and the user's own data.

Every toy has an unambiguous name, a stated definition (below), a
``sample(n, seed=...)`` that is reproducible from the seed, stratified sampling
(``stratified=True``: the variable that picks the mixture component or the
position along the curve is drawn by stratified uniforms, so a mixture of
:math:`K` equal components gets exactly :math:`n/K` points per component when
:math:`K` divides :math:`n`), and ``log_prob`` where a density exists.

==================  ==========================================================
name                definition (all in :math:`\mathbb{R}^2`)
==================  ==========================================================
``ring8``           :math:`\frac18\sum_{k=0}^{7} N(r(\cos\frac{2\pi k}{8},
                    \sin\frac{2\pi k}{8}), \sigma^2 I)`, :math:`r = 2`,
                    :math:`\sigma = 0.05`
``grid25``          :math:`\frac1{25}\sum_{i,j \in \{-2..2\}} N((2i, 2j),
                    \sigma^2 I)`, :math:`\sigma = 0.05`
``swiss_roll``      :math:`t \sim U[1.5\pi, 4.5\pi]`, :math:`x = (t\cos t,
                    t\sin t)/5 + N(0, 0.05^2 I)`
``two_moons``       :math:`\theta \sim U[0, \pi]`; upper moon :math:`(\cos\theta,
                    \sin\theta)`, lower :math:`(1 - \cos\theta, 0.5 -
                    \sin\theta)`, half the mass each, :math:`+ N(0, 0.05^2 I)`
``checkerboard``    uniform on the 8 dark unit squares of a 4 x 4 board on
                    :math:`[-2, 2]^2` (cell :math:`(i, j)` dark iff
                    :math:`i + j` even); density 1/8 there
``gaussian``        :math:`N(m, \Sigma)`, :math:`m = (1, -1)`,
                    :math:`\Sigma = [[1, 0.8], [0.8, 1]]`
``curve2d``         :math:`t \sim U[-2, 2]`, :math:`x = (t, \sin(\pi t)/2)`:
                    a singular law on a curve (no density)
==================  ==========================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from otgen._arrays import to_tensor

__all__ = [
    "TOYS",
    "ToyDistribution",
    "batches",
    "get_toy",
    "to_data_tensor",
    "toy_names",
]

Sampler = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _uniforms(n: int, rng: np.random.Generator, stratified: bool) -> np.ndarray:
    """``n`` uniforms on [0, 1): iid, or one per stratum [i/n, (i+1)/n)."""
    u = rng.random(n)
    if stratified:
        u = (np.arange(n) + u) / n
    return u


@dataclass(frozen=True)
class ToyDistribution:
    r"""A toy law in :math:`\mathbb{R}^d` with an analytic definition.

    Parameters
    ----------
    name : str
        Registry name.
    definition : str
        The law in words and formulas.
    dim : int
        Dimension :math:`d`.
    sampler : callable
        ``sampler(u, rng)``: points from stratifiable uniforms ``u`` (one per
        point, the variable that picks the component or curve position) and a
        NumPy generator for the rest.
    centers : ndarray, shape (K, d), optional
        Mixture component means (equal weights), for mode coverage.
    sigma : float, optional
        Component standard deviation of a Gaussian mixture.
    density : callable, optional
        ``density(x) -> log p(x)`` for an (n, d) float64 array.
    """

    name: str
    definition: str
    dim: int
    sampler: Sampler
    centers: np.ndarray | None = None
    sigma: float | None = None
    density: Callable[[np.ndarray], np.ndarray] | None = field(default=None)

    @property
    def has_log_prob(self) -> bool:
        """True when the law has a Lebesgue density."""
        return self.density is not None

    def sample(
        self,
        n: int,
        *,
        seed: int = 0,
        stratified: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Draw ``n`` points, reproducibly from ``seed``.

        Parameters
        ----------
        n : int
            Number of points, >= 1.
        seed : int, default=0
            Seed of the NumPy generator; the same seed gives the same points.
        stratified : bool, default=False
            Stratify the component / position variable (rows are then shuffled).
        dtype : torch.dtype, default=torch.float32
            Output dtype.

        Returns
        -------
        Tensor, shape (n, dim)

        Examples
        --------
        >>> x = get_toy("ring8").sample(800, seed=1, stratified=True)
        >>> tuple(x.shape)
        (800, 2)
        """
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an integer >= 1 (got {n!r}); pass e.g. 1000.")
        rng = np.random.default_rng(seed)
        u = _uniforms(int(n), rng, stratified)
        x = self.sampler(u, rng)
        if stratified:
            x = x[rng.permutation(int(n))]
        return torch.from_numpy(np.ascontiguousarray(x)).to(dtype)

    def log_prob(self, x: Any) -> torch.Tensor:
        """Log-density at ``x`` (shape (n, dim)); ValueError if none exists."""
        if self.density is None:
            raise ValueError(
                f"toy {self.name!r} has no Lebesgue density (log_prob is defined "
                f"for {', '.join(n for n, t in TOYS.items() if t.has_log_prob)}); "
                "use a sample-based metric such as W2 instead."
            )
        t = to_tensor(x, "x")
        out = self.density(t.detach().cpu().double().numpy().reshape(-1, self.dim))
        return torch.from_numpy(out).to(t.dtype)


def _mixture(centers: np.ndarray, sigma: float) -> tuple[Sampler, Callable]:
    k, d = centers.shape

    def sampler(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        comp = np.minimum((u * k).astype(np.int64), k - 1)
        return centers[comp] + sigma * rng.standard_normal((u.shape[0], d))

    def density(x: np.ndarray) -> np.ndarray:
        d2 = ((x[:, None, :] - centers[None]) ** 2).sum(-1)  # (n, K)
        logc = -d2 / (2 * sigma**2) - d * math.log(2 * math.pi * sigma**2) / 2
        m = logc.max(1, keepdims=True)
        return (m[:, 0] + np.log(np.exp(logc - m).mean(1))).astype(np.float64)

    return sampler, density


_ANGLES = 2 * np.pi * np.arange(8) / 8
_RING_R, _RING_SIGMA = 2.0, 0.05
_RING_C = _RING_R * np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], 1)
_g = np.arange(-2, 3) * 2.0
_GRID_C = np.stack(np.meshgrid(_g, _g, indexing="ij"), -1).reshape(-1, 2)
_GRID_SIGMA = 0.05


def _swiss_roll(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t = 1.5 * np.pi * (1 + 2 * u)
    x = np.stack([t * np.cos(t), t * np.sin(t)], 1) / 5
    return x + 0.05 * rng.standard_normal(x.shape)


def _two_moons(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    upper = u < 0.5
    theta = np.pi * np.where(upper, 2 * u, 2 * u - 1)
    x = np.where(
        upper[:, None],
        np.stack([np.cos(theta), np.sin(theta)], 1),
        np.stack([1 - np.cos(theta), 0.5 - np.sin(theta)], 1),
    )
    return x + 0.05 * rng.standard_normal(x.shape)


_DARK = np.array([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0])


def _checkerboard(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cell = np.minimum((u * 8).astype(np.int64), 7)
    return _DARK[cell] - 2.0 + rng.random((u.shape[0], 2))


def _checker_density(x: np.ndarray) -> np.ndarray:
    inside = np.all((x >= -2) & (x < 2), 1)
    ij = np.floor(np.clip(x, -2, 1.999999) + 2).astype(np.int64)
    dark = inside & ((ij.sum(1) % 2) == 0)
    return np.where(dark, math.log(1 / 8), -np.inf)


_GMEAN = np.array([1.0, -1.0])
_GCOV = np.array([[1.0, 0.8], [0.8, 1.0]])
_GCHOL = np.linalg.cholesky(_GCOV)


def _gaussian(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.special import ndtri

    e0 = ndtri(np.clip(u, 1e-12, 1 - 1e-12))  # stratifiable first coordinate
    e = np.stack([e0, rng.standard_normal(u.shape[0])], 1)
    return _GMEAN + e @ _GCHOL.T


def _gaussian_density(x: np.ndarray) -> np.ndarray:
    r = np.linalg.solve(_GCHOL, (x - _GMEAN).T)  # (2, n)
    logdet = 2 * np.log(np.diag(_GCHOL)).sum()
    return -0.5 * (r**2).sum(0) - 0.5 * logdet - math.log(2 * math.pi)


def _curve(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t = -2 + 4 * u
    return np.stack([t, np.sin(np.pi * t) / 2], 1)


_ring_s, _ring_d = _mixture(_RING_C, _RING_SIGMA)
_grid_s, _grid_d = _mixture(_GRID_C, _GRID_SIGMA)

TOYS: dict[str, ToyDistribution] = {
    "ring8": ToyDistribution(
        "ring8",
        "8 equal Gaussians N(c_k, 0.05^2 I), c_k = 2 (cos 2pi k/8, sin 2pi k/8)",
        2,
        _ring_s,
        _RING_C,
        _RING_SIGMA,
        _ring_d,
    ),
    "grid25": ToyDistribution(
        "grid25",
        "25 equal Gaussians N((2i, 2j), 0.05^2 I), i, j in {-2, ..., 2}",
        2,
        _grid_s,
        _GRID_C,
        _GRID_SIGMA,
        _grid_d,
    ),
    "swiss_roll": ToyDistribution(
        "swiss_roll",
        "t ~ U[1.5pi, 4.5pi], (t cos t, t sin t)/5 + N(0, 0.05^2 I)",
        2,
        _swiss_roll,
    ),
    "two_moons": ToyDistribution(
        "two_moons",
        "two half circles (cos, sin) and (1 - cos, 0.5 - sin) + N(0, 0.05^2 I)",
        2,
        _two_moons,
    ),
    "checkerboard": ToyDistribution(
        "checkerboard",
        "uniform on the 8 dark unit cells of a 4 x 4 board on [-2, 2]^2",
        2,
        _checkerboard,
        density=_checker_density,
    ),
    "gaussian": ToyDistribution(
        "gaussian",
        "N((1, -1), [[1, 0.8], [0.8, 1]])",
        2,
        _gaussian,
        density=_gaussian_density,
    ),
    "curve2d": ToyDistribution(
        "curve2d",
        "t ~ U[-2, 2], (t, sin(pi t)/2): a curve, no density",
        2,
        _curve,
    ),
}


def toy_names() -> tuple[str, ...]:
    """Names of the registered toy distributions."""
    return tuple(TOYS)


def get_toy(name: str) -> ToyDistribution:
    """Return the toy distribution ``name`` (see :data:`TOYS`).

    Examples
    --------
    >>> get_toy("ring8").centers.shape
    (8, 2)
    """
    if name not in TOYS:
        raise ValueError(
            f"data must be one of {', '.join(TOYS)} (got {name!r}); pass a "
            "registered toy name, or a tensor / array of shape (n, d)."
        )
    return TOYS[name]


def to_data_tensor(data: Any, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A user's tensor or array as a finite 2-D floating tensor (rows = points)."""
    t = to_tensor(data, "data")
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim < 2 or t.shape[0] < 2:
        raise ValueError(
            f"data must hold at least 2 points along its first axis (got shape "
            f"{tuple(t.shape)}); pass an array of shape (n, ...) with n >= 2."
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError(
            "data must be finite (got NaN or inf entries); remove or impute them."
        )
    return t.to(dtype) if dtype is not None else t


def batches(loader: Any) -> Iterator[torch.Tensor]:
    """Cycle forever over a DataLoader-like iterable, yielding the first tensor."""
    while True:
        empty = True
        for item in loader:
            empty = False
            if isinstance(item, (tuple, list)):
                item = item[0]
            yield to_data_tensor(item)
        if empty:
            raise ValueError("data loader yielded no batch; pass a non-empty loader.")
