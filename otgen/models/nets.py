r"""Encoders :math:`Q(Z|X)`, decoders :math:`P_G(Y|Z)` and critics.

Every wrapper takes any ``torch.nn.Module`` as its network; :func:`mlp` gives
the default multilayer perceptrons sized for toy data.

Encoders return an :class:`Encoding` (the code ``z``, and the Gaussian
``mean``/``logvar`` when there is one):

- :class:`DeterministicEncoder`: :math:`Q(Z|X=x) = \delta_{E(x)}`;
- :class:`GaussianEncoder`: :math:`N(\mu(x), \operatorname{diag} e^{v(x)})`,
  reparametrised :math:`z = \mu + e^{v/2}\odot\varepsilon`;
- :class:`ImplicitEncoder`: :math:`z = E(x, \varepsilon)`, noise as input.

Decoders map codes to the decoder parameter (a mean, or Bernoulli logits):

- :class:`DeterministicDecoder`: :math:`\delta_{G(z)}`;
- :class:`GaussianDecoder`: :math:`N(G(z), \sigma^2 I)`, fixed or learned
  :math:`\sigma`;
- :class:`BernoulliDecoder`: independent Bernoulli with logits :math:`G(z)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from otgen.models.validate import check_int, check_widths

__all__ = [
    "BernoulliDecoder",
    "DeterministicDecoder",
    "DeterministicEncoder",
    "Encoding",
    "GaussianDecoder",
    "GaussianEncoder",
    "ImplicitEncoder",
    "check_widths",
    "mlp",
]


def mlp(
    d_in: int, d_out: int, hidden: Sequence[int] = (128, 128), *, activation=nn.ReLU
) -> nn.Sequential:
    """A multilayer perceptron from ``d_in`` through the ``hidden`` widths to ``d_out``.

    ReLU (``activation``) between layers; the output layer is linear.

    Examples
    --------
    >>> net = mlp(2, 3, (8,))
    >>> tuple(net(torch.zeros(5, 2)).shape)
    (5, 3)
    """
    d_in = check_int(d_in, name="d_in", minimum=1)
    d_out = check_int(d_out, name="d_out", minimum=1)
    layers: list[nn.Module] = []
    d = d_in
    for h in check_widths(hidden):
        layers += [nn.Linear(d, h), activation()]
        d = h
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


class Encoding(NamedTuple):
    """A batch of codes; ``mean``/``logvar`` are set for Gaussian encoders."""

    z: torch.Tensor
    mean: torch.Tensor
    logvar: torch.Tensor | None = None


class DeterministicEncoder(nn.Module):
    """:math:`z = E(x)`; optional input noise :math:`N(0, s^2)` while training.

    Parameters
    ----------
    net : nn.Module
        Maps (n, ...) data to (n, d_z) codes.
    input_noise : float, default=0
        Std of Gaussian noise added to the input in training mode (the WAE
        heuristic uses 0.01; docs/paper.md 6.9).
    """

    kind = "deterministic"

    def __init__(self, net: nn.Module, *, input_noise: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.input_noise = float(input_noise)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> Encoding:
        """Encode ``x``."""
        if self.training and self.input_noise > 0:
            eps = torch.randn(
                x.shape, generator=generator, dtype=x.dtype, device=x.device
            )
            x = x + self.input_noise * eps
        z = self.net(x)
        return Encoding(z, z)


class GaussianEncoder(nn.Module):
    r"""Diagonal Gaussian :math:`N(\mu(x), \operatorname{diag}\, e^{v(x)})`.

    Parameters
    ----------
    net : nn.Module
        Maps (n, ...) data to (n, 2 d_z): means then log-variances.
    """

    kind = "gaussian"

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> Encoding:
        """Encode ``x`` with the reparametrisation trick."""
        out = self.net(x)
        mean, logvar = out.chunk(2, dim=-1)
        eps = torch.randn(
            mean.shape, generator=generator, dtype=mean.dtype, device=mean.device
        )
        return Encoding(mean + torch.exp(0.5 * logvar) * eps, mean, logvar)


class ImplicitEncoder(nn.Module):
    r"""Implicit random encoder :math:`z = E(x, \varepsilon)`.

    The noise :math:`\varepsilon \sim N(0, I_k)` is concatenated to the
    (flattened) input.

    ``Encoding.mean`` is :math:`E(x, 0)`, a representative code (not the
    conditional mean), in eval mode; in training mode it is ``z`` (one network
    pass per batch).
    """

    kind = "implicit"

    def __init__(self, net: nn.Module, *, noise_dim: int) -> None:
        super().__init__()
        noise_dim = check_int(
            noise_dim, name="noise_dim", minimum=1, fix="; pass e.g. 2"
        )
        self.net = net
        self.noise_dim = noise_dim

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> Encoding:
        """Encode ``x`` with fresh noise."""
        flat = x.flatten(1)
        eps = torch.randn(
            flat.shape[0],
            self.noise_dim,
            generator=generator,
            dtype=x.dtype,
            device=x.device,
        )
        z = self.net(torch.cat([flat, eps], 1))
        if self.training:  # the representative code is only used for evaluation
            return Encoding(z, z)
        z0 = self.net(torch.cat([flat, torch.zeros_like(eps)], 1))
        return Encoding(z, z0)


class DeterministicDecoder(nn.Module):
    """:math:`Y = G(z)`: the output is the reconstruction itself."""

    kind = "deterministic"
    log_sigma = None

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """:math:`G(z)`."""
        return self.net(z)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        """Data-space mean from the decoder output."""
        return out

    def sample(
        self, z: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A draw of :math:`Y | Z = z` (here :math:`G(z)`)."""
        return self(z)


class GaussianDecoder(nn.Module):
    r""":math:`Y \sim N(G(z), \sigma^2 I)`; :math:`\sigma` fixed or learned.

    Parameters
    ----------
    net : nn.Module
        Maps codes to means.
    sigma : float, default=1
        Initial (or fixed) standard deviation.
    learn_sigma : bool, default=False
        Learn one :math:`\log\sigma` shared by all coordinates.
    """

    kind = "gaussian"

    def __init__(
        self, net: nn.Module, *, sigma: float = 1.0, learn_sigma: bool = False
    ) -> None:
        super().__init__()
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0 (got {sigma!r}); pass e.g. 1.0.")
        self.net = net
        ls = torch.tensor(math.log(sigma))
        if learn_sigma:
            self.log_sigma = nn.Parameter(ls)
        else:
            self.register_buffer("log_sigma", ls)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The mean :math:`G(z)`."""
        return self.net(z)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        """Data-space mean from the decoder output."""
        return out

    def sample(
        self, z: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        r"""A draw :math:`G(z) + \sigma\xi`."""
        m = self(z)
        xi = torch.randn(m.shape, generator=generator, dtype=m.dtype, device=m.device)
        return m + torch.exp(self.log_sigma) * xi


class BernoulliDecoder(nn.Module):
    r"""Independent Bernoulli pixels with logits :math:`G(z)`."""

    kind = "bernoulli"
    log_sigma = None

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Logits :math:`G(z)`."""
        return self.net(z)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        r"""Mean :math:`\sigma(G(z))`."""
        return torch.sigmoid(out)

    def sample(
        self, z: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A draw of binary pixels."""
        p = torch.sigmoid(self(z))
        return torch.bernoulli(p, generator=generator)
