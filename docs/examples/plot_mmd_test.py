r"""
MMD two-sample test: p-values under the null and under a shift
==============================================================

:func:`otgen.mmd_test` tests :math:`H_0: P = Q` by comparing the unbiased
:math:`\widehat{\mathrm{MMD}^2}` of the two samples with its values on random
re-splits of the pooled sample :cite:p:`gretton2012kernel` (Gaussian kernel,
median-heuristic bandwidth). Repeated on independent draws, the p-values are
uniform when :math:`P = Q` (so a test at level 0.05 rejects 5% of the time)
and pile up near zero as :math:`Q` moves away from :math:`P`.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import otgen

quick = os.environ.get("OTGEN_DOCS_QUICK") == "1"
repeats = 25 if quick else 200
n_perm = 100 if quick else 1000
n, d = 100, 2
shifts = [0.0, 0.2, 0.4, 0.8]

rng = np.random.default_rng(0)
pvalues = {}
for shift in shifts:
    ps = []
    for r in range(repeats):
        x = rng.normal(size=(n, d))
        y = rng.normal(size=(n, d)) + [shift, 0.0]
        ps.append(otgen.mmd_test(x, y, n_permutations=n_perm, seed=r).p_value)
    pvalues[shift] = np.sort(ps)
    rate = np.mean(pvalues[shift] <= 0.05)
    print(f"shift {shift:.1f}: rejection rate at level 0.05 = {rate:.2f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
for shift, ps in pvalues.items():
    ecdf = np.arange(1, len(ps) + 1) / len(ps)
    label = "null, P = Q" if shift == 0 else f"mean shift {shift}"
    ax1.step(ps, ecdf, where="post", label=label)
ax1.plot([0, 1], [0, 1], "k:", lw=1, label="uniform")
ax1.set_xlabel("p-value")
ax1.set_ylabel("empirical CDF of the p-values")
ax1.set_title(f"{repeats} repeats, n = m = {n}, d = {d}")
ax1.legend(fontsize=8)
ax2.bar(range(len(shifts)), [np.mean(pvalues[s] <= 0.05) for s in shifts])
ax2.set_xticks(range(len(shifts)), [str(s) for s in shifts])
ax2.axhline(0.05, color="k", ls=":", label="level 0.05")
ax2.set_xlabel("mean shift of Q")
ax2.set_ylabel("rejection rate at level 0.05")
ax2.set_title("size (shift 0) and power")
ax2.legend()
fig.tight_layout()
