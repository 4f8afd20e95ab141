"""What the trainer needs from a model: update groups and their losses.

A model is an ``nn.Module`` that lists its *update groups* (parameters with
their own optimiser, e.g. ``"critic"`` then ``"model"``), computes the loss of a
group on a data batch, and generates samples. :class:`~otgen.models.train.Trainer`
drives every preset through this interface alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from otgen.models.distributed import GlobalBatch
from otgen.models.validate import check_int

__all__ = ["CriticGAN", "GenerativeModel", "UpdateGroup", "check_int"]


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
        global_batch: GlobalBatch | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss that ``group`` minimises on the batch ``x``, and its terms.

        In data-parallel training the Trainer passes ``global_batch``
        (:class:`~otgen.models.distributed.GlobalBatch`): ``x`` is then this
        rank's share of the global batch, and a term that couples the samples
        of a batch must be computed on ``global_batch.gather(...)`` of its
        inputs; means of per-sample terms need nothing (DDP averages the
        gradients over the ranks). A model whose ``group_loss`` lacks this
        argument trains on one process only.
        """
        raise NotImplementedError

    def generate(
        self, n: int, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        r"""``n`` samples of the model :math:`G(Z)`, :math:`Z \sim P_Z`."""
        raise NotImplementedError

    @property
    def x_shape(self) -> tuple[int, ...] | None:
        """The point shape the model was built for: ``(d,)``, ``(C, H, W)`` or None.

        From ``config["d_x"]`` (an int or a shape), or None for a hand-built
        model with an empty config (the trainer then passes batches as they
        are).
        """
        config = self.__dict__.get("config")
        d = config.get("d_x") if isinstance(config, dict) else None
        if d is None:
            return None
        return (int(d),) if isinstance(d, (int, float)) else tuple(int(v) for v in d)

    @property
    def d_x(self) -> int | None:
        """The number of coordinates of a point (the product of :attr:`x_shape`)."""
        shape = self.x_shape
        return None if shape is None else math.prod(shape)

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
    Their losses are means of per-sample terms (critic values, logistic terms,
    the gradient penalty), so in data-parallel training each rank's mean and
    DDP's average of the gradients give the global batch: ``global_batch`` is
    not needed.
    Update groups: ``"critic"`` (``n_critic`` updates per step), then
    ``"model"`` (the generator); one Adam setting for both.
    """

    def __init__(self, generator_net, critic, prior, *, n_critic, lr, betas) -> None:
        super().__init__()
        n_critic = check_int(n_critic, name="n_critic", minimum=1, fix="; pass e.g. 5")
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
