"""Where the multiscale exact solver spends its time: every simplex and pricing call.

The clouds of ``bench_exact_clouds.py`` (x ~ N(0, I), y ~ N(1, 1.5^2 I), seed
0), ``exact_ot(x, y, a, b, solver="multiscale")``, with each call of the
network simplex and of the pricing (exact c-transform) on levels of at least
1e4 points logged with the elapsed time and peak RSS. Stop it with
``timeout``: what it reached is in the log.

    timeout 1500 python benchmarks/trace_exact_multiscale.py 1000000 --dim 2
    python benchmarks/trace_exact_multiscale.py 30000 --weights random
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from otgen.ot import _exact_multiscale as ms
from otgen.ot.exact import exact_ot

T0 = time.perf_counter()


def log(msg: str) -> None:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"[{time.perf_counter() - T0:8.1f} s, peak RSS {rss:6.0f} MB] {msg}", flush=True
    )


def traced(name: str, fn):
    def call(self, *args, **kw):
        t = time.perf_counter()
        out = fn(self, *args, **kw)
        if self.n >= 10_000:
            extra = (
                f"edges={args[0].size} warm={args[1] is not None}"
                if name == "simplex"
                else f"violation {out[3]:.2e}"
            )
            log(f"{name} n={self.n} {extra}: {time.perf_counter() - t:.1f} s")
        return out

    return call


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--dim", type=int, default=2)
    ap.add_argument("--weights", choices=["uniform", "random"], default="uniform")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.dim))
    y = 1 + 1.5 * rng.standard_normal((args.n, args.dim))
    a = b = None
    if args.weights == "random":
        a, b = rng.uniform(0.1, 1.1, args.n), rng.uniform(0.1, 1.1, args.n)
        a, b = a / a.sum(), b / b.sum()
    ms._Level.simplex = traced("simplex", ms._Level.simplex)
    ms._Level.pricing = traced("pricing", ms._Level.pricing)
    log("start")
    r = exact_ot(x, y, a, b, solver="multiscale", progress=False)
    log(
        f"done: value {r.value:.12g}, converged {r.converged}, violation "
        f"{r.max_dual_violation:.2e}, rounds {r.rounds}, edges {r.n_edges}"
    )


if __name__ == "__main__":
    main()
