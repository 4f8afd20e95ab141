r"""Checks of a model of images (or of any high-dimensional data) that can fail.

On held-out images :math:`x_1, \dots, x_m` (never trained on):

- **reconstruction against PCA**: the model's held-out error
  :math:`\frac1m\sum_i \|x_i - G(E(x_i))\|^2` (squared error summed over
  pixels, the code being the encoder's mean) next to that of PCA fitted on
  the training images with as many components as the model has latent
  dimensions, :math:`\frac1m\sum_i \|x_i - \bar x - V V^\top (x_i - \bar
  x)\|^2`. PCA is the best *linear* auto-encoder of that width; a non-linear
  model that does not reach it has failed at reconstruction
  (``beats_pca`` is False, and the report says so);
- the **MMD two-sample test** of generated against held-out images
  (:func:`otgen.ot.mmd.mmd_test`, Gaussian kernel at the median scale,
  permutation p-value): a small p-value says the samples are told apart
  from the data;
- the **Fréchet distance**: :math:`W_2^2` between Gaussians fitted to the
  pixels of generated and held-out images (:func:`otgen.ot.gaussian.gaussian_w2`;
  FID's formula on pixels instead of Inception features), next to its
  floor, the same distance between the two held-out sets;
- **exact** :math:`W_2` **in pixel space** between generated and held-out
  images, against its calibrated floor: a permutation test whose replicates
  are :math:`W_2` between random re-splits of the pooled images
  (:func:`otgen.models.check.permutation_check`; exact p-value, z-score and
  verdict). Unlike the Fréchet distance it sees more than two moments: a
  model that drops digits or blurs them fails it (``tests/models/test_image_check.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from otgen.models.base import GenerativeModel

__all__ = ["frechet_distance", "image_metrics", "pca_reconstruction_error"]


def _flat(x: torch.Tensor) -> np.ndarray:
    return x.detach().flatten(1).double().cpu().numpy()


def pca_reconstruction_error(train: Any, held_out: Any, k: int) -> float:
    r"""Held-out squared error of PCA with ``k`` components fitted on ``train``.

    Mean over held-out points of the squared error summed over coordinates.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 3)) * [3.0, 1.0, 0.0]  # rank 2
    >>> round(pca_reconstruction_error(x[:100], x[100:], 2), 12)
    0.0
    """
    a = _flat(torch.as_tensor(np.asarray(train)))
    b = _flat(torch.as_tensor(np.asarray(held_out)))
    mean = a.mean(0)
    _, _, vt = np.linalg.svd(a - mean, full_matrices=False)
    v = vt[:k].T
    r = b - mean
    resid = r - (r @ v) @ v.T
    return float((resid**2).sum(1).mean())


def frechet_distance(x: Any, y: Any) -> float:
    r""":math:`W_2^2` between Gaussians fitted to the rows of ``x`` and ``y``.

    Means and (biased) covariances of the flattened points, then
    :func:`~otgen.ot.gaussian.gaussian_w2`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(5000, 2))
    >>> round(frechet_distance(x, x + [3.0, 0.0]), 6)
    9.0
    """
    from otgen.ot.gaussian import gaussian_w2

    a, b = _flat(torch.as_tensor(np.asarray(x))), _flat(torch.as_tensor(np.asarray(y)))
    ma, mb = a.mean(0), b.mean(0)
    sa = np.cov(a, rowvar=False, bias=True).reshape(a.shape[1], a.shape[1])
    sb = np.cov(b, rowvar=False, bias=True).reshape(b.shape[1], b.shape[1])
    return max(0.0, float(gaussian_w2(ma, sa, mb, sb).value))


def _points(x: Any, model: GenerativeModel) -> torch.Tensor:
    """``x`` as points (N, d) or (N, C, H, W), in the model's point shape."""
    from otgen.models.datasets import as_points

    t = as_points(x)
    shape = model.x_shape
    return t if shape is None else t.reshape(t.shape[0], *shape)


@torch.no_grad()
def model_reconstruction_error(model: GenerativeModel, x: torch.Tensor) -> float:
    """Mean over rows of the squared error of ``decode(encode(x).mean)``."""
    x = x.to(model.device, model.dtype)
    rec = model.decode(model.encode(x).mean)
    return float(((rec - x).flatten(1).double() ** 2).sum(1).mean())


@torch.no_grad()
def image_metrics(
    model: GenerativeModel,
    train: torch.Tensor,
    held_out: torch.Tensor,
    held_out_2: torch.Tensor,
    *,
    seed: int = 0,
    n_permutations: int = 500,
    w2_replicates: int = 99,
) -> dict[str, Any]:
    """The checks of the module docstring, as a dict of plain values.

    Keys: ``recon_model``, ``recon_pca``, ``pca_components``, ``beats_pca``
    (auto-encoders only), ``mmd_p_value``, ``mmd_statistic``, ``frechet``,
    ``frechet_floor``, and the exact pixel-space W2 test with
    ``w2_replicates`` re-splits: ``w2_pixels``, ``w2_pixels_floor``,
    ``w2_pixels_floor_std``, ``w2_pixels_z``, ``w2_pixels_p_value``,
    ``w2_pixels_verdict``.

    Examples
    --------
    >>> from otgen.models import wae_mmd
    >>> x = torch.rand(60, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> untrained = wae_mmd((8, 8), d_z=2, conv_width=4)
    >>> m = image_metrics(untrained, x[:40], x[40:50], x[50:], n_permutations=20)
    >>> m["beats_pca"], m["recon_model"] > m["recon_pca"]
    (False, True)
    """
    from otgen.models.check import permutation_check
    from otgen.ot.mmd import mmd_test

    model.eval()
    train, held_out, held_out_2 = (
        _points(t, model) for t in (train, held_out, held_out_2)
    )
    out: dict[str, Any] = {}
    prior = getattr(model, "prior", None)
    if hasattr(model, "encode") and prior is not None:
        k = int(prior.d_z)
        out["recon_model"] = model_reconstruction_error(model, held_out)
        out["recon_pca"] = pca_reconstruction_error(train, held_out, k)
        out["pca_components"] = k
        out["beats_pca"] = bool(out["recon_model"] <= out["recon_pca"])
    g = torch.Generator(device=model.device).manual_seed(seed)
    gen = model.generate(held_out.shape[0], generator=g)
    test = mmd_test(
        _flat(gen), _flat(held_out), n_permutations=n_permutations, seed=seed
    )
    out["mmd_statistic"] = float(test.statistic)
    out["mmd_p_value"] = float(test.p_value)
    out["frechet"] = frechet_distance(gen, held_out)
    out["frechet_floor"] = frechet_distance(held_out_2, held_out)
    check = permutation_check(gen, held_out, replicates=w2_replicates, seed=seed)
    out["w2_pixels"] = check.statistic
    out["w2_pixels_floor"] = check.floor_mean
    out["w2_pixels_floor_std"] = check.floor_std
    out["w2_pixels_z"] = check.z
    out["w2_pixels_p_value"] = check.p_value
    out["w2_pixels_verdict"] = check.verdict
    return out


def pca_sentence(metrics: dict[str, Any]) -> str:
    """One sentence on the model's held-out reconstruction against PCA's."""
    m, p, k = metrics["recon_model"], metrics["recon_pca"], metrics["pca_components"]
    if metrics["beats_pca"]:
        return (
            f"Held-out reconstruction error {m:.4g}, at or below PCA's {p:.4g} with "
            f"the same {k} dimensions ({m / p:.2f} times PCA's): the model "
            "reconstructs better than the best linear projection."
        )
    return (
        f"Held-out reconstruction error {m:.4g}, ABOVE PCA's {p:.4g} with the "
        f"same {k} dimensions ({m / p:.2f} times PCA's): the model reconstructs "
        "worse than a linear projection; train longer or check the settings."
    )
