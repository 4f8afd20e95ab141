"""Online reductions over all pairs (i, j): one small class per backend.

Every O(n m) sum in otgen goes through a :class:`Reduction`, so that the
algorithms (Sinkhorn, MMD, the multiscale solver) are written once and the
backends differ only here:

- :class:`Dense` (``"dense"``): builds (n, m) matrices in torch; fastest for
  small problems.
- :class:`StoredCost` (``"dense"`` for Sinkhorn): stores the cost matrix once
  and, on the CPU, reduces over it with the native fused loop (no (n, m)
  temporaries), which pays in high dimension, where recomputing a cost costs
  d multiply-adds per pair and pass.
- :class:`Chunked` (``"chunked"``): loops over row blocks with bounded
  memory; pure torch, no compiler, any size.
- :class:`KeOps` (``"keops"``): pykeops LazyTensors (compiled on first use);
  CPU or CUDA.
- :class:`Native` (``"native"``): fused loops on the CPU
  (:mod:`otgen.ot._native`): no block is stored, each pair is computed and
  reduced in registers; named costs and kernels only.
- :class:`Multiscale` (``"multiscale"``): Sinkhorn coarse-to-fine, the native
  loops over the kept cell pairs (:mod:`otgen.ot._multiscale`).

:func:`choose_reduction` picks one (the rules of ``backend="auto"`` are in its
docstring). Only this module imports pykeops, lazily, when the KeOps backend
runs, through :func:`otgen._imports.quiet_import`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

import torch

from otgen._imports import installed, quiet_import
from otgen.ot._native_grad import (
    NativeKernelMatmul,
    NativeQuadform,
    NativeSoftmin,
    native_kind,
)

__all__ = [
    "Backend",
    "Reduction",
    "Dense",
    "StoredCost",
    "Chunked",
    "KeOps",
    "Native",
    "Multiscale",
    "keops_available",
    "native_ready",
    "choose_reduction",
    "as_reduction",
    "row_chunks",
    "native_support",
    "multiscale_support",
    "SoftminOp",
    "softmin_op",
    "softmin",
    "kernel_matmul",
    "kernel_quadform",
    "softmax_matvec",
    "softmax_topk",
    "plan_cost_sum",
    "stored_cost",
    "stored_bytes",
]

Backend = Literal["auto", "dense", "chunked", "keops", "native", "multiscale"]
BACKENDS = ("auto", "dense", "chunked", "keops", "native", "multiscale")

# Largest n * m for which "auto" builds dense matrices (8e6 pairs: 64 MB in
# float64 per matrix).
DENSE_MAX_PAIRS = 8_000_000
# Target number of pairs held in memory at once by the chunked backend.
CHUNK_PAIRS = 4_000_000
# Smallest n * m for which "auto" runs the native loops on the CPU (below,
# per-call overheads dominate and dense torch is as fast).
NATIVE_MIN_PAIRS = 250_000
# Smallest n * m for which "auto" runs Sinkhorn coarse-to-fine ("multiscale",
# native loops over the kept cell pairs) when the problem allows it.
MULTISCALE_MIN_PAIRS = 10**8
# Sinkhorn on the CPU: "auto" stores the cost matrices ("dense", native
# reductions over them) up to this many bytes, from STORE_MIN_DIM dimensions
# on (below, recomputing a cost in registers is as fast as reading it back)
# or for costs the native loops cannot compute (callables, d > 64).
DENSE_MAX_BYTES = 2 * 2**30
STORE_MIN_DIM = 8
# Pairs per block of the chunked soft-min: 4 MiB in float32, the fastest of
# 2^16 ... 2^22 on the reference CPU (blocks that stay in cache win).
SOFTMIN_BLOCK_PAIRS = 1 << 20
# Pairs per block of the chunked kernel sums (None: from KERNEL_CHUNK_BYTES):
# large blocks, 128 MB (32e6 pairs in float32), 4x smaller with autograd,
# which keeps several block-sized intermediates (measurements in
# benchmarks/README.md, "Kernel sums: block size").
KERNEL_CHUNK_PAIRS: int | None = None
KERNEL_CHUNK_BYTES = 2**27


def keops_available() -> bool:
    """True if pykeops is installed (not imported: it prints notes on import).

    It is imported, and may compile, when the KeOps backend first runs.
    """
    return installed("pykeops")


def native_ready() -> bool:
    """True if the native loops are available (builds them on first call)."""
    from otgen.ot import _native

    return _native.available()


def _native_reason() -> str:
    from otgen.ot import _native

    return _native.unavailable_reason()


def native_support(x: torch.Tensor, *, cost=None, kernel=None) -> str | None:
    """None if the native backend can run this problem, else the reason why not."""
    from otgen.ot import _native

    if x.device.type != "cpu":
        return f"tensors are on {x.device}, the native loops run on the CPU"
    if x.dtype not in (torch.float32, torch.float64):
        return f"dtype {x.dtype} (float32 or float64 only)"
    if x.shape[-1] > _native.MAX_DIM:
        return f"dimension {x.shape[-1]} > {_native.MAX_DIM}"
    named = cost is None or (cost.fn is None and cost.q == 2 and cost.p in (1, 2))
    if not named:
        return f"cost {cost.name} (native: ||x-y||_2 and ||x-y||_2^2 only)"
    if kernel is not None and native_kind(kernel) is None:
        return (
            f"kernel {kernel.name!r}"
            + (f" with beta={kernel.beta:g}" if kernel.name == "energy" else "")
            + " (native: gaussian, laplacian, imq, energy with beta 1 or 2)"
        )
    return None


def multiscale_support(x: torch.Tensor, cost, rho) -> str | None:
    """None if Sinkhorn can run coarse-to-fine here, else the reason why not."""
    why = native_support(x, cost=cost)
    if why is not None:
        return why
    if x.shape[-1] > 3:
        return f"dimension {x.shape[-1]} > 3 (grid cells lose their use)"
    if rho is not None:
        return "unbalanced problems (reach=...) are solved on all pairs"
    return None


def row_chunks(n: int, m: int, pairs: int = CHUNK_PAIRS):
    """Yield ``slice`` objects over rows so that each block has <= ``pairs`` pairs."""
    step = max(1, pairs // max(m, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _needs_grad(*tensors: torch.Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in tensors
    )


# ---------------------------------------------------------------------------
# The protocol and the chooser
# ---------------------------------------------------------------------------


class Reduction(Protocol):
    r"""The O(n m) reductions of one backend.

    Soft-mins (Sinkhorn, log domain), with :math:`C_{ij} = c(x_i, y_j)`:

    .. math::
        \operatorname{smin}_\varepsilon(h)_i = -\varepsilon \log \sum_j
        \exp(h_j - C_{ij} / \varepsilon),

    through :meth:`bind` (a :class:`SoftminOp` over a fixed problem, no
    autograd) and :meth:`softmin` (differentiable in x, y and h). Kernel sums
    (MMD), :math:`K_{ij} = k(x_i, y_j)`: :meth:`kernel_matmul` (:math:`K V`)
    and :meth:`kernel_quadform` (:math:`V^\top K V`).
    """

    name: str  # the backend's name, as in ``backend=`` and results
    plan_pairs: int  # pairs per block of the one-pass plan products
    coarse_to_fine: bool  # Sinkhorn starts with a coarse solve (Multiscale)

    def bind(self, x: torch.Tensor, y: torch.Tensor, cost) -> SoftminOp: ...

    def softmin(self, x, y, h, eps: float, cost) -> torch.Tensor: ...

    def kernel_matmul(self, x, V, kernel, y=None, chunk_pairs=None) -> torch.Tensor: ...

    def kernel_quadform(
        self, x, V, kernel, *, diag: bool = False, chunk_pairs=None
    ) -> torch.Tensor: ...

    def kernel_sums(self, z, kernel) -> Callable[[torch.Tensor], torch.Tensor]: ...

    def linear_mmd_sum(self, x, y, kernel) -> float | None: ...

    def all_pairs(self) -> Reduction: ...

    def for_gradient(self, n: int, m: int) -> Reduction: ...


def choose_reduction(
    backend: str,
    n: int,
    m: int,
    device: torch.device,
    native_unsupported: str | None = "",
    multiscale_unsupported: str | None = "only Sinkhorn runs coarse-to-fine",
    store: tuple[int, int] | None = None,
) -> Reduction:
    """The reduction for ``backend`` (a name, or ``"auto"``: from the problem).

    ``auto``, on the CPU with the native loops available, from
    ``NATIVE_MIN_PAIRS`` pairs (n m): Sinkhorn coarse-to-fine
    (:class:`Multiscale`) from ``MULTISCALE_MIN_PAIRS`` pairs when the problem
    allows it; a stored cost matrix (:class:`StoredCost`) when ``store`` is
    given, fits in ``DENSE_MAX_BYTES`` and the points have at least
    ``STORE_MIN_DIM`` coordinates (or the native loops cannot compute the
    cost); else the all-pairs native loops (:class:`Native`) when they can run
    it. Otherwise: dense up to ``DENSE_MAX_PAIRS`` pairs (:class:`StoredCost`
    when ``store`` is given, else :class:`Dense`), then :class:`KeOps` on CUDA
    when pykeops is installed, else :class:`Chunked`. The native loops are
    never built below ``NATIVE_MIN_PAIRS`` pairs.

    ``native_unsupported`` / ``multiscale_unsupported``: None when the caller
    can run this problem on that backend, else the reason it cannot (the
    error message of an explicit request). ``store=(d, nbytes)``: the caller
    reuses a soft-min's matrices over many passes (Sinkhorn); d is the
    dimension of the points and nbytes what storing the matrices takes.
    """
    if backend not in BACKENDS:
        raise ValueError(
            f"backend must be one of {', '.join(map(repr, BACKENDS))} (got "
            f"{backend!r})."
        )
    native_ok = native_unsupported is None
    if backend == "auto":
        backend = _auto(n, m, device, native_unsupported, multiscale_unsupported, store)
    else:
        _check_request(backend, device, native_unsupported, multiscale_unsupported)
    if backend == "dense" and store is None:
        return Dense(native_ok)
    return _BY_NAME[backend](native_ok)


def _auto(n, m, device, native_unsupported, multiscale_unsupported, store) -> str:
    if device.type == "cpu" and n * m >= NATIVE_MIN_PAIRS and native_ready():
        if multiscale_unsupported is None and n * m >= MULTISCALE_MIN_PAIRS:
            return "multiscale"
        if (
            store is not None
            and store[1] <= DENSE_MAX_BYTES
            and (store[0] >= STORE_MIN_DIM or native_unsupported is not None)
        ):
            return "dense"
        if native_unsupported is None:
            return "native"
    if n * m <= DENSE_MAX_PAIRS:
        return "dense"
    if device.type == "cuda" and keops_available():
        return "keops"
    return "chunked"


def _check_request(backend, device, native_unsupported, multiscale_unsupported):
    """Raise if an explicitly requested backend cannot run this problem."""
    if backend == "keops" and not keops_available():
        raise ValueError(
            "backend='keops' needs pykeops (not installed); install it with "
            "`pip install otgen[keops]` or pass backend='chunked'."
        )
    if backend == "native":
        if device.type != "cpu":
            raise ValueError(
                f"backend='native' runs on the CPU (got tensors on {device}); "
                "pass backend='keops' or 'chunked' for GPU tensors."
            )
        if native_unsupported is not None:
            raise ValueError(
                "backend='native' cannot run this problem: "
                f"{native_unsupported or 'not supported here'}; pass "
                "backend='chunked' or 'dense'."
            )
        if not native_ready():
            raise ValueError(
                f"backend='native' is unavailable: {_native_reason()}; pass "
                "backend='chunked'."
            )
    if backend == "multiscale":
        if multiscale_unsupported is not None:
            raise ValueError(
                "backend='multiscale' cannot run this problem: "
                f"{multiscale_unsupported}; pass backend='native' or 'chunked'."
            )
        if not native_ready():
            raise ValueError(
                "backend='multiscale' needs the native loops, which are "
                f"unavailable: {_native_reason()}; pass backend='chunked'."
            )


def as_reduction(backend: str | Reduction) -> Reduction:
    """A resolved backend name as its reduction (instances pass through)."""
    if isinstance(backend, str):
        if backend not in _BY_NAME:
            names = ", ".join(map(repr, _BY_NAME))
            raise ValueError(
                f"backend must be one of {names} here (got {backend!r}); resolve "
                "'auto' with choose_reduction first."
            )
        return _BY_NAME[backend](True)
    return backend


# ---------------------------------------------------------------------------
# Soft-min over a fixed problem (the Sinkhorn loop's operator)
# ---------------------------------------------------------------------------


class SoftminOp:
    """Soft-min reductions over all pairs of a fixed problem (no autograd).

    ``rows(h, eps)`` reduces over the columns (y), ``cols(h, eps)`` over the
    rows (x); ``softmin`` is the differentiable version for the final
    (envelope-theorem) step; ``astype`` the same problem in another dtype.
    Built by :meth:`Reduction.bind`, which prepares what its backend reuses.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, cost, reduction) -> None:
        self.x, self.y, self.cost, self.reduction = x, y, cost, reduction
        self.n, self.m = x.shape[0], y.shape[0]
        self.backend = reduction.name
        self.C = self._Ct = None

    def rows(self, h: torch.Tensor, eps: float) -> torch.Tensor:
        """``-eps log sum_j exp(h_j - C_ij / eps)``, shape (n,)."""
        return self.reduction._smin(self, h, eps, False)

    def cols(self, h: torch.Tensor, eps: float) -> torch.Tensor:
        """``-eps log sum_i exp(h_i - C_ij / eps)``, shape (m,)."""
        return self.reduction._smin(self, h, eps, True)

    def softmin(self, x, y, h, eps: float) -> torch.Tensor:
        """Differentiable soft-min of ``x`` against ``y`` (see :func:`softmin`)."""
        red = self.reduction.for_gradient(self.n, self.m)
        return red.softmin(x, y, h, eps, self.cost)

    def astype(self, dtype: torch.dtype) -> SoftminOp:
        """The same problem in ``dtype`` (never two stored matrices at once)."""
        red = self.reduction.for_gradient(self.n, self.m)
        return red.bind(self.x.to(dtype), self.y.to(dtype), self.cost)


def softmin_op(x: torch.Tensor, y: torch.Tensor, cost, backend) -> SoftminOp:
    """The soft-min reductions of one problem on a resolved backend."""
    return as_reduction(backend).bind(x, y, cost)


def softmin(x, y, h, eps: float, cost, backend) -> torch.Tensor:
    """Differentiable ``-eps log sum_j exp(h_j - C(x_i, y_j) / eps)``, shape (n,)."""
    return as_reduction(backend).softmin(x, y, h, eps, cost)


def kernel_matmul(x, V, kernel, backend, y=None, chunk_pairs=None) -> torch.Tensor:
    """``K @ V`` on a resolved backend (see :meth:`Chunked.kernel_matmul`)."""
    return as_reduction(backend).kernel_matmul(x, V, kernel, y, chunk_pairs)


def kernel_quadform(
    x, V, kernel, backend, *, diag: bool = False, chunk_pairs=None
) -> torch.Tensor:
    """``V^T K V`` on a resolved backend (see :meth:`Chunked.kernel_quadform`)."""
    return as_reduction(backend).kernel_quadform(
        x, V, kernel, diag=diag, chunk_pairs=chunk_pairs
    )


def _lse_rows_(s: torch.Tensor) -> torch.Tensor:
    """Row-wise log-sum-exp of a (b, m) block, in place (``s`` is destroyed).

    Exponents are clamped below at -80 (float32) or -700 (float64): each
    clamped term adds at most e^-80 to a sum >= 1, while exp of very negative
    arguments takes a slow path and would underflow to denormals anyway.
    """
    mx = s.amax(1, keepdim=True)
    mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
    floor = -700.0 if s.dtype == torch.float64 else -80.0
    s.sub_(mx).clamp_(min=floor).exp_()
    return s.sum(1).log_().add_(mx[:, 0])


def _centred(x: torch.Tensor, y: torch.Tensor):
    """Centre both clouds on a common mean in float64, cast back (no cancellation)."""
    work = torch.float64
    center = 0.5 * (x.detach().to(work).mean(0) + y.detach().to(work).mean(0))
    xc = (x.detach().to(work) - center).to(x.dtype)
    yc = (y.detach().to(work) - center).to(y.dtype)
    return xc, yc


def stored_cost(x: torch.Tensor, y: torch.Tensor, cost) -> torch.Tensor:
    """The (n, m) cost matrix, built by row blocks (bounded temporaries)."""
    n, m = x.shape[0], y.shape[0]
    if n * m <= CHUNK_PAIRS:
        return cost.pairwise(x, y)
    C = torch.empty(n, m, dtype=x.dtype, device=x.device)
    for blk in row_chunks(n, m, CHUNK_PAIRS):
        C[blk] = cost.pairwise(x[blk], y)
    return C


def stored_bytes(n: int, m: int, dtype: torch.dtype, symmetric: bool) -> int:
    """Bytes of the matrices a Sinkhorn ``"dense"`` op stores (C and C^T)."""
    return n * m * torch.finfo(dtype).bits // 8 * (1 if symmetric else 2)


# ---------------------------------------------------------------------------
# Chunked torch: the base class (any size, bounded memory, no compiler)
# ---------------------------------------------------------------------------


def _matmul(K: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    # For a few columns, matrix-vector products beat one thin GEMM (MKL).
    if V.shape[1] <= 4:
        return torch.stack([K @ V[:, j] for j in range(V.shape[1])], 1)
    return K @ V


def _sym_block(kernel, xb, xt, vt, vb, inplace: bool):
    # Block rows [s, e) against columns [s, n) of the symmetric K(x, x): the
    # rows' own sums and, by symmetry, the contributions to columns >= e.
    kb = kernel.block(xb, xt, diag_offset=0, inplace=inplace)  # (B, n - s)
    width = xb.shape[0]
    return _matmul(kb, vt), _matmul(kb[:, width:].T, vb)  # (B, p), (n - e, p)


def _rect_block(kernel, xb, y, v, inplace: bool):
    return _matmul(kernel.block(xb, y, inplace=inplace), v)  # (B, p)


def _sym_quad_block(kernel, xb, xt, vt, vb, inplace: bool, diag: bool):
    # Rows [s, e) against columns [s, n) of the symmetric K(x, x), with the
    # diagonal block made upper triangular and its diagonal halved, so that
    # M + M^T over all blocks is V^T K V with each pair evaluated once.
    width = xb.shape[0]
    kb = kernel.block(xb, xt, diag_offset=0, inplace=inplace)  # (B, n - s)
    if inplace:
        kb[:, :width].triu_()
        kb[:, :width].diagonal().mul_(0.5)
    else:
        near = kb[:, :width]
        near = torch.triu(near, 1) + torch.diag_embed(0.5 * near.diagonal())
        kb = torch.cat([near, kb[:, width:]], 1)
    r = _matmul(kb, vt).to(torch.float64)  # (B, p)
    vb = vb.to(torch.float64)
    if diag:
        return 2 * (vb * r).sum(0)  # (p,)
    m = vb.T @ r  # (p, p)
    return m + m.T


def _kernel_chunk(x: torch.Tensor, chunk_pairs: int | None, grad: bool) -> int:
    if chunk_pairs is None:
        chunk_pairs = KERNEL_CHUNK_PAIRS
    if chunk_pairs is None:
        chunk_pairs = KERNEL_CHUNK_BYTES // x.element_size() // (4 if grad else 1)
    return chunk_pairs


class Chunked:
    """Chunked torch: row blocks of bounded size, recomputed in the backward.

    The base class of the others: each overrides what its backend does
    better, and inherits the rest.
    """

    name = "chunked"
    plan_pairs = SOFTMIN_BLOCK_PAIRS
    coarse_to_fine = False

    def __init__(self, native_ok: bool = True) -> None:
        # Whether the native loops can compute this problem's cost or kernel.
        self.native_ok = native_ok

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def all_pairs(self) -> Reduction:
        """The reduction over all pairs (itself, except for :class:`Multiscale`)."""
        return self

    def for_gradient(self, n: int, m: int) -> Reduction:
        """The reduction of the final differentiable soft-min (itself here)."""
        return self

    # -- soft-min ---------------------------------------------------------

    def bind(self, x: torch.Tensor, y: torch.Tensor, cost) -> SoftminOp:
        """The soft-min reductions of the problem (x, y, cost)."""
        op = SoftminOp(x.detach(), y.detach(), cost, self)
        self._prepare(op)
        return op

    def _prepare(self, op: SoftminOp) -> None:
        op.fast = op.cost.is_sqeuclidean
        if op.fast:
            op.xc, op.yc = _centred(op.x, op.y)
            op.x2 = (op.xc * op.xc).sum(1)  # (n,)
            op.y2 = (op.yc * op.yc).sum(1)  # (m,)

    def _smin(self, op: SoftminOp, h, eps: float, transpose: bool) -> torch.Tensor:
        """``-eps log sum_j exp(h_j - C_ij / eps)`` (over i for ``transpose``)."""
        if not op.fast:
            rows = op.m if transpose else op.n
            out = torch.empty(rows, dtype=op.x.dtype, device=op.x.device)
            cols = op.n if transpose else op.m
            for blk in row_chunks(rows, cols, SOFTMIN_BLOCK_PAIRS):
                if transpose:  # C[:, blk].T: callable costs need not be symmetric
                    C = op.cost.pairwise(op.x, op.y[blk]).T
                else:
                    C = op.cost.pairwise(op.x[blk], op.y)
                out[blk] = _lse_rows_(torch.add(h[None, :], C, alpha=-1.0 / eps))
            return out.mul_(-eps)
        # C_ij = |x_i|^2 + |y_j|^2 - 2 <x_i, y_j> on centred clouds:
        # softmin_i = |x_i|^2 - eps * lse_j(h_j - |y_j|^2 / eps + 2 <x_i, y_j> / eps)
        xc, yc, x2, y2 = (
            (op.yc, op.xc, op.y2, op.x2) if transpose else (op.xc, op.yc, op.x2, op.y2)
        )
        hy = (h - y2 / eps)[None, :]  # (1, m)
        ys = yc.T * (2.0 / eps)  # (d, m)
        out = torch.empty(xc.shape[0], dtype=xc.dtype, device=xc.device)
        for blk in row_chunks(xc.shape[0], yc.shape[0], SOFTMIN_BLOCK_PAIRS):
            out[blk] = _lse_rows_(torch.addmm(hy, xc[blk], ys))
        return x2 - eps * out

    def softmin(self, x, y, h, eps: float, cost) -> torch.Tensor:
        """Differentiable soft-min; the backward recomputes each block."""
        return _ChunkedSoftmin.apply(x, y, h, eps, cost)

    # -- kernel sums ------------------------------------------------------

    def kernel_matmul(self, x, V, kernel, y=None, chunk_pairs=None) -> torch.Tensor:
        """Kernel sums ``K @ V``, ``K_ij = kernel(x_i, y_j)``, shape (n, p).

        ``y=None`` means ``y = x``: self pairs get distance exactly 0 and the
        chunked backend evaluates each pair once (upper-triangular blocks,
        used twice by symmetry). ``kernel`` provides ``block(x, y,
        diag_offset, inplace)`` (a torch Gram block) and ``lazy(x_i, y_j)`` (a
        KeOps formula), as :class:`otgen.ot.kernels.Kernel` does.

        Differentiable in ``x``, ``y`` and ``V``. The chunked backend
        recomputes each block in the backward pass (activation
        checkpointing), so memory stays bounded by one block with autograd.
        """
        from torch.utils.checkpoint import checkpoint

        grad = _needs_grad(x, y, V)
        n, p = x.shape[0], V.shape[1]
        chunk_pairs = _kernel_chunk(x, chunk_pairs, grad)
        if y is not None:
            parts = []
            for sl in row_chunks(n, y.shape[0], chunk_pairs):
                if grad:
                    parts.append(
                        checkpoint(
                            _rect_block, kernel, x[sl], y, V, False, use_reentrant=False
                        )
                    )
                else:
                    parts.append(_rect_block(kernel, x[sl], y, V, True))
            return torch.cat(parts)
        # Symmetric case: block rows [s, e) against columns [s, n).
        out = torch.zeros(n, p, dtype=V.dtype, device=V.device)
        s = 0
        while s < n:
            e = min(n, s + max(1, chunk_pairs // (n - s)))
            args = (kernel, x[s:e], x[s:], V[s:], V[s:e])
            if grad:
                rows, cols = checkpoint(_sym_block, *args, False, use_reentrant=False)
                out = torch.cat([out[:s], out[s:e] + rows, out[e:] + cols])
            else:
                rows, cols = _sym_block(*args, True)
                out[s:e] += rows
                out[e:] += cols
            s = e
        return out

    def kernel_quadform(
        self, x, V, kernel, *, diag: bool = False, chunk_pairs=None
    ) -> torch.Tensor:
        """Quadratic forms ``V^T K V``, ``K_ij = kernel(x_i, x_j)``: (p, p) or (p,).

        Returned in float64: the row sums of each block are accumulated in
        float64 (MMD is a small difference of such sums). ``diag=True``
        returns only the diagonal ``(v_k^T K v_k)_k``. Self pairs get distance
        exactly 0. The chunked backend evaluates each pair once
        (upper-triangular blocks) with a single pass of matrix-vector products
        per block, which is what MMD estimators need. Differentiable, with
        recomputation of each block in the backward pass (bounded memory).
        """
        from torch.utils.checkpoint import checkpoint

        grad = _needs_grad(x, V)
        n = x.shape[0]
        chunk_pairs = _kernel_chunk(x, chunk_pairs, grad)
        total = None
        s = 0
        while s < n:
            e = min(n, s + max(1, chunk_pairs // (n - s)))
            args = (kernel, x[s:e], x[s:], V[s:], V[s:e])
            if grad:
                part = checkpoint(
                    _sym_quad_block, *args, False, diag, use_reentrant=False
                )
            else:
                part = _sym_quad_block(*args, True, diag)
            total = part if total is None else total + part
            s = e
        return total

    def kernel_sums(self, z, kernel) -> Callable[[torch.Tensor], torch.Tensor]:
        """``E -> K E`` for repeated products with the same ``K(z, z)``."""
        return lambda E: self.kernel_matmul(z, E, kernel)

    def linear_mmd_sum(self, x, y, kernel) -> float | None:
        """The linear-time MMD sum in one fused pass, or None (torch does it)."""
        return None


def _quadform_by_matmul(red, x, V, kernel, diag: bool) -> torch.Tensor:
    r = red.kernel_matmul(x, V, kernel).to(torch.float64)  # (n, p)
    V = V.to(torch.float64)
    return (V * r).sum(0) if diag else V.T @ r


# ---------------------------------------------------------------------------
# Dense torch, and a stored cost matrix
# ---------------------------------------------------------------------------


class Dense(Chunked):
    """Dense torch: whole (n, m) matrices (small problems)."""

    name = "dense"
    plan_pairs = DENSE_MAX_PAIRS

    def _prepare(self, op: SoftminOp) -> None:
        op.C = stored_cost(op.x, op.y, op.cost)  # (n, m)

    def _stored(self, op: SoftminOp, transpose: bool) -> torch.Tensor:
        if transpose and op._Ct is None:
            # Rows of C^T contiguous: both directions stream memory (the
            # symmetric loop reduces over rows only and never builds it).
            op._Ct = op.C.T.contiguous()
        return op._Ct if transpose else op.C

    def _smin(self, op: SoftminOp, h, eps: float, transpose: bool) -> torch.Tensor:
        C = self._stored(op, transpose)
        out = torch.empty(C.shape[0], dtype=C.dtype, device=C.device)
        for blk in row_chunks(C.shape[0], C.shape[1], DENSE_MAX_PAIRS):
            s = torch.add(h[None, :], C[blk], alpha=-1.0 / eps)
            out[blk] = _lse_rows_(s)
        return out.mul_(-eps)

    def softmin(self, x, y, h, eps: float, cost) -> torch.Tensor:
        """Differentiable dense soft-min (autograd through the (n, m) block)."""
        s = h[None, :] - cost.pairwise(x, y) / eps
        return -eps * torch.logsumexp(s, 1)

    def kernel_matmul(self, x, V, kernel, y=None, chunk_pairs=None) -> torch.Tensor:
        """``K @ V`` from the whole Gram matrix (see :meth:`Chunked.kernel_matmul`)."""
        inplace = not _needs_grad(x, y, V)
        if y is None:
            return _matmul(kernel.block(x, x, diag_offset=0, inplace=inplace), V)
        return _matmul(kernel.block(x, y, inplace=inplace), V)

    def kernel_quadform(
        self, x, V, kernel, *, diag: bool = False, chunk_pairs=None
    ) -> torch.Tensor:
        """``V^T K V`` in float64 from ``K @ V``."""
        return _quadform_by_matmul(self, x, V, kernel, diag)

    def kernel_sums(self, z, kernel) -> Callable[[torch.Tensor], torch.Tensor]:
        """``E -> K E`` with ``K(z, z)`` built once."""
        K = kernel.block(z, z, diag_offset=0, inplace=True)  # (N, N)
        return lambda E: K @ E


class StoredCost(Dense):
    """Sinkhorn's ``"dense"``: the cost matrix stored once, reduced many times.

    On the CPU, from ``NATIVE_MIN_PAIRS`` pairs, the native fused loop
    reduces over it (no (n, m) temporaries); below, elsewhere, or without the
    native loops, dense torch does. Its gradient
    step beyond ``DENSE_MAX_PAIRS`` pairs, which would keep several (n, m)
    tensors for autograd, runs on the native loops (or the chunked ones),
    whose backward recomputes the pairs in O(n + m) memory.
    """

    def _prepare(self, op: SoftminOp) -> None:
        super()._prepare(op)
        # Below NATIVE_MIN_PAIRS dense torch is fast enough: never build the
        # native library (a compiler run) for a small problem.
        op.stored_native = (
            op.n * op.m >= NATIVE_MIN_PAIRS
            and op.x.device.type == "cpu"
            and op.x.dtype in (torch.float32, torch.float64)
            and native_ready()
        )

    def _smin(self, op: SoftminOp, h, eps: float, transpose: bool) -> torch.Tensor:
        if not op.stored_native:
            return super()._smin(op, h, eps, transpose)
        from otgen.ot import _native

        return _native.lse_stored(self._stored(op, transpose), h, eps).mul_(-eps)

    def for_gradient(self, n: int, m: int) -> Reduction:
        """Dense up to ``DENSE_MAX_PAIRS`` pairs, then native or chunked."""
        if n * m <= DENSE_MAX_PAIRS:
            return self
        return Native() if self.native_ok and native_ready() else Chunked()


# ---------------------------------------------------------------------------
# KeOps (the only place pykeops is imported)
# ---------------------------------------------------------------------------


def _keops_cost(X, Y, cost):
    if cost.q == 2:
        d2 = X.sqdist(Y)
        if cost.p == 2:
            return d2
        return d2.sqrt() if cost.p == 1 else d2 ** (cost.p / 2)
    d = ((X - Y).abs() ** cost.q).sum(-1) ** (1.0 / cost.q)
    return d if cost.p == 1 else d**cost.p


def _lazy_tensor():
    try:
        return quiet_import("pykeops.torch").LazyTensor
    except ImportError as err:  # installed (find_spec) but broken
        raise ValueError(
            f"backend='keops' could not import pykeops ({err}); reinstall it "
            "(`pip install otgen[keops]`) or pass backend='chunked'."
        ) from err


class KeOps(Chunked):
    """pykeops LazyTensors: compiled reductions, CPU or CUDA (named costs)."""

    name = "keops"

    def _prepare(self, op: SoftminOp) -> None:
        if op.cost.fn is not None:
            raise ValueError(
                "backend='keops' supports the named costs only (got a callable "
                "cost); pass backend='chunked' or 'dense' for a callable cost."
            )

    def _smin(self, op: SoftminOp, h, eps: float, transpose: bool) -> torch.Tensor:
        x, y = (op.y, op.x) if transpose else (op.x, op.y)
        return self.softmin(x, y, h, eps, op.cost)

    def softmin(self, x, y, h, eps: float, cost) -> torch.Tensor:
        """Differentiable soft-min by a KeOps log-sum-exp reduction."""
        LazyTensor = _lazy_tensor()
        X = LazyTensor(x[:, None, :].contiguous())
        Y = LazyTensor(y[None, :, :].contiguous())
        H = LazyTensor(h[None, :, None].contiguous())
        inv = LazyTensor(torch.tensor([1.0 / eps], dtype=x.dtype, device=x.device))
        s = H - _keops_cost(X, Y, cost) * inv
        return -eps * s.logsumexp(dim=1).view(-1)

    def kernel_matmul(self, x, V, kernel, y=None, chunk_pairs=None) -> torch.Tensor:
        """``K @ V`` by a KeOps sum reduction (see :meth:`Chunked.kernel_matmul`)."""
        LazyTensor = _lazy_tensor()
        yy = x if y is None else y
        x_i = LazyTensor(x.contiguous()[:, None, :])
        y_j = LazyTensor(yy.contiguous()[None, :, :])
        v_j = LazyTensor(V.contiguous()[None, :, :])
        return (kernel.lazy(x_i, y_j) * v_j).sum(dim=1)

    def kernel_quadform(
        self, x, V, kernel, *, diag: bool = False, chunk_pairs=None
    ) -> torch.Tensor:
        """``V^T K V`` in float64 from ``K @ V``."""
        return _quadform_by_matmul(self, x, V, kernel, diag)


# ---------------------------------------------------------------------------
# Native loops (otgen.ot._native), and the multiscale solver's reductions
# ---------------------------------------------------------------------------


class Native(Chunked):
    """Fused loops on the CPU: each pair computed and reduced in registers."""

    name = "native"

    def _prepare(self, op: SoftminOp) -> None:
        op.xn, op.yn = op.x.contiguous(), op.y.contiguous()
        op.xt, op.yt = op.x.T.contiguous(), op.y.T.contiguous()

    def _smin(self, op: SoftminOp, h, eps: float, transpose: bool) -> torch.Tensor:
        x, yt = (op.yn, op.xt) if transpose else (op.xn, op.yt)
        return self.lse_units(x, yt, h, eps, int(op.cost.p)).mul_(-eps)

    def lse_units(self, x, yt, h, eps: float, p: int, units=None) -> torch.Tensor:
        """``log sum_j exp(h_j - |x_i - y_j|^p / eps)`` over all pairs or ``units``.

        ``units``: the block-sparse pair lists of the multiscale solver
        (:func:`otgen.ot._native.lse_rows`).
        """
        from otgen.ot import _native

        return _native.lse_rows(x, yt, h, eps, p, units)

    def softmin(
        self, x, y, h, eps: float, cost, units_rows=None, units_cols=None
    ) -> torch.Tensor:
        """Differentiable soft-min; the backward is two more native passes."""
        return NativeSoftmin.apply(x, y, h, eps, cost, units_rows, units_cols)

    def kernel_matmul(self, x, V, kernel, y=None, chunk_pairs=None) -> torch.Tensor:
        """``K @ V`` by the native loops (see :meth:`Chunked.kernel_matmul`)."""
        return NativeKernelMatmul.apply(x, x if y is None else y, V, kernel)

    def kernel_quadform(
        self, x, V, kernel, *, diag: bool = False, chunk_pairs=None
    ) -> torch.Tensor:
        """``V^T K V`` in float64 by the native loops, each pair once."""
        return NativeQuadform.apply(x, V, kernel, diag)

    def linear_mmd_sum(self, x, y, kernel) -> float | None:
        """One fused native pass over the pairs (None under autograd)."""
        if _needs_grad(x, y):
            return None
        from otgen.ot import _native

        return _native.linear_mmd_sum(native_kind(kernel), kernel.scales, x, y)


class Multiscale(Native):
    """Sinkhorn coarse-to-fine: a coarse solve, then the kept cell pairs.

    The Sinkhorn solver builds the block-sparse operator
    (:class:`otgen.ot._multiscale.MultiscaleOp`) after its coarse solve; the
    soft-mins over all pairs (a final gradient without that operator, kernel
    sums) are the native loops'.
    """

    name = "multiscale"
    coarse_to_fine = True

    def bind(self, x: torch.Tensor, y: torch.Tensor, cost) -> SoftminOp:
        """Not available: the operator comes from the coarse solve."""
        raise ValueError(
            "backend='multiscale' builds its operator from a coarse solve (see "
            "otgen.ot.sinkhorn); pass backend='native' for all pairs."
        )

    def all_pairs(self) -> Reduction:
        """The native loops over all pairs (or chunked torch)."""
        return Native() if self.native_ok else Chunked()


# Sinkhorn's "dense" (the default for a name) stores its cost matrix; MMD's
# dense kernel sums are the same as Dense's.
_BY_NAME: dict[str, type[Chunked]] = {
    "dense": StoredCost,
    "chunked": Chunked,
    "keops": KeOps,
    "native": Native,
    "multiscale": Multiscale,
}


# ---------------------------------------------------------------------------
# Autograd Functions of the chunked and native soft-mins and kernel sums
# ---------------------------------------------------------------------------


class _ChunkedSoftmin(torch.autograd.Function):
    """Differentiable chunked soft-min; backward recomputes each block."""

    @staticmethod
    def forward(ctx, x, y, h, eps, cost):
        out = Chunked().bind(x, y, cost).rows(h.detach(), eps)
        ctx.save_for_backward(x, y, h, out)
        ctx.eps, ctx.cost = eps, cost
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, y, h, out = ctx.saved_tensors
        eps, cost = ctx.eps, ctx.cost
        gx = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        gy = torch.zeros_like(y) if ctx.needs_input_grad[1] else None
        gh = torch.zeros_like(h) if ctx.needs_input_grad[2] else None
        if gx is None and gy is None and gh is None:
            return None, None, None, None, None
        go = grad_out.detach()
        for blk in row_chunks(x.shape[0], y.shape[0], SOFTMIN_BLOCK_PAIRS):
            with torch.enable_grad():
                xb = x[blk].detach().requires_grad_(gx is not None)
                yb = y.detach().requires_grad_(gy is not None)
                C = cost.pairwise(xb, yb)  # (b, m)
                # P_ij = exp(h_j - C_ij / eps + f_i / eps): the row softmax.
                P = torch.exp(h.detach()[None, :] - (C - out[blk, None]) / eps)
                wts = (P * go[blk, None]).detach()  # d f_i / d C_ij = P_ij
                inputs = [t for t in (xb, yb) if t.requires_grad]
                if inputs:
                    grads = torch.autograd.grad((wts * C).sum(), inputs)
                    it = iter(grads)
                    if gx is not None:
                        gx[blk] += next(it)
                    if gy is not None:
                        gy += next(it)
            if gh is not None:
                gh -= eps * wts.sum(0)
        return gx, gy, gh, None, None


# ---------------------------------------------------------------------------
# One-pass products with the entropic plan (dense or row blocks)
# ---------------------------------------------------------------------------


def softmax_matvec(x, y, h, eps, cost, pairs: int, v):
    """``(lse_i, sum_j P_ij v_j)`` with ``P_ij = softmax_j(h_j - C_ij / eps)``.

    ``v`` has shape (m,) or (m, k); row blocks of at most ``pairs`` pairs
    (a reduction's ``plan_pairs``).
    """
    vv = v[:, None] if v.ndim == 1 else v
    lse = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    out = torch.empty(x.shape[0], vv.shape[1], dtype=x.dtype, device=x.device)
    for blk in row_chunks(x.shape[0], y.shape[0], pairs):
        s = h[None, :] - cost.pairwise(x[blk], y) / eps  # (b, m)
        lse[blk] = torch.logsumexp(s, 1)
        out[blk] = torch.exp(s - lse[blk, None]) @ vv
    return lse, (out[:, 0] if v.ndim == 1 else out)


def softmax_topk(x, y, h, eps, cost, pairs: int, k: int):
    """Per row, the ``k`` largest ``s_ij = h_j - C_ij / eps`` and their columns.

    Returns ``(lse (n,), s (n, k), idx (n, k))``.
    """
    n = x.shape[0]
    lse = torch.empty(n, dtype=x.dtype, device=x.device)
    vals = torch.empty(n, k, dtype=x.dtype, device=x.device)
    idx = torch.empty(n, k, dtype=torch.int64, device=x.device)
    for blk in row_chunks(n, y.shape[0], pairs):
        s = h[None, :] - cost.pairwise(x[blk], y) / eps  # (b, m)
        lse[blk] = torch.logsumexp(s, 1)
        vals[blk], idx[blk] = s.topk(k, dim=1)
    return lse, vals, idx


def plan_cost_sum(x, y, h, la, eps, cost, pairs: int) -> torch.Tensor:
    """``sum_ij exp(la_i + h_j - C_ij / eps) C_ij``: the plan's transport cost."""
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for blk in row_chunks(x.shape[0], y.shape[0], pairs):
        C = cost.pairwise(x[blk], y)  # (b, m)
        P = torch.exp(la[blk, None] + h[None, :] - C / eps)
        total += (P * C).sum(dtype=torch.float64)
    return total.to(x.dtype)
