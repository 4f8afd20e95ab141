"""Online reductions over all pairs (i, j): dense, chunked torch, or KeOps.

Every O(n m) sum in otgen goes through this module, so that the algorithms
(Sinkhorn, MMD) are written once and differ by backend only here:

- ``"dense"``: builds the (n, m) matrix; fastest for small problems.
- ``"chunked"``: loops over row blocks with bounded memory; pure torch, no
  compiler, any size.
- ``"keops"``: pykeops LazyTensors (compiled on first use); CPU or CUDA.

Only this module imports pykeops, lazily, through
:func:`otgen._imports.quiet_import` (pykeops prints notes on standard output).
"""

from __future__ import annotations

import functools
from typing import Literal

import torch

from otgen._imports import quiet_import

__all__ = ["Backend", "keops_available", "choose_backend", "row_chunks"]

Backend = Literal["auto", "dense", "chunked", "keops"]
BACKENDS = ("auto", "dense", "chunked", "keops")

# Largest n * m for which "auto" builds dense matrices (8e6 pairs: 64 MB in
# float64 per matrix).
DENSE_MAX_PAIRS = 8_000_000
# Target number of pairs held in memory at once by the chunked backend.
CHUNK_PAIRS = 4_000_000


@functools.lru_cache(maxsize=1)
def keops_available() -> bool:
    """True if pykeops imports (it may still need to compile on first use)."""
    try:
        quiet_import("pykeops")
    except ImportError:
        return False
    return True


def choose_backend(backend: str, n: int, m: int, device: torch.device) -> str:
    """Resolve ``backend="auto"`` from the problem size, device and availability.

    ``auto``: dense up to ``DENSE_MAX_PAIRS`` pairs; beyond, KeOps on CUDA when
    installed, otherwise chunked torch (on this project's reference CPU a
    well-blocked torch loop beats KeOps' SSE2 code; see ANCHORS.md).
    """
    if backend not in BACKENDS:
        raise ValueError(
            f"backend must be one of {', '.join(map(repr, BACKENDS))} (got "
            f"{backend!r})."
        )
    if backend == "keops" and not keops_available():
        raise ValueError(
            "backend='keops' needs pykeops (not installed); install it with "
            "`pip install otgen[keops]` or pass backend='chunked'."
        )
    if backend != "auto":
        return backend
    if n * m <= DENSE_MAX_PAIRS:
        return "dense"
    if device.type == "cuda" and keops_available():
        return "keops"
    return "chunked"


def row_chunks(n: int, m: int, pairs: int = CHUNK_PAIRS):
    """Yield ``slice`` objects over rows so that each block has <= ``pairs`` pairs."""
    step = max(1, pairs // max(m, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))
