"""Entropic OT at n = 1e5 and 1e6: single runs, no warm-up (each run is minutes).

Same clouds, eps and settings as bench_sinkhorn.py (d = 3, float32,
eps = 2 * 0.05**2, tol = 0.1, scaling = 0.8, backend "auto": multiscale on a
CPU with a C++ compiler). Prints the time of one forward and of one
forward + backward, the value and the peak RSS. ``--peer`` adds one forward of
GeomLoss multiscale (scaling 0.5; run it under ``timeout`` at large n).

    python benchmarks/bench_sinkhorn_large.py --n 100000
    timeout 660 python benchmarks/bench_sinkhorn_large.py --n 100000 --peer
    python benchmarks/bench_sinkhorn_large.py --n 1000000
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import otgen

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sinkhorn import clouds  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--blur", type=float, default=0.05)
    ap.add_argument("--peer", action="store_true", help="GeomLoss multiscale only")
    args = ap.parse_args()
    x, y = clouds(args.n, 3)
    if args.peer:
        from geomloss import SamplesLoss

        loss = SamplesLoss(
            "sinkhorn", p=2, blur=args.blur, scaling=0.5, backend="multiscale"
        )
        t = time.perf_counter()
        v = 2 * loss(x, y)
        print(f"geomloss-multiscale fwd {time.perf_counter() - t:.2f} s value {v:.6f}")
    else:
        eps = 2 * args.blur**2
        for backward in (False, True):
            xx = x.clone().requires_grad_(backward)
            t = time.perf_counter()
            s = otgen.sinkhorn_divergence(xx, y, eps=eps, tol=0.1, scaling=0.8)
            if backward:
                s.backward()
            mode = "fwd+bwd" if backward else "fwd"
            dt = time.perf_counter() - t
            print(f"otgen {mode} {dt:.2f} s value {float(s.detach()):.6f}", flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
