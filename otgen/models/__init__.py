r"""Layer 2 of otgen: penalised-OT generative models (imports otgen.ot only).

The objective :math:`L(Q, G) = s\,\mathbb{E}\,c(X, G(\tilde Z)) + \lambda
D_Z(Q_Z, P_Z)` built from interchangeable pieces (:mod:`~otgen.models.costs`,
:mod:`~otgen.models.nets`, :mod:`~otgen.models.priors`,
:mod:`~otgen.models.penalties`), the presets of docs/paper.md
(:mod:`~otgen.models.presets`, configured by the frozen dataclasses of
:mod:`~otgen.models.configs`), one :class:`~otgen.models.train.Trainer`,
toy data (:mod:`~otgen.models.data`), metrics, plots and the ``otgen train``
command.
"""

from otgen.models.autoencoder import PenalisedAutoEncoder
from otgen.models.avb import AVB, AVBPenalty
from otgen.models.base import GenerativeModel, UpdateGroup
from otgen.models.check import CheckResult, model_check, permutation_check
from otgen.models.configs import (
    AAEConfig,
    AVBConfig,
    BetaVAEConfig,
    FGANConfig,
    GANConfig,
    PresetConfig,
    VAEConfig,
    WAEExactConfig,
    WAEGANConfig,
    WAEMMDConfig,
    WAESinkhornConfig,
    WGANGPConfig,
)
from otgen.models.convnets import ConvDecoder, ConvNet
from otgen.models.data import TOYS, get_toy
from otgen.models.datasets import load_data
from otgen.models.distributed import GlobalBatch
from otgen.models.gan import FDIVERGENCES, FGAN, variational_bound
from otgen.models.image_metrics import (
    frechet_distance,
    image_metrics,
    pca_reconstruction_error,
)
from otgen.models.metrics import evaluate
from otgen.models.nets import (
    BernoulliDecoder,
    DeterministicDecoder,
    DeterministicEncoder,
    GaussianDecoder,
    GaussianEncoder,
    ImplicitEncoder,
    mlp,
)
from otgen.models.penalties import (
    AdversarialPenalty,
    ExactOTPenalty,
    KLPenalty,
    MMDPenalty,
    SinkhornPenalty,
    SlicedPenalty,
)
from otgen.models.presets import (
    PRESETS,
    aae,
    avb,
    beta_vae,
    build,
    fgan,
    gan,
    vae,
    wae_exact,
    wae_gan,
    wae_mmd,
    wae_sinkhorn,
    wgan_gp,
)
from otgen.models.priors import GaussianPrior, SpherePrior, UniformPrior, make_prior
from otgen.models.runs import load, load_config, sample
from otgen.models.train import LambdaSchedule, Trainer, TrainingError, load_model
from otgen.models.wgan import WGANGP

__all__ = [
    "AVB",
    "FDIVERGENCES",
    "FGAN",
    "AVBPenalty",
    "avb",
    "fgan",
    "gan",
    "variational_bound",
    "PRESETS",
    "TOYS",
    "WGANGP",
    "AdversarialPenalty",
    "BernoulliDecoder",
    "CheckResult",
    "DeterministicDecoder",
    "DeterministicEncoder",
    "GaussianDecoder",
    "GaussianEncoder",
    "ImplicitEncoder",
    "ExactOTPenalty",
    "GaussianPrior",
    "GenerativeModel",
    "KLPenalty",
    "LambdaSchedule",
    "MMDPenalty",
    "PenalisedAutoEncoder",
    "SinkhornPenalty",
    "SlicedPenalty",
    "SpherePrior",
    "Trainer",
    "TrainingError",
    "UniformPrior",
    "UpdateGroup",
    "aae",
    "beta_vae",
    "build",
    "evaluate",
    "get_toy",
    "load_model",
    "make_prior",
    "mlp",
    "model_check",
    "permutation_check",
    "vae",
    "wae_exact",
    "wae_gan",
    "wae_mmd",
    "wae_sinkhorn",
    "wgan_gp",
    "ConvDecoder",
    "ConvNet",
    "frechet_distance",
    "image_metrics",
    "load",
    "load_data",
    "pca_reconstruction_error",
    "sample",
    "PresetConfig",
    "WAEMMDConfig",
    "WAEGANConfig",
    "AAEConfig",
    "VAEConfig",
    "BetaVAEConfig",
    "WGANGPConfig",
    "WAESinkhornConfig",
    "WAEExactConfig",
    "AVBConfig",
    "GANConfig",
    "FGANConfig",
    "load_config",
    "GlobalBatch",
]
