"""Online reductions over all pairs (i, j): dense, chunked torch, or KeOps.

Every O(n m) sum in otgen goes through this module, so that the algorithms
(Sinkhorn, MMD) are written once and differ by backend only here:

- ``"dense"``: builds the (n, m) matrix; fastest for small problems. Sinkhorn
  stores its cost matrix once and, on the CPU, reduces over it with the
  native fused loop (no (n, m) temporaries), which pays in high dimension,
  where recomputing a cost costs d multiply-adds per pair and pass.
- ``"chunked"``: loops over row blocks with bounded memory; pure torch, no
  compiler, any size.
- ``"keops"``: pykeops LazyTensors (compiled on first use); CPU or CUDA.
- ``"native"``: fused C++ loops on the CPU (:mod:`otgen.ot._native`, compiled
  on first use): no block is stored, each pair is computed and reduced in
  registers; named costs and kernels only.

Only this module imports pykeops, lazily, through
:func:`otgen._imports.quiet_import` (pykeops prints notes on standard output).
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch

from otgen._imports import installed, quiet_import

__all__ = [
    "Backend",
    "keops_available",
    "choose_backend",
    "row_chunks",
    "kernel_matmul",
    "kernel_quadform",
    "native_support",
    "multiscale_support",
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


@functools.lru_cache(maxsize=1)
def keops_available() -> bool:
    """True if pykeops is installed (not imported: it prints notes on import).

    It is imported, and may compile, when the KeOps backend first runs.
    """
    return installed("pykeops")


def choose_backend(
    backend: str,
    n: int,
    m: int,
    device: torch.device,
    native_unsupported: str | None = "",
    multiscale_unsupported: str | None = "only Sinkhorn runs coarse-to-fine",
    store: tuple[int, int] | None = None,
) -> str:
    """Resolve ``backend="auto"`` from the problem size, device and availability.

    ``auto``, on the CPU with the native loops available: Sinkhorn
    coarse-to-fine (``"multiscale"``) from ``MULTISCALE_MIN_PAIRS`` pairs when
    the problem allows it; a stored cost matrix (``"dense"``) when ``store``
    is given, fits in ``DENSE_MAX_BYTES`` and the points have at least
    ``STORE_MIN_DIM`` coordinates (or the native loops cannot compute the
    cost); the all-pairs native loops from ``NATIVE_MIN_PAIRS``; otherwise
    dense up to ``DENSE_MAX_PAIRS`` pairs, then KeOps on CUDA when installed,
    else chunked torch.

    ``native_unsupported`` / ``multiscale_unsupported``: None when the caller
    can run this problem on that backend, else the reason it cannot (the
    error message of an explicit request). ``store=(d, nbytes)``: the caller
    reuses its matrices over many passes (Sinkhorn); d is the dimension of
    the points and nbytes what storing the matrices takes.
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
    if backend == "native":
        if device.type != "cpu":
            raise ValueError(
                f"backend='native' runs on the CPU (got tensors on {device}); "
                "pass backend='keops' or 'chunked' for GPU tensors."
            )
        if native_unsupported is None:
            from otgen.ot import _native

            if not _native.available():
                raise ValueError(
                    "backend='native' is unavailable: "
                    f"{_native.unavailable_reason()}; pass backend='chunked'."
                )
        else:
            raise ValueError(
                "backend='native' cannot run this problem: "
                f"{native_unsupported or 'not supported here'}; pass "
                "backend='chunked' or 'dense'."
            )
    if backend == "multiscale":
        if multiscale_unsupported is not None:
            raise ValueError(
                "backend='multiscale' cannot run this problem: "
                f"{multiscale_unsupported}; pass backend='native' or 'chunked'."
            )
        if not _native_ready():
            from otgen.ot import _native

            raise ValueError(
                "backend='multiscale' needs the native loops, which are "
                f"unavailable: {_native.unavailable_reason()}; pass "
                "backend='chunked'."
            )
    if backend != "auto":
        return backend
    if device.type == "cpu" and n * m >= NATIVE_MIN_PAIRS and _native_ready():
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


def _native_ready() -> bool:
    from otgen.ot import _native

    return _native.available()


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
    if kernel is not None and _native_kind(kernel) is None:
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


def _native_kind(kernel) -> str | None:
    if kernel.fn is not None:
        return None
    if kernel.name == "energy":
        return {1.0: "energy1", 2.0: "energy2"}.get(float(kernel.beta))
    return kernel.name


def row_chunks(n: int, m: int, pairs: int = CHUNK_PAIRS):
    """Yield ``slice`` objects over rows so that each block has <= ``pairs`` pairs."""
    step = max(1, pairs // max(m, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


# ---------------------------------------------------------------------------
# Kernel sums (MMD): K @ V with K_ij = k(x_i, y_j), never storing K beyond a
# block in the "chunked" and "keops" backends.
# ---------------------------------------------------------------------------

# Pairs per block of the chunked kernel sums (None: from KERNEL_CHUNK_BYTES).
# Every block costs a few OpenMP synchronisations per elementwise pass, and on
# a loaded CPU those dominate: at n = 1e4, d = 3, blocks of 1e6 / 4e6 / 16e6 /
# 64e6 pairs took 28 / 12 / 9.5 / 8.1 s (2 shared cores, load 12). So blocks
# are large, 128 MB (32e6 pairs in float32), and 4x smaller with autograd,
# which keeps several block-sized intermediates.
KERNEL_CHUNK_PAIRS: int | None = None
KERNEL_CHUNK_BYTES = 2**27


def _needs_grad(*tensors: torch.Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in tensors
    )


def _matmul(K: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    # For a few columns, matrix-vector products beat one thin GEMM (MKL).
    if V.shape[1] <= 4:
        return torch.stack([K @ V[:, j] for j in range(V.shape[1])], 1)
    return K @ V


def _sym_block(
    kernel,
    xb: torch.Tensor,
    xt: torch.Tensor,
    vt: torch.Tensor,
    vb: torch.Tensor,
    inplace: bool,
):
    # Block rows [s, e) against columns [s, n) of the symmetric K(x, x): the
    # rows' own sums and, by symmetry, the contributions to columns >= e.
    kb = kernel.block(xb, xt, diag_offset=0, inplace=inplace)  # (B, n - s)
    width = xb.shape[0]
    return _matmul(kb, vt), _matmul(kb[:, width:].T, vb)  # (B, p), (n - e, p)


def _rect_block(
    kernel, xb: torch.Tensor, y: torch.Tensor, v: torch.Tensor, inplace: bool
):
    return _matmul(kernel.block(xb, y, inplace=inplace), v)  # (B, p)


def kernel_matmul(
    x: torch.Tensor,
    V: torch.Tensor,
    kernel,
    backend: str,
    y: torch.Tensor | None = None,
    chunk_pairs: int | None = None,
) -> torch.Tensor:
    """Kernel sums ``K @ V``, ``K_ij = kernel(x_i, y_j)``, shape (n, p).

    ``y=None`` means ``y = x``: self pairs get distance exactly 0 and the
    chunked backend evaluates each pair once (upper-triangular blocks, used
    twice by symmetry). ``kernel`` provides ``block(x, y, diag_offset,
    inplace)`` (a torch Gram block) and ``lazy(x_i, y_j)`` (a KeOps formula),
    as :class:`otgen.ot.kernels.Kernel` does. ``backend`` is resolved
    ("dense", "chunked" or "keops", see :func:`choose_backend`).

    Differentiable in ``x``, ``y`` and ``V``. The chunked backend recomputes
    each block in the backward pass (activation checkpointing), so memory
    stays bounded by one block with autograd too.
    """
    grad = _needs_grad(x, y, V)
    if backend == "native":
        return _NativeKernelMatmul.apply(x, x if y is None else y, V, kernel)
    if backend == "keops":
        LazyTensor = quiet_import("pykeops.torch").LazyTensor

        yy = x if y is None else y
        x_i = LazyTensor(x.contiguous()[:, None, :])
        y_j = LazyTensor(yy.contiguous()[None, :, :])
        v_j = LazyTensor(V.contiguous()[None, :, :])
        return (kernel.lazy(x_i, y_j) * v_j).sum(dim=1)
    if backend == "dense":
        if y is None:
            return _matmul(kernel.block(x, x, diag_offset=0, inplace=not grad), V)
        return _matmul(kernel.block(x, y, inplace=not grad), V)
    if backend != "chunked":
        raise ValueError(
            f"backend must be 'dense', 'chunked' or 'keops' here (got {backend!r}); "
            "resolve 'auto' with choose_backend first."
        )
    from torch.utils.checkpoint import checkpoint

    n, p = x.shape[0], V.shape[1]
    if chunk_pairs is None:
        chunk_pairs = KERNEL_CHUNK_PAIRS
    if chunk_pairs is None:
        chunk_pairs = KERNEL_CHUNK_BYTES // x.element_size() // (4 if grad else 1)
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
        if grad:
            rows, cols = checkpoint(
                _sym_block,
                kernel,
                x[s:e],
                x[s:],
                V[s:],
                V[s:e],
                False,
                use_reentrant=False,
            )
            out = torch.cat([out[:s], out[s:e] + rows, out[e:] + cols])
        else:
            rows, cols = _sym_block(kernel, x[s:e], x[s:], V[s:], V[s:e], True)
            out[s:e] += rows
            out[e:] += cols
        s = e
    return out


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


def kernel_quadform(
    x: torch.Tensor,
    V: torch.Tensor,
    kernel,
    backend: str,
    *,
    diag: bool = False,
    chunk_pairs: int | None = None,
) -> torch.Tensor:
    """Quadratic forms ``V^T K V``, ``K_ij = kernel(x_i, x_j)``: (p, p) or (p,).

    Returned in float64: the row sums of each block are accumulated in float64
    (MMD is a small difference of such sums).

    ``diag=True`` returns only the diagonal ``(v_k^T K v_k)_k``. Self pairs get
    distance exactly 0. The chunked backend evaluates each pair once
    (upper-triangular blocks) with a single pass of matrix-vector products per
    block, which is what MMD estimators need (cheaper than ``kernel_matmul``,
    which must also scatter the transposed blocks). Differentiable, with
    recomputation of each block in the backward pass (bounded memory).
    """
    grad = _needs_grad(x, V)
    if backend == "native":
        return _NativeQuadform.apply(x, V, kernel, diag)
    if backend in ("dense", "keops"):
        r = kernel_matmul(x, V, kernel, backend).to(torch.float64)  # (n, p)
        V = V.to(torch.float64)
        return (V * r).sum(0) if diag else V.T @ r
    if backend != "chunked":
        raise ValueError(
            f"backend must be 'dense', 'chunked' or 'keops' here (got {backend!r}); "
            "resolve 'auto' with choose_backend first."
        )
    from torch.utils.checkpoint import checkpoint

    n = x.shape[0]
    if chunk_pairs is None:
        chunk_pairs = KERNEL_CHUNK_PAIRS
    if chunk_pairs is None:
        chunk_pairs = KERNEL_CHUNK_BYTES // x.element_size() // (4 if grad else 1)
    total = None
    s = 0
    while s < n:
        e = min(n, s + max(1, chunk_pairs // (n - s)))
        args = (kernel, x[s:e], x[s:], V[s:], V[s:e])
        if grad:
            part = checkpoint(_sym_quad_block, *args, False, diag, use_reentrant=False)
        else:
            part = _sym_quad_block(*args, True, diag)
        total = part if total is None else total + part
        s = e
    return total


def _nk(kernel):
    from otgen.ot import _native

    return _native, _native_kind(kernel), kernel.scales


def _native_kernel_rows(kernel, x, yt, V, tri: bool) -> torch.Tensor:
    """``sum_j k(x_i, y_j) V_j`` (float64), at most 8 columns of V per call."""
    nat, kind, scales = _nk(kernel)
    parts = [
        nat.kernel_rows(kind, scales, x, yt, V[:, c : c + 8].T.to(x.dtype), tri)
        for c in range(0, V.shape[1], 8)
    ]
    return torch.cat(parts, 1)


def _native_kernel_grad(kernel, x, yt, U, V) -> torch.Tensor:
    r"""``\sum_j \nabla_{x_i} k(x_i, y_j) (U_i \cdot V_j)``, shape (n, d)."""
    nat, kind, scales = _nk(kernel)
    G = None
    for c in range(0, V.shape[1], 8):
        Vc = V[:, c : c + 8].T.to(x.dtype)
        part = nat.kernel_grad_rows(kind, scales, x, yt, U[:, c : c + 8], Vc)
        G = part if G is None else G + part
    return G


class _NativeKernelMatmul(torch.autograd.Function):
    """``K @ V`` by the native loops; backward by the same loops (O(n + m) memory).

    For ``y = x`` the same tensor is passed as both inputs and autograd adds
    the two gradients.
    """

    @staticmethod
    def forward(ctx, x, y, V, kernel):
        xd, yd = x.detach(), y.detach()
        yt = yd.T.contiguous()
        out = _native_kernel_rows(kernel, xd, yt, V.detach(), False).to(V.dtype)
        ctx.save_for_backward(x, y, V)
        ctx.kernel = kernel
        return out

    @staticmethod
    def backward(ctx, G):
        x, y, V = ctx.saved_tensors
        kernel = ctx.kernel
        xd, yd, Vd, Gd = x.detach(), y.detach(), V.detach(), G.detach()
        gx = gy = gV = None
        xt, yt = xd.T.contiguous(), yd.T.contiguous()
        if ctx.needs_input_grad[2]:
            gV = _native_kernel_rows(kernel, yd, xt, Gd, False).to(V.dtype)
        if ctx.needs_input_grad[0]:
            gx = _native_kernel_grad(kernel, xd, yt, Gd, Vd)
        if ctx.needs_input_grad[1]:
            gy = _native_kernel_grad(kernel, yd, xt, Vd, Gd)
        return gx, gy, gV, None


class _NativeQuadform(torch.autograd.Function):
    """``V^T K(z, z) V`` (float64) by the native loops, each pair once."""

    @staticmethod
    def forward(ctx, z, V, kernel, diag: bool):
        zd, Vd = z.detach(), V.detach()
        r = _native_kernel_rows(kernel, zd, zd.T.contiguous(), Vd, True)  # j > i
        V64 = Vd.to(torch.float64)
        k0 = float(kernel.value_at_zero)
        if diag:
            out = 2 * (V64 * r).sum(0) + k0 * (V64 * V64).sum(0)
        else:
            m = V64.T @ r
            out = m + m.T + k0 * (V64.T @ V64)
        ctx.save_for_backward(z, V)
        ctx.kernel, ctx.diag = kernel, diag
        return out

    @staticmethod
    def backward(ctx, G):
        z, V = ctx.saved_tensors
        kernel = ctx.kernel
        Gm = torch.diag_embed(G) if ctx.diag else G
        Gs = (Gm + Gm.T).to(torch.float64)  # d/dV_i of V^T K V : (K V)_i Gs
        zd, Vd = z.detach(), V.detach()
        zt = zd.T.contiguous()
        U = (Vd.to(torch.float64) @ Gs).to(z.dtype)
        gz = gV = None
        if ctx.needs_input_grad[0]:
            # sum_ij K_ij V_i^T G V_j: d/dz_i = sum_j grad k(z_i, z_j) V_i^T Gs V_j
            gz = _native_kernel_grad(kernel, zd, zt, U, Vd)
        if ctx.needs_input_grad[1]:
            gV = _native_kernel_rows(kernel, zd, zt, U, False).to(V.dtype)
        return gz, gV, None, None


# ---------------------------------------------------------------------------
# Soft-min reductions for Sinkhorn (log-domain)
# ---------------------------------------------------------------------------
#
# softmin_i(h) = -eps * log sum_j exp(h_j - C(x_i, y_j) / eps)
#
# The Sinkhorn loop (otgen/ot/sinkhorn.py) calls a `SoftminOp` built once per
# problem: ``rows(h, eps)`` reduces over the columns (y), ``cols(h, eps)`` over
# the rows (x). `softmin` is the differentiable, stateless version used for the
# final (envelope-theorem) step; the chunked backend differentiates it with a
# custom autograd Function that recomputes each block in the backward pass, so
# memory stays O(n + m).

__all__ += [
    "SoftminOp",
    "softmin_op",
    "softmin",
    "softmax_matvec",
    "softmax_topk",
    "plan_cost_sum",
]

# Pairs per block of the chunked soft-min: 4 MiB in float32, the fastest of
# 2^16 ... 2^22 on the reference CPU (blocks that stay in cache win).
SOFTMIN_BLOCK_PAIRS = 1 << 20


def _blocks(n: int, m: int, pairs: int = SOFTMIN_BLOCK_PAIRS):
    step = max(1, pairs // max(m, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _centred(x: torch.Tensor, y: torch.Tensor):
    """Centre both clouds on a common mean in float64, cast back (no cancellation)."""
    work = torch.float64
    center = 0.5 * (x.detach().to(work).mean(0) + y.detach().to(work).mean(0))
    xc = (x.detach().to(work) - center).to(x.dtype)
    yc = (y.detach().to(work) - center).to(y.dtype)
    return xc, yc


def _lse_rows_(s: torch.Tensor) -> torch.Tensor:
    """Row-wise log-sum-exp of a (b, m) block, in place (``s`` is destroyed).

    Exponents are clamped below at -80 (float32) or -700 (float64): each
    clamped term adds at most e^-80 to a sum >= 1, while exp of very negative
    arguments takes a slow path (10x slower, measured) and would underflow to
    denormals anyway.
    """
    mx = s.amax(1, keepdim=True)
    mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
    floor = -700.0 if s.dtype == torch.float64 else -80.0
    s.sub_(mx).clamp_(min=floor).exp_()
    return s.sum(1).log_().add_(mx[:, 0])


class SoftminOp:
    """Soft-min reductions over all pairs of a fixed problem (no autograd).

    Parameters
    ----------
    x, y : Tensor, shape (n, d) and (m, d)
        The two clouds (detached).
    cost : Cost
        The ground cost.
    backend : {"dense", "chunked", "keops", "native"}
        Resolved backend.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, cost, backend: str) -> None:
        self.x, self.y, self.cost, self.backend = x, y, cost, backend
        self.n, self.m = x.shape[0], y.shape[0]
        self.fast = backend == "chunked" and cost.is_sqeuclidean
        self.C = self._Ct = None
        if backend == "native":
            self.xn, self.yn = x.contiguous(), y.contiguous()
            self.xt, self.yt = x.T.contiguous(), y.T.contiguous()
        if backend == "dense":
            self.C = stored_cost(x, y, cost)  # (n, m)
            # The native fused loop reduces over C without (n, m) temporaries.
            self.stored_native = (
                x.device.type == "cpu"
                and x.dtype in (torch.float32, torch.float64)
                and _native_ready()
            )
        elif self.fast:
            self.xc, self.yc = _centred(x, y)
            self.x2 = (self.xc * self.xc).sum(1)  # (n,)
            self.y2 = (self.yc * self.yc).sum(1)  # (m,)

    def max_cost(self) -> float:
        """Largest entry of the cost matrix (one pass)."""
        if self.C is not None:
            return float(self.C.max())
        best = -math.inf
        for blk in _blocks(self.n, self.m):
            best = max(best, float(self.cost.pairwise(self.x[blk], self.y).max()))
        return best

    def rows(self, h: torch.Tensor, eps: float) -> torch.Tensor:
        """``-eps log sum_j exp(h_j - C_ij / eps)``, shape (n,)."""
        return self._reduce(h, eps, transpose=False)

    def cols(self, h: torch.Tensor, eps: float) -> torch.Tensor:
        """``-eps log sum_i exp(h_i - C_ij / eps)``, shape (m,)."""
        return self._reduce(h, eps, transpose=True)

    def _reduce(self, h: torch.Tensor, eps: float, transpose: bool) -> torch.Tensor:
        if self.backend == "dense":
            if transpose and self._Ct is None:
                # Rows of C^T contiguous: both directions stream memory (the
                # symmetric loop reduces over rows only and never builds it).
                self._Ct = self.C.T.contiguous()
            C = self._Ct if transpose else self.C
            if self.stored_native:
                from otgen.ot import _native

                return _native.lse_stored(C, h, eps).mul_(-eps)
            out = torch.empty(C.shape[0], dtype=C.dtype, device=C.device)
            for blk in _blocks(C.shape[0], C.shape[1], DENSE_MAX_PAIRS):
                s = torch.add(h[None, :], C[blk], alpha=-1.0 / eps)
                out[blk] = _lse_rows_(s)
            return out.mul_(-eps)
        if self.backend == "keops":
            x, y = (self.y, self.x) if transpose else (self.x, self.y)
            return _softmin_keops(x, y, h, eps, self.cost)
        if self.backend == "native":
            from otgen.ot import _native

            x, yt = (self.yn, self.xt) if transpose else (self.xn, self.yt)
            return _native.lse_rows(x, yt, h, eps, int(self.cost.p)).mul_(-eps)
        if not self.fast:
            rows = self.m if transpose else self.n
            out = torch.empty(rows, dtype=self.x.dtype, device=self.x.device)
            for blk in _blocks(rows, self.n if transpose else self.m):
                if transpose:  # C[:, blk].T: callable costs need not be symmetric
                    C = self.cost.pairwise(self.x, self.y[blk]).T
                else:
                    C = self.cost.pairwise(self.x[blk], self.y)
                out[blk] = _lse_rows_(torch.add(h[None, :], C, alpha=-1.0 / eps))
            return out.mul_(-eps)
        # C_ij = |x_i|^2 + |y_j|^2 - 2 <x_i, y_j> on centred clouds:
        # softmin_i = |x_i|^2 - eps * lse_j(h_j - |y_j|^2 / eps + 2 <x_i, y_j> / eps)
        xc, yc, x2, y2 = (
            (self.yc, self.xc, self.y2, self.x2)
            if transpose
            else (self.xc, self.yc, self.x2, self.y2)
        )
        hy = (h - y2 / eps)[None, :]  # (1, m)
        ys = yc.T * (2.0 / eps)  # (d, m)
        out = torch.empty(xc.shape[0], dtype=xc.dtype, device=xc.device)
        for blk in _blocks(xc.shape[0], yc.shape[0]):
            out[blk] = _lse_rows_(torch.addmm(hy, xc[blk], ys))
        return x2 - eps * out


def stored_cost(x: torch.Tensor, y: torch.Tensor, cost) -> torch.Tensor:
    """The (n, m) cost matrix, built by row blocks (bounded temporaries)."""
    n, m = x.shape[0], y.shape[0]
    if n * m <= CHUNK_PAIRS:
        return cost.pairwise(x, y)
    C = torch.empty(n, m, dtype=x.dtype, device=x.device)
    for blk in _blocks(n, m, CHUNK_PAIRS):
        C[blk] = cost.pairwise(x[blk], y)
    return C


def stored_bytes(n: int, m: int, dtype: torch.dtype, symmetric: bool) -> int:
    """Bytes of the matrices a Sinkhorn ``"dense"`` op stores (C and C^T)."""
    return n * m * torch.finfo(dtype).bits // 8 * (1 if symmetric else 2)


def softmin_op(x: torch.Tensor, y: torch.Tensor, cost, backend: str) -> SoftminOp:
    """Build the soft-min reductions of one problem (see :class:`SoftminOp`)."""
    if backend == "keops" and cost.fn is not None:
        raise ValueError(
            "backend='keops' supports the named costs only (got a callable cost); "
            "pass backend='chunked' or 'dense' for a callable cost."
        )
    return SoftminOp(x.detach(), y.detach(), cost, backend)


def _keops_cost(X, Y, cost):
    if cost.q == 2:
        d2 = X.sqdist(Y)
        if cost.p == 2:
            return d2
        return d2.sqrt() if cost.p == 1 else d2 ** (cost.p / 2)
    d = ((X - Y).abs() ** cost.q).sum(-1) ** (1.0 / cost.q)
    return d if cost.p == 1 else d**cost.p


def _softmin_keops(x, y, h, eps, cost):
    LazyTensor = quiet_import("pykeops.torch").LazyTensor

    X = LazyTensor(x[:, None, :].contiguous())
    Y = LazyTensor(y[None, :, :].contiguous())
    H = LazyTensor(h[None, :, None].contiguous())
    inv = LazyTensor(torch.tensor([1.0 / eps], dtype=x.dtype, device=x.device))
    s = H - _keops_cost(X, Y, cost) * inv
    return -eps * s.logsumexp(dim=1).view(-1)


class _ChunkedSoftmin(torch.autograd.Function):
    """Differentiable chunked soft-min; backward recomputes each block."""

    @staticmethod
    def forward(ctx, x, y, h, eps, cost):
        op = SoftminOp(x.detach(), y.detach(), cost, "chunked")
        out = op.rows(h.detach(), eps)
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
        for blk in _blocks(x.shape[0], y.shape[0]):
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


class _NativeSoftmin(torch.autograd.Function):
    """Differentiable soft-min by the native loops (backward: two more passes).

    ``units_rows`` / ``units_cols``: the block-sparse pair lists of the
    multiscale solver (:mod:`otgen.ot._multiscale`) seen from x and from y;
    None: all pairs.
    """

    @staticmethod
    def forward(ctx, x, y, h, eps, cost, units_rows=None, units_cols=None):
        from otgen.ot import _native

        xd, yd, hd = x.detach(), y.detach(), h.detach()
        p = int(cost.p)
        lse = _native.lse_rows(xd, yd.T.contiguous(), hd, eps, p, units_rows)
        ctx.save_for_backward(x, y, h, lse)
        ctx.eps, ctx.p, ctx.units = eps, p, (units_rows, units_cols)
        return -eps * lse

    @staticmethod
    def backward(ctx, go):
        from otgen.ot import _native

        x, y, h, lse = ctx.saved_tensors
        eps, p, (ur, uc) = ctx.eps, ctx.p, ctx.units
        xd, yd, hd, go = x.detach(), y.detach(), h.detach(), go.detach()
        gx = gy = gh = None
        # P_ij = exp(h_j - C_ij / eps - lse_i); d out_i / d C_ij = P_ij.
        if ctx.needs_input_grad[0]:
            yt = yd.T.contiguous()
            G, _ = _native.expgrad_rows(xd, yt, -lse, hd, None, eps, p, ur)
            gx = go[:, None] * G
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            # Rows y_j, columns x_i, weights go_i: sum_i go_i P_ij grad_y C_ij.
            xt = xd.T.contiguous()
            G, S = _native.expgrad_rows(yd, xt, hd, -lse, go, eps, p, uc)
            if ctx.needs_input_grad[1]:
                gy = G
            if ctx.needs_input_grad[2]:
                gh = -eps * S
        return gx, gy, gh, None, None, None, None


def softmin(
    x: torch.Tensor, y: torch.Tensor, h: torch.Tensor, eps: float, cost, backend: str
) -> torch.Tensor:
    """Differentiable ``-eps log sum_j exp(h_j - C(x_i, y_j) / eps)``, shape (n,).

    Gradients flow to ``x``, ``y`` and ``h``; the chunked backend keeps memory
    O(n + m) in the backward pass by recomputing each block.
    """
    if backend == "dense":
        s = h[None, :] - cost.pairwise(x, y) / eps
        return -eps * torch.logsumexp(s, 1)
    if backend == "keops":
        return _softmin_keops(x, y, h, eps, cost)
    if backend == "native":
        return _NativeSoftmin.apply(x, y, h, eps, cost)
    return _ChunkedSoftmin.apply(x, y, h, eps, cost)


def softmax_matvec(x, y, h, eps, cost, backend, v):
    """``(lse_i, sum_j P_ij v_j)`` with ``P_ij = softmax_j(h_j - C_ij / eps)``.

    ``v`` has shape (m,) or (m, k). Dense or chunked torch (KeOps problems use
    the chunked path: no compilation for a one-off product).
    """
    vv = v[:, None] if v.ndim == 1 else v
    lse = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    out = torch.empty(x.shape[0], vv.shape[1], dtype=x.dtype, device=x.device)
    pairs = DENSE_MAX_PAIRS if backend == "dense" else SOFTMIN_BLOCK_PAIRS
    for blk in _blocks(x.shape[0], y.shape[0], pairs):
        s = h[None, :] - cost.pairwise(x[blk], y) / eps  # (b, m)
        lse[blk] = torch.logsumexp(s, 1)
        out[blk] = torch.exp(s - lse[blk, None]) @ vv
    return lse, (out[:, 0] if v.ndim == 1 else out)


def softmax_topk(x, y, h, eps, cost, backend, k: int):
    """Per row, the ``k`` largest ``s_ij = h_j - C_ij / eps`` and their columns.

    Returns ``(lse (n,), s (n, k), idx (n, k))``.
    """
    n = x.shape[0]
    lse = torch.empty(n, dtype=x.dtype, device=x.device)
    vals = torch.empty(n, k, dtype=x.dtype, device=x.device)
    idx = torch.empty(n, k, dtype=torch.int64, device=x.device)
    pairs = DENSE_MAX_PAIRS if backend == "dense" else SOFTMIN_BLOCK_PAIRS
    for blk in _blocks(n, y.shape[0], pairs):
        s = h[None, :] - cost.pairwise(x[blk], y) / eps  # (b, m)
        lse[blk] = torch.logsumexp(s, 1)
        vals[blk], idx[blk] = s.topk(k, dim=1)
    return lse, vals, idx


def plan_cost_sum(x, y, h, la, eps, cost, backend) -> torch.Tensor:
    """``sum_ij exp(la_i + h_j - C_ij / eps) C_ij``: the plan's transport cost."""
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    pairs = DENSE_MAX_PAIRS if backend == "dense" else SOFTMIN_BLOCK_PAIRS
    for blk in _blocks(x.shape[0], y.shape[0], pairs):
        C = cost.pairwise(x[blk], y)  # (b, m)
        P = torch.exp(la[blk, None] + h[None, :] - C / eps)
        total += (P * C).sum(dtype=torch.float64)
    return total.to(x.dtype)
