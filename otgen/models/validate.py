"""Checks of model options, shared by the preset configs and the model pieces.

Each helper returns the value as plain Python (NumPy scalars accepted, lists
become tuples) or raises ValueError naming the parameter, the constraint, the
value received and a fix: ``lam must be a number >= 0 (got 'big'); pass e.g.
lam=1.0.``. Bounds: ``minimum`` is inclusive, ``above`` and ``below`` are
strict.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from otgen._validation import check_bool, is_int

__all__ = [
    "check_bool",
    "check_choice",
    "check_float",
    "check_floats",
    "check_int",
    "check_optional",
    "check_widths",
]


def check_int(
    value: Any, *, name: str, minimum: int | None = None, fix: str | None = None
) -> int:
    """``value`` as a Python int: any integer type (``np.int64`` too), not bool.

    ``fix`` ends the message (``"; pass e.g. 128"``); by default it suggests
    ``name=max(minimum, 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> check_int(np.int64(3), name="d_z", minimum=1)
    3
    >>> check_int(0, name="d_z", minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: d_z must be an integer >= 1 (got 0); pass e.g. d_z=1.
    """
    bound = "" if minimum is None else f" >= {minimum}"
    if fix is None:
        fix = f"; pass e.g. {name}={max(minimum or 0, 1)}"
    if not is_int(value):
        raise ValueError(f"{name} must be an integer{bound} (got {value!r}){fix}.")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be an integer{bound} (got {v}){fix}.")
    return v


def _bounds(
    minimum: float | None = None, above: float | None = None, below: float | None = None
) -> str:
    """The constraint in words: `` >= 0``, `` > 0``, `` in [0, 1)``, or nothing."""
    if minimum is not None:
        low, bound = f"[{minimum:g}", f" >= {minimum:g}"
    elif above is not None:
        low, bound = f"({above:g}", f" > {above:g}"
    else:
        low, bound = None, ""
    if below is None:
        return bound
    return f" < {below:g}" if low is None else f" in {low}, {below:g})"


def _example(minimum: float | None, above: float | None, below: float | None) -> float:
    low = minimum if minimum is not None else (above if above is not None else 0.0)
    if below is not None and below <= max(low, 1.0):
        return (low + below) / 2
    return 2.0 * above if above is not None and above >= 1 else max(float(low), 1.0)


def check_float(
    value: Any,
    *,
    name: str,
    minimum: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> float:
    """``value`` as a finite Python float: any real number (not bool, not a string).

    Examples
    --------
    >>> check_float(3, name="lam", minimum=0)
    3.0
    >>> check_float("big", name="lam", minimum=0)
    Traceback (most recent call last):
    ...
    ValueError: lam must be a number >= 0 (got 'big'); pass e.g. lam=1.0.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (
            math.isfinite(v)
            and (minimum is None or v >= minimum)
            and (above is None or v > above)
            and (below is None or v < below)
        )
    if not ok:
        raise ValueError(
            f"{name} must be a number{_bounds(minimum, above, below)} (got "
            f"{value!r}); pass e.g. {name}={_example(minimum, above, below)!r}."
        )
    return v


def check_floats(
    value: Any,
    *,
    name: str,
    length: int | None = None,
    example: Sequence[float] = (1.0,),
    **bounds: float | None,
) -> tuple[float, ...]:
    """A non-empty sequence of numbers (``length`` of them if given) as a tuple.

    ``bounds`` (``minimum``, ``above``, ``below``) apply to each number, as in
    :func:`check_float`.

    Examples
    --------
    >>> check_floats([0.5, 0.999], name="betas", length=2, minimum=0, below=1)
    (0.5, 0.999)
    >>> check_floats(0.5, name="betas", length=2, minimum=0, below=1,
    ...              example=(0.5, 0.999))
    Traceback (most recent call last):
    ...
    ValueError: betas must be a list of 2 numbers in [0, 1) (got 0.5); pass e.g. ...
    """
    count = "" if length is None else f" {length}"
    what = f"a list of{count} numbers{_bounds(**bounds)}"
    msg = f"{name} must be {what} (got {value!r}); pass e.g. {name}={list(example)}."
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(msg)
    if not value or (length is not None and len(value) != length):
        raise ValueError(msg)
    try:
        return tuple(check_float(v, name=name, **bounds) for v in value)
    except ValueError:
        raise ValueError(msg) from None


def check_choice(value: Any, *, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``.

    Examples
    --------
    >>> check_choice("mlp", name="nets", choices=("auto", "mlp", "conv"))
    'mlp'
    >>> check_choice("cnn", name="nets", choices=("auto", "mlp", "conv"))
    Traceback (most recent call last):
    ...
    ValueError: nets must be one of 'auto', 'mlp', 'conv' (got 'cnn'); ...
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))} (got "
            f"{value!r}); pass e.g. {name}={choices[0]!r}."
        )
    return str(value)


def check_widths(hidden: Any, *, name: str = "hidden") -> tuple[int, ...]:
    """Hidden layer widths as a tuple of ints >= 1 (``np.int64`` accepted).

    Raises ValueError naming ``name`` for anything else (a negative or zero
    width, a float, a string, a single number instead of a sequence).

    Examples
    --------
    >>> check_widths([64, 64])
    (64, 64)
    """
    fix = f"; pass a list of positive integers, e.g. {name}=[128, 128]"
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise ValueError(
            f"{name} must be a sequence of integers >= 1 (got {hidden!r}){fix}."
        )
    bad = [h for h in hidden if not is_int(h) or h < 1]
    if bad:
        raise ValueError(
            f"{name} must hold integers >= 1 (got {list(hidden)!r}, invalid "
            f"{bad[0]!r}){fix}."
        )
    return tuple(int(h) for h in hidden)


def check_optional(check: Callable[..., Any]) -> Callable[..., Any]:
    """``check`` that also lets None through (an option whose None means "auto").

    Examples
    --------
    >>> from functools import partial
    >>> eps = check_optional(partial(check_float, above=0))
    >>> eps(None, name="eps"), eps(1, name="eps")
    (None, 1.0)
    """

    def optional(value: Any, *, name: str) -> Any:
        return None if value is None else check(value, name=name)

    return optional
