r"""Evaluation of a trained model on held-out data.

- ``reconstruction``: held-out :math:`\frac1m\sum_i c(x_i, G(\tilde z_i))`
  (unscaled cost; ``recon_scale`` times it enters the loss);
- ``latent_penalty``: the model's :math:`\widehat D_Z` on the held-out codes;
- ``mmd_to_prior``: a fixed reference, unbiased :math:`\widehat{\mathrm{MMD}}{}^2`
  with the IMQ kernel at the prior's scale :math:`C`, whatever the penalty;
- on a toy law: the **model check** of :mod:`otgen.models.check` (``check_*``
  keys): the exact :math:`W_2` (not :math:`W_2^2`) between :math:`m = 10^4`
  generated samples and as many held-out points of the law
  (``w2_generated``), against :math:`R = 19` replicates of the same
  statistic for fresh samples of the law (the floor: ``w2_noise_floor`` is
  their mean, ``w2_noise_floor_std`` their spread); a z-score, its p-value,
  the rank p-value and a verdict at level 0.05;
- on data without a law (a sample file): ``w2_generated`` between as many
  generated samples as held-out points, and ``w2_noise_floor`` between the
  two held-out samples, with no verdict;
- ``w2_ratio``: ``w2_generated / w2_noise_floor``, a secondary number (it
  cannot tell a good model from a bad one at small :math:`m`); None when the
  floor is 0 or negligible (constant data);
- mixtures: modes covered, fraction of high-quality samples (within
  :math:`3\sigma` of a centre) and the mass at each mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from otgen.models.autoencoder import PenalisedAutoEncoder
from otgen.models.base import GenerativeModel
from otgen.models.check import LEVEL, model_check
from otgen.models.data import ToyDistribution, get_toy

__all__ = ["evaluate", "mode_statistics", "reference_mmd", "w2_ratio"]

# A floor below this fraction of the data's spread is zero up to rounding (the
# W2 of two copies of one sample is about 1e-8 of the spread in float64).
_TINY_FLOOR = 1e-6


def w2_ratio(w2: float, floor: float, spread: float) -> float | None:
    """``w2 / floor``, or None when the floor is 0 or negligible.

    ``spread`` is the data's scale (root mean squared distance to the mean):
    a floor at most ``1e-6`` times it (constant data, or two identical
    held-out samples) gives None, not a huge number.

    Examples
    --------
    >>> w2_ratio(0.3, 0.2, 1.0), w2_ratio(0.3, 0.0, 0.0), w2_ratio(1e-3, 1e-12, 1.0)
    (1.4999999999999998, None, None)
    """
    if not floor > _TINY_FLOOR * spread or not floor > 0:
        return None
    return w2 / floor


def _spread(x: torch.Tensor) -> float:
    x = x.flatten(1).double()
    return float(((x - x.mean(0)) ** 2).sum(1).mean().sqrt())


def mode_statistics(
    samples: torch.Tensor,
    centers: np.ndarray,
    sigma: float,
    *,
    k_sigma: float = 3.0,
    min_fraction: float = 0.2,
) -> dict[str, Any]:
    r"""Mode coverage of samples from a model of an equal-weight mixture.

    A sample is *high quality* when within :math:`k\sigma` of its nearest centre;
    the mass of mode :math:`k` is the fraction of all samples that are high
    quality at it; a mode is covered when its mass is at least
    ``min_fraction`` times its true weight :math:`1/K`.

    Examples
    --------
    >>> c = np.array([[0.0, 0.0], [10.0, 0.0]])
    >>> s = mode_statistics(torch.tensor([[0.0, 0.0], [0.1, 0.0]]), c, 0.1)
    >>> s["modes_covered"], s["mode_mass"]
    (1, [1.0, 0.0])
    """
    x = samples.detach().cpu().double().numpy()
    d2 = ((x[:, None, :] - centers[None]) ** 2).sum(-1)  # (n, K)
    nearest = d2.argmin(1)
    good = d2[np.arange(x.shape[0]), nearest] <= (k_sigma * sigma) ** 2
    k = centers.shape[0]
    mass = np.bincount(nearest[good], minlength=k) / x.shape[0]
    return {
        "modes_covered": int((mass >= min_fraction / k).sum()),
        "n_modes": k,
        "high_quality": float(good.mean()),
        "mode_mass": [float(v) for v in mass],
        "max_mode_mass_error": float(np.abs(mass - 1.0 / k).max()),
    }


def reference_mmd(
    codes: torch.Tensor, model: PenalisedAutoEncoder, *, seed: int = 0
) -> float:
    """Unbiased IMQ MMD² between codes and as many prior samples (fixed seed)."""
    from otgen.ot.mmd import mmd

    g = torch.Generator(device=codes.device).manual_seed(seed)
    zp = model.prior.sample(
        codes.shape[0], generator=g, dtype=codes.dtype, device=codes.device
    )
    return float(
        mmd(codes, zp, kernel="imq", scale=model.prior.imq_scale, estimator="unbiased")
    )


@torch.no_grad()
def evaluate(
    model: GenerativeModel,
    held_out: torch.Tensor,
    held_out_2: torch.Tensor | None = None,
    *,
    seed: int = 0,
    lam: float | None = None,
    centers: np.ndarray | None = None,
    sigma: float | None = None,
    law: str | ToyDistribution | None = None,
    check_m: int | None = None,
    check_replicates: int | None = None,
    level: float = LEVEL,
    progress: bool = False,
) -> dict[str, Any]:
    r"""Metrics of ``model`` on held-out data (see the module docstring).

    Parameters
    ----------
    model : GenerativeModel
        A trained model.
    held_out : Tensor, shape (m, d)
        Held-out data, never used in training.
    held_out_2 : Tensor, shape (m, d), optional
        A second independent held-out sample of the same size, for the
        noise floor of :math:`W_2` when there is no ``law``.
    seed : int, default=0
        Seed of every random draw (codes, prior and generated samples).
    lam : float, optional
        :math:`\lambda` used to report the penalised objective ``relaxed_cost``.
    centers, sigma : optional
        Mixture centres and component std, for mode statistics (taken from
        ``law`` when None).
    law : str or ToyDistribution, optional
        The data's law: runs the model check of
        :func:`~otgen.models.check.model_check` on ``check_m`` generated
        samples (the W2 keys then come from it, at that size).
    check_m, check_replicates : int, optional
        :math:`m` and :math:`R` of the check (10000 and 19 when None).
    level : float, default=0.05
        The false-alarm rate of the check's verdict.
    progress : bool, default=False
        A progress bar over the check's exact solves.

    Returns
    -------
    dict
        Floats (and a per-mode list); keys absent when not applicable.

    Examples
    --------
    >>> from otgen.models.presets import wae_mmd
    >>> x = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    >>> m = evaluate(wae_mmd(2, seed=0), x[:100], x[100:], seed=0)
    >>> m["w2_generated"] > 0, m["w2_noise_floor"] > 0, m["n_held_out"]
    (True, True, 100)
    """
    from otgen.ot.exact import wasserstein

    model.eval()
    g = torch.Generator(device=model.device).manual_seed(seed)
    x = held_out.to(model.device, model.dtype)
    m = x.shape[0]
    out: dict[str, Any] = {"n_held_out": m}
    if isinstance(model, PenalisedAutoEncoder):
        enc = model.encode(x, generator=g)
        rec = model.reconstruction_cost(x, enc).mean()
        zp = model.prior.sample(m, generator=g, dtype=x.dtype, device=x.device)
        pen = model.penalty(enc, zp, model.prior, g)
        out["reconstruction"] = float(rec)
        out["recon_scale"] = model.recon_scale
        out["latent_penalty"] = float(pen)
        lam = model.lam if lam is None else lam
        out["lam"] = lam
        out["relaxed_cost"] = float(model.recon_scale * rec + lam * pen)
        out["mmd_to_prior"] = reference_mmd(enc.z, model, seed=seed + 1)
    if law is not None:
        law = get_toy(law) if isinstance(law, str) else law
        centers = law.centers if centers is None else centers
        sigma = law.sigma if sigma is None else sigma
        from otgen.models.check import DEFAULT_M

        n_gen = DEFAULT_M if check_m is None else check_m
        gen = model.generate(n_gen, generator=g)
        result = model_check(
            gen,
            law,
            m=n_gen,
            replicates=check_replicates,
            level=level,
            seed=seed,
            progress=progress,
        )
        out.update(result.metrics())
    else:
        gen = model.generate(m, generator=g)
        flat_gen = gen.flatten(1).double().cpu()
        flat_x = x.flatten(1).double().cpu()
        out["w2_generated"] = float(wasserstein(flat_gen, flat_x, p=2))
        if held_out_2 is not None:
            x2 = held_out_2.flatten(1).double().cpu()
            floor = float(wasserstein(x2, flat_x, p=2))
            out["w2_noise_floor"] = floor
            out["w2_ratio"] = w2_ratio(out["w2_generated"], floor, _spread(flat_x))
    if centers is not None and sigma is not None:
        out.update(mode_statistics(gen, centers, sigma))
    return out
