r"""Adversarial variational Bayes (:cite:`mescheder2017avb`; docs/paper.md Prop. V3).

The VAE objective with an *implicit* encoder :math:`\tilde z = E(x,
\varepsilon)`, whose density :math:`q(z|x)` is unknown, so the per-sample KL

.. math::
    \mathbb{E}_{P_X}\,\mathrm{KL}(Q(Z|X)\|P_Z)
    = \mathbb{E}_{P_X}\mathbb{E}_{Q(Z|X)}\,[\log q(Z|X) - \log p_Z(Z)]

is estimated by a discriminator :math:`T(x, z)` trained with the logistic loss
to tell pairs :math:`(x, \tilde z) \sim P_X Q(Z|X)` from pairs :math:`(x, z)
\sim P_X \otimes P_Z`:

.. math::
    \max_T\; \mathbb{E}_{P_X Q}\log\sigma(T(X, Z))
    + \mathbb{E}_{P_X \otimes P_Z}\log(1 - \sigma(T(X, Z))),
    \qquad T^*(x, z) = \log q(z|x) - \log p_Z(z).

The encoder and the (random, Gaussian) decoder then minimise
:math:`\mathbb{E}[-\log p_G(x|\tilde z)] + \lambda\, \mathbb{E}\, T(x,
\tilde z)`, :math:`\lambda = 1` for AVB; gradients flow through
:math:`\tilde z` into :math:`T`, whose weights are held fixed in that update.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from otgen.models.autoencoder import PenalisedAutoEncoder
from otgen.models.nets import mlp
from otgen.models.penalties import LatentPenalty
from otgen.models.priors import Prior

__all__ = ["AVB", "AVBPenalty", "ConditionalEncoding", "InputKeepingEncoder"]


class ConditionalEncoding(NamedTuple):
    """An :class:`~otgen.models.nets.Encoding` that also carries its inputs ``x``."""

    z: torch.Tensor
    mean: torch.Tensor
    logvar: torch.Tensor | None
    x: torch.Tensor


class InputKeepingEncoder(nn.Module):
    """Wrap an encoder so that its encodings carry the encoded data (for T(x, z)).

    Parameters
    ----------
    encoder : nn.Module
        An encoder of :mod:`otgen.models.nets` (e.g. ``ImplicitEncoder``).
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.inner = encoder
        self.kind = getattr(encoder, "kind", "implicit")

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> ConditionalEncoding:
        """Encode ``x``; the result keeps ``x``."""
        enc = self.inner(x, generator)
        return ConditionalEncoding(enc.z, enc.mean, enc.logvar, x)


class AVBPenalty(LatentPenalty):
    r"""Adversarial estimate :math:`\frac1n\sum_i T(x_i, \tilde z_i)` of the KL.

    The discriminator :math:`T(x, z)` (an MLP on the concatenation of the
    flattened :math:`x` and :math:`z`) minimises
    :meth:`critic_loss`, the logistic loss whose optimum is
    :math:`\log q(z|x) - \log p_Z(z)` (docs/paper.md Prop. V3). Like the VAE's KL it
    is a per-sample penalty, not a divergence between :math:`Q_Z` and
    :math:`P_Z` (:attr:`is_divergence` is False).

    Parameters
    ----------
    d_x, d_z : int
        Data and latent dimensions.
    hidden : sequence of int, default=(128, 128, 128)
        Hidden widths of :math:`T`.
    lr : float, default=1e-3
        Adam learning rate of :math:`T`.
    betas : (float, float), default=(0.5, 0.999)
        Adam betas of :math:`T`.
    critic : nn.Module, optional
        :math:`T` itself, mapping rows (n, d_x + d_z) (flattened data, then
        the code) to (n, 1); default an MLP with ``hidden``.
    """

    name = "avb"
    is_divergence = False
    has_critic = True
    couples_samples = False

    def __init__(
        self,
        d_x: int,
        d_z: int,
        *,
        hidden: Sequence[int] = (128, 128, 128),
        lr: float = 1e-3,
        betas: Sequence[float] = (0.5, 0.999),
        critic: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.critic = critic if critic is not None else mlp(d_x + d_z, 1, hidden)
        self.lr, self.betas = float(lr), tuple(float(b) for b in betas)
        self._hidden = list(hidden)

    def logit(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r""":math:`T(x, z)`, shape (n,)."""
        return self.critic(torch.cat([x.flatten(1), z], 1)).reshape(x.shape[0])

    def forward(
        self,
        enc: ConditionalEncoding,
        z_prior: torch.Tensor,
        prior: Prior,
        generator=None,
    ):
        r""":math:`\frac1n\sum_i T(x_i, \tilde z_i)`, the KL estimate."""
        x = getattr(enc, "x", None)
        if x is None:
            raise ValueError(
                "the AVB penalty needs encodings that carry their inputs (got an "
                "Encoding without x); wrap the encoder in InputKeepingEncoder."
            )
        return self.logit(x, enc.z).mean()

    def critic_loss(
        self, x: torch.Tensor, z_q: torch.Tensor, z_prior: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r"""Logistic loss of :math:`T`: posterior pairs vs prior pairs.

        :math:`-\frac1n\sum_i [\log\sigma(T(x_i, \tilde z_i)) + \log(1 -
        \sigma(T(x_i, z_i)))]` with :math:`\tilde z_i \sim Q(Z|x_i)`,
        :math:`z_i \sim P_Z` independent of :math:`x_i`.
        """
        lq, lp = self.logit(x, z_q.detach()), self.logit(x, z_prior)
        loss = F.softplus(-lq).mean() + F.softplus(lp).mean()
        return loss, {"critic_loss": loss}

    def config(self) -> dict:
        """JSON description of the options."""
        return {
            "name": self.name,
            "hidden": self._hidden,
            "lr": self.lr,
            "betas": list(self.betas),
        }


class AVB(PenalisedAutoEncoder):
    r"""AVB: implicit encoder, Gaussian decoder, adversarial KL (Prop. V3).

    A :class:`~otgen.models.autoencoder.PenalisedAutoEncoder` with an
    :class:`AVBPenalty`; the critic group trains :math:`T(x, z)` on the data
    batch, the model group minimises :math:`\mathbb{E}[-\log p_G(x|\tilde z)]
    + \lambda\,\mathbb{E}\,T(x, \tilde z)`. Parameters as for
    ``PenalisedAutoEncoder``; the encoder must be an
    :class:`InputKeepingEncoder`.
    """

    def __init__(self, encoder, decoder, prior, penalty, **options) -> None:
        if not isinstance(encoder, InputKeepingEncoder):
            raise ValueError(
                "AVB needs an InputKeepingEncoder (got "
                f"{type(encoder).__name__}); wrap the encoder in it."
            )
        if not isinstance(penalty, AVBPenalty):
            raise ValueError(f"AVB needs an AVBPenalty (got {type(penalty).__name__}).")
        super().__init__(encoder, decoder, prior, penalty, **options)

    def group_loss(self, group, x, *, lam, generator=None, global_batch=None):
        """Logistic loss of :math:`T` (``"critic"``) or the AVB objective."""
        if group == "critic":
            with torch.no_grad():
                zq = self.encode(x, generator=generator).z
            zp = self.prior.sample(
                x.shape[0], generator=generator, dtype=zq.dtype, device=zq.device
            )
            return self.penalty.critic_loss(x, zq, zp)
        return super().group_loss(
            group, x, lam=lam, generator=generator, global_batch=global_batch
        )
