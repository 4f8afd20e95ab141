r"""The presets' configurations: one frozen dataclass per preset.

A config holds every option of a preset and nothing else; :func:`build
<otgen.models.presets.build>` turns it into a model:

>>> from otgen.models import WAEMMDConfig, build
>>> config = WAEMMDConfig(2, lam=5.0)
>>> build(config).lam
5.0

Each option is declared once: the fields shared by every preset in
:class:`PresetConfig`, those of a family (WAE weights, critics, likelihoods)
in a mixin, and a preset's other default by redeclaring the field (WAE-GAN's
``lam = 1``). Each field is checked in ``__post_init__`` by the rule of its
name (:data:`RULES`, built from the helpers of :mod:`otgen.models.validate`):
a bad value raises a ValueError naming the option, the constraint, the value
and a fix. Values are stored as plain Python (NumPy scalars accepted, lists
stored as tuples), so equal options give equal, hashable configs.

``to_dict()`` gives the JSON form that a model keeps in ``model.config`` and a
checkpoint in ``config.json`` (``{"preset", "d_x", "options"}``, unchanged
since the first checkpoints); :meth:`PresetConfig.from_dict` reads it back,
a missing option taking its default. Change an option with
:func:`dataclasses.replace`, which checks the new value.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import numpy as np

from otgen.models.convnets import NETS
from otgen.models.datasets import point_shape
from otgen.models.gan import FDIVERGENCES
from otgen.models.validate import (
    check_bool,
    check_choice,
    check_float,
    check_floats,
    check_int,
    check_optional,
    check_widths,
)
from otgen.ot.kernels import KERNELS
from otgen.ot.mmd import ESTIMATORS

__all__ = [
    "AAEConfig",
    "AVBConfig",
    "BetaVAEConfig",
    "CONFIGS",
    "FGANConfig",
    "GANConfig",
    "PresetConfig",
    "RULES",
    "VAEConfig",
    "WAEExactConfig",
    "WAEGANConfig",
    "WAEMMDConfig",
    "WAESinkhornConfig",
    "WGANGPConfig",
    "config_class",
]

HIDDEN = (128, 128, 128)


def _d_x(value: Any, *, name: str) -> int | tuple[int, ...]:
    """A point dimension as an int, a point shape as (C, H, W)."""
    shape = point_shape(value, name=name)
    return shape[0] if len(shape) == 1 else shape


def _choice(*choices: str) -> Callable[..., str]:
    return partial(check_choice, choices=choices)


_count = partial(check_int, minimum=1)
_positive = partial(check_float, above=0)
_non_negative = partial(check_float, minimum=0)

#: The check of each option, by name: ``RULES[name](value, name=name)``
#: returns the stored value or raises a ValueError.
RULES: dict[str, Callable[..., Any]] = {
    "d_x": _d_x,
    "d_z": _count,
    "hidden": check_widths,
    "nets": _choice(*NETS),
    "conv_width": _count,
    "prior_std": _positive,
    "lr": _positive,
    "betas": partial(check_floats, length=2, minimum=0, below=1, example=(0.5, 0.999)),
    "seed": partial(check_int, minimum=0),
    "lam": _non_negative,
    "recon_scale": _positive,
    "cost": _choice("squared", "euclidean", "l1"),
    "encoder": _choice("deterministic", "gaussian", "implicit"),
    "prior": _choice("gaussian", "uniform", "sphere"),
    "encoder_noise": _non_negative,
    "kernel": _choice(*KERNELS),
    "scales": partial(check_floats, above=0),
    "estimator": _choice(*ESTIMATORS),
    "penalty": _choice("mmd2", "mmd"),
    "critic_hidden": check_widths,
    "critic_lr": _positive,
    "generator_loss": _choice("non_saturating", "minimax"),
    "prior_trick": check_bool,
    "gradient_penalty": _non_negative,
    "beta": _non_negative,
    "likelihood": _choice("gaussian", "bernoulli"),
    "decoder_sigma": _positive,
    "learn_sigma": check_bool,
    "gp_weight": _non_negative,
    "n_critic": _count,
    "eps": check_optional(_positive),
    "rel_eps": _positive,
    "p": partial(check_float, minimum=1),
    "noise_dim": _count,
    "f": _choice(*FDIVERGENCES),
}


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as Python numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return value


def _json(value: Any) -> Any:
    """Tuples as lists, recursively (the JSON form of an option)."""
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    return value


@dataclass(frozen=True, kw_only=True)
class PresetConfig:
    r"""Options of every preset; the base of the preset configs.

    Parameters
    ----------
    d_x : int or tuple of int
        Data dimension, or the shape of one point: (d,), (H, W) or (C, H, W);
        stored as an int or as (C, H, W). The only positional field.
    d_z : int, default=2
        Latent dimension.
    hidden : sequence of int, default=(128, 128, 128)
        Hidden widths of the encoder and decoder (or generator) MLPs.
    nets : {"auto", "mlp", "conv"}, default="auto"
        Network family: ``"auto"`` takes the convolutional nets of
        :mod:`otgen.models.convnets` for images (``d_x`` a shape (C, H, W) or
        (H, W) with sides >= 8) and MLPs otherwise.
    conv_width : int, default=32
        Channels of the first convolutional level (doubling at each level).
    prior_std : float, default=1
        :math:`\sigma_z` of the Gaussian prior :math:`P_Z = N(0, \sigma_z^2 I)`.
    lr, betas : float, (float, float), default=1e-3, (0.5, 0.999)
        Adam settings of the model (encoder/decoder or generator).
    seed : int, default=0
        Seed of the weight initialisation (torch's global generator is left
        alone).
    """

    #: The preset's name, given as ``class C(PresetConfig, preset="name")``.
    preset: ClassVar[str] = ""

    d_x: int | tuple[int, ...] = field(kw_only=False)
    d_z: int = 2
    hidden: tuple[int, ...] = HIDDEN
    nets: str = "auto"
    conv_width: int = 32
    prior_std: float = 1.0
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    seed: int = 0

    def __init_subclass__(cls, *, preset: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if preset:
            cls.preset = preset

    def __post_init__(self) -> None:
        if not self.preset:
            raise TypeError(
                "PresetConfig is the base of the preset configs; build one of "
                f"{', '.join(c.__name__ for c in CONFIGS.values())}, e.g. "
                "WAEMMDConfig(2)."
            )
        for f in dataclasses.fields(self):
            if f.name not in RULES:
                raise TypeError(
                    f"{type(self).__name__}.{f.name} has no check: add "
                    f"RULES[{f.name!r}] in otgen.models.configs (a helper of "
                    "otgen.models.validate)."
                )
            value = RULES[f.name](_plain(getattr(self, f.name)), name=f.name)
            object.__setattr__(self, f.name, value)

    @classmethod
    def options(cls) -> tuple[str, ...]:
        """The names of the options (every field but ``d_x``), in order.

        Examples
        --------
        >>> WGANGPConfig.options()[-2:]
        ('gp_weight', 'n_critic')
        """
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "d_x")

    @classmethod
    def from_options(cls, d_x: Any, options: Mapping[str, Any]) -> PresetConfig:
        """The config of ``d_x`` and ``options``, naming any unknown option.

        Examples
        --------
        >>> WAEMMDConfig.from_options(2, {"lamda": 1.0})
        Traceback (most recent call last):
        ...
        ValueError: unknown option(s) lamda for model 'wae_mmd'; it accepts ...
        """
        unknown = sorted(set(options) - set(cls.options()))
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(unknown)} for model {cls.preset!r}; "
                f"it accepts {', '.join(sorted(cls.options()))}."
            )
        return cls(d_x, **options)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"preset": ..., "d_x": ..., "options": {...}}``.

        Examples
        --------
        >>> VAEConfig((8, 8), d_z=4).to_dict()["d_x"]
        [1, 8, 8]
        """
        return {
            "preset": self.preset,
            "d_x": _json(self.d_x),
            "options": {k: _json(getattr(self, k)) for k in self.options()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PresetConfig:
        """The config of a :meth:`to_dict` form (``model.config``, a checkpoint's).

        Called on :class:`PresetConfig`, the class is that of ``data["preset"]``;
        on a preset's class, ``data`` must be of that preset. Options missing
        from ``data`` (a checkpoint older than the option) take their
        defaults.

        Examples
        --------
        >>> PresetConfig.from_dict({"preset": "gan", "d_x": 2, "options": {}})
        GANConfig(d_x=2, d_z=2, ...)
        """
        if not isinstance(data, Mapping) or not {"preset", "d_x"} <= set(data):
            raise ValueError(
                "a preset config must be a mapping with keys 'preset', 'd_x' and "
                f"'options' (got {data!r}); pass config.to_dict() or a model.config."
            )
        target = config_class(data["preset"])
        if not issubclass(target, cls):
            raise ValueError(
                f"{cls.__name__}.from_dict got a {data['preset']!r} config; call "
                "PresetConfig.from_dict to read any preset."
            )
        options = data.get("options") or {}
        if not isinstance(options, Mapping):
            raise ValueError(
                f"the options of a preset config must be a mapping (got "
                f"{options!r}); pass e.g. {{'lam': 1.0}}."
            )
        return target.from_options(data["d_x"], options)

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string (:meth:`from_json` reads it)."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> PresetConfig:
        """The config of a :meth:`to_json` string.

        Examples
        --------
        >>> c = WAEGANConfig(2, critic_hidden=[64, 64])
        >>> PresetConfig.from_json(c.to_json()) == c
        True
        """
        return cls.from_dict(json.loads(text))


# -- options of a family of presets ------------------------------------------
@dataclass(frozen=True, kw_only=True)
class _Weighted:
    lam: float = 10.0
    recon_scale: float = 1.0
    cost: str = "squared"


@dataclass(frozen=True, kw_only=True)
class _Latent:
    encoder: str = "deterministic"
    prior: str = "gaussian"


@dataclass(frozen=True, kw_only=True)
class _Critic:
    critic_hidden: tuple[int, ...] = HIDDEN


@dataclass(frozen=True, kw_only=True)
class _LatentCritic(_Critic):
    critic_lr: float = 5e-4


@dataclass(frozen=True, kw_only=True)
class _GeneratorLoss:
    generator_loss: str = "non_saturating"


@dataclass(frozen=True, kw_only=True)
class _Likelihood:
    beta: float = 1.0
    decoder_sigma: float = 0.1
    learn_sigma: bool = False


# -- the presets ---------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class WAEMMDConfig(_Latent, _Weighted, PresetConfig, preset="wae_mmd"):
    r"""WAE-MMD (docs/paper.md Algorithm 2; :cite:`tolstikhin2018wae`).

    Squared cost plus :math:`\lambda` MMD² with the IMQ kernel,
    :math:`C = 2 d_z \sigma_z^2`: on a batch :math:`x` of shape (n, d_x), codes
    :math:`\tilde z_i \sim Q(Z|x_i)` and prior samples :math:`z_j \sim P_Z`
    of shape (n, d_z), the loss is

    .. math::
        \frac{s}{n} \sum_i c(x_i, G(\tilde z_i))
        + \lambda\, \widehat{\mathrm{MMD}}{}^2_k(\tilde z, z).

    Parameters
    ----------
    d_x, d_z, hidden, nets, conv_width, prior_std, seed
        As in :class:`PresetConfig`.
    lam : float, default=10
        Penalty weight :math:`\lambda`; meaningful only with ``recon_scale``
        (docs/paper.md 6.3).
    recon_scale : float, default=1
        Scale :math:`s` of the reconstruction cost (0.05 in the WAE code).
    cost : {"squared", "euclidean", "l1"}, default="squared"
        Reconstruction cost :math:`c`, summed over coordinates.
    encoder : {"deterministic", "gaussian", "implicit"}, default="deterministic"
        Encoder :math:`Q(Z|x)`; ``"implicit"`` feeds noise to the network (a
        random encoder, needed for near-atomic data, Prop. A1).
    prior : {"gaussian", "uniform", "sphere"}, default="gaussian"
        Prior :math:`P_Z`; ``prior_std`` is :math:`\sigma_z` of the Gaussian.
    kernel, scales, estimator, penalty
        As :class:`~otgen.models.penalties.MMDPenalty`: ``scales`` are
        multiples of :math:`C`; ``estimator`` ``"all_pairs"`` (default) or
        ``"off_diagonal"``; ``penalty`` ``"mmd2"`` (default) or ``"mmd"``.
    encoder_noise : float, default=0
        Std of Gaussian noise added to the encoder input (WAE heuristic).
    lr, betas : float, (float, float), default=1e-3, (0.5, 0.999)
        Adam settings; with :math:`\lambda = 10` the WAE paper's MNIST
        settings.

    Examples
    --------
    >>> WAEMMDConfig(2, scales=[0.2, 1]).scales
    (0.2, 1.0)
    """

    kernel: str = "imq"
    scales: tuple[float, ...] = (1.0,)
    estimator: str = "all_pairs"
    penalty: str = "mmd2"
    encoder_noise: float = 0.0


@dataclass(frozen=True, kw_only=True)
class WAEGANConfig(
    _GeneratorLoss, _LatentCritic, _Latent, _Weighted, PresetConfig, preset="wae_gan"
):
    r"""WAE-GAN (docs/paper.md Algorithm 1; :cite:`tolstikhin2018wae`).

    Latent critic trained on :math:`\lambda \cdot` the GAN objective;
    non-saturating encoder loss.

    Parameters
    ----------
    d_x, d_z, hidden, nets, conv_width, prior_std, seed, lr, betas
        As in :class:`PresetConfig`.
    lam, recon_scale, cost, encoder, prior
        As in :class:`WAEMMDConfig` (default :math:`\lambda = 1`, the paper's
        CelebA WAE-GAN value).
    critic_hidden : sequence of int, default=(128, 128, 128)
        Hidden widths of the latent critic (the paper's is 4 x 512).
    critic_lr : float, default=5e-4
        Adam learning rate of the critic (the WAE paper's adversary: 5e-4,
        :math:`\beta_1 = 0.5`; the encoder/decoder 1e-3).
    generator_loss : {"non_saturating", "minimax"}, default="non_saturating"
        Encoder loss of Algorithm 1 (docs/paper.md 6.6).
    prior_trick : bool, default=False
        Add :math:`\log p_Z(z)` to the critic logit (docs/paper.md 6.10).
    gradient_penalty : float, default=0
        Weight of a gradient penalty on the critic logit.

    Examples
    --------
    >>> WAEGANConfig(2).lam
    1.0
    """

    lam: float = 1.0
    prior_trick: bool = False
    gradient_penalty: float = 0.0


@dataclass(frozen=True, kw_only=True)
class AAEConfig(_LatentCritic, PresetConfig, preset="aae"):
    r"""Adversarial auto-encoder (:cite:`makhzani2016aae`).

    :math:`\|x - G(E(x))\|^2` plus :math:`\lambda` times a non-saturating
    latent GAN whose critic loss is not scaled. Its encoder/decoder loss
    equals WAE-GAN's with squared cost and the same :math:`\lambda`
    (docs/paper.md Prop. AAE).

    Parameters
    ----------
    d_x, d_z, hidden, nets, conv_width, prior_std, seed, lr, betas
        As in :class:`PresetConfig`.
    lam : float, default=1
        Weight :math:`\lambda` of the latent GAN.
    critic_hidden, critic_lr
        As in :class:`WAEGANConfig`.

    Examples
    --------
    >>> AAEConfig(2, lam=2).lam
    2.0
    """

    lam: float = 1.0


@dataclass(frozen=True, kw_only=True)
class VAEConfig(_Likelihood, PresetConfig, preset="vae"):
    r"""VAE (:cite:`kingma2014vae`).

    Negative ELBO :math:`\mathbb{E}[-\log p_G(x|z)] + \beta\,
    \mathrm{KL}(Q(Z|x)\|P_Z)` (:math:`\beta = 1`; docs/paper.md Prop. V).
    ``likelihood="gaussian"`` (:math:`\sigma` fixed at ``decoder_sigma`` or
    learned) or ``"bernoulli"`` (data in [0, 1]). By Prop. V1, with a fixed
    :math:`\sigma` it is POT-like with squared cost and :math:`\lambda =
    2\sigma^2`.

    Parameters
    ----------
    d_x, d_z, hidden, nets, conv_width, prior_std, seed
        As in :class:`PresetConfig`.
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

    Examples
    --------
    >>> VAEConfig(2, likelihood="poisson")
    Traceback (most recent call last):
    ...
    ValueError: likelihood must be one of 'gaussian', 'bernoulli' (got 'poisson'); ...
    """

    likelihood: str = "gaussian"
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True, kw_only=True)
class BetaVAEConfig(VAEConfig, preset="beta_vae"):
    r""":math:`\beta`-VAE (:cite:`higgins2017betavae`): :math:`\beta = 4`.

    As :class:`VAEConfig`, with the KL weight :math:`\beta` raised to 4.

    Examples
    --------
    >>> BetaVAEConfig(2).beta
    4.0
    """

    beta: float = 4.0


@dataclass(frozen=True, kw_only=True)
class WGANGPConfig(_Critic, PresetConfig, preset="wgan_gp"):
    r"""WGAN-GP (:cite:`gulrajani2017wgangp`).

    Generator :math:`G` and data-space critic, :math:`\lambda_{GP} = 10`, 5
    critic updates per step, Adam(1e-4, (0, 0.9)): Algorithm 1 of the paper.
    Its toy experiments train 100000 generator steps with 512-wide layers; the
    default ``otgen train`` budget is 2000, at which it fails the model check
    on ring8 (the report says so).

    Parameters
    ----------
    d_x, d_z, hidden, nets, conv_width, prior_std, seed
        As in :class:`PresetConfig`.
    critic_hidden : sequence of int, default=(128, 128, 128)
        Hidden widths of the critic.
    gp_weight : float, default=10
        Weight :math:`\lambda_{GP}` of the gradient penalty.
    n_critic : int, default=5
        Critic updates per generator update.
    lr, betas : float, (float, float), default=1e-4, (0, 0.9)
        Adam settings of both networks.

    Examples
    --------
    >>> WGANGPConfig(2, n_critic=0)
    Traceback (most recent call last):
    ...
    ValueError: n_critic must be an integer >= 1 (got 0); pass e.g. n_critic=1.
    """

    lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.9)
    gp_weight: float = 10.0
    n_critic: int = 5


@dataclass(frozen=True, kw_only=True)
class WAESinkhornConfig(_Weighted, PresetConfig, preset="wae_sinkhorn"):
    r"""WAE with the debiased Sinkhorn divergence :math:`S_\varepsilon(Q_Z, P_Z)`.

    :cite:`tolstikhin2018wae`, :cite:`feydy2019interpolating`.

    Parameters
    ----------
    d_x, d_z, hidden, nets, conv_width, prior_std, seed, lr, betas
        As in :class:`PresetConfig`.
    lam, recon_scale, cost
        As in :class:`WAEMMDConfig`.
    eps : float, optional
        :math:`\varepsilon` of the divergence; None takes ``rel_eps`` times
        the prior's scale to the power :math:`p/2`.
    rel_eps : float, default=0.05
        :math:`\varepsilon` relative to the prior's scale (when ``eps`` is None).
    p : float, default=2
        Exponent of the ground cost :math:`\|z - z'\|^p`.

    Examples
    --------
    >>> WAESinkhornConfig(2, eps=0.1).eps
    0.1
    """

    eps: float | None = None
    rel_eps: float = 0.05
    p: float = 2.0


@dataclass(frozen=True, kw_only=True)
class WAEExactConfig(_Weighted, PresetConfig, preset="wae_exact"):
    r"""WAE with the exact minibatch :math:`W_p` penalty.

    Default :math:`p = 1` with Euclidean cost: the exact penalty of
    docs/paper.md Prop. P6 once :math:`\lambda` exceeds the decoder's
    Lipschitz constant (:cite:`bousquet2017vegan`, :cite:`tolstikhin2018wae`).

    Parameters
    ----------
    d_x, d_z, hidden, nets, conv_width, prior_std, seed, lr, betas
        As in :class:`PresetConfig`.
    lam, recon_scale
        As in :class:`WAEMMDConfig`.
    cost : {"squared", "euclidean", "l1"}, default="euclidean"
        Reconstruction cost :math:`c`.
    p : float, default=1
        Exponent of the latent :math:`W_p` (>= 1).

    Examples
    --------
    >>> WAEExactConfig(2).cost
    'euclidean'
    """

    cost: str = "euclidean"
    p: float = 1.0


@dataclass(frozen=True, kw_only=True)
class AVBConfig(_Likelihood, _Critic, PresetConfig, preset="avb"):
    r"""Adversarial variational Bayes (:cite:`mescheder2017avb`; Prop. V3).

    Implicit encoder :math:`\tilde z = E(x, \varepsilon)`, Gaussian decoder
    :math:`N(G(z), \sigma^2 I)` (``decoder_sigma`` as in :class:`VAEConfig`),
    loss :math:`\mathbb{E}[-\log p_G(x|\tilde z)] + \beta\,\mathbb{E}\,T(x,
    \tilde z)` with the discriminator :math:`T` trained by the logistic loss,
    :math:`T^* = \log q(z|x) - \log p_Z(z)`.

    Parameters
    ----------
    d_x, d_z, hidden, nets, conv_width, prior_std, seed, lr, betas
        As in :class:`PresetConfig` (``betas`` also for the discriminator).
    beta, decoder_sigma, learn_sigma
        As in :class:`VAEConfig`.
    noise_dim : int, default=2
        Dimension of the encoder's input noise :math:`\varepsilon`.
    critic_hidden : sequence of int, default=(128, 128, 128)
        Hidden widths of the discriminator :math:`T(x, z)`.
    critic_lr : float, default=1e-3
        Adam learning rate of the discriminator.

    Examples
    --------
    >>> AVBConfig(2).critic_lr
    0.001
    """

    noise_dim: int = 2
    critic_lr: float = 1e-3


@dataclass(frozen=True, kw_only=True)
class GANConfig(_GeneratorLoss, _Critic, PresetConfig, preset="gan"):
    r"""GAN (:cite:`goodfellow2014gan`): the f-GAN of :math:`2\,\mathrm{JS} - \log 4`.

    Critic :math:`D = \sigma(V)` ascends :math:`\mathbb{E}\log D(X) +
    \mathbb{E}\log(1 - D(G(Z)))`; the generator descends
    :math:`-\mathbb{E}\log D(G(Z))` (``"non_saturating"``) or
    :math:`\mathbb{E}\log(1 - D(G(Z)))` (``"minimax"``). Adam(2e-4, (0.5,
    0.999)) is the DCGAN setting (:cite:`radford2016dcgan`). On the ring of
    eight Gaussians a GAN is known to collapse onto few modes
    (:cite:`metz2017unrolled`); the report's model check says so.

    Parameters
    ----------
    d_x, d_z, hidden, nets, conv_width, prior_std, seed
        As in :class:`PresetConfig`.
    generator_loss : {"non_saturating", "minimax"}, default="non_saturating"
        Generator loss.
    critic_hidden, n_critic, lr, betas
        As in :class:`WGANGPConfig`, but ``n_critic = 1`` and Adam(2e-4,
        (0.5, 0.999)).

    Examples
    --------
    >>> GANConfig(2, generator_loss="minimax").generator_loss
    'minimax'
    """

    n_critic: int = 1
    lr: float = 2e-4


@dataclass(frozen=True, kw_only=True)
class FGANConfig(GANConfig, preset="fgan"):
    r"""f-GAN (:cite:`nowozin2016fgan`): the variational bound on :math:`D_f`.

    The critic ascends :math:`\mathbb{E}\, g_f(V(X)) - \mathbb{E}\,
    f^*(g_f(V(G(Z))))`, with ``f`` one of
    :data:`otgen.models.gan.FDIVERGENCES` (``"kl"``, ``"reverse_kl"``,
    ``"js"``, ``"pearson"``, ``"neyman"``, ``"hellinger"``, ``"gan"``) and its
    output activation :math:`g_f`; the other options as in :class:`GANConfig`.

    Examples
    --------
    >>> FGANConfig(2, f="pearson").f
    'pearson'
    """

    f: str = "js"


#: Each preset's config class, by preset name.
CONFIGS: dict[str, type[PresetConfig]] = {
    c.preset: c
    for c in (
        WAEMMDConfig,
        WAEGANConfig,
        AAEConfig,
        VAEConfig,
        BetaVAEConfig,
        WGANGPConfig,
        WAESinkhornConfig,
        WAEExactConfig,
        AVBConfig,
        GANConfig,
        FGANConfig,
    )
}


def config_class(preset: str) -> type[PresetConfig]:
    """The config class of a preset name (``-`` and ``_`` are interchangeable).

    Examples
    --------
    >>> config_class("wae-gan").__name__
    'WAEGANConfig'
    """
    key = preset.replace("-", "_") if isinstance(preset, str) else None
    if key not in CONFIGS:
        raise ValueError(
            f"model must be one of {', '.join(p.replace('_', '-') for p in CONFIGS)}"
            f" (got {preset!r}); pass e.g. 'wae-mmd'."
        )
    return CONFIGS[key]
