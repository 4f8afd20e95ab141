"""A batch of sample-set pairs, x and y of shape (B, n, d): one value per pair.

The public distances accept a leading batch axis through :func:`over_batch`,
which validates the shapes and solves the B problems one after the other:
each problem keeps its own working units (the power-of-two normalisation,
the eps schedule from its own diameter, the float32/float64 and backend
choices, the convergence certificate), which one shared loop over the batch
could not keep without batching every one of those decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from otgen._arrays import is_torch

__all__ = ["is_batched", "over_batch"]


def _ndim(v: Any) -> int:
    return v.ndim if isinstance(v, (torch.Tensor, np.ndarray)) else np.ndim(v)


def is_batched(x: Any, y: Any) -> bool:
    """True if ``x`` or ``y`` has three axes: (B, n, d)."""
    return _ndim(x) == 3 or _ndim(y) == 3


def _weights(w: Any, B: int, n: int, name: str) -> list:
    if w is None:
        return [None] * B
    k = _ndim(w)
    if k == 1:
        return [w] * B
    if k == 2 and w.shape[0] == B:
        return [w[i] for i in range(B)]
    shape = tuple(np.shape(w)) if not isinstance(w, torch.Tensor) else tuple(w.shape)
    raise ValueError(
        f"{name} must have shape ({B}, {n}) (one weight vector per pair) or ({n},) "
        f"(shared) for batched points (got shape {shape}); pass None for uniform "
        "weights."
    )


def over_batch(
    fn: Callable[..., Any], x: Any, y: Any, a: Any, b: Any, **kwargs: Any
) -> Any:
    """``fn(x[i], y[i], a=a[i], b=b[i], **kwargs)`` for each i: an (B,) array or tensor.

    NumPy in gives a float64 NumPy array; torch in gives a tensor (stacked, so
    that gradients flow to every pair).
    """
    if isinstance(x, (list, tuple)) or isinstance(y, (list, tuple)):
        x, y = np.asarray(x), np.asarray(y)
    if _ndim(x) != 3 or _ndim(y) != 3:
        raise ValueError(
            f"batched x and y must both have shape (B, n, d) and (B, m, d) (got "
            f"{_ndim(x)} and {_ndim(y)} axes); add the batch axis to both, e.g. "
            "y[None].expand(B, -1, -1) for a shared target."
        )
    B = x.shape[0]
    if y.shape[0] != B or B == 0:
        raise ValueError(
            f"x and y must hold the same number B >= 1 of sample sets (got "
            f"{x.shape[0]} and {y.shape[0]}); pair them up along the first axis."
        )
    wa = _weights(a, B, x.shape[1], "a")
    wb = _weights(b, B, y.shape[1], "b")
    vals = [fn(x[i], y[i], a=wa[i], b=wb[i], **kwargs) for i in range(B)]
    if is_torch(x, y, a, b):
        return torch.stack([torch.as_tensor(v) for v in vals])
    return np.array([float(v) for v in vals], dtype=np.float64)
