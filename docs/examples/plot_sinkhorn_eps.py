r"""
Sinkhorn as eps shrinks: value and plan against exact OT
========================================================

Entropic OT :cite:p:`cuturi2013sinkhorn` adds
:math:`\varepsilon\, \mathrm{KL}(P \| a \otimes b)` to the transport cost.
Large :math:`\varepsilon` blurs the plan over many pairs and biases the value
upwards; as :math:`\varepsilon \to 0` the plan concentrates on the sparse
exact plan and the value reaches :math:`W_2^2`. The debiased Sinkhorn
divergence :math:`S_\varepsilon` :cite:p:`feydy2019interpolating` removes most
of the bias at every :math:`\varepsilon`. :math:`\varepsilon` is in units of
the cost, here :math:`\|x - y\|^2`: compare it with the squared spread of the
data (about 1).
"""

import os
import warnings

import matplotlib.pyplot as plt
import numpy as np

import otgen

quick = os.environ.get("OTGEN_DOCS_QUICK") == "1"
eps_grid = [1.0, 0.2, 0.05] if quick else [3.0, 1.0, 0.3, 0.1, 0.03, 0.01]
max_iter = 1000 if quick else 5000
tol = 1e-5  # marginal error; tighter than the default 1e-3 to compare values

rng = np.random.default_rng(0)
x = rng.normal(size=(40, 2))
y = rng.normal(size=(30, 2)) * 0.6 + [2.5, 1.0]
exact = otgen.exact_ot(x, y)  # value = W_2^2
print(f"exact OT: W_2^2 = {exact.value:.4f}, {exact.plan.nnz} nonzeros")

values, costs, divs, plans = [], [], [], []
for eps in eps_grid:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fail loudly rather than plot a wrong number
        res = otgen.sinkhorn(x, y, eps=eps, tol=tol, max_iter=max_iter)
        divs.append(
            otgen.sinkhorn_divergence(x, y, eps=eps, tol=tol, max_iter=max_iter)
        )
    values.append(res.value)
    costs.append(res.plan.transport_cost())
    plans.append(res.plan.dense())
    print(
        f"eps = {eps:<5g} OT_eps = {res.value:.4f}  <P, C> = {costs[-1]:.4f}  "
        f"S_eps = {divs[-1]:.4f}  ({res.n_iter} iterations)"
    )

fig = plt.figure(figsize=(11, 6.5))
shown = [0, len(eps_grid) // 2, len(eps_grid) - 1]
for k, idx in enumerate(shown):
    ax = fig.add_subplot(2, 4, k + 1)
    P = plans[idx]
    i, j = np.nonzero(P > 1e-4 * P.max())
    for ii, jj in zip(i, j):
        ax.plot(*np.stack([x[ii], y[jj]]).T, "k-", lw=40 * P[ii, jj], alpha=0.4)
    ax.set_title(f"eps = {eps_grid[idx]:g}: {len(i)} pairs")
ax = fig.add_subplot(2, 4, 4)
P = exact.plan
for i, j, v in zip(P.rows, P.cols, P.values):
    ax.plot(*np.stack([x[i], y[j]]).T, "k-", lw=40 * v, alpha=0.4)
ax.set_title(f"exact: {P.nnz} pairs")
for ax in fig.axes:
    ax.scatter(*x.T, s=8, c="C0", zorder=3)
    ax.scatter(*y.T, s=8, c="C1", zorder=3)
    ax.set_xticks([])
    ax.set_yticks([])
ax = fig.add_subplot(2, 1, 2)
ax.semilogx(eps_grid, values, "o-", label=r"$\mathrm{OT}_\varepsilon$ (value)")
ax.semilogx(eps_grid, costs, "s-", label=r"$\langle P_\varepsilon, C\rangle$")
ax.semilogx(eps_grid, divs, "^-", label=r"$S_\varepsilon$ (debiased)")
ax.axhline(exact.value, color="k", ls="--", label=r"exact $W_2^2$")
ax.set_xlabel(r"$\varepsilon$ (units of $\|x - y\|^2$)")
ax.set_ylabel("value")
ax.legend()
fig.tight_layout()
