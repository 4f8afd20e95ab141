"""otgen: optimal transport and OT-based generative modelling.

Layers (imports only point down): :mod:`otgen.ot` (exact, entropic and kernel
OT), :mod:`otgen.models` (penalised-OT generative models and their trainer),
:mod:`otgen.theory` (numerical checks of the theory).
"""

from otgen.ot import (
    Cost,
    EntropicPlan,
    GaussianW2,
    Kernel,
    MMDTestResult,
    OTResult,
    SinkhornResult,
    SlicedResult,
    TransportPlan,
    cost_matrix,
    emd,
    exact_ot,
    gaussian_w2,
    kernel_matrix,
    max_sliced_wasserstein,
    median_heuristic,
    mmd,
    mmd_test,
    sinkhorn,
    sinkhorn_divergence,
    sliced_wasserstein,
    wae_imq_scale,
    wasserstein,
)

__version__ = "0.1.0"

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


def __getattr__(name: str):
    # otgen.plot on first use: `import otgen` imports neither it nor matplotlib.
    if name == "plot":
        import importlib

        return importlib.import_module("otgen.plot")
    raise AttributeError(f"module 'otgen' has no attribute {name!r}")
