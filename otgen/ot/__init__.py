"""Layer 1 of otgen: optimal transport and kernel discrepancies (no training code)."""

from otgen.ot.costs import Cost, cost_matrix
from otgen.ot.divergence import sinkhorn_divergence
from otgen.ot.exact import emd, exact_ot, wasserstein
from otgen.ot.gaussian import GaussianW2, gaussian_w2
from otgen.ot.kernels import (
    Kernel,
    kernel_matrix,
    median_heuristic,
    wae_imq_scale,
)
from otgen.ot.mmd import MMDTestResult, mmd, mmd_test
from otgen.ot.result import OTResult, SinkhornResult, TransportPlan
from otgen.ot.sinkhorn import EntropicPlan, sinkhorn
from otgen.ot.sliced import (
    SlicedResult,
    max_sliced_wasserstein,
    sliced_wasserstein,
)

__all__ = [
    "Cost",
    "GaussianW2",
    "OTResult",
    "TransportPlan",
    "cost_matrix",
    "emd",
    "exact_ot",
    "gaussian_w2",
    "wasserstein",
    "Kernel",
    "MMDTestResult",
    "kernel_matrix",
    "median_heuristic",
    "mmd",
    "mmd_test",
    "wae_imq_scale",
    "EntropicPlan",
    "SinkhornResult",
    "sinkhorn",
    "sinkhorn_divergence",
    "SlicedResult",
    "sliced_wasserstein",
    "max_sliced_wasserstein",
]
