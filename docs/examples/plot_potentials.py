"""
Dual potentials over the plane
==============================

:func:`otgen.plot.potential_map` extends the potential :math:`f` of the
source samples to the whole plane: by the c-transform
:math:`f(t) = \\min_j [\\|t - y_j\\|^2 - g_j]` for the exact solution (left),
by the soft c-transform :math:`f(t) = -\\varepsilon \\log \\sum_j b_j
e^{(g_j - \\|t - y_j\\|^2)/\\varepsilon}` for the entropic one (right). The
exact extension is piecewise quadratic, with a kink wherever the minimising
:math:`y_j` changes (here between the two target clusters); the entropic one
is its smoothing at scale eps. For the squared cost,
:math:`t - \\nabla f(t) / 2` is where :math:`t` is sent: the minimising
:math:`y_j` (exact), the barycentre of the :math:`y_j` under the entropic
plan's conditional at :math:`t` (entropic). The potentials are defined up to
a constant (:math:`f + c`, :math:`g - c`), so only the shapes compare.
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import otgen
from otgen.plot import potential_map

rng = np.random.default_rng(2)
x = rng.normal(size=(50, 2)) * 0.6
y = np.vstack(
    [
        rng.normal(size=(20, 2)) * 0.3 + [2.5, 1.5],
        rng.normal(size=(20, 2)) * 0.3 + [2.5, -1.5],
    ]
)

exact = otgen.exact_ot(x, y)
entropic = otgen.sinkhorn(x, y, eps=0.5)

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
potential_map(x, y, exact, ax=left)
left.set_title("exact OT: f extended by the c-transform")
potential_map(x, y, entropic, ax=right)
right.set_title("Sinkhorn, eps = 0.5: f extended by the soft c-transform")
for ax in (left, right):
    ax.set_aspect("equal")
fig.tight_layout()
fig.savefig(Path(os.environ.get("OTGEN_GALLERY_OUT", ".")) / "plot_potentials.png")
