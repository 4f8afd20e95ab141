r"""Point clouds split over the ranks of a ``torch.distributed`` process group.

Rank :math:`r` of a group of :math:`R` holds rows :math:`I_r` of ``x`` (and
of ``a``) and rows :math:`J_r` of ``y`` (and of ``b``), in rank order:
:math:`x = (x_{I_0}; x_{I_1}; \dots)`. The solvers keep their single-process
code; this module adds the one step that differs, as an injected reduction:

- **Points.** Every rank gathers both clouds once per call (one
  ``all_gather`` each, ``(n + m) d`` numbers): the normalisation, the default
  eps, the kernel scale and the checks then run on the same numbers as in one
  process, on every rank. Per rank the points take :math:`O((n + m) d)`
  memory; the :math:`n \times m` matrix is never gathered, nor built whole.
- **Soft-min** (:class:`ShardedOp`). Rank :math:`r` reduces over its own
  columns only, for every row,
  :math:`L^{(r)}_i = \log \sum_{j \in J_r} \exp(h_j - C_{ij}/\varepsilon)`
  (any local backend: dense, chunked, native, KeOps), and the ranks combine
  the partial log-sum-exps with a max shift:
  :math:`M_i = \max_r L^{(r)}_i` (``all_reduce`` MAX),
  :math:`S_i = \sum_r e^{L^{(r)}_i - M_i}` (``all_reduce`` SUM),
  :math:`\operatorname{smin}_\varepsilon(h)_i = -\varepsilon (M_i + \log
  S_i)`, of which each rank keeps its rows :math:`i \in I_r`.
- **Sums over points** (marginal errors, dual objective, masses): per-rank
  partial sums and one ``all_reduce`` SUM. Every rank takes the same
  decisions (stopping, warnings), so all take the same number of iterations.
- **Kernel sums** (MMD): rank :math:`r` computes :math:`V_{I_r}^\top K(z_{I_r},
  z) V` for its rows of the pooled cloud and the ranks sum them.

**Gradients.** The returned value is the global value on every rank, and its
graph is the rank's own share of it: :math:`v = \bar v + (v_r -
\operatorname{sg}(v_r))`, where :math:`\bar v = \sum_r v_r` (no gradient)
and :math:`v_r` the part rank :math:`r` computed. The gathered clouds are
differentiable: the backward of the gather sums, over the ranks, the gradients
each rank's part sends to every row and keeps its own rows (``all_reduce`` SUM
of an :math:`(n, d)` tensor), and the partial soft-mins are combined with a
differentiable ``all_reduce``. When every rank calls ``backward()`` on the
value, each gets :math:`\partial v / \partial x_{I_r}` (and for ``y``, ``a``,
``b``): the gradient of the single-process value, restricted to its rows. The
backward is collective: **every rank must call it** (as with
DistributedDataParallel).

**Communication per Sinkhorn iteration** (balanced, alternating updates at the
target eps): two ``all_reduce`` of :math:`n` numbers (row soft-min), two of
:math:`m` (column soft-min) and one of 4 numbers (the two marginal errors):
payload :math:`2 (n + m) + 4` numbers, :math:`16 (n + m) + 32` bytes in
float64 (during the annealing, no errors: :math:`16 (n + m)`). A symmetric
problem (:math:`\mathrm{OT}_\varepsilon(\alpha, \alpha)`) sends :math:`2 n
+ 2`. A ring all-reduce moves about :math:`2 (R - 1) / R` times the
payload per rank. :func:`traffic` counts what this module sends.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import torch

__all__ = [
    "Shard",
    "ShardedOp",
    "ShardedReduction",
    "open_shard",
    "resolve_group",
    "traffic",
]


# ---------------------------------------------------------------------------
# Counting what is sent
# ---------------------------------------------------------------------------


@dataclass
class Traffic:
    """Collectives sent by this module while counting: ``(name, bytes)``.

    ``seconds``: the wall time spent inside them (waiting for the slowest
    rank included).
    """

    calls: list[tuple[str, int]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bytes(self) -> int:
        """Total payload in bytes (the tensors handed to the collectives)."""
        return sum(b for _, b in self.calls)

    def count(self, name: str | None = None) -> int:
        """Number of collectives (of one kind: ``"all_reduce"``, ...)."""
        return sum(1 for c, _ in self.calls if name is None or c == name)


_TRAFFIC: list[Traffic] = []


@contextlib.contextmanager
def traffic():
    """Count the collectives this module sends inside the ``with`` block.

    >>> with traffic() as t:  # doctest: +SKIP
    ...     sinkhorn(x, y, group="world")
    >>> t.bytes, t.count("all_reduce")  # doctest: +SKIP
    """
    t = Traffic()
    _TRAFFIC.append(t)
    try:
        yield t
    finally:
        _TRAFFIC.remove(t)


def _record(name: str, t: torch.Tensor) -> None:
    for c in _TRAFFIC:
        c.calls.append((name, t.numel() * t.element_size()))


@contextlib.contextmanager
def _timed():
    if not _TRAFFIC:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        for c in _TRAFFIC:
            c.seconds += time.perf_counter() - t0


def _dist():
    import torch.distributed as dist

    return dist


def _all_reduce(t: torch.Tensor, group, op: str = "sum") -> torch.Tensor:
    """In-place ``all_reduce`` (``"sum"`` or ``"max"``) of a contiguous tensor."""
    dist = _dist()
    _record("all_reduce", t)
    kind = dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM
    with _timed():
        dist.all_reduce(t, op=kind, group=group)
    return t


# ---------------------------------------------------------------------------
# The group and the rows each rank holds
# ---------------------------------------------------------------------------


def resolve_group(group):
    """``"world"`` as the default group; a ProcessGroup as it is."""
    dist = _dist()
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(
            f"group={group!r} needs an initialised torch.distributed process group "
            "(none is); call torch.distributed.init_process_group(...) first (torchrun "
            "sets the environment for init_process_group('gloo' or 'nccl')), or pass "
            "group=None for one process."
        )
    if isinstance(group, str):
        if group != "world":
            raise ValueError(
                f"group must be a torch.distributed ProcessGroup, 'world' or None "
                f"(got {group!r}); pass group='world' for the default group."
            )
        return dist.group.WORLD
    if not isinstance(group, dist.ProcessGroup):
        raise ValueError(
            f"group must be a torch.distributed ProcessGroup, 'world' or None (got "
            f"{type(group).__name__}); pass group='world' for the default group."
        )
    return group


class _Gather(torch.autograd.Function):
    """All-gather rows of uneven counts; the backward sums over the ranks."""

    @staticmethod
    def forward(ctx, t, group, counts, rank):
        width = max(counts)
        pad = t.new_zeros((width,) + tuple(t.shape[1:]))
        pad[: t.shape[0]] = t
        parts = [torch.empty_like(pad) for _ in counts]
        _record("all_gather", pad)
        with _timed():
            _dist().all_gather(parts, pad, group=group)
        ctx.group, ctx.counts, ctx.rank = group, counts, rank
        return torch.cat([q[:c] for q, c in zip(parts, counts)])

    @staticmethod
    def backward(ctx, grad):
        # Each rank's grad holds what its part sends to every row: their sum
        # over the ranks, restricted to this rank's rows.
        g = _all_reduce(grad.contiguous().clone(), ctx.group)
        start = sum(ctx.counts[: ctx.rank])
        return g[start : start + ctx.counts[ctx.rank]], None, None, None


class _AllSum(torch.autograd.Function):
    """Differentiable ``all_reduce`` SUM (the backward sums the gradients)."""

    @staticmethod
    def forward(ctx, t, group):
        ctx.group = group
        return _all_reduce(t.detach().contiguous().clone(), group)

    @staticmethod
    def backward(ctx, grad):
        return _all_reduce(grad.contiguous().clone(), ctx.group), None


@dataclass(frozen=True)
class Shard:
    """The rows of the two clouds of one problem that this rank holds.

    ``nx[r]``, ``ny[r]``: the rows of x (and a) and of y (and b) on rank r.
    ``same``: every rank passed the same object as x and y (and as a and b).
    """

    group: object
    rank: int
    size: int
    nx: tuple[int, ...]
    ny: tuple[int, ...]
    same: bool = False
    device: torch.device = torch.device("cpu")  # where the flags are reduced

    @property
    def rows(self) -> slice:
        """The rows of x this rank holds, in the global cloud."""
        s = sum(self.nx[: self.rank])
        return slice(s, s + self.nx[self.rank])

    @property
    def cols(self) -> slice:
        """The rows of y this rank holds, in the global cloud."""
        s = sum(self.ny[: self.rank])
        return slice(s, s + self.ny[self.rank])

    @property
    def aligned(self) -> bool:
        """True if x and y are split alike (a symmetric loop can run)."""
        return self.nx == self.ny

    def view(self, left: str, right: str) -> Shard:
        """The shard of the problem (left, right), each ``"x"`` or ``"y"``."""
        pick = {"x": self.nx, "y": self.ny}
        same = self.same or left == right
        return Shard(
            self.group,
            self.rank,
            self.size,
            pick[left],
            pick[right],
            same,
            self.device,
        )

    def gather(self, t: torch.Tensor, side: str) -> torch.Tensor:
        """The global tensor of ``side`` (``"x"`` or ``"y"``), differentiable."""
        counts = list(self.nx if side == "x" else self.ny)
        return _Gather.apply(t, self.group, counts, self.rank)

    def total(self, t: torch.Tensor) -> torch.Tensor:
        """The sum over the ranks of ``t`` (no gradient)."""
        return _all_reduce(t.detach().contiguous().clone(), self.group)

    def share(self, part: torch.Tensor) -> torch.Tensor:
        """The global sum of ``part`` whose graph is this rank's own ``part``.

        Any function of it has, on every rank, the same value and the same
        derivative with respect to the global sum, so the gradients the ranks
        compute add up to the single-process gradient.
        """
        whole = self.total(part)
        if not part.requires_grad:
            return whole
        return whole + (part - part.detach())

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is True on one."""
        t = torch.tensor(
            [1.0 if flag else 0.0], dtype=torch.float64, device=self.device
        )
        return bool(_all_reduce(t, self.group, "max")[0] > 0)

    def combine(self, partial: torch.Tensor, eps: float, grad: bool = False):
        r"""The soft-min from per-rank partials :math:`-\varepsilon L^{(r)}`.

        ``all_reduce`` MAX of :math:`L^{(r)}` (the shift), then SUM of
        :math:`e^{L^{(r)} - M}`; differentiable (in the partials) with
        ``grad``. Returns the soft-min over all columns for every row.
        """
        L = partial / (-eps)
        M = _all_reduce(L.detach().contiguous().clone(), self.group, "max")
        M = torch.where(torch.isfinite(M), M, torch.zeros_like(M))
        e = torch.exp(L - M)
        S = _AllSum.apply(e, self.group) if grad else _all_reduce(e, self.group)
        return -eps * (M + torch.log(S))


def _meta(x, y, a, b):
    """What a rank tells the others about its inputs (or why it rejects them)."""
    from otgen._validation import check_points

    info = {"error": None}
    try:
        tx, ty = check_points(x, y)
        for w, name, n in ((a, "a", tx.shape[0]), (b, "b", ty.shape[0])):
            if w is None:
                continue
            t = w if isinstance(w, torch.Tensor) else torch.as_tensor(w)
            if t.ndim != 1 or t.shape[0] != n:
                raise ValueError(
                    f"{name} must be a 1-D weight vector of length {n} on this rank, "
                    f"one per local point (got shape {tuple(t.shape)}); with "
                    "group=..., each rank passes the weights of its own points."
                )
        grad = torch.is_grad_enabled()
        info.update(
            n=tx.shape[0],
            m=ty.shape[0],
            dx=tx.shape[1],
            dy=ty.shape[1],
            dtype=tx.dtype,
            device=tx.device.type,
            a=a is not None,
            b=b is not None,
            same=x is y and a is b,
            grad=[
                grad and isinstance(t, torch.Tensor) and t.requires_grad
                for t in (x, y, a, b)
            ],
        )
        return info, (tx, ty)
    except ValueError as err:
        info["error"] = str(err)
        return info, None


def open_shard(group, x, y, a, b, names: tuple[str, str] = ("x", "y")):
    """Check the ranks' inputs together; gather both clouds and their weights.

    Collective: every rank calls it with its own rows. Every rank raises the
    same ValueError when one rank's inputs are invalid, the ranks disagree on
    the dimension, the device or on whether weights are given. Returns
    ``(shard, x, y, a, b)``: the global clouds and weights (None where no rank
    gave any), differentiable with respect to each rank's rows.
    """
    dist = _dist()
    pg = resolve_group(group)
    rank, size = dist.get_rank(pg), dist.get_world_size(pg)
    info, local = _meta(x, y, a, b)
    infos: list = [None] * size
    dist.all_gather_object(infos, info, group=pg)
    for r, inf in enumerate(infos):
        if inf["error"] is not None:
            if r == rank:
                raise ValueError(inf["error"])
            raise ValueError(
                f"rank {r} of the group rejected its inputs: {inf['error']}"
            )
    for key, what in (("dx", names[0]), ("dy", names[1])):
        ds = [inf[key] for inf in infos]
        if len(set(ds)) > 1:
            got = ", ".join(f"{d} on rank {r}" for r, d in enumerate(ds))
            raise ValueError(
                f"{what} must have the same dimension d on every rank of the group "
                f"(got d = {got}); each rank passes its rows of one (n, d) cloud."
            )
    for key, what in (("a", "a"), ("b", "b")):
        given = [inf[key] for inf in infos]
        if len(set(given)) > 1:
            where = [r for r, g in enumerate(given) if g]
            raise ValueError(
                f"{what} must be given on every rank or on none (given on ranks "
                f"{where} only); pass each rank's weights, or None everywhere for "
                "uniform weights."
            )
    devices = {inf["device"] for inf in infos}
    if len(devices) > 1:
        raise ValueError(
            f"the points must be on the same kind of device on every rank (got "
            f"{sorted(devices)}); move them to one device type."
        )
    dtype = infos[0]["dtype"]
    for inf in infos[1:]:
        dtype = torch.promote_types(dtype, inf["dtype"])
    grad = [any(inf["grad"][k] for inf in infos) for k in range(4)]
    shard = Shard(
        pg,
        rank,
        size,
        tuple(inf["n"] for inf in infos),
        tuple(inf["m"] for inf in infos),
        all(inf["same"] for inf in infos),
        local[0].device,
    )
    tx, ty = local
    out = []
    for t, side, need in zip((tx, ty, a, b), "xyab", grad):
        if t is None:
            out.append(None)
            continue
        if not isinstance(t, torch.Tensor):
            t = torch.as_tensor(t)
        t = t.to(dtype)
        if need and not t.requires_grad:
            # Another rank differentiates: this rank takes part in the
            # backward's collectives through a leaf nobody reads.
            t = t.detach().requires_grad_(True)
        out.append(shard.gather(t, "x" if side in ("x", "a") else "y"))
    X, Y, A, B = out
    if shard.same:
        Y, B = X, A
    return shard, X, Y, A, B


# ---------------------------------------------------------------------------
# The injected reductions
# ---------------------------------------------------------------------------


class ShardedOp:
    """Soft-mins of a problem split over the ranks (the Sinkhorn loop's op).

    Built on the global working clouds ``x`` (n, d) and ``y`` (m, d); ``rows``
    takes this rank's entries of ``h`` (its columns) and returns its rows, and
    ``cols`` the other way round (see the module docstring for the math and
    the collectives). ``local`` is any single-process reduction; it runs on
    ``x`` against this rank's columns (and on this rank's rows against ``y``).
    """

    def __init__(self, x, y, cost, local, shard: Shard) -> None:
        self.x, self.y, self.cost = x.detach(), y.detach(), cost
        self.local, self.shard = local, shard
        self.n, self.m = x.shape[0], y.shape[0]
        self.backend = local.name
        self._rows = self._cols = None

    def rows(self, h: torch.Tensor, eps: float) -> torch.Tensor:
        """The rows of ``-eps log sum_j exp(h_j - C_ij / eps)`` this rank holds."""
        if self._rows is None:
            self._rows = self.local.bind(self.x, self.y[self.shard.cols], self.cost)
        return self.shard.combine(self._rows.rows(h, eps), eps)[self.shard.rows]

    def cols(self, h: torch.Tensor, eps: float) -> torch.Tensor:
        """The columns of ``-eps log sum_i exp(h_i - C_ij / eps)`` of this rank."""
        if self._cols is None:
            self._cols = self.local.bind(self.x[self.shard.rows], self.y, self.cost)
        return self.shard.combine(self._cols.cols(h, eps), eps)[self.shard.cols]

    def softmin(self, x, y, h, eps: float) -> torch.Tensor:
        """Differentiable rows soft-min; ``x``, ``y`` global, ``h`` this rank's."""
        red = self.local.for_gradient(self.n, self.shard.ny[self.shard.rank])
        part = red.softmin(x, y[self.shard.cols], h, eps, self.cost)  # (n,)
        return self.shard.combine(part, eps, grad=True)[self.shard.rows]

    def astype(self, dtype: torch.dtype) -> ShardedOp:
        """The same problem in ``dtype``."""
        x, y = self.x.to(dtype), self.y.to(dtype)
        return ShardedOp(x, y, self.cost, self.local, self.shard)

    def total(self, t: torch.Tensor) -> torch.Tensor:
        """Sum over the ranks (no gradient)."""
        return self.shard.total(t)


class ShardedReduction:
    r"""Kernel sums over a pooled cloud split over the ranks (MMD).

    ``kernel_quadform(z, V, ...)`` takes the global pooled cloud ``z`` (x's
    rows, then y's) and ``V``: rank r computes :math:`V_{I_r}^\top K(z_{I_r},
    z) V` with its local reduction's kernel sums and the ranks add them
    (:meth:`Shard.share`): each pair is evaluated on the rank that holds its
    row, i.e. :math:`N^2 / R` pairs per rank.
    """

    def __init__(self, local, shard: Shard) -> None:
        self.local, self.shard = local, shard
        self.name = local.name

    def own(self, n: int) -> torch.Tensor:
        """Indices of this rank's rows in the pooled cloud (x's, then y's)."""
        s = self.shard
        return torch.cat(
            [
                torch.arange(s.rows.start, s.rows.stop, device=s.device),
                n + torch.arange(s.cols.start, s.cols.stop, device=s.device),
            ]
        )

    def kernel_quadform(
        self, z, V, kernel, *, diag: bool = False, chunk_pairs=None, n=None
    ) -> torch.Tensor:
        """``V^T K V`` (or its diagonal), in float64, summed over the ranks."""
        idx = self.own(n)
        rest = torch.ones(z.shape[0], dtype=torch.bool, device=z.device)
        rest[idx] = False
        # The own rows against themselves as a symmetric block (self pairs at
        # distance exactly 0, as in one process), then against the others.
        zi, Vi = z[idx], V[idx]
        KV = self.local.kernel_matmul(zi, Vi, kernel, None, chunk_pairs)
        if bool(rest.any()):
            KV = KV + self.local.kernel_matmul(
                zi, V[rest], kernel, z[rest], chunk_pairs
            )
        KV, Vi = KV.to(torch.float64), Vi.to(torch.float64)
        part = (Vi * KV).sum(0) if diag else Vi.T @ KV
        return self.shard.share(part)

    def point_sum(self, t: torch.Tensor, side: str) -> torch.Tensor:
        """Sum of a per-point tensor of one cloud (global ``t``), by its owners."""
        sl = self.shard.rows if side == "x" else self.shard.cols
        return self.shard.share(t[sl].sum())
