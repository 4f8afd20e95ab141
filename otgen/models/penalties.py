r"""Latent penalties :math:`D_Z(Q_Z, P_Z)`: aggregated posterior first.

Every penalty is an ``nn.Module`` called as ``penalty(enc, z_prior, prior)``
with the batch encoding ``enc`` (codes :math:`\tilde z_i \sim Q(Z|x_i)`) and
an independent prior batch ``z_prior`` :math:`z_j \sim P_Z`; it returns the
scalar the encoder and decoder minimise (times :math:`\lambda`).

==========================  ===================================================
class                       :math:`D_Z` (estimate on the two batches)
==========================  ===================================================
:class:`MMDPenalty`         :math:`\widehat{\mathrm{MMD}}{}^2_k` (or MMD) via
                            :func:`otgen.ot.mmd.mmd`; IMQ, :math:`C` from the
                            prior (docs/paper.md Algorithm 2)
:class:`AdversarialPenalty` latent GAN (Algorithm 1): a critic with its own
                            optimiser settings; non-saturating or minimax
:class:`SinkhornPenalty`    debiased Sinkhorn divergence
:class:`ExactOTPenalty`     exact minibatch :math:`W_p` (:func:`otgen.wasserstein`)
:class:`SlicedPenalty`      sliced :math:`W_p` over random directions
:class:`KLPenalty`          per-sample :math:`\mathbb{E}_x
                            \mathrm{KL}(Q(Z|x)\|P_Z)` (VAE): *not* a divergence
                            between :math:`Q_Z` and :math:`P_Z`
==========================  ===================================================

In data-parallel training (:mod:`otgen.models.distributed`) the MMD, Sinkhorn,
exact and sliced penalties (``couples_samples``) are the **global-batch
estimators**: computed on the codes and prior samples of every rank, gathered,
identically on each rank, never as the mean of per-rank penalties. The KL and
the adversarial penalties are means of per-sample terms and need no gather.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from otgen.models.nets import Encoding, mlp
from otgen.models.priors import GaussianPrior, Prior

__all__ = [
    "AdversarialPenalty",
    "ExactOTPenalty",
    "KLPenalty",
    "LatentPenalty",
    "MMDPenalty",
    "SinkhornPenalty",
    "SlicedPenalty",
    "gradient_penalty",
]


class LatentPenalty(nn.Module):
    """Base class of latent penalties.

    Attributes
    ----------
    is_divergence : bool
        True when the value estimates a divergence :math:`D_Z(Q_Z, P_Z)`
        (zero iff the laws agree); False for the per-sample KL of the VAE.
    has_critic : bool
        True when the penalty trains its own critic (group ``"critic"``).
    couples_samples : bool
        True (the default) when the value is not a mean of per-sample terms
        (MMD, Sinkhorn, exact and sliced OT): in data-parallel training it is
        computed on the global batch, the codes and prior samples of every
        rank gathered (:mod:`otgen.models.distributed`). False for means of
        per-sample terms (KL, the adversarial penalties), whose per-rank means
        DDP's gradient average already turns into the global-batch mean.
    """

    name = "penalty"
    is_divergence = True
    has_critic = False
    couples_samples = True

    def config(self) -> dict:
        """JSON description of the options."""
        return {"name": self.name}


class MMDPenalty(LatentPenalty):
    r"""Kernel MMD between the codes and prior samples (WAE-MMD).

    Parameters
    ----------
    kernel : {"imq", "gaussian", "laplacian", "energy"}, default="imq"
        Kernel of :func:`otgen.ot.mmd.mmd`.
    scales : sequence of float, default=(1.0,)
        Multiples of the base scale; several sum the MMD² estimates
        (``(0.1, 0.2, 0.5, 1, 2, 5, 10)`` is the released WAE code). The base is
        the prior's :math:`C = \mathbb{E}\|Z - Z'\|^2` for IMQ (docs/paper.md), and
        :math:`\sqrt{C}` (a length) for the other kernels.
    estimator : {"all_pairs", "off_diagonal", "unbiased", "biased"}
        ``"all_pairs"`` (WAE final version, default) or ``"off_diagonal"``
        (ICLR submission); docs/paper.md 6.2.
    penalty : {"mmd2", "mmd"}, default="mmd2"
        Penalise :math:`\mathrm{MMD}^2` (Algorithm 2) or its root.
    """

    name = "mmd"

    def __init__(
        self,
        *,
        kernel: str = "imq",
        scales: Sequence[float] = (1.0,),
        estimator: str = "all_pairs",
        penalty: str = "mmd2",
    ) -> None:
        super().__init__()
        if penalty not in ("mmd2", "mmd"):
            raise ValueError(
                f"penalty must be 'mmd2' or 'mmd' (got {penalty!r}); Algorithm 2 "
                "of WAE uses 'mmd2'."
            )
        scales = tuple(float(s) for s in scales)
        if not scales or not all(s > 0 for s in scales):
            raise ValueError(
                f"scales must be positive multiples of the base scale (got {scales});"
                " pass e.g. (1.0,)."
            )
        self.kernel, self.scales = kernel, scales
        self.estimator, self.penalty = estimator, penalty

    def kernel_scale(self, prior: Prior) -> tuple[float, ...]:
        """The absolute scales passed to :func:`otgen.ot.mmd.mmd`."""
        base = prior.imq_scale
        if self.kernel != "imq":
            base = math.sqrt(base)
        return tuple(s * base for s in self.scales)

    def forward(
        self, enc: Encoding, z_prior: torch.Tensor, prior: Prior, generator=None
    ):
        r""":math:`\widehat{\mathrm{MMD}}{}^2(\tilde z, z)` (or its root)."""
        from otgen.ot.mmd import mmd

        return mmd(
            enc.z,
            z_prior,
            kernel=self.kernel,
            scale=self.kernel_scale(prior),
            estimator=self.estimator,
            squared=self.penalty == "mmd2",
            backend="dense",
        )

    def config(self) -> dict:
        """JSON description of the options."""
        return {
            "name": self.name,
            "kernel": self.kernel,
            "scales": list(self.scales),
            "estimator": self.estimator,
            "penalty": self.penalty,
        }


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    center: float = 1.0,
) -> torch.Tensor:
    r"""Gradient penalty :math:`\mathbb{E}(\|\nabla f(\hat x)\| - c)^2`.

    On interpolates :math:`\hat x = t x + (1 - t)\tilde x`, :math:`t \sim U[0, 1]`
    (:cite:`gulrajani2017wgangp`; :math:`c = 1`).
    """
    t = torch.rand(
        real.shape[0],
        *([1] * (real.ndim - 1)),  # one t per point, also for images
        generator=generator,
        dtype=real.dtype,
        device=real.device,
    )
    xh = (t * real.detach() + (1 - t) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(xh).sum(), xh, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - center) ** 2).mean()


class AdversarialPenalty(LatentPenalty):
    r"""Latent GAN penalty with its own critic (WAE-GAN, AAE).

    The critic :math:`D_\gamma = \sigma(T_\gamma)` ascends
    :math:`s \cdot \frac1n\sum_i [\log D(z_i) + \log(1 - D(\tilde z_i))]`
    (docs/paper.md Algorithm 1; :math:`s = \lambda` for ``critic_scale="lambda"``,
    1 for AAE). The encoder/decoder penalty is

    - ``"non_saturating"`` (Algorithm 1): :math:`-\frac1n\sum_i \log D(\tilde z_i)`;
    - ``"minimax"``: :math:`\frac1n\sum_i \log D(z_i) + \log(1 - D(\tilde z_i))
      + \log 4`, an estimate of :math:`2\,\mathrm{JS}` at the optimal critic.

    Both losses are means of per-sample terms, so in data-parallel training
    (:mod:`otgen.models.distributed`) the adversary's batches need no gather:
    each rank averages over its own codes and prior samples, and DDP's mean
    of the gradients is the gradient on the global batch
    (``couples_samples = False``).

    Parameters
    ----------
    d_z : int
        Latent dimension.
    critic : nn.Module, optional
        Maps codes (n, d_z) to logits (n, 1); default :func:`mlp` with ``hidden``.
    hidden : sequence of int, default=(128, 128, 128)
        Hidden widths of the default critic (the paper's is 4 x 512).
    generator_loss : {"non_saturating", "minimax"}
        See above (docs/paper.md 6.6).
    prior_trick : bool, default=False
        Add the full :math:`\log p_Z(z)` to the critic logit (docs/paper.md 6.10).
    gradient_penalty : float, default=0
        Weight of :func:`gradient_penalty` on the critic logit.
    critic_scale : {"lambda", "one"}, default="lambda"
        Scale of the critic loss: :math:`\lambda` as in Algorithm 1, or 1.
    lr : float, default=5e-4
        Adam learning rate of the critic (the paper's adversary, MNIST).
    betas : (float, float), default=(0.5, 0.999)
        Adam betas of the critic.
    """

    name = "adversarial"
    has_critic = True
    couples_samples = False  # means of per-sample terms, critic loss included

    def __init__(
        self,
        d_z: int,
        *,
        critic: nn.Module | None = None,
        hidden: Sequence[int] = (128, 128, 128),
        generator_loss: str = "non_saturating",
        prior_trick: bool = False,
        gradient_penalty: float = 0.0,
        critic_scale: str = "lambda",
        lr: float = 5e-4,
        betas: Sequence[float] = (0.5, 0.999),
    ) -> None:
        super().__init__()
        if generator_loss not in ("non_saturating", "minimax"):
            raise ValueError(
                "generator_loss must be 'non_saturating' or 'minimax' (got "
                f"{generator_loss!r}); Algorithm 1 uses 'non_saturating'."
            )
        if critic_scale not in ("lambda", "one"):
            raise ValueError(
                f"critic_scale must be 'lambda' or 'one' (got {critic_scale!r})."
            )
        if gradient_penalty < 0:
            raise ValueError(
                f"gradient_penalty must be >= 0 (got {gradient_penalty}); pass 0 "
                "to disable it."
            )
        self.critic = critic if critic is not None else mlp(d_z, 1, hidden)
        self.generator_loss = generator_loss
        self.prior_trick = bool(prior_trick)
        self.gp = float(gradient_penalty)
        self.critic_scale = critic_scale
        self.lr, self.betas = float(lr), tuple(float(b) for b in betas)
        self._hidden = list(hidden)
        self._prior: Prior | None = None

    def logit(self, z: torch.Tensor, prior: Prior) -> torch.Tensor:
        r"""Critic logit :math:`T(z)` (+ :math:`\log p_Z(z)` with the trick), (n,)."""
        out = self.critic(z).reshape(z.shape[0])
        if self.prior_trick:
            out = out + prior.log_prob(z)
        return out

    def forward(
        self, enc: Encoding, z_prior: torch.Tensor, prior: Prior, generator=None
    ):
        """The encoder/decoder penalty (see the class docstring)."""
        lq = self.logit(enc.z, prior)
        if self.generator_loss == "non_saturating":
            return F.softplus(-lq).mean()  # -log D(z~)
        lp = self.logit(z_prior, prior)
        # log D(z) + log(1 - D(z~)) + log 4
        return -F.softplus(-lp).mean() - F.softplus(lq).mean() + math.log(4.0)

    def critic_loss(
        self,
        z_q: torch.Tensor,
        z_prior: torch.Tensor,
        prior: Prior,
        *,
        lam: float,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss the critic minimises: minus the scaled GAN objective (+ GP)."""
        lp, lq = self.logit(z_prior, prior), self.logit(z_q.detach(), prior)
        gan = F.softplus(-lp).mean() + F.softplus(lq).mean()  # -(log D + log(1-D))
        scale = lam if self.critic_scale == "lambda" else 1.0
        loss = scale * gan
        terms = {"critic_gan": gan}
        if self.gp > 0:
            gp = gradient_penalty(
                lambda z: self.logit(z, prior), z_prior, z_q, generator=generator
            )
            loss = loss + self.gp * gp
            terms["gradient_penalty"] = gp
        terms["critic_loss"] = loss
        return loss, terms

    def config(self) -> dict:
        """JSON description of the options."""
        return {
            "name": self.name,
            "hidden": self._hidden,
            "generator_loss": self.generator_loss,
            "prior_trick": self.prior_trick,
            "gradient_penalty": self.gp,
            "critic_scale": self.critic_scale,
            "lr": self.lr,
            "betas": list(self.betas),
        }


class SinkhornPenalty(LatentPenalty):
    r"""Debiased Sinkhorn divergence :math:`S_\varepsilon(Q_Z, P_Z)`.

    Cost :math:`\|z - z'\|^p`.

    Parameters
    ----------
    eps : float, optional
        Entropic regularisation in units of the cost; default
        ``rel_eps * C`` with the prior's :math:`C = \mathbb{E}\|Z - Z'\|^2`
        (for p = 2).
    rel_eps : float, default=0.05
        Used when ``eps`` is None.
    p : int, default=2
        Cost exponent.
    """

    name = "sinkhorn"

    def __init__(self, *, eps: float | None = None, rel_eps: float = 0.05, p=2):
        super().__init__()
        self.eps, self.rel_eps, self.p = eps, float(rel_eps), p

    def eps_for(self, prior: Prior) -> float:
        r"""The :math:`\varepsilon` used with ``prior``."""
        if self.eps is not None:
            return float(self.eps)
        return self.rel_eps * prior.imq_scale ** (self.p / 2)

    def forward(
        self, enc: Encoding, z_prior: torch.Tensor, prior: Prior, generator=None
    ):
        r""":math:`S_\varepsilon(\tilde z, z)`."""
        from otgen.ot.divergence import sinkhorn_divergence

        return sinkhorn_divergence(enc.z, z_prior, eps=self.eps_for(prior), p=self.p)

    def config(self) -> dict:
        """JSON description of the options."""
        return {
            "name": self.name,
            "eps": self.eps,
            "rel_eps": self.rel_eps,
            "p": self.p,
        }


class ExactOTPenalty(LatentPenalty):
    r"""Exact minibatch :math:`W_p(\hat Q_Z, \hat P_Z)`.

    Between the batch codes and the prior batch (:func:`otgen.wasserstein`,
    differentiable).

    ``p = 1`` is the exact penalty of docs/paper.md Prop. P6. Returns :math:`W_p`
    (the p-th root), or :math:`W_p^p` with ``power=True``.
    """

    name = "exact"

    def __init__(self, *, p: float = 1.0, power: bool = False) -> None:
        super().__init__()
        if not p >= 1:
            raise ValueError(f"p must be >= 1 (got {p!r}); pass e.g. p=1.")
        self.p, self.power = float(p), bool(power)

    def forward(
        self, enc: Encoding, z_prior: torch.Tensor, prior: Prior, generator=None
    ):
        """Minibatch :math:`W_p` (or :math:`W_p^p`)."""
        from otgen.ot.exact import wasserstein

        w = wasserstein(enc.z, z_prior, p=self.p)
        return w**self.p if self.power else w

    def config(self) -> dict:
        """JSON description of the options."""
        return {"name": self.name, "p": self.p, "power": self.power}


class SlicedPenalty(LatentPenalty):
    r"""Sliced Wasserstein distance between codes and prior batch.

    :math:`SW_p = (\mathbb{E}_\theta W_p^p(\theta^\top
    \tilde z, \theta^\top z))^{1/p}` over ``n_projections`` uniform directions
    (equal batch sizes: sorted 1-D matching), or :math:`SW_p^p` with
    ``power=True``.
    """

    name = "sliced"

    def __init__(
        self, *, n_projections: int = 64, p: float = 2.0, power: bool = False
    ) -> None:
        super().__init__()
        if n_projections < 1:
            raise ValueError(
                f"n_projections must be >= 1 (got {n_projections}); pass e.g. 64."
            )
        if not p >= 1:
            raise ValueError(f"p must be >= 1 (got {p!r}); pass e.g. p=2.")
        self.n_projections, self.p, self.power = int(n_projections), float(p), power

    def forward(
        self,
        enc: Encoding,
        z_prior: torch.Tensor,
        prior: Prior,
        generator: torch.Generator | None = None,
    ):
        """Sliced :math:`W_p` between the two batches."""
        z, zp = enc.z, z_prior
        if z.shape[0] != zp.shape[0]:
            raise ValueError(
                f"the sliced penalty needs equal batch sizes (got {z.shape[0]} "
                f"codes and {zp.shape[0]} prior samples)."
            )
        theta = torch.randn(
            z.shape[1],
            self.n_projections,
            generator=generator,
            dtype=z.dtype,
            device=z.device,
        )
        theta = theta / theta.norm(dim=0, keepdim=True)
        a = torch.sort(z @ theta, dim=0).values  # (n, L)
        b = torch.sort(zp @ theta, dim=0).values
        swp = (a - b).abs().pow(self.p).mean()
        return swp if self.power else swp.clamp_min(1e-30) ** (1 / self.p)

    def config(self) -> dict:
        """JSON description of the options."""
        return {
            "name": self.name,
            "n_projections": self.n_projections,
            "p": self.p,
            "power": self.power,
        }


class KLPenalty(LatentPenalty):
    r"""Per-sample KL of the VAE, in closed form.

    :math:`\frac1n\sum_i \mathrm{KL}(N(\mu_i, \operatorname{diag}
    e^{v_i}) \| N(0, \sigma_z^2 I))` in closed form (VAE, beta-VAE).

    Not a divergence between :math:`Q_Z` and :math:`P_Z`:
    :math:`\mathbb{E}_x \mathrm{KL}(Q(Z|x)\|P_Z) = I_Q(X; Z) + \mathrm{KL}(Q_Z\|P_Z)`
    (docs/paper.md Prop. V2); :attr:`is_divergence` is False. Needs a
    :class:`~otgen.models.nets.GaussianEncoder` and a Gaussian prior.
    """

    name = "kl"
    is_divergence = False
    couples_samples = False

    def forward(
        self, enc: Encoding, z_prior: torch.Tensor, prior: Prior, generator=None
    ):
        """Batch mean of the closed-form KL."""
        if enc.logvar is None:
            raise ValueError(
                "the KL penalty needs a Gaussian encoder (got an encoding without "
                "logvar); use encoder='gaussian'."
            )
        if not isinstance(prior, GaussianPrior):
            raise ValueError(
                f"the KL penalty needs a Gaussian prior (got {prior.name!r}); use "
                "prior='gaussian'."
            )
        s2 = prior.std**2
        kl = 0.5 * (
            (enc.logvar.exp() + enc.mean**2) / s2 - 1 - enc.logvar + math.log(s2)
        )
        return kl.sum(-1).mean()
