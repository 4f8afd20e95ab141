"""Entropic OT: otgen.sinkhorn_divergence against GeomLoss and POT.

Same seeded clouds for every solver: x ~ N(0, I), y ~ N(1, 1.5^2 I), uniform
weights, float32. Same regularisation: GeomLoss blur -> otgen/POT eps =
2 * blur**2 for the cost |x - y|^2 (GeomLoss uses |x - y|^2 / 2, eps = blur^2,
so its values are doubled here). Reported: median time, peak RSS, and the
error against exact OT (otgen.exact_ot in float64) for n <= --exact-max.

What each solver returns: otgen and GeomLoss the debiased divergence
S_eps; POT ``sinkhorn2`` the transport cost <P, C> of the entropic plan (POT
has no debiased samples loss), all to be compared with W_2^2.

A peer that exceeded the time limit at a size is not run at larger sizes
("skipped (> limit)"); a missing peer prints n/a.

    python benchmarks/bench_sinkhorn.py --quick          # n = 1e3, d = 3
    python benchmarks/bench_sinkhorn.py --sizes 1000 10000 --limit 120
    python benchmarks/bench_sinkhorn.py --sizes 100000 --dims 64 --tol 0.3 \
        --modes fwd+bwd --repeats 1 --warmup 0 --peers   # otgen alone, ~1 h
    python benchmarks/bench_sinkhorn.py --defaults --sizes 1000 10000 \
        --dims 3 64 --exact-max 10000    # no options on either side
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

import otgen

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Timing, fmt, print_table, ratio, save, time_case  # noqa: E402

torch.backends.cuda.matmul.allow_tf32 = False


def clouds(n: int, d: int, seed: int = 0, device: str = "cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = 1.5 * torch.randn(n, d, generator=g) + 1.0
    return x.to(device), y.to(device)


def otgen_case(x, y, eps, args, backward, options=None):
    """otgen's divergence; ``options``: exactly these keywords (``{}``: the
    defaults), None: the command line's settings."""
    if options is None:
        options = dict(
            eps=eps,
            tol=args.tol,
            scaling=args.scaling,
            max_iter=args.max_iter,
            backend=args.backend,
        )

    def run():
        xx = x.detach().clone().requires_grad_(backward)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            s = otgen.sinkhorn_divergence(xx, y, **options)
        if backward:
            s.backward()
        return s.detach()

    return run


def geomloss_case(x, y, blur, backend, scaling, backward, defaults=False):
    from geomloss import SamplesLoss

    if defaults:  # SamplesLoss's own defaults: p=2, blur=0.05, scaling=0.5, auto
        loss = SamplesLoss("sinkhorn")
    else:
        loss = SamplesLoss("sinkhorn", p=2, blur=blur, scaling=scaling, backend=backend)

    def run():
        xx = x.detach().clone().requires_grad_(backward)
        s = 2.0 * loss(xx, y)
        if backward:
            s.backward()
        return s.detach()

    return run


def pot_case(x, y, eps, use_torch, backward):
    import ot

    def run():
        if use_torch:
            xx = x.detach().clone().requires_grad_(backward)
            M = ot.dist(xx, y)
            a = torch.full((x.shape[0],), 1.0 / x.shape[0], device=x.device)
            v = ot.sinkhorn2(a, a, M, eps, method="sinkhorn_log", numItermax=1000)
            if backward:
                v.backward()
            return v.detach()
        xn, yn = x.cpu().double().numpy(), y.cpu().double().numpy()
        M = ot.dist(xn, yn)
        a = np.full(x.shape[0], 1.0 / x.shape[0])
        return ot.sinkhorn2(a, a, M, eps, method="sinkhorn_log", numItermax=1000)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--dims", type=int, nargs="+", default=[3])
    ap.add_argument("--blur", type=float, default=0.05)
    ap.add_argument("--tol", type=float, default=0.1)
    ap.add_argument("--scaling", type=float, default=0.8)
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--limit", type=float, default=60.0, help="seconds per run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument(
        "--peers",
        nargs="*",  # none: otgen alone (e.g. a second otgen setting)
        default=[
            "geomloss-tensorized",
            "geomloss-online",
            "geomloss-multiscale",
            "geomloss-0.9",
            "pot-numpy",
            "pot-torch",
        ],
    )
    ap.add_argument("--no-backward", action="store_true", help="same as --modes fwd")
    ap.add_argument(
        "--modes", nargs="+", choices=["fwd", "fwd+bwd"], default=["fwd", "fwd+bwd"]
    )
    ap.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed runs first (0: the first run is timed; for hour-long sizes)",
    )
    ap.add_argument("--name", default="bench_sinkhorn", help="results/<name>.json")
    ap.add_argument(
        "--exact-max",
        type=int,
        default=5000,
        help="largest n with an exact OT reference (n = 1e4: about 1 min, 4 GB)",
    )
    ap.add_argument("--quick", action="store_true", help="n = 1000, d = 3 only")
    ap.add_argument(
        "--defaults",
        action="store_true",
        help="every solver with no options: otgen.sinkhorn_divergence(x, y) "
        "against 2 * SamplesLoss('sinkhorn')(x, y) (peer 'geomloss-default'), "
        "and 'otgen-tol1e-3' (the marginal rule, the default before the value "
        "rule); each at its own default eps",
    )
    ap.add_argument(
        "--device", default="cpu", help="torch device of the clouds (cpu, cuda)"
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.sizes, args.dims, args.repeats = [1000], [3], 1
    if args.defaults and "--peers" not in sys.argv:
        args.peers = ["geomloss-default", "otgen-tol1e-3"]
    eps = 2 * args.blur**2
    over: set[tuple[str, int]] = set()  # (case, d) that exceeded the limit
    rows, results = [], []
    for d in args.dims:
        for n in args.sizes:
            if d > 3 and n > 100_000:
                continue
            x, y = clouds(n, d, device=args.device)
            ref = None
            if n <= args.exact_max:
                ref = float(
                    otgen.exact_ot(
                        x.cpu().double().numpy(), y.cpu().double().numpy()
                    ).value
                )
            modes = ["fwd"] if args.no_backward else args.modes
            for mode in modes:
                backward = mode == "fwd+bwd"
                opts = {} if args.defaults else None
                cases = {"otgen": otgen_case(x, y, eps, args, backward, opts)}
                for peer in args.peers:
                    if peer == "geomloss-default":
                        cases[peer] = geomloss_case(
                            x, y, None, None, None, backward, defaults=True
                        )
                        continue
                    if peer == "otgen-tol1e-3":
                        cases[peer] = otgen_case(
                            x, y, eps, args, backward, {"tol": 1e-3}
                        )
                        continue
                    if peer.startswith("geomloss"):
                        kind = peer.split("-")[1]
                        bk, sc = ("tensorized", 0.9) if kind == "0.9" else (kind, 0.5)
                        if bk == "tensorized" and n > 20_000:
                            continue  # n^2 floats: out of memory
                        cases[peer] = geomloss_case(x, y, args.blur, bk, sc, backward)
                    elif peer == "pot-numpy" and not backward:
                        if n <= 20_000:
                            cases[peer] = pot_case(x, y, eps, False, False)
                    elif peer == "pot-torch" and n <= 20_000:
                        cases[peer] = pot_case(x, y, eps, True, backward)
                timings: dict[str, Timing] = {}
                for name, fn in cases.items():
                    key = (f"{name} {mode}", d)
                    if key in over:
                        timings[name] = Timing(
                            name, None, None, None, None, status="skipped (> limit)"
                        )
                    else:
                        timings[name] = time_case(
                            name,
                            fn,
                            repeats=args.repeats,
                            warmup=args.warmup,
                            limit_s=args.limit,
                        )
                        if timings[name].status.startswith("skipped"):
                            over.add(key)
                ours = timings["otgen"]
                for name, t in timings.items():
                    r, _ = ratio(ours, t)
                    err = (
                        None if (ref is None or t.value is None) else abs(t.value - ref)
                    )
                    rows.append(
                        {
                            "n": n,
                            "d": d,
                            "mode": mode,
                            "solver": name,
                            "time s": fmt(t.median_s) if t.status == "ok" else t.status,
                            "peak MB": fmt(t.peak_mb, ".0f"),
                            "ratio": "-" if name == "otgen" else fmt(r),
                            "|err| vs exact": fmt(err, ".2e"),
                        }
                    )
                    results.append(
                        {
                            "n": n,
                            "d": d,
                            "mode": mode,
                            "timing": t,
                            "exact": ref,
                            "error": err,
                        }
                    )
                print_table(rows[-len(timings) :], list(rows[-1].keys()))
                print(flush=True)
    print("\nAll results (ratio = t_otgen / t_peer; below 1: otgen faster):")
    print_table(rows, list(rows[0].keys()))
    path = save(
        args.name,
        results,
        meta={
            "eps": eps,
            "blur": args.blur,
            "tol": args.tol,
            "scaling": args.scaling,
            "dtype": "float32",
            "backend": args.backend,
            "limit_s": args.limit,
        },
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
