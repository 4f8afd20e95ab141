"""Figures of a model of images: sample grids, reconstructions, interpolations.

Images (n, C, H, W) are drawn with one colour scale for the whole figure
(the held-out data's range, so that faint or saturated samples show as
such), greyscale for C = 1 and RGB for C = 3.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

__all__ = ["plot_image_grid", "plot_image_rows"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _as_images(x: torch.Tensor, lo: float, hi: float) -> np.ndarray:
    a = x.detach().double().cpu().numpy()
    a = np.clip((a - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    return a[:, 0] if a.shape[1] == 1 else a.transpose(0, 2, 3, 1)[..., :3]


def _tile(axes, images: np.ndarray) -> None:
    for ax, im in zip(np.ravel(axes), images):
        ax.imshow(im, cmap="gray_r" if im.ndim == 2 else None, vmin=0, vmax=1)
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


def plot_image_grid(
    images: torch.Tensor,
    path: str | Path,
    *,
    title: str = "",
    value_range: tuple[float, float] | None = None,
) -> Path:
    """A square grid of images (n, C, H, W)."""
    plt = _plt()
    n = images.shape[0]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    lo, hi = value_range or (float(images.min()), float(images.max()))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.6, rows * 0.6 + 0.4))
    _tile(axes, _as_images(images, lo, hi))
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_image_rows(
    rows: list[torch.Tensor],
    labels: list[str],
    path: str | Path,
    *,
    title: str = "",
    value_range: tuple[float, float] | None = None,
) -> Path:
    """Rows of images of equal length, one label each (e.g. data, reconstruction)."""
    plt = _plt()
    n = rows[0].shape[0]
    if value_range is None:
        value_range = (float(rows[0].min()), float(rows[0].max()))
    lo, hi = value_range
    fig, axes = plt.subplots(
        len(rows), n, figsize=(n * 0.6 + 1.2, len(rows) * 0.6 + 0.4), squeeze=False
    )
    for r, (imgs, lab) in enumerate(zip(rows, labels)):
        _tile(axes[r], _as_images(imgs, lo, hi))
        axes[r, 0].set_ylabel(lab, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.05, left=0.12)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
