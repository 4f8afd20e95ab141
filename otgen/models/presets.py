r"""Presets: the models of docs/paper.md built from interchangeable pieces.

================  ============================================================
preset            pieces
================  ============================================================
``wae_mmd``       deterministic encoder/decoder, squared cost, IMQ MMD²
                  (Algorithm 2)
``wae_gan``       as ``wae_mmd`` with a latent GAN, critic loss times
                  :math:`\lambda` (Algorithm 1)
``aae``           squared cost, deterministic encoder, latent GAN with an
                  unscaled critic loss (Makhzani et al. 2016; Prop. AAE)
``vae``           Gaussian encoder, Gaussian or Bernoulli likelihood, per-sample
                  KL, :math:`\lambda = 1` (Kingma & Welling 2014)
``beta_vae``      ``vae`` with :math:`\lambda = \beta` (default 4)
``wgan_gp``       generator and data-space critic, gradient penalty 10,
                  ``n_critic = 5`` (Gulrajani et al. 2017)
``wae_sinkhorn``  WAE with a debiased Sinkhorn divergence penalty
``wae_exact``     WAE with the exact minibatch :math:`W_1` penalty and
                  Euclidean cost (the exact penalty of Prop. P6)
``avb``           implicit encoder, Gaussian decoder, KL estimated by a
                  discriminator :math:`T(x, z)` (Mescheder et al. 2017;
                  Prop. V3)
``gan``           generator and data-space logistic critic, non-saturating or
                  minimax generator loss (Goodfellow et al. 2014)
``fgan``          generator and critic on the variational :math:`D_f` bound,
                  :math:`f` in KL, reverse KL, JS, Pearson/Neyman
                  :math:`\chi^2`, squared Hellinger (Nowozin et al. 2016)
================  ============================================================

Every preset takes the data dimension ``d_x`` and JSON-serialisable options;
the model keeps them in ``model.config`` so that :func:`build` rebuilds it
(checkpoints store that config, never pickled objects). Weights are
initialised from ``seed`` without touching torch's global generator.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from otgen.models.autoencoder import PenalisedAutoEncoder
from otgen.models.avb import AVB, AVBPenalty, InputKeepingEncoder
from otgen.models.base import GenerativeModel, check_int
from otgen.models.convnets import decoder_net, encoder_net
from otgen.models.datasets import point_shape
from otgen.models.gan import FGAN
from otgen.models.nets import (
    BernoulliDecoder,
    DeterministicDecoder,
    DeterministicEncoder,
    GaussianDecoder,
    GaussianEncoder,
    ImplicitEncoder,
    check_widths,
)
from otgen.models.penalties import (
    AdversarialPenalty,
    ExactOTPenalty,
    KLPenalty,
    LatentPenalty,
    MMDPenalty,
    SinkhornPenalty,
)
from otgen.models.priors import make_prior
from otgen.models.wgan import WGANGP

__all__ = [
    "PRESETS",
    "aae",
    "avb",
    "beta_vae",
    "build",
    "fgan",
    "gan",
    "vae",
    "wae_exact",
    "wae_gan",
    "wae_mmd",
    "wae_sinkhorn",
    "wgan_gp",
]

HIDDEN = (128, 128, 128)
# Options checked (and converted to plain Python) before any preset runs.
_COUNTS = {"d_z": 1, "n_critic": 1, "noise_dim": 1, "seed": 0, "conv_width": 1}
_WIDTHS = ("hidden", "critic_hidden")


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as Python numbers and lists (JSON-serialisable)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _checked(fn: Callable[..., GenerativeModel]) -> Callable[..., GenerativeModel]:
    """Check ``d_x``, counts, widths and option kinds, naming the option at fault.

    NumPy integers are accepted wherever an int is expected, and every option
    is stored as plain Python in ``model.config``. An option must be of the
    kind of its default (a number, a string, true/false, a list of numbers).
    """
    params = inspect.signature(fn).parameters

    @functools.wraps(fn)
    def preset(d_x: int | Sequence[int], **options: Any) -> GenerativeModel:
        shape = point_shape(_plain(d_x), name="d_x")
        d_x = shape[0] if len(shape) == 1 else shape
        opts = {k: _plain(v) for k, v in options.items()}
        for key, low in _COUNTS.items():
            if key in opts:
                opts[key] = check_int(opts[key], name=key, minimum=low)
        for key in _WIDTHS:
            if key in opts:
                opts[key] = check_widths(opts[key], name=key)
        for key, value in opts.items():
            if key in params:
                _check_type(key, value, params[key].default)
        return fn(d_x, **opts)

    return preset


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_type(name: str, value: Any, default: Any) -> None:
    """Refuse an option of another kind than its default (a string for a number)."""
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif _is_number(default):
        ok, kind = _is_number(value), "a number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "a string"
    elif isinstance(default, tuple) and all(map(_is_number, default)):
        ok = isinstance(value, (list, tuple)) and all(map(_is_number, value))
        kind = "a list of numbers"
    else:
        return
    if not ok:
        raise ValueError(
            f"{name} must be {kind} (got {value!r}); pass e.g. "
            f"{name}={list(default) if isinstance(default, tuple) else default!r}."
        )


def _seeded(seed: int, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with torch's CPU generator seeded, restoring it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn()


def _autoencoder(
    d_x: int,
    penalty: Callable[[int], LatentPenalty],
    *,
    d_z: int,
    hidden: Sequence[int],
    nets: str,
    conv_width: int,
    encoder: str,
    decoder: str,
    prior: str,
    prior_std: float,
    cost: str,
    lam: float,
    recon_scale: float,
    lr: float,
    betas: Sequence[float],
    seed: int,
    encoder_noise: float = 0.0,
    noise_dim: int = 2,
    decoder_sigma: float = 1.0,
    learn_sigma: bool = False,
) -> PenalisedAutoEncoder:
    opts = {"std": prior_std} if prior == "gaussian" else {}
    p = make_prior(prior, d_z=d_z, **opts)

    shape = _shape(d_x)
    body = {"nets": nets, "hidden": hidden, "width": conv_width}

    def make() -> PenalisedAutoEncoder:
        if encoder == "deterministic":
            enc = DeterministicEncoder(
                encoder_net(shape, d_z, **body), input_noise=encoder_noise
            )
        elif encoder == "gaussian":
            enc = GaussianEncoder(encoder_net(shape, 2 * d_z, **body))
        elif encoder == "implicit":
            enc = ImplicitEncoder(
                encoder_net(shape, d_z, extra=noise_dim, **body), noise_dim=noise_dim
            )
        else:
            raise ValueError(
                "encoder must be 'deterministic', 'gaussian' or 'implicit' (got "
                f"{encoder!r})."
            )
        net = decoder_net(d_z, shape, **body)
        if decoder == "deterministic":
            dec = DeterministicDecoder(net)
        elif decoder == "gaussian":
            dec = GaussianDecoder(net, sigma=decoder_sigma, learn_sigma=learn_sigma)
        elif decoder == "bernoulli":
            dec = BernoulliDecoder(net)
        else:
            raise ValueError(
                "decoder must be 'deterministic', 'gaussian' or 'bernoulli' (got "
                f"{decoder!r})."
            )
        return PenalisedAutoEncoder(
            enc,
            dec,
            p,
            penalty(d_z),
            cost=cost,
            lam=lam,
            recon_scale=recon_scale,
            lr=lr,
            betas=betas,
        )

    return _seeded(seed, make)


def _shape(d_x: int | Sequence[int]) -> tuple[int, ...]:
    return (d_x,) if isinstance(d_x, int) else tuple(d_x)


def _record(
    model: GenerativeModel, name: str, d_x: int | Sequence[int], local: dict
) -> GenerativeModel:
    d_x = d_x if isinstance(d_x, int) else list(d_x)
    opts = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in local.items()
        if k != "d_x"
    }
    model.config = {"preset": name, "d_x": d_x, "options": opts}
    return model


@_checked
def wae_mmd(
    d_x: int,
    *,
    d_z: int = 2,
    hidden: Sequence[int] = HIDDEN,
    nets: str = "auto",
    conv_width: int = 32,
    lam: float = 10.0,
    recon_scale: float = 1.0,
    kernel: str = "imq",
    scales: Sequence[float] = (1.0,),
    estimator: str = "all_pairs",
    penalty: str = "mmd2",
    cost: str = "squared",
    encoder: str = "deterministic",
    prior: str = "gaussian",
    prior_std: float = 1.0,
    encoder_noise: float = 0.0,
    lr: float = 1e-3,
    betas: Sequence[float] = (0.5, 0.999),
    seed: int = 0,
) -> PenalisedAutoEncoder:
    r"""WAE-MMD (docs/paper.md Algorithm 2).

    Squared cost plus :math:`\lambda` MMD² with the IMQ kernel,
    :math:`C = 2 d_z \sigma_z^2`: on a batch :math:`x` of shape (n, d_x), codes
    :math:`\tilde z_i \sim Q(Z|x_i)` and prior samples :math:`z_j \sim P_Z`
    of shape (n, d_z), the loss is

    .. math::
        \frac{s}{n} \sum_i c(x_i, G(\tilde z_i))
        + \lambda\, \widehat{\mathrm{MMD}}{}^2_k(\tilde z, z).

    Parameters
    ----------
    d_x : int or tuple of int
        Data dimension, or the shape of one point: (d,), (H, W) or (C, H, W)
        (every preset takes either).
    d_z : int, default=2
        Latent dimension.
    hidden : sequence of int, default=(128, 128, 128)
        Hidden widths of the encoder and decoder MLPs.
    nets : {"auto", "mlp", "conv"}, default="auto"
        Network family: ``"auto"`` takes the convolutional nets of
        :mod:`otgen.models.convnets` for images (``d_x`` a shape (C, H, W) or
        (H, W) with sides >= 8) and MLPs otherwise; every preset takes it.
    conv_width : int, default=32
        Channels of the first convolutional level (doubling at each level).
    lam : float, default=10
        Penalty weight :math:`\lambda`; meaningful only with ``recon_scale``
        (docs/paper.md 6.3).
    recon_scale : float, default=1
        Scale :math:`s` of the reconstruction cost (0.05 in the WAE code).
    kernel, scales, estimator, penalty
        As :class:`~otgen.models.penalties.MMDPenalty`: ``scales`` are
        multiples of :math:`C`; ``estimator`` ``"all_pairs"`` (default) or
        ``"off_diagonal"``; ``penalty`` ``"mmd2"`` (default) or ``"mmd"``.
    cost : {"squared", "euclidean", "l1"}, default="squared"
        Reconstruction cost :math:`c`, summed over coordinates.
    encoder : {"deterministic", "gaussian", "implicit"}, default="deterministic"
        Encoder :math:`Q(Z|x)`; ``"implicit"`` feeds noise to the network (a
        random encoder, needed for near-atomic data, Prop. A1).
    prior : {"gaussian", "uniform", "sphere"}, default="gaussian"
        Prior :math:`P_Z`; ``prior_std`` is :math:`\sigma_z` of the Gaussian.
    encoder_noise : float, default=0
        Std of Gaussian noise added to the encoder input (WAE heuristic).
    lr, betas : float, (float, float)
        Adam settings; default (1e-3, (0.5, 0.999)) and :math:`\lambda = 10`
        are the WAE paper's MNIST settings (``tolstikhin2018wae``).
    seed : int, default=0
        Seed of the weight initialisation.

    Returns
    -------
    PenalisedAutoEncoder
        With ``model.config`` recording every option.

    References
    ----------
    .. [1] I. Tolstikhin, O. Bousquet, S. Gelly, B. Schölkopf. Wasserstein
       auto-encoders. ICLR 2018.

    Examples
    --------
    >>> m = wae_mmd(2, d_z=2, seed=0)
    >>> m.config["preset"], m.lam, m.recon_scale
    ('wae_mmd', 10.0, 1.0)
    """
    local = dict(locals())
    model = _autoencoder(
        d_x,
        lambda dz: MMDPenalty(
            kernel=kernel, scales=scales, estimator=estimator, penalty=penalty
        ),
        d_z=d_z,
        hidden=hidden,
        nets=nets,
        conv_width=conv_width,
        encoder=encoder,
        decoder="deterministic",
        prior=prior,
        prior_std=prior_std,
        cost=cost,
        lam=lam,
        recon_scale=recon_scale,
        lr=lr,
        betas=betas,
        seed=seed,
        encoder_noise=encoder_noise,
    )
    return _record(model, "wae_mmd", d_x, local)


@_checked
def wae_gan(
    d_x: int,
    *,
    d_z: int = 2,
    hidden: Sequence[int] = HIDDEN,
    nets: str = "auto",
    conv_width: int = 32,
    lam: float = 1.0,
    recon_scale: float = 1.0,
    cost: str = "squared",
    encoder: str = "deterministic",
    prior: str = "gaussian",
    prior_std: float = 1.0,
    critic_hidden: Sequence[int] = HIDDEN,
    generator_loss: str = "non_saturating",
    prior_trick: bool = False,
    gradient_penalty: float = 0.0,
    critic_lr: float = 5e-4,
    lr: float = 1e-3,
    betas: Sequence[float] = (0.5, 0.999),
    seed: int = 0,
) -> PenalisedAutoEncoder:
    r"""WAE-GAN (docs/paper.md Algorithm 1).

    Latent critic trained on :math:`\lambda \cdot` the GAN objective;
    non-saturating encoder loss.

    Parameters
    ----------
    d_x, d_z, hidden, lam, recon_scale, cost, encoder, prior, prior_std
        As in :func:`wae_mmd` (default :math:`\lambda = 1`, the paper's
        CelebA WAE-GAN value).
    critic_hidden : sequence of int, default=(128, 128, 128)
        Hidden widths of the latent critic (the paper's is 4 x 512).
    generator_loss : {"non_saturating", "minimax"}, default="non_saturating"
        Encoder loss of Algorithm 1 (docs/paper.md 6.6).
    prior_trick : bool, default=False
        Add :math:`\log p_Z(z)` to the critic logit (docs/paper.md 6.10).
    gradient_penalty : float, default=0
        Weight of a gradient penalty on the critic logit.
    critic_lr : float, default=5e-4
        Adam learning rate of the critic (the WAE paper's adversary: 5e-4,
        :math:`\beta_1 = 0.5`; the encoder/decoder 1e-3).
    lr, betas, seed
        As in :func:`wae_mmd`.

    References
    ----------
    .. [1] I. Tolstikhin, O. Bousquet, S. Gelly, B. Schölkopf. Wasserstein
       auto-encoders. ICLR 2018.

    Examples
    --------
    >>> wae_gan(2, seed=0).update_groups()[0].name
    'critic'
    """
    local = dict(locals())
    model = _autoencoder(
        d_x,
        lambda dz: AdversarialPenalty(
            dz,
            hidden=critic_hidden,
            generator_loss=generator_loss,
            prior_trick=prior_trick,
            gradient_penalty=gradient_penalty,
            critic_scale="lambda",
            lr=critic_lr,
            betas=betas,
        ),
        d_z=d_z,
        hidden=hidden,
        nets=nets,
        conv_width=conv_width,
        encoder=encoder,
        decoder="deterministic",
        prior=prior,
        prior_std=prior_std,
        cost=cost,
        lam=lam,
        recon_scale=recon_scale,
        lr=lr,
        betas=betas,
        seed=seed,
    )
    return _record(model, "wae_gan", d_x, local)


@_checked
def aae(
    d_x: int,
    *,
    d_z: int = 2,
    hidden: Sequence[int] = HIDDEN,
    nets: str = "auto",
    conv_width: int = 32,
    lam: float = 1.0,
    prior_std: float = 1.0,
    critic_hidden: Sequence[int] = HIDDEN,
    critic_lr: float = 5e-4,
    lr: float = 1e-3,
    betas: Sequence[float] = (0.5, 0.999),
    seed: int = 0,
) -> PenalisedAutoEncoder:
    r"""Adversarial auto-encoder (Makhzani et al. 2016).

    :math:`\|x - G(E(x))\|^2` plus :math:`\lambda` times a non-saturating
    latent GAN whose critic loss is not scaled.

    Its encoder/decoder loss equals WAE-GAN's with squared cost and the same
    :math:`\lambda` (docs/paper.md Prop. AAE).

    References
    ----------
    .. [1] A. Makhzani, J. Shlens, N. Jaitly, I. Goodfellow, B. Frey.
       Adversarial autoencoders. ICLR workshop, 2016.
    .. [2] I. Tolstikhin, O. Bousquet, S. Gelly, B. Schölkopf. Wasserstein
       auto-encoders. ICLR 2018.

    Examples
    --------
    >>> aae(2).penalty.critic_scale
    'one'
    """
    local = dict(locals())
    model = _autoencoder(
        d_x,
        lambda dz: AdversarialPenalty(
            dz, hidden=critic_hidden, critic_scale="one", lr=critic_lr, betas=betas
        ),
        d_z=d_z,
        hidden=hidden,
        nets=nets,
        conv_width=conv_width,
        encoder="deterministic",
        decoder="deterministic",
        prior="gaussian",
        prior_std=prior_std,
        cost="squared",
        lam=lam,
        recon_scale=1.0,
        lr=lr,
        betas=betas,
        seed=seed,
    )
    return _record(model, "aae", d_x, local)


@_checked
def vae(
    d_x: int,
    *,
    d_z: int = 2,
    hidden: Sequence[int] = HIDDEN,
    nets: str = "auto",
    conv_width: int = 32,
    beta: float = 1.0,
    likelihood: str = "gaussian",
    decoder_sigma: float = 0.1,
    learn_sigma: bool = False,
    prior_std: float = 1.0,
    lr: float = 1e-3,
    betas: Sequence[float] = (0.9, 0.999),
    seed: int = 0,
) -> PenalisedAutoEncoder:
    r"""VAE (Kingma and Welling 2014).

    Negative ELBO :math:`\mathbb{E}[-\log p_G(x|z)] + \beta\,
    \mathrm{KL}(Q(Z|x)\|P_Z)` (:math:`\beta = 1`; docs/paper.md Prop. V).

    ``likelihood="gaussian"`` (:math:`\sigma` fixed at ``decoder_sigma`` or
    learned) or ``"bernoulli"`` (data in [0, 1]). By Prop. V1, with a fixed
    :math:`\sigma` it is POT-like with squared cost and :math:`\lambda =
    2\sigma^2`.

    Parameters
    ----------
    d_x, d_z, hidden, prior_std, seed
        As in :func:`wae_mmd`.
    beta : float, default=1
        Weight of the KL term (the model's ``lam``).
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        Decoder likelihood :math:`p_G(x|z)`.
    decoder_sigma : float, default=0.1
        :math:`\sigma` of the Gaussian likelihood :math:`N(G(z), \sigma^2 I)`;
        the equivalent POT weight is :math:`\lambda = 2\sigma^2` (Prop. V1).
    learn_sigma : bool, default=False
        Learn :math:`\sigma` (its optimum is the MSE over :math:`d`).
    lr, betas : float, (float, float), default=1e-3, (0.9, 0.999)
        Adam settings: Adam's own defaults (the VAE paper used Adagrad);
        ``decoder_sigma`` is not from the paper, which learns the variance
        (``learn_sigma=True``).

    References
    ----------
    .. [1] D. P. Kingma, M. Welling. Auto-encoding variational Bayes.
       ICLR 2014.

    Examples
    --------
    >>> vae(2).penalty.is_divergence
    False
    """
    local = dict(locals())
    if likelihood not in ("gaussian", "bernoulli"):
        raise ValueError(
            f"likelihood must be 'gaussian' or 'bernoulli' (got {likelihood!r})."
        )
    model = _autoencoder(
        d_x,
        lambda dz: KLPenalty(),
        d_z=d_z,
        hidden=hidden,
        nets=nets,
        conv_width=conv_width,
        encoder="gaussian",
        decoder=likelihood,
        prior="gaussian",
        prior_std=prior_std,
        cost=likelihood,
        lam=beta,
        recon_scale=1.0,
        lr=lr,
        betas=betas,
        seed=seed,
        decoder_sigma=decoder_sigma,
        learn_sigma=learn_sigma,
    )
    return _record(model, "vae", d_x, local)


@_checked
def beta_vae(d_x: int, *, beta: float = 4.0, **options: Any) -> PenalisedAutoEncoder:
    r""":math:`\beta`-VAE (Higgins et al. 2017): :func:`vae` with :math:`\beta`.

    References
    ----------
    .. [1] I. Higgins, L. Matthey, A. Pal, C. Burgess, X. Glorot,
       M. Botvinick, S. Mohamed, A. Lerchner. beta-VAE: learning basic
       visual concepts with a constrained variational framework. ICLR 2017.

    Examples
    --------
    >>> beta_vae(2).lam
    4.0
    """
    model = vae(d_x, beta=beta, **options)
    model.config["preset"] = "beta_vae"
    return model


@_checked
def wgan_gp(
    d_x: int,
    *,
    d_z: int = 2,
    hidden: Sequence[int] = HIDDEN,
    nets: str = "auto",
    conv_width: int = 32,
    critic_hidden: Sequence[int] = HIDDEN,
    prior_std: float = 1.0,
    gp_weight: float = 10.0,
    n_critic: int = 5,
    lr: float = 1e-4,
    betas: Sequence[float] = (0.0, 0.9),
    seed: int = 0,
) -> WGANGP:
    r"""WGAN-GP (Gulrajani et al. 2017).

    Generator :math:`G` and data-space critic, :math:`\lambda_{GP}
    = 10`, 5 critic updates per step, Adam(1e-4, (0, 0.9)): Algorithm 1 of
    the paper (``gulrajani2017wgangp``). Its toy experiments train 100000
    generator steps with 512-wide layers; the default ``otgen train`` budget
    is 2000, at which it fails the model check on ring8 (the report says so).

    References
    ----------
    .. [1] I. Gulrajani, F. Ahmed, M. Arjovsky, V. Dumoulin, A. Courville.
       Improved training of Wasserstein GANs. NeurIPS 2017.

    Examples
    --------
    >>> [g.n_updates for g in wgan_gp(2).update_groups()]
    [5, 1]
    """
    local = dict(locals())
    prior = make_prior("gaussian", d_z=d_z, std=prior_std)

    def make() -> WGANGP:
        shape = _shape(d_x)
        return WGANGP(
            decoder_net(d_z, shape, nets=nets, hidden=hidden, width=conv_width),
            encoder_net(
                shape, 1, nets=nets, hidden=critic_hidden, width=conv_width, leaky=True
            ),
            prior,
            gp_weight=gp_weight,
            n_critic=n_critic,
            lr=lr,
            betas=betas,
        )

    return _record(_seeded(seed, make), "wgan_gp", d_x, local)


@_checked
def wae_sinkhorn(
    d_x: int,
    *,
    d_z: int = 2,
    hidden: Sequence[int] = HIDDEN,
    nets: str = "auto",
    conv_width: int = 32,
    lam: float = 10.0,
    recon_scale: float = 1.0,
    eps: float | None = None,
    rel_eps: float = 0.05,
    p: int = 2,
    cost: str = "squared",
    prior_std: float = 1.0,
    lr: float = 1e-3,
    betas: Sequence[float] = (0.5, 0.999),
    seed: int = 0,
) -> PenalisedAutoEncoder:
    r"""WAE with the debiased Sinkhorn divergence :math:`S_\varepsilon(Q_Z, P_Z)`.

    References
    ----------
    .. [1] I. Tolstikhin, O. Bousquet, S. Gelly, B. Schölkopf. Wasserstein
       auto-encoders. ICLR 2018.
    .. [2] J. Feydy, T. Séjourné, F.-X. Vialard, S. Amari, A. Trouvé,
       G. Peyré. Interpolating between optimal transport and MMD using
       Sinkhorn divergences. AISTATS 2019.

    Examples
    --------
    >>> wae_sinkhorn(2).penalty.name
    'sinkhorn'
    """
    local = dict(locals())
    model = _autoencoder(
        d_x,
        lambda dz: SinkhornPenalty(eps=eps, rel_eps=rel_eps, p=p),
        d_z=d_z,
        hidden=hidden,
        nets=nets,
        conv_width=conv_width,
        encoder="deterministic",
        decoder="deterministic",
        prior="gaussian",
        prior_std=prior_std,
        cost=cost,
        lam=lam,
        recon_scale=recon_scale,
        lr=lr,
        betas=betas,
        seed=seed,
    )
    return _record(model, "wae_sinkhorn", d_x, local)


@_checked
def wae_exact(
    d_x: int,
    *,
    d_z: int = 2,
    hidden: Sequence[int] = HIDDEN,
    nets: str = "auto",
    conv_width: int = 32,
    lam: float = 10.0,
    recon_scale: float = 1.0,
    p: float = 1.0,
    cost: str = "euclidean",
    prior_std: float = 1.0,
    lr: float = 1e-3,
    betas: Sequence[float] = (0.5, 0.999),
    seed: int = 0,
) -> PenalisedAutoEncoder:
    r"""WAE with the exact minibatch :math:`W_p` penalty.

    Default :math:`p = 1` with Euclidean cost: the exact penalty of docs/paper.md
    Prop. P6 once :math:`\lambda` exceeds the decoder's Lipschitz constant.

    References
    ----------
    .. [1] O. Bousquet, S. Gelly, I. Tolstikhin, C.-J. Simon-Gabriel,
       B. Schölkopf. From optimal transport to generative modeling: the VEGAN
       cookbook. arXiv:1705.07642, 2017.
    .. [2] I. Tolstikhin, O. Bousquet, S. Gelly, B. Schölkopf. Wasserstein
       auto-encoders. ICLR 2018.

    Examples
    --------
    >>> wae_exact(2).penalty.p
    1.0
    """
    local = dict(locals())
    model = _autoencoder(
        d_x,
        lambda dz: ExactOTPenalty(p=p),
        d_z=d_z,
        hidden=hidden,
        nets=nets,
        conv_width=conv_width,
        encoder="deterministic",
        decoder="deterministic",
        prior="gaussian",
        prior_std=prior_std,
        cost=cost,
        lam=lam,
        recon_scale=recon_scale,
        lr=lr,
        betas=betas,
        seed=seed,
    )
    return _record(model, "wae_exact", d_x, local)


@_checked
def avb(
    d_x: int,
    *,
    d_z: int = 2,
    hidden: Sequence[int] = HIDDEN,
    nets: str = "auto",
    conv_width: int = 32,
    noise_dim: int = 2,
    beta: float = 1.0,
    decoder_sigma: float = 0.1,
    learn_sigma: bool = False,
    prior_std: float = 1.0,
    critic_hidden: Sequence[int] = HIDDEN,
    critic_lr: float = 1e-3,
    lr: float = 1e-3,
    betas: Sequence[float] = (0.5, 0.999),
    seed: int = 0,
) -> AVB:
    r"""Adversarial variational Bayes (Mescheder et al. 2017; docs/paper.md Prop. V3).

    Implicit encoder :math:`\tilde z = E(x, \varepsilon)`, Gaussian decoder
    :math:`N(G(z), \sigma^2 I)` (random; ``decoder_sigma`` as in :func:`vae`),
    loss :math:`\mathbb{E}[-\log p_G(x|\tilde z)] + \beta\,\mathbb{E}\,T(x,
    \tilde z)` with the discriminator :math:`T` trained by the logistic loss,
    :math:`T^* = \log q(z|x) - \log p_Z(z)`.

    References
    ----------
    .. [1] L. Mescheder, S. Nowozin, A. Geiger. Adversarial variational
       Bayes: unifying variational autoencoders and generative adversarial
       networks. ICML 2017.

    Examples
    --------
    >>> m = avb(2, seed=0)
    >>> [g.name for g in m.update_groups()], m.penalty.is_divergence
    (['critic', 'model'], False)
    """
    local = dict(locals())
    p = make_prior("gaussian", d_z=d_z, std=prior_std)

    def make() -> AVB:
        shape = _shape(d_x)
        body = {"nets": nets, "hidden": hidden, "width": conv_width}
        enc = ImplicitEncoder(
            encoder_net(shape, d_z, extra=noise_dim, **body), noise_dim=noise_dim
        )
        dec = GaussianDecoder(
            decoder_net(d_z, shape, **body),
            sigma=decoder_sigma,
            learn_sigma=learn_sigma,
        )
        critic = encoder_net(
            shape, 1, nets=nets, hidden=critic_hidden, width=conv_width, extra=d_z
        )
        pen = AVBPenalty(
            math.prod(shape),
            d_z,
            hidden=critic_hidden,
            lr=critic_lr,
            betas=betas,
            critic=critic,
        )
        return AVB(
            InputKeepingEncoder(enc),
            dec,
            p,
            pen,
            cost="gaussian",
            lam=beta,
            lr=lr,
            betas=betas,
        )

    return _record(_seeded(seed, make), "avb", d_x, local)


def _fgan(
    d_x: int,
    *,
    f: str,
    generator_loss: str,
    d_z: int,
    hidden: Sequence[int],
    nets: str,
    conv_width: int,
    critic_hidden: Sequence[int],
    prior_std: float,
    n_critic: int,
    lr: float,
    betas: Sequence[float],
    seed: int,
) -> FGAN:
    prior = make_prior("gaussian", d_z=d_z, std=prior_std)

    def make() -> FGAN:
        shape = _shape(d_x)
        return FGAN(
            decoder_net(d_z, shape, nets=nets, hidden=hidden, width=conv_width),
            encoder_net(
                shape, 1, nets=nets, hidden=critic_hidden, width=conv_width, leaky=True
            ),
            prior,
            f=f,
            generator_loss=generator_loss,
            n_critic=n_critic,
            lr=lr,
            betas=betas,
        )

    return _seeded(seed, make)


@_checked
def gan(
    d_x: int,
    *,
    d_z: int = 2,
    hidden: Sequence[int] = HIDDEN,
    nets: str = "auto",
    conv_width: int = 32,
    critic_hidden: Sequence[int] = HIDDEN,
    generator_loss: str = "non_saturating",
    prior_std: float = 1.0,
    n_critic: int = 1,
    lr: float = 2e-4,
    betas: Sequence[float] = (0.5, 0.999),
    seed: int = 0,
) -> FGAN:
    r"""GAN (Goodfellow et al. 2014): the f-GAN of :math:`2\,\mathrm{JS} - \log 4`.

    Critic :math:`D = \sigma(V)` ascends :math:`\mathbb{E}\log D(X) +
    \mathbb{E}\log(1 - D(G(Z)))`; the generator descends
    :math:`-\mathbb{E}\log D(G(Z))` (``"non_saturating"``) or
    :math:`\mathbb{E}\log(1 - D(G(Z)))` (``"minimax"``). Adam(2e-4, (0.5,
    0.999)) is the DCGAN setting (``radford2016dcgan``). On the ring of eight
    Gaussians a GAN is known to collapse onto few modes (``metz2017unrolled``,
    unrolled GANs); the report's model check says so.

    References
    ----------
    .. [1] I. Goodfellow, J. Pouget-Abadie, M. Mirza, B. Xu, D. Warde-Farley,
       S. Ozair, A. Courville, Y. Bengio. Generative adversarial nets.
       NeurIPS 2014.

    Examples
    --------
    >>> m = gan(2, generator_loss="minimax")
    >>> m.f, m.generator_loss
    ('gan', 'minimax')
    """
    local = dict(locals())
    model = _fgan(
        d_x,
        f="gan",
        generator_loss=generator_loss,
        d_z=d_z,
        hidden=hidden,
        nets=nets,
        conv_width=conv_width,
        critic_hidden=critic_hidden,
        prior_std=prior_std,
        n_critic=n_critic,
        lr=lr,
        betas=betas,
        seed=seed,
    )
    return _record(model, "gan", d_x, local)


@_checked
def fgan(
    d_x: int,
    *,
    f: str = "js",
    d_z: int = 2,
    hidden: Sequence[int] = HIDDEN,
    nets: str = "auto",
    conv_width: int = 32,
    critic_hidden: Sequence[int] = HIDDEN,
    generator_loss: str = "non_saturating",
    prior_std: float = 1.0,
    n_critic: int = 1,
    lr: float = 2e-4,
    betas: Sequence[float] = (0.5, 0.999),
    seed: int = 0,
) -> FGAN:
    r"""f-GAN (Nowozin et al. 2016): the variational bound on :math:`D_f`.

    The critic ascends :math:`\mathbb{E}\, g_f(V(X)) - \mathbb{E}\,
    f^*(g_f(V(G(Z))))`, with ``f`` one of
    :data:`otgen.models.gan.FDIVERGENCES` (``"kl"``, ``"reverse_kl"``,
    ``"js"``, ``"pearson"``, ``"neyman"``, ``"hellinger"``, ``"gan"``) and its
    output activation :math:`g_f`.

    References
    ----------
    .. [1] S. Nowozin, B. Cseke, R. Tomioka. f-GAN: training generative
       neural samplers using variational divergence minimization. NeurIPS
       2016.

    Examples
    --------
    >>> fgan(2, f="pearson").f
    'pearson'
    """
    local = dict(locals())
    model = _fgan(
        d_x,
        f=f,
        generator_loss=generator_loss,
        d_z=d_z,
        hidden=hidden,
        nets=nets,
        conv_width=conv_width,
        critic_hidden=critic_hidden,
        prior_std=prior_std,
        n_critic=n_critic,
        lr=lr,
        betas=betas,
        seed=seed,
    )
    return _record(model, "fgan", d_x, local)


PRESETS: dict[str, Callable[..., GenerativeModel]] = {
    "wae_mmd": wae_mmd,
    "wae_gan": wae_gan,
    "aae": aae,
    "vae": vae,
    "beta_vae": beta_vae,
    "wgan_gp": wgan_gp,
    "wae_sinkhorn": wae_sinkhorn,
    "wae_exact": wae_exact,
    "avb": avb,
    "gan": gan,
    "fgan": fgan,
}


def build(preset: str, d_x: int | Sequence[int], **options: Any) -> GenerativeModel:
    """Build a preset by name (``-`` and ``_`` are interchangeable).

    Raises ValueError naming the preset and the options it accepts.

    Examples
    --------
    >>> build("wae-mmd", 2, lam=5.0).lam
    5.0
    >>> build("wae-mmd", (8, 8), d_z=8).x_shape  # conv nets for 8 x 8 images
    (1, 8, 8)
    """
    key = preset.replace("-", "_")
    if key not in PRESETS:
        raise ValueError(
            f"model must be one of {', '.join(p.replace('_', '-') for p in PRESETS)}"
            f" (got {preset!r})."
        )
    fn = PRESETS[key]
    allowed = [k for k in inspect.signature(fn).parameters if k != "d_x"]
    if key == "beta_vae":
        allowed += [k for k in inspect.signature(vae).parameters if k != "d_x"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for model {key!r}; it accepts "
            f"{', '.join(sorted(set(allowed)))}."
        )
    return fn(d_x, **options)
