r"""
D_POT(lambda) against W_c
=========================

The penalised transport cost of the VEGAN cookbook and WAE (PAPER.md),

.. math::
   D_{POT}(\lambda) = \inf_{Q} \mathbb{E}_{P_X} \mathbb{E}_{Q(Z|X)}
   c(X, G(Z)) + \lambda D_Z(Q_Z, P_Z),

solved *exactly* on a small discrete instance (data atoms :math:`x_i`, prior
atoms :math:`z_j`, a fixed decoder :math:`G`) with the solvers of
:mod:`otgen.theory`: :func:`~otgen.theory.pot_w1` and
:func:`~otgen.theory.pot_tv` are linear programs, :func:`~otgen.theory.pot_mmd2`
a certified quadratic program. The curves illustrate Prop. P1-P6:
every curve stays below :math:`W_c(P_X, G\#P_Z)` (P1), rises and is concave in
:math:`\lambda` (P2), starts at the distance to the decoder's range (P3), and
reaches :math:`W_c` at a finite :math:`\lambda` for the :math:`W_1` and TV
penalties, but never for :math:`\mathrm{MMD}^2`, whose gap closes like
:math:`1/\lambda` (P5). So a WAE-MMD loss is a lower bound on :math:`W_c`
(here :math:`W_2^2`), never :math:`W_2` itself.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import otgen
from otgen.theory import pot_mmd2, pot_tv, pot_w1

quick = os.environ.get("OTGEN_DOCS_QUICK") == "1"
lams = np.logspace(-2, 4, 13 if quick else 49)

rng = np.random.default_rng(0)
n, m = 8, 6
x = rng.normal(size=(n, 2))  # data atoms, masses p
p = rng.dirichlet(np.ones(n))
z = rng.normal(size=(m, 2))  # prior atoms, masses r
r = np.full(m, 1 / m)
gz = np.tanh(z @ rng.normal(size=(2, 2))) * 1.5  # decoded atoms G(z_j)

C = otgen.cost_matrix(x, gz)  # c = |x - G(z)|^2
D = otgen.cost_matrix(z, z, cost="euclidean")  # latent metric for W_1
K = otgen.kernel_matrix(z, z, kernel="imq", scale=otgen.wae_imq_scale(2))
wc = otgen.exact_ot(x, gz, p, r).value  # W_c = W_2^2(P_X, G#P_Z), Theorem A

curves = {
    "$W_1$ penalty": [pot_w1(C, D, p, r, lam=lam).value for lam in lams],
    "TV penalty": [pot_tv(C, p, r, lam=lam).value for lam in lams],
    "MMD$^2$ penalty (WAE-MMD)": [pot_mmd2(C, K, p, r, lam=lam).value for lam in lams],
}
print(f"W_c = {wc:.6f}; D_POT(0) = {pot_tv(C, p, r, lam=0.0).value:.6f}")
for name, v in curves.items():
    print(f"{name}: D_POT at lambda = {lams[-1]:g}: {v[-1]:.6f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
for name, v in curves.items():
    ax1.semilogx(lams, v, "o-", ms=3, label=name)
    gap = np.maximum(wc - np.asarray(v), 1e-12)
    ax2.loglog(lams, gap, "o-", ms=3, label=name)
ax1.axhline(wc, color="k", ls="--", label=r"$W_c(P_X, G_\sharp P_Z)$")
ax1.set_xlabel(r"$\lambda$")
ax1.set_ylabel(r"$D_{POT}(\lambda)$")
ax1.set_title("penalised OT: a lower bound on $W_c$")
ax1.legend(fontsize=8)
tail = wc - curves["MMD$^2$ penalty (WAE-MMD)"][-1]  # anchor the 1/lambda line
ax2.loglog(lams, tail * lams[-1] / lams, "k:", label=r"$\propto 1/\lambda$")
ax2.set_ylim(1e-13, 1.0)
ax2.set_xlabel(r"$\lambda$")
ax2.set_ylabel(r"$W_c - D_{POT}(\lambda)$ (floored at $10^{-12}$)")
ax2.set_title("the gap: zero at finite $\\lambda$, or $\\Theta(1/\\lambda)$")
ax2.legend(fontsize=8)
fig.tight_layout()
