r"""Presets: the models of docs/paper.md built from interchangeable pieces.

================  ============================================================
preset            pieces
================  ============================================================
``wae_mmd``       deterministic encoder/decoder, squared cost, IMQ MMD²
                  (Algorithm 2)
``wae_gan``       as ``wae_mmd`` with a latent GAN, critic loss times
                  :math:`\lambda` (Algorithm 1)
``aae``           squared cost, deterministic encoder, latent GAN with an
                  unscaled critic loss (:cite:`makhzani2016aae`; Prop. AAE)
``vae``           Gaussian encoder, Gaussian or Bernoulli likelihood, per-sample
                  KL, :math:`\lambda = 1` (:cite:`kingma2014vae`)
``beta_vae``      ``vae`` with :math:`\lambda = \beta` (default 4)
``wgan_gp``       generator and data-space critic, gradient penalty 10,
                  ``n_critic = 5`` (:cite:`gulrajani2017wgangp`)
``wae_sinkhorn``  WAE with a debiased Sinkhorn divergence penalty
``wae_exact``     WAE with the exact minibatch :math:`W_1` penalty and
                  Euclidean cost (the exact penalty of Prop. P6)
``avb``           implicit encoder, Gaussian decoder, KL estimated by a
                  discriminator :math:`T(x, z)` (:cite:`mescheder2017avb`;
                  Prop. V3)
``gan``           generator and data-space logistic critic, non-saturating or
                  minimax generator loss (:cite:`goodfellow2014gan`)
``fgan``          generator and critic on the variational :math:`D_f` bound,
                  :math:`f` in KL, reverse KL, JS, Pearson/Neyman
                  :math:`\chi^2`, squared Hellinger (:cite:`nowozin2016fgan`)
================  ============================================================

Each preset's options are the fields of its frozen config dataclass
(:mod:`otgen.models.configs`): ``build(WAEMMDConfig(2, lam=5.0))``, or
``build("wae-mmd", 2, lam=5.0)``, or ``wae_mmd(2, lam=5.0)``, which build the
same model. The model keeps ``config.to_dict()`` in ``model.config`` so that
:func:`build` rebuilds it (checkpoints store that config, never pickled
objects). Weights are initialised from ``seed`` without touching torch's
global generator.

A builder below reads the pieces' options from the config's fields of the
same name (``encoder``, ``prior``, ``cost``, ``recon_scale``, ...), so that
each preset only names what it fixes or renames (the VAE's ``beta`` is the
model's ``lam``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from otgen.models import configs
from otgen.models.autoencoder import PenalisedAutoEncoder
from otgen.models.avb import AVB, AVBPenalty, InputKeepingEncoder
from otgen.models.base import GenerativeModel
from otgen.models.configs import PresetConfig, config_class
from otgen.models.convnets import decoder_net, encoder_net
from otgen.models.gan import FGAN
from otgen.models.nets import (
    BernoulliDecoder,
    DeterministicDecoder,
    DeterministicEncoder,
    GaussianDecoder,
    GaussianEncoder,
    ImplicitEncoder,
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

# The auto-encoder pieces' options, for presets whose config has no field of
# that name (an AAE's cost is always squared; lam is a field, or given).
_PIECES = {
    "lam": None,
    "encoder": "deterministic",
    "decoder": "deterministic",
    "prior": "gaussian",
    "cost": "squared",
    "recon_scale": 1.0,
    "encoder_noise": 0.0,
    "noise_dim": 2,
    "decoder_sigma": 1.0,
    "learn_sigma": False,
}


def _seeded(seed: int, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with torch's CPU generator seeded, restoring it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn()


def _shape(d_x: int | tuple[int, ...]) -> tuple[int, ...]:
    return (d_x,) if isinstance(d_x, int) else d_x


def _autoencoder(
    c: PresetConfig, penalty: Callable[[int], LatentPenalty], **fixed: Any
) -> PenalisedAutoEncoder:
    """The auto-encoder of ``c``: pieces from its fields, else ``fixed``, else _PIECES.

    ``penalty(d_z)`` is built after the networks, from the same seeded stream.
    """
    o = {k: getattr(c, k, v) for k, v in _PIECES.items()} | fixed
    opts = {"std": c.prior_std} if o["prior"] == "gaussian" else {}
    prior = make_prior(o["prior"], d_z=c.d_z, **opts)
    shape = _shape(c.d_x)
    body = {"nets": c.nets, "hidden": c.hidden, "width": c.conv_width}

    def make() -> PenalisedAutoEncoder:
        if o["encoder"] == "deterministic":
            net = encoder_net(shape, c.d_z, **body)
            enc = DeterministicEncoder(net, input_noise=o["encoder_noise"])
        elif o["encoder"] == "gaussian":
            enc = GaussianEncoder(encoder_net(shape, 2 * c.d_z, **body))
        else:
            net = encoder_net(shape, c.d_z, extra=o["noise_dim"], **body)
            enc = ImplicitEncoder(net, noise_dim=o["noise_dim"])
        net = decoder_net(c.d_z, shape, **body)
        if o["decoder"] == "deterministic":
            dec = DeterministicDecoder(net)
        elif o["decoder"] == "gaussian":
            dec = GaussianDecoder(
                net, sigma=o["decoder_sigma"], learn_sigma=o["learn_sigma"]
            )
        else:
            dec = BernoulliDecoder(net)
        return PenalisedAutoEncoder(
            enc,
            dec,
            prior,
            penalty(c.d_z),
            cost=o["cost"],
            lam=o["lam"],
            recon_scale=o["recon_scale"],
            lr=c.lr,
            betas=c.betas,
        )

    return _seeded(c.seed, make)


def _generator_critic(c: PresetConfig, cls: type, **options: Any) -> GenerativeModel:
    """A generator and a data-space critic (WGAN-GP, GAN, f-GAN) of ``c``."""
    prior = make_prior("gaussian", d_z=c.d_z, std=c.prior_std)

    def make() -> GenerativeModel:
        shape = _shape(c.d_x)
        return cls(
            decoder_net(c.d_z, shape, nets=c.nets, hidden=c.hidden, width=c.conv_width),
            encoder_net(
                shape,
                1,
                nets=c.nets,
                hidden=c.critic_hidden,
                width=c.conv_width,
                leaky=True,
            ),
            prior,
            n_critic=c.n_critic,
            lr=c.lr,
            betas=c.betas,
            **options,
        )

    return _seeded(c.seed, make)


def _avb(c: configs.AVBConfig) -> AVB:
    prior = make_prior("gaussian", d_z=c.d_z, std=c.prior_std)

    def make() -> AVB:
        shape = _shape(c.d_x)
        body = {"nets": c.nets, "hidden": c.hidden, "width": c.conv_width}
        enc = ImplicitEncoder(
            encoder_net(shape, c.d_z, extra=c.noise_dim, **body),
            noise_dim=c.noise_dim,
        )
        dec = GaussianDecoder(
            decoder_net(c.d_z, shape, **body),
            sigma=c.decoder_sigma,
            learn_sigma=c.learn_sigma,
        )
        critic = encoder_net(
            shape,
            1,
            nets=c.nets,
            hidden=c.critic_hidden,
            width=c.conv_width,
            extra=c.d_z,
        )
        pen = AVBPenalty(
            math.prod(shape),
            c.d_z,
            hidden=c.critic_hidden,
            lr=c.critic_lr,
            betas=c.betas,
            critic=critic,
        )
        return AVB(
            InputKeepingEncoder(enc),
            dec,
            prior,
            pen,
            cost="gaussian",
            lam=c.beta,
            lr=c.lr,
            betas=c.betas,
        )

    return _seeded(c.seed, make)


def _latent_critic(
    c: configs.WAEGANConfig | configs.AAEConfig, scale: str
) -> Callable[[int], Any]:
    """The latent critic of WAE-GAN (``scale="lambda"``) or of an AAE (``"one"``)."""
    extra = {}
    if scale == "lambda":  # WAE-GAN's own critic options
        keys = ("generator_loss", "prior_trick", "gradient_penalty")
        extra = {k: getattr(c, k) for k in keys}
    return lambda d_z: AdversarialPenalty(
        d_z,
        hidden=c.critic_hidden,
        critic_scale=scale,
        lr=c.critic_lr,
        betas=c.betas,
        **extra,
    )


# The builder of each config class; a subclass (BetaVAEConfig) takes its base's.
_BUILDERS: dict[type, Callable[[Any], GenerativeModel]] = {
    configs.WAEMMDConfig: lambda c: _autoencoder(
        c,
        lambda d_z: MMDPenalty(
            kernel=c.kernel, scales=c.scales, estimator=c.estimator, penalty=c.penalty
        ),
    ),
    configs.WAEGANConfig: lambda c: _autoencoder(c, _latent_critic(c, "lambda")),
    configs.AAEConfig: lambda c: _autoencoder(c, _latent_critic(c, "one")),
    configs.VAEConfig: lambda c: _autoencoder(
        c,
        lambda d_z: KLPenalty(),
        encoder="gaussian",
        decoder=c.likelihood,
        cost=c.likelihood,
        lam=c.beta,
    ),
    configs.WGANGPConfig: lambda c: _generator_critic(c, WGANGP, gp_weight=c.gp_weight),
    configs.WAESinkhornConfig: lambda c: _autoencoder(
        c, lambda d_z: SinkhornPenalty(eps=c.eps, rel_eps=c.rel_eps, p=c.p)
    ),
    configs.WAEExactConfig: lambda c: _autoencoder(
        c, lambda d_z: ExactOTPenalty(p=c.p)
    ),
    configs.AVBConfig: _avb,
    configs.FGANConfig: lambda c: _generator_critic(
        c, FGAN, f=c.f, generator_loss=c.generator_loss
    ),
    configs.GANConfig: lambda c: _generator_critic(
        c, FGAN, f="gan", generator_loss=c.generator_loss
    ),
}


def build(
    config: PresetConfig | Mapping[str, Any] | str,
    d_x: int | Sequence[int] | None = None,
    **options: Any,
) -> GenerativeModel:
    """The model of a preset config (pythae's ``build(config)``).

    Parameters
    ----------
    config : PresetConfig, dict or str
        A config of :mod:`otgen.models.configs`; or its :meth:`to_dict
        <otgen.models.configs.PresetConfig.to_dict>` form (a ``model.config``);
        or a preset's name (``-`` and ``_`` are interchangeable), with ``d_x``
        and ``options`` the config's fields:
        ``build("wae-mmd", 2, lam=5.0)`` is ``build(WAEMMDConfig(2, lam=5.0))``.
    d_x : int or tuple of int, optional
        With a name only: the data dimension or point shape.
    **options
        With a name only: the preset's options; an unknown one raises a
        ValueError naming those the preset accepts.

    Returns
    -------
    GenerativeModel
        With ``model.config = config.to_dict()``.

    Examples
    --------
    >>> from otgen.models.configs import WAEMMDConfig
    >>> build(WAEMMDConfig(2, lam=5.0)).lam
    5.0
    >>> build("wae-mmd", (8, 8), d_z=8).x_shape  # conv nets for 8 x 8 images
    (1, 8, 8)
    """
    if isinstance(config, (PresetConfig, Mapping)):
        if d_x is not None or options:
            given = ["d_x"] * (d_x is not None) + sorted(options)
            raise ValueError(
                f"build(config) takes no other arguments (got {', '.join(given)}); "
                "change a config with dataclasses.replace(config, lam=1.0), or "
                "pass a preset name: build('wae-mmd', 2, lam=1.0)."
            )
        if isinstance(config, Mapping):
            config = PresetConfig.from_dict(config)
    elif d_x is None:
        raise ValueError(
            f"build({config!r}) needs d_x, the data dimension or point shape; pass "
            f"e.g. build({config!r}, 2)."
        )
    else:
        config = config_class(config).from_options(d_x, options)
    builder = next(_BUILDERS[k] for k in type(config).__mro__ if k in _BUILDERS)
    model = builder(config)
    model.config = config.to_dict()
    return model


def wae_mmd(d_x: int | Sequence[int], **options: Any) -> PenalisedAutoEncoder:
    r"""WAE-MMD: ``build(WAEMMDConfig(d_x, **options))`` (:class:`WAEMMDConfig`).

    Examples
    --------
    >>> m = wae_mmd(2, d_z=2, seed=0)
    >>> m.config["preset"], m.lam, m.recon_scale
    ('wae_mmd', 10.0, 1.0)
    """
    return build("wae_mmd", d_x, **options)


def wae_gan(d_x: int | Sequence[int], **options: Any) -> PenalisedAutoEncoder:
    r"""WAE-GAN: ``build(WAEGANConfig(d_x, **options))`` (:class:`WAEGANConfig`).

    Examples
    --------
    >>> wae_gan(2, seed=0).update_groups()[0].name
    'critic'
    """
    return build("wae_gan", d_x, **options)


def aae(d_x: int | Sequence[int], **options: Any) -> PenalisedAutoEncoder:
    r"""Adversarial auto-encoder: ``build(AAEConfig(d_x, **options))``.

    Examples
    --------
    >>> aae(2).penalty.critic_scale
    'one'
    """
    return build("aae", d_x, **options)


def vae(d_x: int | Sequence[int], **options: Any) -> PenalisedAutoEncoder:
    r"""VAE: ``build(VAEConfig(d_x, **options))`` (:class:`VAEConfig`).

    Examples
    --------
    >>> vae(2).penalty.is_divergence
    False
    """
    return build("vae", d_x, **options)


def beta_vae(d_x: int | Sequence[int], **options: Any) -> PenalisedAutoEncoder:
    r""":math:`\beta`-VAE: ``build(BetaVAEConfig(d_x, **options))``, :math:`\beta = 4`.

    Examples
    --------
    >>> beta_vae(2).lam
    4.0
    """
    return build("beta_vae", d_x, **options)


def wgan_gp(d_x: int | Sequence[int], **options: Any) -> WGANGP:
    r"""WGAN-GP: ``build(WGANGPConfig(d_x, **options))`` (:class:`WGANGPConfig`).

    Examples
    --------
    >>> [g.n_updates for g in wgan_gp(2).update_groups()]
    [5, 1]
    """
    return build("wgan_gp", d_x, **options)


def wae_sinkhorn(d_x: int | Sequence[int], **options: Any) -> PenalisedAutoEncoder:
    r"""WAE-Sinkhorn: ``build(WAESinkhornConfig(d_x, **options))``.

    Examples
    --------
    >>> wae_sinkhorn(2).penalty.name
    'sinkhorn'
    """
    return build("wae_sinkhorn", d_x, **options)


def wae_exact(d_x: int | Sequence[int], **options: Any) -> PenalisedAutoEncoder:
    r"""WAE with the exact :math:`W_p`: ``build(WAEExactConfig(d_x, **options))``.

    Examples
    --------
    >>> wae_exact(2).penalty.p
    1.0
    """
    return build("wae_exact", d_x, **options)


def avb(d_x: int | Sequence[int], **options: Any) -> AVB:
    r"""Adversarial variational Bayes: ``build(AVBConfig(d_x, **options))``.

    Examples
    --------
    >>> m = avb(2, seed=0)
    >>> [g.name for g in m.update_groups()], m.penalty.is_divergence
    (['critic', 'model'], False)
    """
    return build("avb", d_x, **options)


def gan(d_x: int | Sequence[int], **options: Any) -> FGAN:
    r"""GAN: ``build(GANConfig(d_x, **options))`` (:class:`GANConfig`).

    Examples
    --------
    >>> m = gan(2, generator_loss="minimax")
    >>> m.f, m.generator_loss
    ('gan', 'minimax')
    """
    return build("gan", d_x, **options)


def fgan(d_x: int | Sequence[int], **options: Any) -> FGAN:
    r"""f-GAN: ``build(FGANConfig(d_x, **options))`` (:class:`FGANConfig`).

    Examples
    --------
    >>> fgan(2, f="pearson").f
    'pearson'
    """
    return build("fgan", d_x, **options)


#: Each preset's builder function, by name (the config classes:
#: :data:`otgen.models.configs.CONFIGS`).
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
