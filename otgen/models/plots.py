r"""Figures of a training run (matplotlib, Agg backend, PNG files).

- :func:`plot_samples`: data vs generated samples;
- :func:`plot_codes`: codes :math:`\tilde z \sim Q_Z` vs prior samples;
- :func:`plot_reconstructions`: data points joined to their reconstructions;
- :func:`plot_curves`: logged loss terms against training steps;
- :func:`plot_check`: the model check's statistic against its noise floor.

Only the first two coordinates are drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

__all__ = [
    "plot_check",
    "plot_codes",
    "plot_curves",
    "plot_reconstructions",
    "plot_samples",
]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _xy(t: torch.Tensor):
    a = t.detach().cpu().double().flatten(1).numpy()
    if a.shape[1] == 1:
        return a[:, 0], 0 * a[:, 0]
    return a[:, 0], a[:, 1]


def _pair(a, b, labels, title, path):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharex=True, sharey=True)
    for ax, t, lab, col in zip(axes, (a, b), labels, ("tab:blue", "tab:orange")):
        ax.scatter(*_xy(t), s=2, alpha=0.5, color=col)
        ax.set_title(lab)
        ax.set_aspect("equal", adjustable="box")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_samples(data: torch.Tensor, generated: torch.Tensor, path) -> Path:
    """Held-out data next to generated samples."""
    return _pair(data, generated, ("data", "generated"), "data vs model", path)


def plot_codes(codes: torch.Tensor, prior: torch.Tensor, path) -> Path:
    """Codes of held-out data next to prior samples (first two latent axes)."""
    return _pair(codes, prior, ("codes Q_Z", "prior P_Z"), "latent space", path)


def plot_reconstructions(
    data: torch.Tensor, recon: torch.Tensor, path, *, n_lines: int = 200
) -> Path:
    """Data (blue), reconstructions (orange), a segment joining each pair."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    (x0, y0), (x1, y1) = _xy(data), _xy(recon)
    k = min(n_lines, len(x0))
    ax.plot([x0[:k], x1[:k]], [y0[:k], y1[:k]], color="0.7", lw=0.5)
    ax.scatter(x0, y0, s=2, color="tab:blue", label="data")
    ax.scatter(x1, y1, s=2, color="tab:orange", label="G(E(x))")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="best", markerscale=4)
    ax.set_title("reconstructions")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_curves(history: Sequence[dict], path, *, smooth: int = 10) -> Path:
    """Each logged term (one panel per term) against the step.

    Thin line: logged values; thick line: moving average over ``smooth`` logs
    (minibatch estimates such as the unbiased MMD² are noisy and can be < 0).
    """
    import numpy as np

    plt = _plt()
    keys = sorted({k for h in history for k in h if "/" in k})
    fig, axes = plt.subplots(
        len(keys), 1, figsize=(6, 1.8 * max(1, len(keys))), sharex=True, squeeze=False
    )
    steps = np.array([h["step"] for h in history], dtype=float)
    for ax, k in zip(axes[:, 0], keys):
        v = np.array([h.get(k, np.nan) for h in history], dtype=float)
        ax.plot(steps, v, lw=0.5, alpha=0.4, color="tab:blue")
        w = max(1, min(smooth, len(v)))
        if len(v) >= w:
            avg = np.convolve(v, np.ones(w) / w, mode="valid")
            ax.plot(steps[w - 1 :], avg, lw=1.5, color="tab:blue")
        finite = v[np.isfinite(v)]
        if finite.size and (finite > 0).all():
            ax.set_yscale("log")
        elif finite.size:
            ax.set_yscale(
                "symlog", linthresh=max(float(np.median(np.abs(finite))), 1e-8)
            )
        ax.set_ylabel(k, fontsize=7)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle("training curves")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_check(
    floor: Sequence[float], statistic: float, path, *, title: str = "model check"
) -> Path:
    """The floor replicates (dots and their mean ± sd) and the statistic (line).

    The horizontal axis is W2; a statistic to the right of every replicate is
    a failed check.
    """
    import numpy as np

    plt = _plt()
    f = np.asarray(floor, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 2.8))
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, f.size)
    ax.scatter(f, jitter, s=18, color="tab:blue", label=f"floor: {f.size} replicates")
    mean, sd = float(f.mean()), float(f.std(ddof=1)) if f.size > 1 else 0.0
    ax.axvspan(mean - sd, mean + sd, color="tab:blue", alpha=0.15, label="mean ± sd")
    ax.axvline(mean, color="tab:blue", lw=1)
    ax.axvline(statistic, color="tab:red", lw=2, label="W2(generated, held-out)")
    lo = min(float(f.min()), statistic)
    hi = max(float(f.max()), statistic)
    pad = 0.1 * (hi - lo) or 0.1 * max(abs(hi), 1e-12)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(-0.5, 0.5)
    ax.set_yticks([])
    ax.set_xlabel("exact W2 to the held-out sample")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.4), ncol=3, fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
