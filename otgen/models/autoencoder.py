r"""The penalised-OT auto-encoder: one objective for WAE, AAE and VAE.

.. math::
    L(Q, G) = s \cdot \frac1n \sum_i c(x_i, G(\tilde z_i))
    + \lambda\, \widehat{D}_Z(Q_Z, P_Z), \qquad \tilde z_i \sim Q(Z|x_i),

with reconstruction scale :math:`s` (``recon_scale``, stored next to
:math:`\lambda`), cost :math:`c` from :mod:`otgen.models.costs` and a latent
penalty from :mod:`otgen.models.penalties` (docs/paper.md section 2, "POT / WAE
objective"). For a deterministic decoder and squared cost the value estimates
the relaxed cost :math:`D_{POT}(\lambda) \le W_2^2` (Prop. P1), not :math:`W_2`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from otgen.models.base import GenerativeModel, UpdateGroup
from otgen.models.costs import COSTS, reconstruction_cost
from otgen.models.nets import Encoding
from otgen.models.penalties import LatentPenalty
from otgen.models.priors import Prior

__all__ = ["PenalisedAutoEncoder"]


class PenalisedAutoEncoder(GenerativeModel):
    r"""Encoder, decoder, prior, cost and latent penalty behind one loss.

    Parameters
    ----------
    encoder : nn.Module
        An encoder of :mod:`otgen.models.nets` (returns an ``Encoding``).
    decoder : nn.Module
        A decoder of :mod:`otgen.models.nets`.
    prior : Prior
        The latent prior :math:`P_Z`.
    penalty : LatentPenalty
        :math:`D_Z(Q_Z, P_Z)`.
    cost : {"squared", "euclidean", "l1", "bernoulli", "gaussian"}
        Reconstruction cost :math:`c`, per sample, summed over coordinates.
    lam : float, default=10
        Penalty weight :math:`\lambda \ge 0` (the nominal value; a trainer
        schedule may vary it).
    recon_scale : float, default=1
        :math:`s` multiplying the cost (0.05 in the WAE code, docs/paper.md 6.3).
    lr, betas : float, (float, float)
        Adam settings of the encoder/decoder group.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        prior: Prior,
        penalty: LatentPenalty,
        *,
        cost: str = "squared",
        lam: float = 10.0,
        recon_scale: float = 1.0,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.5, 0.999),
    ) -> None:
        super().__init__()
        if cost not in COSTS:
            raise ValueError(
                f"cost must be one of {', '.join(COSTS)} (got {cost!r}); pass e.g. "
                "cost='squared'."
            )
        if cost == "gaussian" and getattr(decoder, "log_sigma", None) is None:
            raise ValueError(
                "cost='gaussian' needs a GaussianDecoder (got a decoder without "
                "log_sigma); use decoder='gaussian' or cost='squared'."
            )
        if cost == "bernoulli" and getattr(decoder, "kind", "") != "bernoulli":
            raise ValueError(
                "cost='bernoulli' needs a BernoulliDecoder, whose outputs are "
                "logits; use decoder='bernoulli'."
            )
        if not lam >= 0:
            raise ValueError(f"lam must be >= 0 (got {lam!r}); pass e.g. lam=10.")
        if not recon_scale > 0:
            raise ValueError(
                f"recon_scale must be > 0 (got {recon_scale!r}); pass e.g. 1.0."
            )
        self.encoder, self.decoder, self.penalty = encoder, decoder, penalty
        self.prior = prior
        self.cost, self.lam, self.recon_scale = cost, float(lam), float(recon_scale)
        self.lr, self.betas = float(lr), tuple(float(b) for b in betas)
        self.config = {}

    # -- pieces ---------------------------------------------------------------
    def encode(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> Encoding:
        r"""Codes :math:`\tilde z \sim Q(Z|x)`."""
        return self.encoder(x, generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Data-space mean of :math:`P_G(Y|Z = z)`."""
        return self.decoder.mean(self.decoder(z))

    def reconstruct(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        r""":math:`G(\tilde z)` for :math:`\tilde z \sim Q(Z|x)`."""
        return self.decode(self.encode(x, generator=generator).z)

    def generate(self, n, *, generator=None):
        r"""``n`` samples :math:`G(z)`, :math:`z \sim P_Z` (decoder means)."""
        z = self.prior.sample(
            n, generator=generator, dtype=self.dtype, device=self.device
        )
        return self.decode(z)

    def reconstruction_cost(self, x: torch.Tensor, enc: Encoding) -> torch.Tensor:
        r"""Per-sample :math:`c(x_i, G(\tilde z_i))`, shape (n,), unscaled."""
        return reconstruction_cost(
            x, self.decoder(enc.z), cost=self.cost, log_sigma=self.decoder.log_sigma
        )

    # -- trainer interface ------------------------------------------------------
    def update_groups(self) -> list[UpdateGroup]:
        """``"critic"`` (adversarial penalties only), then ``"model"``."""
        groups = []
        if self.penalty.has_critic:
            crit = list(self.penalty.parameters())
            groups.append(
                UpdateGroup("critic", crit, self.penalty.lr, self.penalty.betas)
            )
        ids = {id(p) for p in self.penalty.parameters()}
        own = [p for p in self.parameters() if id(p) not in ids]
        groups.append(UpdateGroup("model", own, self.lr, self.betas))
        return groups

    def group_loss(self, group, x, *, lam, generator=None, global_batch=None):
        """Loss of ``"model"`` (the objective) or ``"critic"`` on batch ``x``.

        With ``global_batch`` (a :class:`~otgen.models.distributed.GlobalBatch`,
        data-parallel training) a penalty that couples samples is computed on
        the codes and prior samples of every rank; the reconstruction term
        stays the mean over this rank's batch.
        """
        n = x.shape[0]
        if group == "critic":
            with torch.no_grad():
                zq = self.encode(x, generator=generator).z
            zp = self.prior.sample(
                n, generator=generator, dtype=zq.dtype, device=zq.device
            )
            return self.penalty.critic_loss(
                zq, zp, self.prior, lam=lam, generator=generator
            )
        if group != "model":
            raise ValueError(f"unknown update group {group!r}; expected 'model'.")
        enc = self.encode(x, generator=generator)
        out = self.decoder(enc.z)
        # Under mixed precision the networks ran in bfloat16; the cost and the
        # latent penalty are computed in the data's dtype, autocast off.
        with torch.autocast(device_type=x.device.type, enabled=False):
            enc = type(enc)(
                *(t.to(x.dtype) if isinstance(t, torch.Tensor) else t for t in enc)
            )
            zp = self.prior.sample(
                n, generator=generator, dtype=x.dtype, device=enc.z.device
            )
            rec = reconstruction_cost(
                x, out.to(x.dtype), cost=self.cost, log_sigma=self.decoder.log_sigma
            ).mean()
            pen = self._latent_penalty(enc, zp, generator, global_batch)
        loss = self.recon_scale * rec + lam * pen
        return loss, {"reconstruction": rec, "penalty": pen, "loss": loss}

    def _latent_penalty(self, enc, zp, generator, global_batch):
        """:math:`D_Z` on this batch, or on the global batch when it couples samples."""
        if global_batch is not None and self.penalty.couples_samples:
            enc, zp = global_batch.gather_batch(enc, zp)
            if global_batch.generator is not None:
                generator = global_batch.generator
        return self.penalty(enc, zp, self.prior, generator)
