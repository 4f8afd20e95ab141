"""Sliced Wasserstein: otgen against POT on the same inputs and projections.

Workload: x ~ N(0, I_3), y ~ N(1, 1.5^2 I_3), n = m = 1e6 (``--n``), uniform
weights, L = 100 directions, seeded. Cases:

- ``otgen``: ``otgen.sliced_wasserstein(x, y, n_projections=100)`` (its
  defaults otherwise: seed 0, float64 accumulation);
- ``otgen, POT's projections``: ``projections=P``, with P the directions POT
  draws for ``seed=0`` (``ot.sliced.get_random_projections(3, 100, seed=0)``);
- ``POT``: ``ot.sliced_wasserstein_distance(x, y, n_projections=100, seed=0)``
  (POT's default is 50 directions; 100 on both sides); with ``--pot-block k``
  POT is called on blocks of k of those directions (memory, see
  :func:`pot_sliced`);
- the same two in float32 input (``--float32``), where POT accumulates in
  float32.

The value column is SW_2; ``|diff|/value`` compares otgen with POT's
projections to POT (the same directions: the same number up to rounding);
otgen's Monte Carlo standard error is printed with its own draw. The float64
value of otgen with POT's projections is the reference of the float32 rows.

Usage::

    flock /tmp/otgen-bench.lock python benchmarks/bench_sliced.py --pot-block 10 \
        --repeats 1
    flock /tmp/otgen-bench.lock python benchmarks/bench_sliced.py --n 100000 \
        --float32 --name bench_sliced_1e5
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fmt, print_table, ratio, save, time_case  # noqa: E402

import otgen  # noqa: E402


def pot_sliced(ot, u, v, P, args):
    """POT's SW_2 with the directions P (those of ``seed=0``).

    ``--pot-block k``: POT called on blocks of k directions and the mean of
    the 1-D costs combined (the same directions and work; POT holds (n, L)
    arrays and several temporaries: 2 GB at n = 1e5, L = 100, so about 20 GB
    at n = 1e6, more than the shared machine has free).
    """
    if not args.pot_block:
        return ot.sliced_wasserstein_distance(u, v, n_projections=args.L, seed=0)
    k = args.pot_block
    parts = [
        ot.sliced_wasserstein_distance(u, v, projections=P[:, s : s + k]) ** 2
        * P[:, s : s + k].shape[1]
        for s in range(0, P.shape[1], k)
    ]
    return (sum(parts) / P.shape[1]) ** 0.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=3)
    ap.add_argument("--L", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--float32", action="store_true", help="add float32 rows")
    ap.add_argument("--pot-block", type=int, default=0, help="POT by blocks")
    ap.add_argument("--name", default="bench_sliced")
    args = ap.parse_args()
    import ot

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, args.d))
    y = 1.0 + 1.5 * rng.normal(size=(args.n, args.d))
    P = ot.sliced.get_random_projections(args.d, args.L, seed=0)
    print(f"n = m = {args.n}, d = {args.d}, L = {args.L}, load {os.getloadavg()}")
    kw = dict(repeats=args.repeats, warmup=0)
    runs = {}

    def ours(u, v, **o):
        return otgen.sliced_wasserstein(u, v, **o)

    ref = ours(x, y, projections=P)
    mine = ours(x, y, n_projections=args.L)
    dtypes = [np.float64] + ([np.float32] if args.float32 else [])
    rows, results = [], []
    for dt in dtypes:
        u, v = x.astype(dt), y.astype(dt)
        tag = "" if dt is np.float64 else " (float32)"
        q = P.astype(dt)
        cases = {
            "otgen" + tag: lambda u=u, v=v: ours(u, v, n_projections=args.L).value,
            "otgen, POT's projections" + tag: lambda u=u, v=v, q=q: (
                ours(u, v, projections=q).value
            ),
            "POT" + tag: lambda u=u, v=v, q=q: pot_sliced(ot, u, v, q, args),
        }
        for name, fn in cases.items():
            runs[name] = time_case(name, fn, **kw)
            results.append(runs[name])
        pot = runs["POT" + tag]
        for name in cases:
            t = runs[name]
            r, _ = ratio(t, pot)
            err = None if t.value is None else abs(t.value - ref.value) / ref.value
            rows.append(
                {
                    "case": name,
                    "seconds": fmt(t.median_s),
                    "peak MB": fmt(t.peak_mb, ".0f"),
                    "SW_2": fmt(t.value, ".10g"),
                    "t/t_POT": fmt(r),
                    "|diff|/value vs float64 same P": fmt(err, ".2e"),
                    "status": t.status,
                }
            )
    print_table(
        rows,
        [
            "case",
            "seconds",
            "peak MB",
            "SW_2",
            "t/t_POT",
            "|diff|/value vs float64 same P",
            "status",
        ],
    )
    print(
        f"otgen's own draw: SW_2 = {mine.value:.6g} +- {mine.std_error:.2g} "
        f"(standard error over {mine.n_projections} directions)"
    )
    save(args.name, results, meta=vars(args))


if __name__ == "__main__":
    main()
