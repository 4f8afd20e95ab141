"""Shared helpers of :mod:`otgen.plot`: the axes, 2-D points, the grid.

matplotlib is imported inside the functions, never at module level, so that
``import otgen.plot`` (and ``import otgen``) does not import it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["get_axes", "as_numpy", "points_2d", "grid_over"]

# Padding of the default heat-map window, relative to the span of the points.
PAD = 0.15


def get_axes(ax: Any) -> Any:
    """``ax`` if it is a matplotlib Axes; the current Axes (``plt.gca()``) if None."""
    if ax is None:
        import matplotlib.pyplot as plt

        return plt.gca()
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(
            f"ax must be a matplotlib Axes or None (got {type(ax).__name__}); pass "
            "e.g. ax=plt.subplots()[1], or None to draw on the current Axes."
        )
    return ax


def as_numpy(v: Any, name: str) -> np.ndarray:
    """A float64 NumPy copy of an array, tensor or sequence (torch detached)."""
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().to(torch.float64).numpy()
    try:
        out = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be an array or a tensor of numbers (got "
            f"{type(v).__name__}); pass a NumPy array or a torch tensor."
        ) from err
    return out


def points_2d(v: Any, name: str) -> np.ndarray:
    """Validate points to be drawn in the plane: finite, shape (n, 2), n >= 1."""
    out = as_numpy(v, name)
    if out.ndim != 2 or out.shape[1] != 2:
        raise ValueError(
            f"{name} must have shape (n, 2) to be drawn in the plane (got shape "
            f"{out.shape}); project the points to two dimensions first (e.g. onto "
            "their first two principal components)."
        )
    if out.shape[0] == 0:
        raise ValueError(
            f"{name} must hold at least one point (got shape {out.shape}); pass a "
            "non-empty sample."
        )
    if not np.isfinite(out).all():
        raise ValueError(
            f"{name} must be finite (got {int((~np.isfinite(out)).sum())} NaN or inf "
            "coordinates); remove those points before plotting."
        )
    return out


def grid_over(
    points: list[np.ndarray], extent: Any, resolution: Any
) -> tuple[np.ndarray, tuple[float, float, float, float], tuple[int, int]]:
    """A regular grid over the plane for a heat map.

    Returns the grid points (k, 2) in row-major order (y outer, x inner), the
    window ``(xmin, xmax, ymin, ymax)`` and the shape ``(ny, nx)``. The default
    window is the bounding box of ``points`` padded by ``PAD`` of its span.
    """
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        raise TypeError(
            f"resolution must be an integer (got {type(resolution).__name__}); "
            "pass e.g. resolution=200 (grid points per side)."
        )
    if not 2 <= int(resolution) <= 4000:
        raise ValueError(
            f"resolution must be in [2, 4000] (got {resolution}); it is the number "
            "of grid points per side, e.g. 200."
        )
    if extent is None:
        allp = np.vstack(points)
        lo, hi = allp.min(0), allp.max(0)
        span = hi - lo
        pad = PAD * np.where(span > 0, span, max(float(span.max()), 1.0))
        lo, hi = lo - pad, hi + pad
        window = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
    else:
        e = as_numpy(extent, "extent").ravel()
        if e.shape != (4,) or not np.isfinite(e).all() or e[0] >= e[1] or e[2] >= e[3]:
            raise ValueError(
                "extent must be (xmin, xmax, ymin, ymax) with xmin < xmax and "
                f"ymin < ymax (got {extent!r}); or None for the points' bounding "
                "box."
            )
        window = tuple(float(v) for v in e)
    r = int(resolution)
    gx = np.linspace(window[0], window[1], r)
    gy = np.linspace(window[2], window[3], r)
    X, Y = np.meshgrid(gx, gy)
    return np.column_stack([X.ravel(), Y.ravel()]), window, (r, r)
