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

__all__ = ["GenerativeModel", "UpdateGroup"]


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
