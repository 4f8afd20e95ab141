"""Conversion between NumPy and PyTorch at the public boundary.

otgen computes in PyTorch. Public functions accept NumPy arrays, PyTorch tensors
or nested sequences, and return results of the kind they were given: NumPy in
gives NumPy (or a Python float) out, torch in gives torch out on the same device
and dtype.
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor, Any]  # noqa: UP007 (runtime alias)

__all__ = ["ArrayLike", "is_torch", "to_tensor", "to_output", "scalar_output"]


def is_torch(*arrays: Any) -> bool:
    """Return True if any of ``arrays`` is a torch tensor."""
    return any(isinstance(a, torch.Tensor) for a in arrays)


def to_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    """Convert ``x`` to a floating torch tensor without copying when possible.

    Integer and boolean input becomes float64; float16/bfloat16 become float32.
    """
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{name} must be an array of numbers (got {type(x).__name__}); "
                "pass a NumPy array or a torch tensor."
            ) from err
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
        ):
            raise ValueError(
                f"{name} must hold real numbers (got dtype {arr.dtype}); "
                "convert it with np.asarray(..., dtype=float)."
            )
        if np.iscomplexobj(arr):
            raise ValueError(
                f"{name} must be real (got complex dtype {arr.dtype}); "
                "pass its real part or its modulus."
            )
        # ascontiguousarray would turn a 0-d scalar into shape (1,): keep it 0-d
        # so that shape checks see what the user passed.
        t = torch.from_numpy(np.ascontiguousarray(arr) if arr.ndim else arr.copy())
    if t.is_complex():
        raise ValueError(
            f"{name} must be real (got complex dtype {t.dtype}); "
            "pass its real part or its modulus."
        )
    if not t.is_floating_point():
        t = t.to(torch.float64)
    elif t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(torch.float32)
    return t


def to_output(t: torch.Tensor | None, as_torch: bool) -> Any:
    """Return ``t`` as a tensor (``as_torch``) or as a NumPy array."""
    if t is None or as_torch:
        return t
    return t.detach().cpu().numpy()


def scalar_output(t: torch.Tensor, as_torch: bool) -> Any:
    """Return a 0-d tensor as itself (``as_torch``) or as a Python float."""
    if as_torch:
        return t
    return float(t.detach().cpu())
