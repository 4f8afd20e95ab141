r"""Reconstruction costs :math:`c(x, G(z))`, per sample, summed over coordinates.

==================  ==========================================================
name                per-sample cost (sum over the :math:`d` coordinates)
==================  ==========================================================
``"squared"``       :math:`\|x - y\|_2^2`
``"euclidean"``     :math:`\|x - y\|_2`
``"l1"``            :math:`\|x - y\|_1`
``"bernoulli"``     :math:`-\sum_i [x_i \log \sigma(\ell_i) + (1 - x_i)
                    \log(1 - \sigma(\ell_i))]`, :math:`\ell` = decoder logits
``"gaussian"``      :math:`\|x - y\|^2/(2\sigma^2) + d \log\sigma +
                    (d/2)\log 2\pi`, :math:`\sigma` = decoder's (fixed or learned)
==================  ==========================================================

The objective uses ``recon_scale * c``; the scale is stored next to
:math:`\lambda` because :math:`\lambda` means nothing without it (docs/paper.md
section 6.3: the WAE code uses ``0.05 * squared``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["COSTS", "reconstruction_cost"]

COSTS = ("squared", "euclidean", "l1", "bernoulli", "gaussian")


def reconstruction_cost(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    cost: str = "squared",
    log_sigma: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Per-sample reconstruction cost :math:`c(x_i, y_i)`, shape (n,).

    Parameters
    ----------
    x : Tensor, shape (n, ...)
        Data.
    y : Tensor, shape (n, ...)
        Decoder output: the reconstruction (``squared``, ``euclidean``, ``l1``,
        ``gaussian``: its mean) or logits (``bernoulli``).
    cost : {"squared", "euclidean", "l1", "bernoulli", "gaussian"}
        See the module table.
    log_sigma : Tensor, optional
        :math:`\log\sigma` of a Gaussian decoder (scalar or broadcastable to a
        sample); required for ``cost="gaussian"``.

    Returns
    -------
    Tensor, shape (n,)

    Examples
    --------
    >>> x, y = torch.zeros(1, 3), torch.ones(1, 3)
    >>> reconstruction_cost(x, y, cost="squared").item()
    3.0
    """
    if x.shape != y.shape:
        raise ValueError(
            f"data and reconstruction must have the same shape (got {tuple(x.shape)}"
            f" and {tuple(y.shape)}); the decoder output must match the data."
        )
    diff = (x - y).flatten(1)
    if cost == "squared":
        return (diff**2).sum(1)
    if cost == "euclidean":
        d2 = (diff**2).sum(1)
        pos = d2 > 0
        return torch.where(pos, d2, torch.ones_like(d2)).sqrt() * pos
    if cost == "l1":
        return diff.abs().sum(1)
    if cost == "bernoulli":
        bce = F.binary_cross_entropy_with_logits(y, x, reduction="none")
        return bce.flatten(1).sum(1)
    if cost == "gaussian":
        if log_sigma is None:
            raise ValueError(
                "cost='gaussian' needs the decoder's log_sigma (got None); use a "
                "GaussianDecoder or pass cost='squared'."
            )
        d = diff.shape[1]
        ls = log_sigma.expand(diff.shape[1:]) if log_sigma.ndim else log_sigma
        quad = (diff**2 * torch.exp(-2 * ls)).sum(1) / 2
        logdet = ls.sum() if ls.ndim else d * ls
        return quad + logdet + d / 2 * math.log(2 * math.pi)
    raise ValueError(
        f"cost must be one of {', '.join(COSTS)} (got {cost!r}); pass e.g. "
        "cost='squared'."
    )
