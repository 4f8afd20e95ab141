r"""GAN and f-GAN: a generator and a data-space critic (docs/paper.md section 3).

f-GAN :cite:`nowozin2016fgan` maximises over critics :math:`V: X \to \mathbb{R}`
the variational lower bound

.. math::
    F(V) = \mathbb{E}_{P_X}\, g_f(V(X))
    - \mathbb{E}_{P_Z}\, f^*\big(g_f(V(G(Z)))\big)
    \le D_f(P_X \| P_G),

where :math:`f^*(t) = \sup_u\, tu - f(u)` is the convex conjugate of
:math:`f` and the *output activation* :math:`g_f` maps the real logit into the
domain of :math:`f^*`. The bound is tight at :math:`g_f(V) = f'(p_X/p_G)`.
Each divergence of :data:`FDIVERGENCES` gives :math:`f`, :math:`g_f` and
:math:`f^* \circ g_f` in a numerically stable form (:cite:`nowozin2016fgan`,
Table 2 and Table 6):

- ``kl``: :math:`f(u) = u\log u`, :math:`g_f(v) = v`,
  :math:`f^*(g_f(v)) = e^{v-1}`;
- ``reverse_kl``: :math:`f(u) = -\log u`, :math:`g_f(v) = -e^{-v}`,
  :math:`f^*(g_f(v)) = v - 1`;
- ``pearson`` (:math:`\chi^2`): :math:`f(u) = (u-1)^2`, :math:`g_f(v) = v`,
  :math:`f^*(g_f(v)) = v^2/4 + v`;
- ``neyman`` (:math:`\chi^2`): :math:`f(u) = (1-u)^2/u`,
  :math:`g_f(v) = 1 - e^{v}`, :math:`f^*(g_f(v)) = 2 - 2e^{v/2}`;
- ``hellinger`` (squared): :math:`f(u) = (\sqrt u - 1)^2`,
  :math:`g_f(v) = 1 - e^{v}`, :math:`f^*(g_f(v)) = e^{-v} - 1`;
- ``js``: :math:`f(u) = u\log u - (u+1)\log\frac{u+1}{2}`,
  :math:`g_f(v) = \log 2 - \operatorname{softplus}(-v)`,
  :math:`f^*(g_f(v)) = \operatorname{softplus}(v) - \log 2`; this generator
  (:cite:`nowozin2016fgan`, Table 1) gives :math:`D_f = 2\,\mathrm{JS}(P, Q)
  \le 2\log 2`;
- ``gan``: :math:`f(u) = u\log u - (u+1)\log(u+1)`,
  :math:`g_f(v) = \log\sigma(v)`, :math:`f^*(g_f(v)) = \operatorname{softplus}(v)`.

``gan`` is the GAN of :cite:`goodfellow2014gan`: :math:`D = \sigma(V)`, bound
:math:`\mathbb{E}\log D(X) + \mathbb{E}\log(1 - D(G(Z))) \le 2\,\mathrm{JS} - \log 4`.
So :func:`~otgen.models.presets.gan` and :func:`~otgen.models.presets.fgan`
are the same :class:`FGAN` class with different :math:`f`.

Generator losses: ``"minimax"`` minimises the bound itself,
:math:`-\mathbb{E} f^*(g_f(V(G(Z))))`; ``"non_saturating"`` minimises
:math:`-\mathbb{E}\, g_f(V(G(Z)))` (:cite:`nowozin2016fgan`, section 3.2), which
for ``gan`` is the non-saturating loss :math:`-\mathbb{E}\log D(G(Z))`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from otgen.models.base import CriticGAN
from otgen.models.priors import Prior

__all__ = ["FDIVERGENCES", "FDivergence", "FGAN", "variational_bound"]

_LOG2 = math.log(2.0)
Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class FDivergence:
    r"""One f-divergence :math:`D_f(P\|Q) = \int q\, f(p/q)` and its f-GAN pieces.

    Attributes
    ----------
    name : str
        Key in :data:`FDIVERGENCES`.
    f : callable
        The generator :math:`f(u)`, :math:`u > 0`.
    activation : callable
        Output activation :math:`g_f(v)`, onto the domain of :math:`f^*`.
    conjugate_of_activation : callable
        :math:`f^*(g_f(v))`, computed stably.
    conjugate : callable
        :math:`f^*(t)` on its domain.
    optimal_logit : callable
        The logit :math:`v` with :math:`g_f(v) = f'(r)` for a density ratio
        :math:`r = p/q`: the optimal critic.
    """

    name: str
    f: Fn
    activation: Fn
    conjugate_of_activation: Fn
    conjugate: Fn
    optimal_logit: Fn


def _xlogx(u: torch.Tensor) -> torch.Tensor:
    return torch.where(u > 0, u * torch.log(torch.where(u > 0, u, 1.0)), 0.0 * u)


FDIVERGENCES: dict[str, FDivergence] = {
    "kl": FDivergence(
        "kl",
        f=_xlogx,
        activation=lambda v: v,
        conjugate_of_activation=lambda v: torch.exp(v - 1),
        conjugate=lambda t: torch.exp(t - 1),
        optimal_logit=lambda r: 1 + torch.log(r),
    ),
    "reverse_kl": FDivergence(
        "reverse_kl",
        f=lambda u: -torch.log(u),
        activation=lambda v: -torch.exp(-v),
        conjugate_of_activation=lambda v: v - 1,
        conjugate=lambda t: -1 - torch.log(-t),
        optimal_logit=lambda r: torch.log(r),
    ),
    "pearson": FDivergence(
        "pearson",
        f=lambda u: (u - 1) ** 2,
        activation=lambda v: v,
        conjugate_of_activation=lambda v: v**2 / 4 + v,
        conjugate=lambda t: t**2 / 4 + t,
        optimal_logit=lambda r: 2 * (r - 1),
    ),
    "neyman": FDivergence(
        "neyman",
        f=lambda u: (1 - u) ** 2 / u,
        activation=lambda v: 1 - torch.exp(v),
        conjugate_of_activation=lambda v: 2 - 2 * torch.exp(v / 2),
        conjugate=lambda t: 2 - 2 * torch.sqrt(1 - t),
        optimal_logit=lambda r: -2 * torch.log(r),
    ),
    "hellinger": FDivergence(
        "hellinger",
        f=lambda u: (torch.sqrt(u) - 1) ** 2,
        activation=lambda v: 1 - torch.exp(v),
        conjugate_of_activation=lambda v: torch.exp(-v) - 1,
        conjugate=lambda t: t / (1 - t),
        optimal_logit=lambda r: -0.5 * torch.log(r),
    ),
    "js": FDivergence(
        "js",
        f=lambda u: _xlogx(u) - (u + 1) * torch.log((u + 1) / 2),
        activation=lambda v: _LOG2 - F.softplus(-v),
        conjugate_of_activation=lambda v: F.softplus(v) - _LOG2,
        conjugate=lambda t: -torch.log(2 - torch.exp(t)),
        optimal_logit=lambda r: torch.log(r),
    ),
    "gan": FDivergence(
        "gan",
        f=lambda u: _xlogx(u) - (u + 1) * torch.log(u + 1),
        activation=lambda v: -F.softplus(-v),
        conjugate_of_activation=F.softplus,
        conjugate=lambda t: -torch.log(1 - torch.exp(t)),
        optimal_logit=lambda r: torch.log(r),
    ),
}


def _divergence(f: str) -> FDivergence:
    if f not in FDIVERGENCES:
        raise ValueError(
            f"f must be one of {', '.join(FDIVERGENCES)} (got {f!r}); pass e.g. f='js'."
        )
    return FDIVERGENCES[f]


def variational_bound(
    v_p: torch.Tensor, v_q: torch.Tensor, *, f: str = "kl"
) -> torch.Tensor:
    r"""The f-GAN lower bound on :math:`D_f(P\|Q)` from critic logits.

    .. math::
        \hat F = \frac1n \sum_i g_f(v^P_i) - \frac1m \sum_j f^*(g_f(v^Q_j))
        \;\le\; D_f(P\|Q) \text{ in expectation},

    equal to :math:`D_f` in expectation at the optimal logits
    ``FDIVERGENCES[f].optimal_logit(p/q)`` (:cite:`nowozin2016fgan`, eq. 4).

    Parameters
    ----------
    v_p : Tensor, shape (n,)
        Critic logits :math:`V(x_i)` on samples of :math:`P`.
    v_q : Tensor, shape (m,)
        Critic logits on samples of :math:`Q`.
    f : str, default="kl"
        A key of :data:`FDIVERGENCES`.

    Returns
    -------
    Tensor
        Scalar :math:`\hat F`.

    Raises
    ------
    ValueError
        On an unknown ``f``.

    References: :cite:`nowozin2016fgan`.

    Examples
    --------
    >>> v = torch.zeros(4)  # a constant critic gives g(0) - f*(g(0))
    >>> round(float(variational_bound(v, v, f="kl")), 6)  # 0 - e^{-1}
    -0.367879
    """
    div = _divergence(f)
    return div.activation(v_p).mean() - div.conjugate_of_activation(v_q).mean()


class FGAN(CriticGAN):
    r"""Generator :math:`G` and critic :math:`V` trained on the f-GAN bound.

    The critic ascends :func:`variational_bound` of :math:`P_X` against
    :math:`G\#P_Z`; the generator descends the ``generator_loss`` (see the
    module docstring). With ``f="gan"`` this is the GAN of
    :cite:`goodfellow2014gan`.

    Parameters
    ----------
    generator_net : nn.Module
        Maps codes (n, d_z) to data (n, d).
    critic : nn.Module
        Maps data to (n, 1) logits :math:`V(x)`.
    prior : Prior
        :math:`P_Z`.
    f : str, default="gan"
        A key of :data:`FDIVERGENCES`.
    generator_loss : {"non_saturating", "minimax"}
        See the module docstring.
    n_critic : int, default=1
        Critic updates per generator update.
    lr, betas : float, (float, float)
        Adam settings of both groups.
    """

    def __init__(
        self,
        generator_net: nn.Module,
        critic: nn.Module,
        prior: Prior,
        *,
        f: str = "gan",
        generator_loss: str = "non_saturating",
        n_critic: int = 1,
        lr: float = 2e-4,
        betas: Sequence[float] = (0.5, 0.999),
    ) -> None:
        divergence = _divergence(f)
        if generator_loss not in ("non_saturating", "minimax"):
            raise ValueError(
                "generator_loss must be 'non_saturating' or 'minimax' (got "
                f"{generator_loss!r}); pass 'non_saturating' (Nowozin et al. 2016)."
            )
        super().__init__(
            generator_net, critic, prior, n_critic=n_critic, lr=lr, betas=betas
        )
        self.divergence = divergence
        self.f, self.generator_loss = f, generator_loss

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        r"""Critic logits :math:`V(x)`, shape (n,)."""
        return self.critic(x).reshape(x.shape[0])

    def group_loss(self, group, x, *, lam, generator=None, global_batch=None):
        """Critic loss (minus the bound) or generator loss on batch ``x``."""
        if group == "critic":
            with torch.no_grad():
                fake = self.generate(x.shape[0], generator=generator)
            bound = variational_bound(self.logit(x), self.logit(fake), f=self.f)
            return -bound, {"bound": bound, "critic_loss": -bound}
        if group != "model":
            raise ValueError(f"unknown update group {group!r}; expected 'model'.")
        v = self.logit(self.generate(x.shape[0], generator=generator))
        if self.generator_loss == "minimax":
            loss = -self.divergence.conjugate_of_activation(v).mean()
        else:
            loss = -self.divergence.activation(v).mean()
        return loss, {"loss": loss}
