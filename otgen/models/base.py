"""What the trainer needs from a model: update groups and their losses.

A model is an ``nn.Module`` that lists its *update groups* (parameters with
their own optimiser, e.g. ``"critic"`` then ``"model"``), computes the loss of a
group on a data batch, and generates samples. :class:`~otgen.models.train.Trainer`
drives every preset through this interface alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["CriticGAN", "GenerativeModel", "UpdateGroup"]


@dataclass
class UpdateGroup:
    """Parameters updated together by one optimiser.

    Attributes
    ----------
    name : str
        ``"model"`` (encoder and decoder, or generator) or ``"critic"``.
    params : list of Parameter
        The parameters of the group.
    lr : float
        Adam learning rate.
    betas : tuple of float
        Adam betas.
    n_updates : int
        Updates of this group per training step (``n_critic`` for critics).
    """

    name: str
    params: list[nn.Parameter] = field(repr=False)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    n_updates: int = 1


class GenerativeModel(nn.Module):
    """Base class of the models: groups, group losses, sampling, config.

    Attributes
    ----------
    config : dict
        JSON description (preset name and options) that rebuilds the model
        through :func:`otgen.models.presets.build`; empty for hand-built models.
    """

    config: dict

    def update_groups(self) -> list[UpdateGroup]:
        """The update groups, in the order of alternating updates."""
        raise NotImplementedError

    def group_loss(
        self,
        group: str,
        x: torch.Tensor,
        *,
        lam: float,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss that ``group`` minimises on the batch ``x``, and its terms."""
        raise NotImplementedError

    def generate(
        self, n: int, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        r"""``n`` samples of the model :math:`G(Z)`, :math:`Z \sim P_Z`."""
        raise NotImplementedError

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the parameters."""
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.parameters()).device


class CriticGAN(GenerativeModel):
    r"""A generator :math:`G: Z \to X` trained against a critic in data space.

    Shared by WGAN-GP and the (f-)GANs: they differ only in ``group_loss``.
    Update groups: ``"critic"`` (``n_critic`` updates per step), then
    ``"model"`` (the generator); one Adam setting for both.
    """

    def __init__(self, generator_net, critic, prior, *, n_critic, lr, betas) -> None:
        super().__init__()
        if not isinstance(n_critic, int) or n_critic < 1:
            raise ValueError(f"n_critic must be an integer >= 1 (got {n_critic!r}).")
        self.generator_net, self.critic, self.prior = generator_net, critic, prior
        self.n_critic = n_critic
        self.lr, self.betas = float(lr), tuple(float(b) for b in betas)
        self.lam = 0.0  # no latent penalty; kept for the trainer's schedule
        self.config = {}

    def generate(self, n, *, generator=None):
        r"""``n`` samples :math:`G(z)`, :math:`z \sim P_Z`."""
        z = self.prior.sample(
            n, generator=generator, dtype=self.dtype, device=self.device
        )
        return self.generator_net(z)

    def update_groups(self) -> list[UpdateGroup]:
        """``"critic"`` (``n_critic`` updates per step), then ``"model"``."""
        return [
            UpdateGroup(
                "critic",
                list(self.critic.parameters()),
                self.lr,
                self.betas,
                self.n_critic,
            ),
            UpdateGroup(
                "model", list(self.generator_net.parameters()), self.lr, self.betas
            ),
        ]
