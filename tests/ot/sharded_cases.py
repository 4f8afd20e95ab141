"""Sharded-OT cases run in gloo processes on loopback (see test_sharded.py).

A case is a dict: ``kind`` (``"sinkhorn"``, ``"divergence"``, ``"mmd"``), the
sizes, whether the weights are random and the split uneven, and keyword
arguments. :func:`run_case` solves it in one process (``world=None``, the
reference) or on one rank of a group, and returns the value, the potentials
and the gradients: whole in one process, the rank's rows in a group.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from datetime import timedelta
from pathlib import Path

import torch

import otgen.ot._sharded as sharded_mod
from otgen.ot import mmd, sinkhorn, sinkhorn_divergence


def free_port() -> int:
    """A free TCP port on the loopback interface (bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def counts(n: int, world: int, uneven: bool, small_first: bool = True) -> list[int]:
    """Rows per rank: even, or one rank with a single row and the rest uneven."""
    if not uneven:
        return [len(t) for t in torch.arange(n).tensor_split(world)]
    rest = n - 1
    w = torch.arange(1, world, dtype=torch.float64)
    c = (w / w.sum() * rest).floor().long().tolist()
    c[-1] += rest - sum(c)
    out = [1] + c
    return out if small_first else out[::-1]


def data(spec: dict):
    """The global clouds and weights of a case (float64, seeded)."""
    g = torch.Generator().manual_seed(spec.get("seed", 0))
    n, m, d = spec["n"], spec["m"], spec["d"]
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = 0.7 * torch.randn(m, d, generator=g, dtype=torch.float64) + 0.5
    a = b = None
    if spec.get("weighted"):
        a = torch.rand(n, generator=g, dtype=torch.float64) + 0.1
        b = torch.rand(m, generator=g, dtype=torch.float64) + 0.1
        a, b = a / a.sum(), b / b.sum()
    dt = spec.get("dtype", torch.float64)
    return tuple(None if t is None else t.to(dt) for t in (x, y, a, b))


def slices(spec: dict, rank: int, world: int) -> tuple[slice, slice]:
    """The rows of x and of y that ``rank`` holds."""
    cx = counts(spec["n"], world, spec.get("uneven", False), True)
    cy = counts(spec["m"], world, spec.get("uneven", False), False)
    sx, sy = sum(cx[:rank]), sum(cy[:rank])
    return slice(sx, sx + cx[rank]), slice(sy, sy + cy[rank])


def run_case(
    spec: dict, rank: int | None = None, world: int | None = None, group="world"
) -> dict:
    """Value, potentials and gradients of a case: whole, or the rank's rows."""
    x, y, a, b = data(spec)
    if rank is not None:
        rx, ry = slices(spec, rank, world)
        x, y = x[rx], y[ry]
        a = None if a is None else a[rx]
        b = None if b is None else b[ry]
    ts = [t.clone().requires_grad_(True) for t in (x, y)]
    ws = [None if t is None else t.clone().requires_grad_(True) for t in (a, b)]
    kw = dict(spec.get("kw", {}))
    if rank is not None:
        kw["group"] = group
    kind = spec["kind"]
    if spec.get("same"):  # the same objects as x and y, a and b
        ts, ws = [ts[0], ts[0]], [ws[0], ws[0]]
    out = {}
    if kind == "sinkhorn":
        res = sinkhorn(*ts, *ws, **kw)
        value = res.value
        out.update(f=res.f.detach(), g=res.g.detach(), n_iter=res.n_iter)
    elif kind == "divergence":
        value = sinkhorn_divergence(*ts, *ws, **kw)
    else:
        value = mmd(*ts, *ws, **kw)
    value.backward()
    out["value"] = value.detach()
    out["gx"], out["gy"] = ts[0].grad, ts[1].grad
    if spec.get("same"):
        del out["gy"]
    if ws[0] is not None and not spec.get("same"):
        out["ga"], out["gb"] = ws[0].grad, ws[1].grad
    return out


def reference(spec: dict) -> dict:
    """The single-process result of a case."""
    return run_case(spec)


def compare(spec: dict, ref: dict, got: dict, rank: int, world: int, tol=1e-10):
    """The quantities of rank ``rank`` that differ from the reference by > tol.

    A case's own ``tol`` (float32 cases) replaces ``tol``.

    Returns a list of ``(name, max abs difference)``; empty when all agree.
    """
    rx, ry = slices(spec, rank, world)
    tol = spec.get("tol", tol)
    bad = []
    rows = {"f": rx, "g": ry, "gx": rx, "gy": ry, "ga": rx, "gb": ry}
    for key, r in ref.items():
        if key == "n_iter":
            if got[key] != r:
                bad.append((key, abs(got[key] - r)))
            continue
        want = r if key == "value" else r[rows[key]]
        have = got.get(key)
        if have is None or have.shape != want.shape:
            bad.append((key, float("inf")))
            continue
        diff = float((have - want).abs().max()) if want.numel() else 0.0
        if not diff <= tol:
            bad.append((key, diff))
    return bad


def traffic_case(spec: dict, rank: int, world: int, group="world") -> dict:
    """The collectives of one sharded sinkhorn call (no gradient)."""
    x, y, _, _ = data(spec)
    rx, ry = slices(spec, rank, world)
    with sharded_mod.traffic() as t:
        res = sinkhorn(x[rx], y[ry], group=group, **spec.get("kw", {}))
    return {"calls": t.calls, "n_iter": res.n_iter, "converged": res.converged}


# ---------------------------------------------------------------------------
# Error cases and planted defects (run on every rank)
# ---------------------------------------------------------------------------


def error_case(name: str, rank: int, world: int, group="world") -> str:
    """Run an invalid sharded call; return the error message (or '')."""
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(5 + rank, 3, generator=g, dtype=torch.float64)
    y = torch.randn(4, 3, generator=g, dtype=torch.float64)
    try:
        if name == "dim":
            xr = x[:, :2] if rank == 1 else x
            sinkhorn(xr, y[:, : xr.shape[1]], group=group)
        elif name == "mass":  # b sums to 0.5 over the ranks, a to 1
            n_all = sum(5 + r for r in range(world))
            a = torch.full((x.shape[0],), 1.0 / n_all, dtype=torch.float64)
            b = torch.full((4,), 0.5 / (4 * world), dtype=torch.float64)
            sinkhorn(x, y, a, b, group=group)
        elif name == "per_rank":  # each rank normalises its own weights
            a = torch.full((x.shape[0],), 1.0 / x.shape[0], dtype=torch.float64)
            b = torch.full((4,), 0.25, dtype=torch.float64)
            mmd(x, y, a, b, group=group)
        elif name == "some_weights":
            a = torch.full((x.shape[0],), 0.1, dtype=torch.float64)
            sinkhorn(x, y, a if rank == 0 else None, group=group)
        elif name == "reach":
            sinkhorn(x, y, reach=1.0, group=group)
        else:
            raise KeyError(name)
    except ValueError as err:
        return str(err)
    return ""


def _wrong_combine(self, partial, eps, grad=False):
    """Planted defect: add the partial soft-mins instead of log-sum-exp-ing."""
    return sharded_mod._AllSum.apply(partial, self.group)


class _LocalGather(sharded_mod._Gather):
    """Planted defect: the gather's backward keeps only this rank's gradient."""

    @staticmethod
    def backward(ctx, grad):
        start = sum(ctx.counts[: ctx.rank])
        return grad[start : start + ctx.counts[ctx.rank]], None, None, None


def planted(defect: str):
    """Install a planted defect in this process (``"lse"`` or ``"grad"``)."""
    if defect == "lse":
        sharded_mod.Shard.combine = _wrong_combine
    elif defect == "grad":
        sharded_mod._Gather = _LocalGather
    else:
        raise KeyError(defect)


# ---------------------------------------------------------------------------
# The process side
# ---------------------------------------------------------------------------


def worker(rank: int, nprocs: int, port: int, jobs: list, out: str) -> None:
    """One gloo rank: run the jobs, save ``{(world, name): result}`` to ``out``.

    A job ``(world, name, spec)`` runs on ranks ``0 .. world - 1``: on the
    default group when ``world == nprocs``, else on a ``new_group`` of them.
    """
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group(
        "gloo",
        rank=rank,
        world_size=nprocs,
        init_method=f"tcp://127.0.0.1:{port}",
        timeout=timedelta(seconds=60),
    )
    groups = {nprocs: "world"}
    for w in sorted({w for w, _, _ in jobs}):
        if w < nprocs:  # every process calls new_group, in the same order
            groups[w] = dist.new_group(list(range(w)))
    results = {}
    for world, name, job in jobs:
        if rank >= world:
            continue
        group = groups[world]
        try:
            if job.get("planted"):
                planted(job["planted"])
            if "error" in job:
                msg = error_case(job["error"], rank, world, group)
                results[world, name] = {"message": msg}
            elif job["kind"] == "traffic":
                results[world, name] = traffic_case(job, rank, world, group)
            else:
                t0 = time.perf_counter()
                results[world, name] = run_case(job, rank, world, group)
                results[world, name]["seconds"] = time.perf_counter() - t0
        except Exception:  # noqa: BLE001 (reported to the parent, which fails)
            results[world, name] = {"crash": traceback.format_exc()}
    torch.save(results, Path(out) / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


def launch(jobs: list, out: str, timeout: float = 150.0) -> dict:
    """Run ``(world, name, spec)`` jobs on gloo processes (as many as the
    largest world); ``{(world, name): [result of rank 0, 1, ...]}``.

    Raises TimeoutError (after killing the processes) past ``timeout``.
    """
    import torch.multiprocessing as mp

    nprocs = max(w for w, _, _ in jobs)
    port = free_port()
    ctx = mp.start_processes(
        worker,
        args=(nprocs, port, jobs, out),
        nprocs=nprocs,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{nprocs} gloo processes still running after {timeout} s"
                )
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
                p.join(5)
    ranks = [
        torch.load(Path(out) / f"rank{r}.pt", weights_only=False) for r in range(nprocs)
    ]
    return {(w, name): [ranks[r][w, name] for r in range(w)] for w, name, _ in jobs}
