"""
Transport plans as arrows
=========================

:func:`otgen.plot.plan_arrows` draws one arrow per nonzero of a plan, its
width proportional to the mass moved, and the points with areas proportional
to their mass. Left: the exact plan (a basic solution, at most n + m - 1
arrows) from a weighted Gaussian cloud to a ring. Right: the entropic plan of
the same problem, entries above 1% of the largest (the default for entropic
plans): the mass spreads as eps grows.
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import otgen
from otgen.plot import plan_arrows

rng = np.random.default_rng(0)
n, m = 40, 30
x = rng.normal(size=(n, 2)) * 0.5
theta = rng.uniform(0, 2 * np.pi, m)
y = np.column_stack([np.cos(theta), np.sin(theta)]) * 2.5 + [1.0, 0.0]
a = rng.uniform(0.2, 1.8, n)
a /= a.sum()

exact = otgen.exact_ot(x, y, a)
entropic = otgen.sinkhorn(x, y, a, eps=0.1)
print(exact)
print(f"{exact.plan.nnz} arrows <= n + m - 1 = {n + m - 1}")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
plan_arrows(x, y, exact, ax=left)
left.set_title(f"exact plan: {exact.plan.nnz} arrows, $W_2^2$ = {exact.value:.3f}")
left.legend(loc="upper left")
plan_arrows(x, y, entropic, ax=right)
right.set_title("entropic plan, eps = 0.1 (entries > 1% of the largest)")
fig.tight_layout()
fig.savefig(Path(os.environ.get("OTGEN_GALLERY_OUT", ".")) / "plot_plan_arrows.png")
