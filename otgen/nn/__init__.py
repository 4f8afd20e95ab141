"""Layer 1.5 of otgen: the OT distances of :mod:`otgen.ot` as ``torch.nn`` losses.

Drop-in modules for a training loop; they may import :mod:`otgen.ot`, never
:mod:`otgen.models` (``tests/test_layering.py``).
"""

from otgen.nn.losses import (
    MMDLoss,
    SinkhornLoss,
    SlicedWassersteinLoss,
    WassersteinLoss,
)

__all__ = ["SinkhornLoss", "MMDLoss", "WassersteinLoss", "SlicedWassersteinLoss"]
