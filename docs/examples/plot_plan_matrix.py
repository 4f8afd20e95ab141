"""
Transport plans as matrices
===========================

:func:`otgen.plot.plan_matrix` shows :math:`P_{ij}` as an image. Ordering the
rows and columns by a coordinate makes structure visible: between two clouds
stretched along the same direction the optimal plan is nearly monotone, so
the exact plan (left) hugs the diagonal, with at most n + m - 1 nonzeros. The
entropic plan (right, logarithmic shades) spreads each row over a band whose
width grows with eps.
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import otgen
from otgen.plot import plan_matrix

rng = np.random.default_rng(1)
n, m = 60, 50
x = rng.normal(size=(n, 2)) * [2.0, 0.3]
y = rng.normal(size=(m, 2)) * [1.5, 0.3] + [0.5, 1.0]
rows, cols = np.argsort(x[:, 0]), np.argsort(y[:, 0])

exact = otgen.exact_ot(x, y)
entropic = otgen.sinkhorn(x, y, eps=0.1)

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
plan_matrix(exact, ax=left, row_order=rows, col_order=cols)
left.set_title(f"exact plan, {exact.plan.nnz} nonzeros (rows, columns sorted by x)")
plan_matrix(entropic, ax=right, row_order=rows, col_order=cols, log=True,
            cmap="magma_r")  # fmt: skip
right.set_title("entropic plan, eps = 0.1 (log shades)")
fig.tight_layout()
fig.savefig(Path(os.environ.get("OTGEN_GALLERY_OUT", ".")) / "plot_plan_matrix.png")
