"""Exact OT between point clouds, end to end (cost build included), in one run.

Each case runs in a fresh subprocess, so that its peak memory (RSS) is its
own: otgen ``exact_ot(x, y)`` with no options (``auto``) and with the solver
named, POT ``ot.emd2(a, b, ot.dist(x, y), numItermax=1e9)`` and SciPy
``linear_sum_assignment(cdist(x, y, "sqeuclidean"))`` (uniform n = m) on the
same seeded inputs: x ~ N(0, I), y ~ N(1, 1.5^2 I), uniform or random weights.
The error column is otgen's value against POT's dense value (relative) where
POT runs; past its memory, otgen's own certificate (largest dual violation
relative to the cost scale) is the evidence.

Usage::

    python benchmarks/bench_exact_clouds.py                      # 1e3 .. 1e4
    python benchmarks/bench_exact_clouds.py --sizes 100000 --dims 2 3 --peers
    python benchmarks/bench_exact_clouds.py --sizes 1000 --dims 10 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import save  # noqa: E402

CHILD = r"""
import json, resource, sys, time
import numpy as np
n, d, weights, who, cost, repeats = (
    int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5],
    int(sys.argv[6]),
)
rng = np.random.default_rng(n + d)
x = rng.normal(size=(n, d))
y = 1.0 + 1.5 * rng.normal(size=(n, d))
if weights == "uniform":
    a = b = np.full(n, 1.0 / n)
else:
    a, b = rng.random(n) + 0.1, rng.random(n) + 0.1
    a, b = a / a.sum(), b / b.sum()
p = 2 if cost == "sqeuclidean" else 1
import otgen, ot
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
def run():
    if who.startswith("otgen"):
        solver = who.split(":")[1] if ":" in who else "auto"
        r = otgen.exact_ot(x, y, a, b, cost=cost, solver=solver)
        info = dict(solver=r.solver, converged=r.converged, rounds=r.rounds,
                    edges=r.n_edges,
                    violation=float(r.max_dual_violation or 0.0)
                    / r.extra["cost_scale"],
                    phases=r.extra.get("seconds"))
        return float(r.value), info
    if who == "pot":
        M = ot.dist(x, y, metric="sqeuclidean" if p == 2 else "euclidean")
        return float(ot.emd2(a, b, M, numItermax=10**9)), {}
    if who == "scipy":
        C = cdist(x, y, "sqeuclidean" if p == 2 else "euclidean")
        i, j = linear_sum_assignment(C)
        return float(C[i, j].mean()), {}
    raise SystemExit(who)
times = []
for _ in range(repeats):
    t = time.perf_counter()
    value, info = run()
    times.append(time.perf_counter() - t)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(value=value, seconds=sorted(times)[len(times) // 2],
                      rss_mb=rss, **info)))
"""


def run_case(n, d, weights, who, cost, repeats, timeout):
    cmd = [sys.executable, "-c", CHILD, str(n), str(d), weights, who, cost]
    cmd.append(str(repeats))
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout {timeout} s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail[:80]}
    return json.loads(lines[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 5000, 10000])
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--weights", nargs="+", default=["uniform"])
    ap.add_argument("--cost", default="sqeuclidean")
    ap.add_argument("--peers", action="store_true", help="POT and SciPy too")
    ap.add_argument("--solvers", nargs="+", default=[], help="named otgen solvers")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--pot-max", type=int, default=10000, help="POT up to this n")
    ap.add_argument("--scipy-max", type=int, default=5000)
    ap.add_argument("--name", default=None)
    args = ap.parse_args(argv)
    rows = []
    who_list = ["otgen"] + [f"otgen:{s}" for s in args.solvers]
    hdr = (
        f"{'n':>8} {'d':>2} {'weights':>8} {'who':>22} {'seconds':>9} {'RSS MB':>8} "
        f"{'t/t_pot':>8} {'t/t_scipy':>9} {'rel err vs POT':>14}  detail"
    )
    print(hdr)
    for n in args.sizes:
        for d in args.dims:
            for w in args.weights:
                res = {}
                peers = []
                if args.peers and n <= args.pot_max:
                    peers.append("pot")
                if args.peers and n <= args.scipy_max and w == "uniform":
                    peers.append("scipy")
                for who in peers + who_list:
                    res[who] = run_case(
                        n, d, w, who, args.cost, args.repeats, args.timeout
                    )
                pot = res.get("pot", {})
                for who, r in res.items():
                    row = dict(n=n, d=d, weights=w, who=who, cost=args.cost, **r)
                    rows.append(row)
                    if "error" in r:
                        print(f"{n:>8} {d:>2} {w:>8} {who:>22}  {r['error']}")
                        continue
                    rp = (
                        f"{r['seconds'] / pot['seconds']:.3f}"
                        if "seconds" in pot
                        else "n/a"
                    )
                    sc = res.get("scipy", {})
                    rs = (
                        f"{r['seconds'] / sc['seconds']:.3f}"
                        if "seconds" in sc
                        else "n/a"
                    )
                    err = (
                        f"{abs(r['value'] - pot['value']) / pot['value']:.1e}"
                        if "value" in pot
                        else "n/a"
                    )
                    detail = ""
                    if "solver" in r:
                        detail = (
                            f"{r['solver']}, converged={r['converged']}, "
                            f"violation/scale={r['violation']:.1e}"
                        )
                        if r.get("rounds"):
                            detail += f", rounds={r['rounds']}, edges={r['edges']}"
                    print(
                        f"{n:>8} {d:>2} {w:>8} {who:>22} {r['seconds']:>9.2f} "
                        f"{r['rss_mb']:>8.0f} {rp:>8} {rs:>9} {err:>14}  {detail}",
                        flush=True,
                    )
    path = save(args.name or "bench_exact_clouds", rows, meta=vars(args))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
