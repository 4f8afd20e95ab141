"""Data-parallel training throughput: 1 and 2 gloo processes on the CPU.

WAE-MMD on ``ring8`` (the toy recipe of ``otgen train``: implicit encoder,
IMQ scales (0.05, 0.2, 1), batch 128 per process) and on scikit-learn's
``digits`` (the image recipe: conv nets, d_z = 8, batch 100 per process), each
process on one torch thread, as ``otgen train --nproc 2`` runs them. Rows:

- 1 process, batch b (the reference);
- 2 processes, batch b each (*weak scaling*: a global batch of 2b; the
  figure of merit is samples/s);
- 2 processes, batch b/2 each (*strong scaling*: the same global batch b as
  one process; the figure of merit is steps/s).

Steps/s is the median over ``--rounds`` rounds of the median over
``--blocks`` blocks of ``--steps`` steps (after ``--warmup`` steps), timed by
rank 0 between two barriers. Each round runs every configuration once, in
turn, so that a change of the machine's load in the meantime (it is shared)
touches every configuration alike. The last column is
the median time of one gloo ``all_reduce`` of the model's gradients alone
(float32, every parameter of the model group): the communication floor of a
step, with the gather of the codes and prior samples and the all-reduce of the
logged terms on top.

    flock /tmp/otgen-bench.lock python benchmarks/bench_distributed_train.py
    python benchmarks/bench_distributed_train.py --data ring8 --steps 100
    python benchmarks/bench_distributed_train.py --profile ring8 2 64  # where time goes

``--profile DATA PROCS BATCH`` runs one configuration for ``--steps`` steps
under ``torch.profiler`` and prints rank 0's operators by self CPU time
(collectives show as ``c10d::...``; their time is mostly the wait for the
other rank).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from _harness import fmt, print_table, save

RECIPES = {
    "ring8": {
        "model": ("wae_mmd", 2),
        "options": {"encoder": "implicit", "scales": [0.05, 0.2, 1.0], "lam": 100.0},
        "batch": 128,
    },
    "digits": {"model": ("wae_mmd", (8, 8)), "options": {"d_z": 8}, "batch": 100},
}


def _data(name: str) -> torch.Tensor:
    if name == "ring8":
        from otgen.models.data import get_toy

        return get_toy("ring8").sample(20_000, seed=0)
    from otgen.models.datasets import load_data

    x = load_data("digits")
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(x)))
    return x[perm][2 * (len(x) // 5) :]  # the training split of otgen train


def _worker(rank, world, port, name, batch, cfg, out):
    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group(
            "gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60)
        )
    from otgen.models.presets import build
    from otgen.models.train import Trainer

    recipe = RECIPES[name]
    model = build(*recipe["model"], seed=0, **recipe["options"])
    tr = Trainer(model, _data(name), batch_size=batch, seed=0, progress=False)

    def barrier():
        if world > 1:
            dist.barrier()

    tr.fit(cfg["warmup"])
    if cfg.get("profile"):
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            tr.fit(cfg["steps"])
            dt = time.perf_counter() - t0
        if rank == 0:
            print(f"{name}, {world} process(es), batch {batch} each: ", end="")
            print(f"{1e3 * dt / cfg['steps']:.2f} ms per step under the profiler")
            table = prof.key_averages().table(sort_by="self_cpu_time_total")
            print("\n".join(table.splitlines()[:16]))
        if world > 1:
            dist.barrier()
            dist.destroy_process_group()
        return
    times = []
    for _ in range(cfg["blocks"]):
        barrier()
        t0 = time.perf_counter()
        tr.fit(cfg["steps"])
        barrier()
        times.append(time.perf_counter() - t0)
    allreduce = None
    if world > 1:
        n = sum(p.numel() for g in tr.groups if g.name == "model" for p in g.params)
        buf = torch.zeros(n)
        ts = []
        for _ in range(30):
            barrier()
            t0 = time.perf_counter()
            dist.all_reduce(buf)
            ts.append(time.perf_counter() - t0)
        allreduce = statistics.median(ts[5:])
    if rank == 0:
        rate = cfg["steps"] / statistics.median(times)
        n_params = sum(p.numel() for p in model.parameters())
        Path(out).write_text(
            json.dumps(
                {
                    "steps_per_s": rate,
                    "block_s": times,
                    "allreduce_ms": None if allreduce is None else 1e3 * allreduce,
                    "params": n_params,
                }
            )
        )
    if world > 1:
        dist.barrier()  # nobody leaves while a peer still talks to it
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(name: str, world: int, batch: int, cfg: dict) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.json")
        mp.spawn(
            _worker,
            args=(world, _free_port(), name, batch, cfg, out),
            nprocs=world,
        )
        res = json.loads(Path(out).read_text())
    res.update(
        data=name,
        procs=world,
        batch_per_proc=batch,
        global_batch=world * batch,
        samples_per_s=res["steps_per_s"] * world * batch,
    )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["ring8", "digits"])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--profile", nargs=3, metavar=("DATA", "PROCS", "BATCH"))
    args = ap.parse_args()
    cfg = {"steps": args.steps, "blocks": args.blocks, "warmup": args.warmup}
    if args.profile:
        name, world, batch = args.profile[0], int(args.profile[1]), int(args.profile[2])
        with tempfile.TemporaryDirectory() as d:
            mp.spawn(
                _worker,
                args=(world, _free_port(), name, batch, {**cfg, "profile": True}, d),
                nprocs=world,
            )
        return
    configs = [
        (name, world, RECIPES[name]["batch"] // (2 if kind == "strong" else 1), kind)
        for name in args.data
        for world, kind in ((1, "1 proc"), (2, "weak"), (2, "strong"))
    ]
    runs: dict[tuple, list[dict]] = {c: [] for c in configs}
    loads = []
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for c in configs:
            runs[c].append(run(*c[:3], cfg))
    rows = []
    for c in configs:
        res = dict(runs[c][0])
        rates = [r["steps_per_s"] for r in runs[c]]
        res["steps_per_s"] = statistics.median(rates)
        res["samples_per_s"] = res["steps_per_s"] * res["global_batch"]
        res["rounds_steps_per_s"] = rates
        allreduce = [r["allreduce_ms"] for r in runs[c] if r["allreduce_ms"]]
        res["allreduce_ms"] = statistics.median(allreduce) if allreduce else None
        rows.append({**res, "scaling": c[3]})
    for i in range(0, len(rows), 3):
        ref = rows[i]
        for r in rows[i : i + 3]:
            r["steps_speedup"] = r["steps_per_s"] / ref["steps_per_s"]
            r["samples_speedup"] = r["samples_per_s"] / ref["samples_per_s"]
    table = [
        {
            "data": r["data"],
            "procs": r["procs"],
            "scaling": r["scaling"],
            "batch/proc": r["batch_per_proc"],
            "global batch": r["global_batch"],
            "steps/s": fmt(r["steps_per_s"], ".1f"),
            "samples/s": fmt(r["samples_per_s"], ".0f"),
            "x steps/s": fmt(r["steps_speedup"], ".2f"),
            "x samples/s": fmt(r["samples_speedup"], ".2f"),
            "allreduce ms": fmt(r["allreduce_ms"], ".2f"),
        }
        for r in rows
    ]
    print_table(table, list(table[0]))
    print("1-minute load average at the start of each round:", loads)
    meta = {**cfg, "rounds": args.rounds, "loadavg_per_round": loads}
    print("saved", save("bench_distributed_train", rows, meta=meta))


if __name__ == "__main__":
    main()
