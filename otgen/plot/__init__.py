"""Pictures of optimal transport and kernel discrepancies (matplotlib).

- :func:`plan_arrows`: 2-D samples with one arrow per nonzero of a plan;
- :func:`plan_matrix`: the plan as an image;
- :func:`potential_map`: a dual potential as a heat map over the plane
  (extended off the samples by the c-transform, :func:`extend_potential`);
- :func:`witness_map`: the MMD witness function (:func:`mmd_witness`).

Each drawing function takes ``ax=None`` (the current Axes) and returns the
Axes. matplotlib is imported only when one of them runs: ``import otgen`` and
``import otgen.plot`` do not import it. This package builds on
:mod:`otgen.ot`; no other layer imports it.
"""

from otgen.plot.fields import extend_potential, mmd_witness
from otgen.plot.maps import potential_map, witness_map
from otgen.plot.plan import plan_arrows, plan_matrix

__all__ = [
    "extend_potential",
    "mmd_witness",
    "plan_arrows",
    "plan_matrix",
    "potential_map",
    "witness_map",
]
