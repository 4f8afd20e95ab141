r"""Heat maps over the plane: dual potentials and MMD witness functions."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from otgen.ot.costs import CostLike
from otgen.ot.kernels import KernelLike, ScaleLike
from otgen.ot.result import OTResult, SinkhornResult
from otgen.plot._common import get_axes, grid_over, points_2d
from otgen.plot.fields import extend_potential, mmd_witness

__all__ = ["potential_map", "witness_map"]


def _heat_map(
    x,
    y,
    evaluate,
    *,
    ax,
    extent,
    resolution,
    levels,
    cmap,
    colorbar,
    centred,
    gid,
    label,
):
    """``evaluate(xs, ys, grid)`` on a grid over the samples, drawn as an image.

    Validates the samples, builds the grid, evaluates, then draws (contours
    and a colour bar as asked; ``centred``: a diverging norm centred on 0).
    Returns ``(ax, xs, ys)``.
    """
    if np.ndim(levels) == 0 and not (
        isinstance(levels, (int, np.integer)) and levels >= 0
    ):
        raise ValueError(
            f"levels must be an integer >= 0, the number of contour lines (got "
            f"{levels!r}); pass e.g. levels=12, or 0 for none."
        )
    xs, ys = points_2d(x, "x"), points_2d(y, "y")
    grid, window, shape = grid_over([xs, ys], extent, resolution)
    values = evaluate(xs, ys, grid)
    ax = get_axes(ax)
    norm = None
    if centred:
        from matplotlib.colors import TwoSlopeNorm

        top = float(np.abs(values).max()) or 1.0
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-top, vmax=top)
    Z = values.reshape(shape)
    im = ax.imshow(
        Z,
        origin="lower",
        extent=window,
        cmap=cmap,
        norm=norm,
        interpolation="bilinear",
        aspect="auto",
    )
    im.set_gid(gid)
    if levels:
        gx = np.linspace(window[0], window[1], shape[1])
        gy = np.linspace(window[2], window[3], shape[0])
        ax.contour(gx, gy, Z, levels=levels, colors="k", linewidths=0.5, alpha=0.5)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label=label)
    ax.set_xlim(window[0], window[1])
    ax.set_ylim(window[2], window[3])
    return ax, xs, ys


def potential_map(
    x: Any,
    y: Any,
    result: OTResult | SinkhornResult,
    *,
    which: Literal["f", "g"] = "f",
    a: Any = None,
    b: Any = None,
    cost: CostLike | None = None,
    ax: Any = None,
    extent: Any = None,
    resolution: int = 200,
    levels: int = 12,
    cmap: str = "viridis",
    colorbar: bool = True,
    show_points: bool = True,
) -> Any:
    r"""A dual potential of an OT result as a heat map over the plane.

    The potential is extended off the samples by :func:`extend_potential`:
    the c-transform :math:`f(t) = \min_j [c(t, y_j) - g_j]` for exact results,
    the soft c-transform :math:`f(t) = -\varepsilon \log \sum_j b_j
    e^{(g_j - c(t, y_j))/\varepsilon}` for entropic ones (``which="g"``
    swaps the roles). For the squared Euclidean cost,
    :math:`\|t\|^2 - f(t)` is convex and its gradient map is the (entropic)
    transport map's estimate :cite:`peyre2019computational`.

    Parameters
    ----------
    x, y : array or Tensor, shape (n, 2) and (m, 2)
        The samples the result was computed on.
    result : OTResult or SinkhornResult
        From :func:`otgen.exact_ot` or :func:`otgen.sinkhorn`.
    which : {"f", "g"}, default="f"
        The potential of ``x`` or of ``y``.
    a, b : array or Tensor, optional
        The solver's weights (entropic results; uniform when None).
    cost : str, Cost or callable, optional
        The ground cost; None reads it from the result.
    ax : matplotlib Axes, optional
        Where to draw; None: the current Axes.
    extent : (xmin, xmax, ymin, ymax), optional
        The window; None: the samples' bounding box, padded by 15%.
    resolution : int, default=200
        Grid points per side.
    levels : int, default=12
        Contour lines drawn over the map (0: none).
    cmap : str, default="viridis"
        The colour map.
    colorbar, show_points : bool, default=True
        Add a colour bar; draw the samples (``x`` in C0, ``y`` in C1).

    Returns
    -------
    matplotlib Axes
        The Axes drawn on; the image (gid ``"otgen.potential"``) holds the
        values on the grid, row k at the k-th grid ordinate from the bottom.

    Raises
    ------
    ValueError
        If ``x`` or ``y`` is not of shape (n, 2), ``levels`` is not an
        integer >= 0, or see :func:`extend_potential`.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from otgen import exact_ot
    >>> x, y = np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.0, 1.0], [1.0, 1.0]])
    >>> fig, ax = plt.subplots()
    >>> ax = potential_map(x, y, exact_ot(x, y), ax=ax, resolution=20)
    >>> ax.images[0].get_array().shape
    (20, 20)
    >>> plt.close(fig)
    """
    kind = "soft c-transform" if isinstance(result, SinkhornResult) else "c-transform"
    ax, xs, ys = _heat_map(
        x,
        y,
        lambda xs, ys, grid: extend_potential(
            xs, ys, result, grid, which=which, a=a, b=b, cost=cost
        ),
        ax=ax, extent=extent, resolution=resolution, levels=levels, cmap=cmap,
        colorbar=colorbar, centred=False, gid="otgen.potential",
        label=f"{which} ({kind})",
    )  # fmt: skip
    if show_points:
        ax.scatter(*xs.T, s=12, c="C0", edgecolors="w", linewidths=0.5, label="x")
        ax.scatter(*ys.T, s=12, c="C1", edgecolors="w", linewidths=0.5, label="y")
    return ax


def witness_map(
    x: Any,
    y: Any,
    *,
    a: Any = None,
    b: Any = None,
    kernel: KernelLike = "imq",
    scale: ScaleLike = None,
    ax: Any = None,
    extent: Any = None,
    resolution: int = 200,
    levels: int = 0,
    cmap: str = "RdBu_r",
    colorbar: bool = True,
    show_points: bool = True,
) -> Any:
    r"""The MMD witness function of two 2-D samples as a heat map.

    .. math::
        w(t) = \sum_i a_i\, k(t, x_i) - \sum_j b_j\, k(t, y_j)

    (:func:`mmd_witness`; uniform weights give the difference of the means),
    drawn with a diverging colour map centred on 0: red where ``x`` is denser,
    blue where ``y`` is.

    Parameters
    ----------
    x, y : array or Tensor, shape (n, 2) and (m, 2)
        The samples.
    a, b : array or Tensor, optional
        Weights (uniform when None).
    kernel, scale
        As in :func:`otgen.mmd` (default IMQ with :math:`C = 2d`);
        ``scale="median"`` is resolved on the pooled samples.
    ax, extent, resolution
        As in :func:`potential_map`.
    levels : int, default=0
        Contour lines drawn over the map.
    cmap : str, default="RdBu_r"
        A diverging colour map.
    colorbar, show_points : bool, default=True
        Add a colour bar; draw the samples (``x`` as dots, ``y`` as crosses).

    Returns
    -------
    matplotlib Axes
        The Axes drawn on; the image (gid ``"otgen.witness"``) holds the
        witness on the grid.

    Raises
    ------
    ValueError
        If ``x`` or ``y`` is not of shape (n, 2), ``levels`` is not an
        integer >= 0, or on an invalid kernel or scale.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> x, y = np.zeros((3, 2)), np.ones((3, 2))
    >>> fig, ax = plt.subplots()
    >>> ax = witness_map(x, y, ax=ax, resolution=10)
    >>> float(ax.images[0].get_array()[0, 0]) > 0  # the corner near x
    True
    >>> plt.close(fig)
    """
    ax, xs, ys = _heat_map(
        x,
        y,
        lambda xs, ys, grid: mmd_witness(
            xs, ys, grid, a=a, b=b, kernel=kernel, scale=scale
        ),
        ax=ax, extent=extent, resolution=resolution, levels=levels, cmap=cmap,
        colorbar=colorbar, centred=True, gid="otgen.witness", label="witness $w(t)$",
    )  # fmt: skip
    if show_points:
        ax.scatter(*xs.T, s=10, c="k", marker="o", label="x")
        ax.scatter(*ys.T, s=14, c="k", marker="x", linewidths=0.8, label="y")
    return ax
