r"""Transport plans drawn two ways: arrows between 2-D samples, and a matrix."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from otgen.ot.result import OTResult, SinkhornResult, TransportPlan
from otgen.ot.sinkhorn import EntropicPlan
from otgen.plot._common import as_numpy, get_axes, points_2d

__all__ = ["plan_arrows", "plan_matrix"]

# Entries kept by default from an entropic plan (every entry is positive):
# those above this fraction of the largest.
ENTROPIC_THRESHOLD = 1e-2
# Most arrows drawn (beyond, raise the threshold); most entries of a matrix.
MAX_ARROWS = 50_000
MAX_MATRIX = 4_000_000


def _entries(plan: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple, bool]:
    """``(rows, cols, values, shape, entropic)`` of any supported plan."""
    if isinstance(plan, (OTResult, SinkhornResult)):
        plan = plan.plan
    entropic = isinstance(plan, EntropicPlan)
    if isinstance(plan, TransportPlan):
        rows = np.asarray(as_numpy(plan.rows, "plan.rows"), dtype=np.int64)
        cols = np.asarray(as_numpy(plan.cols, "plan.cols"), dtype=np.int64)
        vals = as_numpy(plan.values, "plan.values")
        shape = tuple(plan.shape)
    else:
        if entropic:
            n, m = plan.shape
            if n * m > MAX_MATRIX:
                raise ValueError(
                    f"the entropic plan has {n * m:.3g} entries (> {MAX_MATRIX:.3g}) "
                    "to draw; subsample the points, or pass plan.topk(k) entries as "
                    "a TransportPlan."
                )
            plan = plan.dense()
        elif hasattr(plan, "tocoo"):  # a scipy.sparse matrix
            coo = plan.tocoo()
            rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
            return rows, cols, as_numpy(coo.data, "plan"), tuple(coo.shape), False
        P = as_numpy(plan, "plan")
        if P.ndim != 2:
            raise ValueError(
                f"plan must be a matrix of shape (n, m) (got shape {P.shape}); pass "
                "an OT result, a TransportPlan, an EntropicPlan or a 2-D array."
            )
        rows, cols = np.nonzero(P)
        vals, shape = P[rows, cols], P.shape
    if not np.isfinite(vals).all() or (vals < 0).any():
        raise ValueError(
            "plan must hold finite non-negative masses (got "
            f"{int((~np.isfinite(vals)).sum())} NaN/inf and "
            f"{int((vals < 0).sum())} negative entries); pass a transport plan."
        )
    return rows, cols, vals, tuple(int(s) for s in shape), entropic


def _arrow_polygons(s: np.ndarray, e: np.ndarray, w: np.ndarray, hmin: float):
    """Arrow outlines (k, 7, 2) from ``s`` to ``e`` with shaft half-widths ``w``."""
    d = e - s
    L = np.linalg.norm(d, axis=1)
    u = np.divide(d, L[:, None], out=np.zeros_like(d), where=L[:, None] > 0)
    nv = np.column_stack([-u[:, 1], u[:, 0]])
    hw = np.maximum(2.5 * w, hmin)  # head half-width
    hl = np.minimum(2.0 * hw, 0.5 * L)  # head length
    base = e - hl[:, None] * u
    W, H = w[:, None] * nv, hw[:, None] * nv
    return np.stack([s + W, base + W, base + H, e, base - H, base - W, s - W], axis=1)


def _permutation(order: Any, k: int, name: str) -> np.ndarray | None:
    """``order`` as int64 indices, checked to be a permutation of 0..k-1."""
    if order is None:
        return None
    o = as_numpy(order, name).ravel()
    if o.shape != (k,) or not np.array_equal(np.sort(o), np.arange(k)):
        got = f"shape {o.shape}" if o.shape != (k,) else f"{o.tolist()}"[:80]
        raise ValueError(
            f"{name} must be a permutation of 0..{k - 1} (got {got}); "
            "pass e.g. np.argsort(x[:, 0])."
        )
    return o.astype(np.int64)


def _number(v: Any, name: str, example: str) -> float:
    """``float(v)``, or an error naming the parameter."""
    try:
        return float(v)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be a number (got {type(v).__name__} {v!r}); pass e.g. "
            f"{example}."
        ) from err


def plan_arrows(
    x: Any,
    y: Any,
    plan: Any,
    *,
    ax: Any = None,
    threshold: float | None = None,
    width: float | None = None,
    color: Any = "0.25",
    alpha: float = 0.6,
    show_points: bool = True,
) -> Any:
    r"""2-D samples with one arrow per nonzero of a transport plan.

    The arrow from :math:`x_i` to :math:`y_j` has a width proportional to the
    mass :math:`P_{ij}` (the widest is ``width``); the points' areas are
    proportional to their marginal masses :math:`\sum_j P_{ij}` and
    :math:`\sum_i P_{ij}`. An exact plan (a basic solution) has at most
    :math:`n + m - 1` arrows.

    Parameters
    ----------
    x, y : array or Tensor, shape (n, 2) and (m, 2)
        The samples.
    plan : OTResult, SinkhornResult, TransportPlan, EntropicPlan, array or Tensor
        The plan: an exact result (its sparse plan), an entropic one (its
        dense plan), or an (n, m) matrix (dense, or ``scipy.sparse``).
    ax : matplotlib Axes, optional
        Where to draw; None: the current Axes.
    threshold : float, optional
        Draw only the entries above ``threshold`` times the largest. None: 0
        (every nonzero) for exact, sparse and dense plans,
        ``ENTROPIC_THRESHOLD`` = 1e-2 for entropic plans (all of whose
        entries are positive).
    width : float, optional
        Width of the arrow of the largest mass, in data units; None: 1.5% of
        the diagonal of the points' bounding box.
    color, alpha
        Colour and opacity of the arrows.
    show_points : bool, default=True
        Also draw the samples (``x`` in C0, ``y`` in C1).

    Returns
    -------
    matplotlib Axes
        The Axes drawn on; the arrows are one ``PolyCollection`` with gid
        ``"otgen.plan"`` (one polygon per entry drawn).

    Raises
    ------
    ValueError
        If ``x`` or ``y`` is not of shape (n, 2), the plan's shape is not
        (n, m), it has negative entries, more than ``MAX_ARROWS`` = 5e4
        entries are above the threshold, ``threshold`` is not in [0, 1) or
        ``width`` is not positive and finite.
    TypeError
        If ``threshold`` or ``width`` is not a number.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from otgen import exact_ot
    >>> x = np.array([[0.0, 0.0], [0.0, 1.0]])
    >>> y = x + [2.0, 0.0]
    >>> fig, ax = plt.subplots()
    >>> ax = plan_arrows(x, y, exact_ot(x, y), ax=ax)
    >>> [len(c.get_paths()) for c in ax.collections if c.get_gid() == "otgen.plan"]
    [2]
    >>> plt.close(fig)
    """
    from matplotlib.collections import PolyCollection

    xs, ys = points_2d(x, "x"), points_2d(y, "y")
    rows, cols, vals, shape, entropic = _entries(plan)
    if shape != (xs.shape[0], ys.shape[0]):
        raise ValueError(
            f"plan must have shape (n, m) = ({xs.shape[0]}, {ys.shape[0]}), one row "
            f"per point of x and one column per point of y (got {shape}); pass the "
            "plan computed on these samples."
        )
    r_mass = np.bincount(rows, weights=vals, minlength=shape[0])
    c_mass = np.bincount(cols, weights=vals, minlength=shape[1])
    if threshold is None:
        threshold = ENTROPIC_THRESHOLD if entropic else 0.0
    thr = _number(threshold, "threshold", "threshold=0.01")
    if not 0 <= thr < 1:
        raise ValueError(
            f"threshold must be in [0, 1) (got {threshold!r}); it is a fraction of "
            "the largest entry, e.g. 0.01."
        )
    top = float(vals.max()) if vals.size else 0.0
    keep = vals > thr * top
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    if vals.size > MAX_ARROWS:
        raise ValueError(
            f"{vals.size} plan entries are above threshold={thr:g} (more than "
            f"MAX_ARROWS = {MAX_ARROWS}); raise threshold (e.g. 0.01) or "
            "subsample the points."
        )
    ax = get_axes(ax)
    pts = np.vstack([xs, ys])
    diag = float(np.linalg.norm(pts.max(0) - pts.min(0))) or 1.0
    wmax = 0.015 * diag if width is None else _number(width, "width", "width=0.05")
    if not (wmax > 0 and math.isfinite(wmax)):
        raise ValueError(
            f"width must be positive and finite (got {width!r}); e.g. width=0.05."
        )
    half = 0.5 * wmax * (vals / top if top > 0 else vals)
    polys = _arrow_polygons(xs[rows], ys[cols], half, 0.006 * diag)
    coll = PolyCollection(
        polys, facecolors=color, edgecolors="none", alpha=alpha, zorder=2
    )
    coll.set_gid("otgen.plan")
    ax.add_collection(coll)
    if show_points:
        total = float(r_mass.sum()) or 1.0
        ax.scatter(
            *xs.T, s=30 * xs.shape[0] * r_mass / total, c="C0", zorder=3, label="x"
        )
        ax.scatter(
            *ys.T, s=30 * ys.shape[0] * c_mass / total, c="C1", zorder=3, label="y"
        )
    ax.update_datalim(pts)
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")
    return ax


def plan_matrix(
    plan: Any,
    *,
    ax: Any = None,
    row_order: Any = None,
    col_order: Any = None,
    log: bool = False,
    cmap: str = "Greys",
    colorbar: bool = True,
) -> Any:
    r"""A transport plan as an image: row i, column j, shade :math:`P_{ij}`.

    Parameters
    ----------
    plan : OTResult, SinkhornResult, TransportPlan, EntropicPlan, array or Tensor
        The plan (see :func:`plan_arrows`); at most ``MAX_MATRIX`` = 4e6
        entries.
    ax : matplotlib Axes, optional
        Where to draw; None: the current Axes.
    row_order, col_order : array of int, optional
        Permutations of the rows and columns (e.g. ``np.argsort(x[:, 0])``,
        which makes the plan of sorted 1-D samples diagonal).
    log : bool, default=False
        Logarithmic shades over six decades below the largest entry (zeros
        blank), to see the small entries of an entropic plan.
    cmap : str, default="Greys"
        The colour map.
    colorbar : bool, default=True
        Add a colour bar.

    Returns
    -------
    matplotlib Axes
        The Axes drawn on; the image (gid ``"otgen.plan_matrix"``) holds the
        reordered matrix.

    Raises
    ------
    ValueError
        If the orders are not permutations of the rows or columns, or the plan
        is too large.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> fig, ax = plt.subplots()
    >>> ax = plan_matrix(np.eye(3) / 3, ax=ax)
    >>> ax.images[0].get_array().shape
    (3, 3)
    >>> plt.close(fig)
    """
    from matplotlib.colors import LogNorm

    rows, cols, vals, shape, _ = _entries(plan)
    n, m = shape
    if n * m > MAX_MATRIX:
        raise ValueError(
            f"the plan has {n * m:.3g} entries (> MAX_MATRIX = {MAX_MATRIX:.3g}); "
            "draw a subsample of the points, or use plan_arrows for sparse plans."
        )
    P = np.zeros(shape)
    np.add.at(P, (rows, cols), vals)
    rows_o = _permutation(row_order, n, "row_order")
    cols_o = _permutation(col_order, m, "col_order")
    if rows_o is not None:
        P = P[rows_o]
    if cols_o is not None:
        P = P[:, cols_o]
    ax = get_axes(ax)
    top = float(P.max())
    norm = None
    shown = P
    if log and top > 0:
        norm = LogNorm(vmin=top * 1e-6, vmax=top)
        shown = np.ma.masked_less_equal(P, 0.0)
    im = ax.imshow(shown, cmap=cmap, norm=norm, interpolation="nearest", aspect="auto")
    im.set_gid("otgen.plan_matrix")
    ax.set_xlabel("j (points of y)")
    ax.set_ylabel("i (points of x)")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label="mass $P_{ij}$")
    return ax
