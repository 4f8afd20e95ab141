"""Layer 3 of otgen: numerical checks of the theory against exact OT.

- :mod:`otgen.theory.lp`: the discrete solvers, gathered from
  :mod:`otgen.theory.encoders` (Theorem A encoder LP, W_c-dagger, deterministic
  encoders), :mod:`otgen.theory.pot` (POT values for W_1, TV and MMD²
  penalties) and :mod:`otgen.theory.duals` (Kantorovich-Rubinstein and Prop. W
  duals, the c-transform critic);
- :mod:`otgen.theory.gaussian`, :mod:`otgen.theory.continuous`: closed forms,
  the posterior-mean decoder, the VAE decomposition, GAN identities, and the
  quantities the checks of items 11, 12 and 14 are built from (partition
  encoders, the KL of any 1-D encoder against the prior, the Gaussian-decoder
  NLL and its optimal variance, the prior-trick residual);
- :mod:`otgen.theory.checks`: one check per statement of docs/paper.md section 5,
  a registry and :func:`run_checks`; :mod:`otgen.theory.report`: table, figures
  and markdown report (``otgen verify``).

This layer imports :mod:`otgen.ot` and, for the checks on trained models
(items 15 and 16), :mod:`otgen.models`; neither lower layer imports it.
"""

from otgen.theory.checks import CHECKS, CheckResult, run_checks
from otgen.theory.continuous import (
    PartitionEncoders,
    encoder_prior_kl,
    gaussian_decoder_nll,
    gaussian_decoder_sigma2,
    partition_encoders,
    prior_trick_residual,
)
from otgen.theory.lp import (
    c_transform_critic,
    deterministic_encoder,
    encoder_dual_lp,
    encoder_lp,
    kr_dual,
    pot_mmd2,
    pot_tv,
    pot_w1,
    pot_w1_dual,
)

__all__ = [
    "CHECKS",
    "CheckResult",
    "c_transform_critic",
    "deterministic_encoder",
    "encoder_dual_lp",
    "encoder_lp",
    "kr_dual",
    "pot_mmd2",
    "pot_tv",
    "pot_w1",
    "pot_w1_dual",
    "run_checks",
    "PartitionEncoders",
    "encoder_prior_kl",
    "gaussian_decoder_nll",
    "gaussian_decoder_sigma2",
    "partition_encoders",
    "prior_trick_residual",
]
