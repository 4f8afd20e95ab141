"""Input validation, and the power-of-two scales, shared by every public function.

Every error names the parameter, the constraint, the value received and a fix.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from otgen._arrays import ArrayLike, to_tensor

__all__ = [
    "check_points",
    "check_weights",
    "check_same_mass",
    "check_positive",
    "check_p",
    "check_cost_matrix",
    "check_choice",
    "check_finite",
    "check_bool",
    "is_int",
    "common_dtype",
    "pow2_exponent",
    "times_pow2",
]


def _describe(t: torch.Tensor) -> str:
    return f"shape {tuple(t.shape)}"


def _all_finite(t: torch.Tensor) -> bool:
    if t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64):
        # NumPy's single-threaded scan: torch's parallel one is 10-400x slower
        # when other processes hold the cores (0.1 s for 1e6 entries measured).
        return bool(np.isfinite(t.detach().numpy()).all())
    return bool(torch.isfinite(t).all())


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise if ``t`` holds NaN or inf."""
    if t.numel() and not _all_finite(t):
        bad = ~torch.isfinite(t)
        n_bad = int(bad.sum())
        first = tuple(int(i) for i in torch.nonzero(bad)[0].tolist())
        raise ValueError(
            f"{name} must be finite (got {n_bad} NaN or inf entries, first at index "
            f"{first}); remove or impute those entries before calling."
        )


def common_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """Promote floating dtypes: float64 if any input is float64."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _check_device(tensors: Sequence[torch.Tensor], names: Sequence[str]) -> None:
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        desc = ", ".join(f"{n} on {t.device}" for n, t in zip(names, tensors))
        raise ValueError(
            f"all inputs must be on the same device (got {desc}); "
            "move them with .to(device) first."
        )


def check_points(
    x: ArrayLike, y: ArrayLike, names: tuple[str, str] = ("x", "y")
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate two point clouds and return them as tensors of a common dtype.

    A 1-D input of length n is read as n points on the real line, shape (n, 1).
    """
    out = []
    for t, name in zip((x, y), names):
        t = to_tensor(t, name)
        if t.ndim == 1:
            t = t[:, None]
        if t.ndim != 2:
            raise ValueError(
                f"{name} must be a 2-D array of points, shape (n, d) (got "
                f"{_describe(t)}); reshape it to (n_points, dimension)."
            )
        if t.shape[0] == 0:
            raise ValueError(
                f"{name} must hold at least one point (got {_describe(t)}); "
                "pass a non-empty sample."
            )
        if t.shape[1] == 0:
            raise ValueError(
                f"{name} must have at least one coordinate (got {_describe(t)}); "
                "pass points of dimension d >= 1."
            )
        check_finite(t, name)
        out.append(t)
    tx, ty = out
    if tx.shape[1] != ty.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same dimension (got "
            f"{tx.shape[1]} and {ty.shape[1]}); both must be (n, d) and (m, d)."
        )
    _check_device((tx, ty), names)
    dtype = common_dtype(tx, ty)
    return tx.to(dtype), ty.to(dtype)


def check_weights(
    w: ArrayLike | None, n: int, name: str, like: torch.Tensor
) -> torch.Tensor:
    """Validate a weight vector of length ``n``; None gives uniform weights 1/n.

    Weights must be finite and non-negative with a positive total. They are
    returned in the dtype and on the device of ``like``.
    """
    if w is None:
        return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)
    t = to_tensor(w, name)
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(
            f"{name} must be a 1-D weight vector of length {n}, one per point (got "
            f"{_describe(t)}); pass shape ({n},) or None for uniform weights."
        )
    _check_device((t, like), (name, "the points"))
    check_finite(t, name)
    t = t.to(like.dtype)
    if bool((t < 0).any()):
        i = int(torch.nonzero(t < 0)[0])
        bad = float(t[i].detach())
        raise ValueError(
            f"{name} must be non-negative (got {name}[{i}] = {bad:.6g}); "
            "weights are masses: clip or remove negative entries."
        )
    total = float(t.detach().sum())
    if not total > 0:
        raise ValueError(
            f"{name} must have positive total mass (got sum {total:.6g}); "
            "pass at least one positive weight, or None for uniform weights."
        )
    return t


def check_same_mass(
    a: torch.Tensor, b: torch.Tensor, names: tuple[str, str] = ("a", "b")
) -> None:
    """Raise unless ``a`` and ``b`` have equal total mass (relative tolerance)."""
    sa, sb = float(a.detach().sum()), float(b.detach().sum())
    tol = 1e-6 if a.dtype == torch.float64 else 1e-4
    if abs(sa - sb) > tol * max(abs(sa), abs(sb)):
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same total mass for balanced "
            f"OT (got {sa:.9g} and {sb:.9g}); normalise both to sum to 1, "
            "or use unbalanced OT (sinkhorn with reach=...)."
        )


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float, raising unless it is finite and > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be a number (got {value!r}); pass a positive float."
        ) from err
    ok = v >= 0 if allow_zero else v > 0
    if not (math.isfinite(v) and ok):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"{name} must be finite and {bound} (got {value!r}); pass a value {bound}."
        )
    return v


def check_p(p: Any, name: str = "p") -> float:
    """Return the exponent ``p`` as a float, raising unless p >= 1."""
    try:
        v = float(p)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be a number >= 1 (got {p!r}); pass e.g. p=1 or p=2."
        ) from err
    if not (math.isfinite(v) and v >= 1):
        raise ValueError(
            f"{name} must be >= 1 (got {p!r}): W_p is a metric only for p >= 1; "
            "pass e.g. p=1 or p=2."
        )
    return v


def check_cost_matrix(
    C: ArrayLike,
    n: int | None = None,
    m: int | None = None,
    *,
    known_finite: bool = False,
):
    """Validate a cost matrix: 2-D, finite, non-empty, of shape (n, m) if given.

    ``known_finite``: the caller has already scanned C's values (the scan of
    :func:`otgen.ot.exact.emd`), so that pass is skipped.
    """
    t = to_tensor(C, "C")
    if t.ndim != 2:
        raise ValueError(
            f"C must be a 2-D cost matrix (got {_describe(t)}); "
            "pass C[i, j] = cost between source point i and target point j."
        )
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(
            f"C must be non-empty (got {_describe(t)}); pass at least one "
            "source and one target."
        )
    if (n is not None and t.shape[0] != n) or (m is not None and t.shape[1] != m):
        raise ValueError(
            f"C must have shape ({n}, {m}) to match a and b (got "
            f"{_describe(t)}); check the order of the arguments."
        )
    if not known_finite:
        check_finite(t, "C")
    return t


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))} (got {value!r})."
        )
    return value


def is_int(value: Any) -> bool:
    """True for a Python or NumPy integer (``np.int64`` included), False for bools.

    Every parameter documented as an ``int`` accepts what this accepts.
    """
    integral = isinstance(value, numbers.Integral)
    return integral and not isinstance(value, (bool, np.bool_))


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` as a bool, raising unless it is ``True`` or ``False``.

    A string such as ``"no"`` is truthy in Python; a bool option must be a real
    bool (or a NumPy bool) so that a typo cannot flip its meaning.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(
            f"{name} must be True or False (got {value!r}); pass {name}=True or "
            f"{name}=False."
        )
    return bool(value)


def pow2_exponent(v: float) -> int:
    """The exponent e of the smallest power of two with 2^e >= |v| (0 for 0, inf, NaN).

    Solvers divide their inputs by such a scale before computing and multiply
    the results back (:func:`times_pow2`): dividing by a power of two is exact
    in binary floating point, so the normalisation costs no rounding, and the
    values computed in between stay far from overflow and underflow.
    """
    v = abs(float(v))
    if not (v > 0 and math.isfinite(v)):
        return 0
    m, e = math.frexp(v)  # v = m 2^e, 0.5 <= m < 1
    return e - 1 if m == 0.5 else e


def times_pow2(v: Any, e: float) -> Any:
    """``v * 2**e`` for a float, array or tensor, without overflow in the factor.

    Exact (barring overflow or subnormal results) when ``e`` is an integer; a
    result beyond the dtype's range is inf or 0, as for any product.
    """
    ei = math.floor(e)
    if e != ei:
        v = v * 2.0 ** (e - ei)
    while ei:
        step = max(-512, min(512, ei))
        v = v * 2.0**step
        ei -= step
    return v
