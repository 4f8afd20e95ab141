"""
WAE-MMD against a VAE on eight Gaussians
========================================

Both models share the encoder/decoder networks and the prior
:math:`N(0, I_2)`; they differ in the latent penalty. The VAE penalises every
code distribution :math:`Q(Z|x)` towards the prior (a per-sample KL, which by
PAPER.md Prop. V2 contains the mutual information :math:`I(X; Z)`), so the
codes of different modes overlap and the best decoder averages them:
reconstructions and samples are smeared along the ring, between the modes
(Prop. E, blur). WAE-MMD penalises only the aggregate
:math:`Q_Z` against the prior, so the codes of different modes can stay apart
and reconstructions stay on the modes.

The settings are those of ``otgen train`` on the ``ring8`` toy (an implicit,
random encoder and three IMQ scales for WAE-MMD). With
``OTGEN_DOCS_QUICK=1`` (CI, and the figure below) each model trains for 300
steps only: the codes already show the difference (WAE-MMD's modes occupy
separate sectors of the prior, the VAE's overlap) but neither fit has
converged; run the script without it for 3000 steps, where the WAE-MMD
reconstructions sit on the modes and the VAE's stay smeared (measured: 90%
against 58% of reconstructions, 71% against 38% of samples within 3 standard
deviations of a mode).
"""

import os

import matplotlib.pyplot as plt
import torch

from otgen import wasserstein
from otgen.models import Trainer, build, get_toy

quick = os.environ.get("OTGEN_DOCS_QUICK") == "1"
steps = 300 if quick else 3000

toy = get_toy("ring8")
train = toy.sample(5000, seed=0)
held = toy.sample(1000, seed=1)

models = {
    "WAE-MMD": build(
        "wae-mmd", 2, lam=100.0, encoder="implicit", scales=[0.05, 0.2, 1.0], seed=0
    ),
    # Gaussian likelihood with sigma = 0.5: by Prop. V1 a POT-like objective with
    # lambda = 2 sigma^2 = 0.5 and a per-sample KL penalty
    "VAE": build("vae", 2, decoder_sigma=0.5, seed=0),
}
samples, codes, recons = {}, {}, {}
for name, model in models.items():
    Trainer(model, train, batch_size=128, seed=0, progress=False, num_threads=1).fit(
        steps
    )
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        samples[name] = model.generate(1000, generator=g)
        codes[name] = model.encode(held, generator=g).z
        recons[name] = model.decode(codes[name])  # G(z~), z~ ~ Q(Z|x)
    w2 = wasserstein(samples[name].double(), held.double(), p=2)
    print(f"{name}: W2(generated, held-out) = {float(w2):.3f} after {steps} steps")

centers = torch.as_tensor(toy.centers, dtype=held.dtype)


def on_mode(points):
    """Fraction of points within 3 standard deviations of a mixture centre."""
    near = torch.cdist(points, centers).min(1).values < 3 * toy.sigma
    return float(near.double().mean())


fig, axes = plt.subplots(2, 2, figsize=(8, 8))
for col, name in enumerate(models):
    ax = axes[0, col]
    ax.scatter(*held.T, s=3, c="0.7", label="data")
    ax.scatter(*samples[name].T, s=3, c="C3", alpha=0.5, label="samples G(z)")
    ax.scatter(*recons[name].T, s=3, c="C2", label="reconstructions")
    ax.set_title(
        f"{name}\non a mode: {on_mode(recons[name]):.0%} of reconstructions, "
        f"{on_mode(samples[name]):.0%} of samples",
        fontsize=9,
    )
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
    ax.legend(loc="center", markerscale=3, fontsize=8)
    ax = axes[1, col]
    # colour each code by the mode its data point came from
    mode = torch.cdist(held, centers).argmin(1)
    ax.scatter(*codes[name].T, s=3, c=mode, cmap="tab10")
    ax.set_title(f"{name}: codes of held-out points, by mode")
    ax.set_xlim(-4, 4)
    ax.set_ylim(-4, 4)
    ax.set_aspect("equal")
fig.tight_layout()
