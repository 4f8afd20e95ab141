"""Where a model trains: the device, mixed precision, and CPU threads.

- :func:`resolve_device`: ``"auto"`` is the first CUDA GPU when one is
  available, else the CPU; ``"cuda"`` without a GPU is a ValueError, not a
  silent fallback.
- :func:`default_threads`: the Trainer's CPU thread count when none is given.
  Small models (fewer than :data:`SMALL_MODEL` parameters) train on **one
  thread**, as ``otgen train`` does: their per-step work is too small to
  share, and extra threads only contend with other processes (30-70 times
  slower measured with one other busy process on 2 cores). Larger models
  take the cores that the 1-minute load average leaves idle, at least one
  and at most torch's default: threads never outnumber free cores at the
  start of training.
- :func:`autocast`: bfloat16 automatic mixed precision on CUDA (no loss
  scaling needed); the latent penalties and costs are then computed in
  float32 by the models.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

__all__ = ["SMALL_MODEL", "autocast", "default_threads", "resolve_device"]

SMALL_MODEL = 1_000_000  # parameters


def resolve_device(device: Any) -> torch.device:
    """``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a torch.device.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device must be 'auto', 'cpu' or 'cuda' (got {device!r}); pass "
            "device='auto' for a GPU when there is one."
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} asked for, but no CUDA GPU is available to this "
            "torch build; pass device='cpu' or 'auto' (or install a CUDA build)."
        )
    return dev


def _free_cores() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        busy = round(os.getloadavg()[0])
    except (AttributeError, OSError):
        busy = 0
    return max(1, cores - busy)


def default_threads(model: torch.nn.Module) -> int:
    """CPU threads for training ``model`` when none are given (module docstring)."""
    n_params = sum(p.numel() for p in model.parameters())
    if n_params < SMALL_MODEL:
        return 1
    return max(1, min(torch.get_num_threads(), _free_cores()))


def autocast(device: torch.device, enabled: bool) -> Any:
    """bfloat16 autocast on CUDA when ``enabled``; a no-op context otherwise."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
