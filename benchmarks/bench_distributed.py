"""otgen over torch.distributed: throughput and communication (issue 18).

Parts (``--part``):

* ``ot`` -- sharded OT (``group=...``): ``sinkhorn_divergence`` and ``mmd``
  between x ~ N(0, I_d) and y ~ N(0.5, 1.2^2 I_d), n = m (default 2e4, d = 3,
  float32, seeded), split evenly over 1 and 2 gloo processes on loopback, one
  thread each, defaults otherwise (eps from the data, Gaussian MMD kernel of
  scale 1, unbiased estimator). Baselines in one process (``group=None``)
  with 1 and 2 threads, backend ``"auto"`` (from 1e8 pairs Sinkhorn runs
  coarse-to-fine, which sharded problems do not) and ``"native"`` (all pairs,
  what the sharded run does on each rank). The error column is the
  difference to the one-process ``"native"`` value.

  Communication: one sharded ``sinkhorn`` on 2 processes under
  :func:`otgen.ot._sharded.traffic`, which counts every collective's payload
  and the time spent in them. Model per Sinkhorn iteration (alternating
  updates): ``all_reduce`` MAX and SUM of n numbers (row soft-min) and of m
  (column soft-min), and one ``all_reduce`` of 4 float64 (the two marginal
  errors) at the target eps: ``2 (n + m) s + 32`` bytes, s the working
  dtype's size.

* ``train`` -- distributed training: ``bench_distributed_train.py`` with its
  defaults (steps per second with 1 and 2 gloo processes, WAE-MMD on ring8
  and digits), run as a subprocess.

Usage::

    flock /tmp/otgen-bench.lock python benchmarks/bench_distributed.py --part ot
    python benchmarks/bench_distributed.py --part ot --n 5000   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from datetime import timedelta
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fmt, machine_info, print_table, save  # noqa: E402

D_DEFAULT = 3


def _data(n: int, d: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = 1.2 * torch.randn(n, d, generator=g, dtype=torch.float64) + 0.5
    return x.to(dtype), y.to(dtype)


def _tasks(group, backend="auto"):
    from otgen.ot import mmd, sinkhorn_divergence

    def div(x, y):
        return float(sinkhorn_divergence(x, y, group=group, backend=backend))

    def mm(x, y):
        return float(
            mmd(x, y, kernel="gaussian", scale=1.0, group=group, backend=backend)
        )

    return {"sinkhorn_divergence": div, "mmd": mm}


def _time(fn, x, y, repeats: int, barrier=None):
    times, value = [], None
    for _ in range(repeats):
        if barrier:
            barrier()
        t0 = time.perf_counter()
        value = fn(x, y)
        if barrier:
            barrier()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def _ot_worker(rank: int, world: int, port: int, cfg: dict, out: str) -> None:
    import torch.distributed as dist

    from otgen.ot import sinkhorn
    from otgen.ot._sharded import traffic

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        rank=rank,
        world_size=world,
        init_method=f"tcp://127.0.0.1:{port}",
        timeout=timedelta(seconds=900),
    )
    x, y = _data(cfg["n"], cfg["d"])
    rows = torch.arange(cfg["n"]).tensor_split(world)[rank]
    xr, yr = x[rows], y[rows]
    # Warm-up on a small problem: imports, the native library, gloo buffers.
    for fn in _tasks("world").values():
        fn(xr[:200], yr[:200])
    res = {}
    for name, fn in _tasks("world").items():
        t, v = _time(fn, xr, yr, cfg["repeats"], dist.barrier)
        res[name] = {"seconds": t, "value": v}
    with traffic() as tr:
        t0 = time.perf_counter()
        r = sinkhorn(xr, yr, group="world")
        wall = time.perf_counter() - t0
    res["traffic"] = {
        "calls": tr.calls,
        "comm_seconds": tr.seconds,
        "wall": wall,
        "n_iter": r.n_iter,
        "eps": r.eps,
        "value": float(r.value),
    }
    if rank == 0:
        Path(out).write_text(json.dumps(res))
    dist.barrier()
    dist.destroy_process_group()


def _launch(world: int, cfg: dict) -> dict:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank0.json")
        mp.start_processes(
            _ot_worker,
            args=(world, port, cfg, out),
            nprocs=world,
            join=True,
            start_method="spawn",
        )
        return json.loads(Path(out).read_text())


def _traffic_table(tr: dict, n: int, m: int) -> list[dict]:
    """The collectives of one sharded sinkhorn, by size, against the model."""
    calls = tr["calls"]
    ar = [b for c, b in calls if c == "all_reduce"]
    sizes = {n * 4, n * 8, m * 4, m * 8}
    smin = [b for b in ar if b in sizes]  # soft-min passes (MAX and SUM)
    resid = [b for b in ar if b in (16, 32)]  # marginal errors (float64 sums)
    k = tr["n_iter"]
    itemsize = 4 if n * 4 in smin else 8
    return [
        {
            "iterations": k,
            "soft-min all_reduces": len(smin),
            "residual all_reduces": len(resid),
            "other collectives": len(calls) - len(smin) - len(resid),
            "total MB": fmt(sum(b for _, b in calls) / 1e6),
            "bytes/iter measured": fmt((sum(smin) + sum(resid)) / k, ".4g"),
            "bytes/iter model": fmt(2 * (n + m) * itemsize + 32, ".4g"),
            "comm s": fmt(tr["comm_seconds"]),
            "wall s": fmt(tr["wall"]),
        }
    ]


def part_ot(args) -> list[dict]:
    from otgen.ot import sinkhorn  # noqa: F401 (the native build, before timing)

    warnings.simplefilter("ignore")
    n, d = args.n, args.d
    cfg = {"n": n, "d": d, "repeats": args.repeats}
    x, y = _data(n, d)
    rows, ref = [], {}
    for threads in (1, 2):
        for backend in ("native", "auto"):
            torch.set_num_threads(threads)
            tasks = _tasks(None, backend)
            for fn in tasks.values():  # warm-up
                fn(x[:200], y[:200])
            row = {"config": f"1 process, {threads} thread(s), group=None, {backend}"}
            for name, fn in tasks.items():
                t, v = _time(fn, x, y, args.repeats)
                if backend == "native" and threads == 1:
                    ref[name] = v
                row[name + " s"] = t
                row[name + " err"] = abs(v - ref[name])
            rows.append(row)
            print(row, flush=True)
    torch.set_num_threads(1)
    traffic = None
    for world in (1, 2):
        res = _launch(world, cfg)
        row = {"config": f"{world} gloo process(es) x 1 thread, group='world'"}
        for name in ("sinkhorn_divergence", "mmd"):
            row[name + " s"] = res[name]["seconds"]
            row[name + " err"] = abs(res[name]["value"] - ref[name])
        rows.append(row)
        print(row, flush=True)
        if world == 2:
            traffic = res["traffic"]
    base = rows[0]
    table = []
    for r in rows:
        t = {"config": r["config"]}
        for name in ("sinkhorn_divergence", "mmd"):
            t[name + " s"] = fmt(r[name + " s"])
            t[name + " x"] = fmt(base[name + " s"] / r[name + " s"], ".2f")
            t[name + " err"] = fmt(r[name + " err"], ".2g")
        table.append(t)
    print(
        f"\nn = m = {n}, d = {d}, float32; x: speed-up over 1 process, 1 thread, native"
    )
    print_table(table, list(table[0]))
    print(f"\nsinkhorn on 2 gloo processes: eps = {traffic['eps']:.4g}")
    tt = _traffic_table(traffic, n, n)
    print_table(tt, list(tt[0]))
    summary = {k: v for k, v in traffic.items() if k != "calls"}
    return [{"throughput": rows, "traffic": summary, "traffic_table": tt}]


def part_train(args) -> list[dict]:
    """Distributed training: runs ``bench_distributed_train.py`` (its defaults:
    WAE-MMD on ring8 and digits, 1 and 2 gloo processes, weak and strong
    scaling) in a subprocess; its table is printed as it goes."""
    import subprocess

    script = Path(__file__).resolve().parent / "bench_distributed_train.py"
    rc = subprocess.call([sys.executable, str(script)])
    return [{"train": {"script": script.name, "returncode": rc}}]


PARTS = {"ot": part_ot, "train": part_train}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["ot", "train", "all"], default="ot")
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--d", type=int, default=D_DEFAULT)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    print(json.dumps(machine_info()), flush=True)
    parts = list(PARTS) if args.part == "all" else [args.part]
    results = []
    for p in parts:
        results += PARTS[p](args)
    path = save("bench_distributed", results, {"args": vars(args)})
    print(f"saved {path}")


if __name__ == "__main__":
    main()
