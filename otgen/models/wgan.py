r"""WGAN-GP: a generator and a critic in data space (the dual side of Prop. W).

The critic :math:`f` minimises :math:`\frac1n\sum_i f(G(z_i)) - f(x_i)
+ \lambda_{GP}\, \mathbb{E}(\|\nabla f(\hat x)\| - 1)^2`
:cite:`gulrajani2017wgangp`, an estimate of :math:`-W_1(P_X, G\#P_Z)` over
(approximately) 1-Lipschitz critics; the generator minimises
:math:`-\frac1n\sum_i f(G(z_i))`. By docs/paper.md Prop. W this is the
Lagrange dual of constrained POT with :math:`c = \|\cdot\|`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from otgen.models.base import CriticGAN
from otgen.models.penalties import gradient_penalty
from otgen.models.priors import Prior

__all__ = ["WGANGP"]


class WGANGP(CriticGAN):
    r"""Generator :math:`G: Z \to X` and critic :math:`f: X \to \mathbb{R}`.

    Parameters
    ----------
    generator_net : nn.Module
        Maps codes (n, d_z) to data (n, ...).
    critic : nn.Module
        Maps data to (n, 1) scores.
    prior : Prior
        :math:`P_Z`.
    gp_weight : float, default=10
        :math:`\lambda_{GP}`.
    n_critic : int, default=5
        Critic updates per generator update.
    lr, betas : float, (float, float)
        Adam settings of both groups (paper: 1e-4, (0, 0.9)).
    """

    def __init__(
        self,
        generator_net: nn.Module,
        critic: nn.Module,
        prior: Prior,
        *,
        gp_weight: float = 10.0,
        n_critic: int = 5,
        lr: float = 1e-4,
        betas: Sequence[float] = (0.0, 0.9),
    ) -> None:
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1 (got {n_critic}); pass e.g. 5.")
        if gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0 (got {gp_weight}); pass 10.")
        super().__init__(
            generator_net, critic, prior, n_critic=int(n_critic), lr=lr, betas=betas
        )
        self.gp_weight = float(gp_weight)

    def group_loss(self, group, x, *, lam, generator=None, global_batch=None):
        """Critic loss (with gradient penalty) or generator loss on batch ``x``."""
        if group == "critic":
            with torch.no_grad():
                fake = self.generate(x.shape[0], generator=generator)
            gap = self.critic(fake).mean() - self.critic(x).mean()
            gp = gradient_penalty(self.critic, x, fake, generator=generator)
            loss = gap + self.gp_weight * gp
            return loss, {
                "critic_gap": gap,
                "gradient_penalty": gp,
                "critic_loss": loss,
            }
        if group != "model":
            raise ValueError(f"unknown update group {group!r}; expected 'model'.")
        loss = -self.critic(self.generate(x.shape[0], generator=generator)).mean()
        return loss, {"loss": loss}
