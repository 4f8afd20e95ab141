"""
W2 between two point clouds, with the optimal plan
==================================================

The exact optimal transport plan between two small clouds of different sizes
and weights, drawn as segments whose width is the transported mass. The plan
is sparse: a basic optimal solution has at most n + m - 1 nonzeros.
"""

import matplotlib.pyplot as plt
import numpy as np

import otgen

rng = np.random.default_rng(0)
x = rng.normal(size=(30, 2))
y = rng.normal(size=(20, 2)) * 0.6 + [3.0, 1.0]
a = rng.uniform(0.5, 1.5, size=30)
a /= a.sum()
b = np.full(20, 1 / 20)

res = otgen.exact_ot(x, y, a, b)
w2 = otgen.wasserstein(x, y, p=2, a=a, b=b)
print(res)
print(f"W2 = {w2:.4f}; nonzeros {res.plan.nnz} <= n + m - 1 = {30 + 20 - 1}")

fig, ax = plt.subplots(figsize=(6, 4))
P = res.plan
for i, j, v in zip(P.rows, P.cols, P.values):
    ax.plot([x[i, 0], y[j, 0]], [x[i, 1], y[j, 1]], "k-", lw=60 * v, alpha=0.5)
ax.scatter(*x.T, s=2000 * a, c="C0", label="x (weights a)", zorder=3)
ax.scatter(*y.T, s=2000 * b, c="C1", label="y (uniform b)", zorder=3)
ax.set_title(f"exact OT plan, $W_2$ = {w2:.3f} ({res.solver})")
ax.legend(loc="upper left")
ax.set_aspect("equal")
fig.tight_layout()
