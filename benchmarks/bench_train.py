"""Training speed and time to quality: conv WAE-MMD on scikit-learn's digits.

The main job on real data (``otgen train --data digits``): the same split
(seed 0: 1079 training images, 359 held out), model (``build("wae-mmd",
(8, 8), d_z=8)``, conv nets) and batch (100). Per device (CPU; CUDA too when
available, with and without AMP) it prints

- steps per second (median over blocks of ``--block`` steps);
- the time and step at which the held-out reconstruction error first reaches
  PCA's with the same 8 components (the quality target), checked every
  ``--block`` steps (evaluation time excluded);
- the final held-out error, PCA's, their ratio, the MMD test p-value and the
  Frechet distance against its floor.

No peer runs here: pythae (the WAE peer of the issue) is not installed on the
development machine.

    python benchmarks/bench_train.py                 # 4000 steps, CPU (+ CUDA)
    python benchmarks/bench_train.py --steps 1000 --devices cpu
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _harness import fmt, machine_info, print_table, save

from otgen.models import Trainer, build, image_metrics, load_data
from otgen.models.image_metrics import (
    model_reconstruction_error,
    pca_reconstruction_error,
)


def split(seed: int = 0):
    """The split of ``otgen train --data digits`` (held-out sets of n // 5)."""
    x = load_data("digits")
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(x)))
    x = x[perm]
    m = len(x) // 5
    return x[2 * m :], x[:m], x[m : 2 * m]


def run(device: str, amp: bool, steps: int, block: int, threads: int) -> dict:
    train, held, held2 = split()
    pca = pca_reconstruction_error(train, held, 8)
    model = build("wae-mmd", (8, 8), d_z=8, seed=0)
    tr = Trainer(
        model,
        train,
        batch_size=100,
        device=device,
        amp=amp,
        num_threads=threads,
        progress=False,
    )
    rates, t_train, reached = [], 0.0, None
    while tr.step < steps:
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        tr.fit(min(block, steps - tr.step))
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        t_train += dt
        rates.append(block / dt)
        err = model_reconstruction_error(model, held)
        if reached is None and err <= pca:
            reached = (tr.step, t_train)
    model.float()
    metrics = image_metrics(model.cpu(), train, held, held2)
    return {
        "device": device + (" amp" if amp else ""),
        "steps/s": statistics.median(rates),
        "train s": t_train,
        "steps to PCA": reached[0] if reached else None,
        "s to PCA": reached[1] if reached else None,
        "recon": metrics["recon_model"],
        "PCA": metrics["recon_pca"],
        "recon/PCA": metrics["recon_model"] / metrics["recon_pca"],
        "MMD p": metrics["mmd_p_value"],
        "Frechet": metrics["frechet"],
        "floor": metrics["frechet_floor"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--block", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (1)")
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    ap.add_argument("--name", default="bench_train")
    args = ap.parse_args()
    cases = []
    for dev in args.devices:
        if dev == "cuda" and not torch.cuda.is_available():
            print("cuda: no GPU here, skipped")  # noqa: T201
            continue
        cases += [(dev, False)] + ([(dev, True)] if dev == "cuda" else [])
    rows = [run(d, a, args.steps, args.block, args.threads) for d, a in cases]
    columns = list(rows[0]) if rows else []
    print_table(
        [
            {k: (fmt(v) if isinstance(v, float) else v) for k, v in r.items()}
            for r in rows
        ],
        columns,
    )
    save(args.name, rows, {"args": vars(args), "machine": machine_info()})


if __name__ == "__main__":
    main()
