r"""Evaluation of a trained model on held-out data.

- ``reconstruction``: held-out :math:`\frac1m\sum_i c(x_i, G(\tilde z_i))`
  (unscaled cost; ``recon_scale`` times it enters the loss);
- ``latent_penalty``: the model's :math:`\widehat D_Z` on the held-out codes;
- ``mmd_to_prior``: a fixed reference, unbiased :math:`\widehat{\mathrm{MMD}}{}^2`
  with the IMQ kernel at the prior's scale :math:`C`, whatever the penalty;
- ``w2_generated``: exact :math:`W_2` (not :math:`W_2^2`) between ``m``
  generated samples and ``m`` held-out points, next to ``w2_noise_floor``,
  exact :math:`W_2` between two independent held-out samples of size ``m``: a
  perfect model scores about the floor;
- mixtures: modes covered, fraction of high-quality samples (within
  :math:`3\sigma` of a centre) and the mass at each mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from otgen.models.autoencoder import PenalisedAutoEncoder
from otgen.models.base import GenerativeModel

__all__ = ["evaluate", "mode_statistics", "reference_mmd"]


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
        noise floor of :math:`W_2`.
    seed : int, default=0
        Seed of every random draw (codes, prior and generated samples).
    lam : float, optional
        :math:`\lambda` used to report the penalised objective ``relaxed_cost``.
    centers, sigma : optional
        Mixture centres and component std, for mode statistics.

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
    gen = model.generate(m, generator=g)
    flat_gen, flat_x = gen.flatten(1).double().cpu(), x.flatten(1).double().cpu()
    out["w2_generated"] = float(wasserstein(flat_gen, flat_x, p=2))
    if held_out_2 is not None:
        x2 = held_out_2.flatten(1).double().cpu()
        out["w2_noise_floor"] = float(wasserstein(x2, flat_x, p=2))
        out["w2_ratio"] = out["w2_generated"] / max(out["w2_noise_floor"], 1e-300)
    if centers is not None and sigma is not None:
        out.update(mode_statistics(gen, centers, sigma))
    return out
