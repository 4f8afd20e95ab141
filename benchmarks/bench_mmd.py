"""Kernel MMD: otgen against GeomLoss and a plain torch cdist code, in one run.

Workloads (float32; x ~ N(0, I_d), y ~ N(1, 1.5^2 I_d), n = m, seeded):

* Quadratic-time table: kernels ``gaussian``, ``laplacian``, ``energy``;
  n in {1e3, 1e4, 1e5}, d in {3, 64}. Every implementation computes the same
  estimator, the biased V-statistic
  ``MMD^2_b = mean K(x, x) + mean K(y, y) - 2 mean K(x, y)``, with the same
  kernel: Gaussian ``exp(-|x-y|^2 / (2 s^2))``, Laplacian ``exp(-|x-y| / s)``,
  energy ``-|x-y|`` (scale 1), where ``s = sqrt(d)`` (the typical distance, so
  the values are not all underflowed at d = 64).

  - otgen: ``otgen.mmd(x, y, kernel=k, scale=s, estimator="biased")``
    (backend "auto": on a CPU with a C++ compiler, the native fused loops
    from 2.5e5 pooled pairs, dense torch below; ``--backend chunked`` gives
    the pure-torch path);
  - GeomLoss 0.3.1: ``2 * SamplesLoss(k, blur=s, backend=...)(x, y)``, with
    ``backend="tensorized"`` (dense) and ``"online"`` (KeOps). GeomLoss returns
    *half* the V-statistic, hence the factor 2; its blur is our scale s.
    GeomLoss's tensorized distances are clamped at 1e-4 (x blur), so its
    Laplacian / energy values differ from the exact ones by up to about
    1e-4 * 2 / n (a diagonal effect, not a timing one);
  - torch cdist: ``kernel(torch.cdist(u, v))`` for the three blocks, means.

  KeOps formulas are compiled on a tiny input before timing (compilation is
  excluded). The error column is |value - reference|, the reference being
  otgen's chunked float64 result for n <= 1e4 and otgen's float32 value
  beyond (then it reads as agreement with otgen).

* Linear-time table: n = 1e6 (d in {3, 64}), Gaussian kernel, the linear-time
  estimator of Gretton et al. (2012): otgen ``estimator="linear"`` against the
  same formula written in plain torch. GeomLoss has no linear-time estimator.

* Defaults table (``--defaults``): each library as a user calls it with no
  option. otgen ``otgen.mmd(x, y)`` (IMQ kernel, default scale, unbiased
  U-statistic, backend "auto") against GeomLoss
  ``2 * SamplesLoss("gaussian")(x, y)`` (blur 0.05, backend "auto"; GeomLoss
  has no kernel by default, "gaussian" is its first kernel). They estimate
  different quantities, so each error column is against its own estimator in
  float64 (otgen's chunked loop on ``x.double()``, ``y.double()``; n <= 1e4).

Ratios are t_otgen / t_peer (below 1: otgen faster). Cases whose first run
exceeds ``--limit`` seconds are printed as skipped. The machine is shared
(2 cores, several processes): absolute times vary with the load, ratios within
one run are what counts; the load average is saved with the results.

Usage::

    python benchmarks/bench_mmd.py --quick        # n in {1e3, 1e4}; linear 1e6
    python benchmarks/bench_mmd.py                # adds n = 1e5
    python benchmarks/bench_mmd.py --limit 60 --repeats 3
    python benchmarks/bench_mmd.py --defaults     # defaults on both sides only
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    Timing,
    fmt,
    machine_info,
    print_table,
    ratio,
    save,
    time_case,
)

import otgen  # noqa: E402

KERNELS = ("gaussian", "laplacian", "energy")


def clouds(n, d, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = 1.0 + 1.5 * torch.randn(n, d, generator=g, dtype=torch.float64)
    return x.to(dtype), y.to(dtype)


def scale_for(kernel, d):
    return 1.0 if kernel == "energy" else math.sqrt(d)


def cdist_mmd(x, y, kernel, s):
    def k(u, v):
        D = torch.cdist(u, v)
        if kernel == "gaussian":
            return torch.exp(-(D * D) / (2 * s * s))
        if kernel == "laplacian":
            return torch.exp(-D / s)
        return -D

    return k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()


def geomloss_case(kernel, s, backend):
    from geomloss import SamplesLoss

    loss = SamplesLoss(kernel, blur=s, backend=backend)
    return lambda x, y: 2 * loss(x, y)


def linear_torch(x, y, s):
    h = x.shape[0] // 2
    x1, x2, y1, y2 = (
        x[0 : 2 * h : 2],
        x[1 : 2 * h : 2],
        y[0 : 2 * h : 2],
        y[1 : 2 * h : 2],
    )

    def k(u, v):
        return torch.exp(-((u - v) ** 2).sum(-1) / (2 * s * s))

    return (k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)).double().mean()


def run_quadratic(sizes, dims, args):
    rows, table = [], []
    for d in dims:
        for kernel in args.kernels:
            s = scale_for(kernel, d)
            if "online" in args.peers:
                # Compile GeomLoss's KeOps formula for this kernel and d first.
                xs, ys = clouds(50, d, seed=1)
                try:
                    geomloss_case(kernel, s, "online")(xs, ys)
                except (ImportError, RuntimeError) as err:
                    print(f"geomloss online unavailable: {err}")
            for n in sizes:
                x, y = clouds(n, d)
                cases = {
                    "otgen": lambda x=x, y=y, k=kernel, s=s: otgen.mmd(
                        x, y, kernel=k, scale=s, estimator="biased"
                    ),
                }
                # Dense peers hold n x n float32 matrices (several at once):
                # skip them beyond the memory instead of meeting the OOM killer.
                dense_gb = 3 * n * n * 4 / 2**30
                fits = dense_gb < args.mem_gb
                if "cdist" in args.peers and fits:
                    cases["cdist"] = lambda x=x, y=y, k=kernel, s=s: cdist_mmd(
                        x, y, k, s
                    )
                if "tensorized" in args.peers and fits:
                    f_t = geomloss_case(kernel, s, "tensorized")
                    cases["geomloss_tensorized"] = lambda f=f_t, x=x, y=y: f(x, y)
                if "online" in args.peers:
                    f_o = geomloss_case(kernel, s, "online")
                    cases["geomloss_online"] = lambda f=f_o, x=x, y=y: f(x, y)
                res = {}
                with torch.no_grad():
                    for name, fn in cases.items():
                        res[name] = time_case(
                            name,
                            fn,
                            repeats=args.repeats,
                            warmup=0,
                            limit_s=args.limit_otgen if name == "otgen" else args.limit,
                        )
                for name in ("cdist", "geomloss_tensorized"):
                    peer = name.split("_")[-1]
                    if peer in args.peers and not fits:
                        res[name] = Timing(
                            name,
                            None,
                            None,
                            None,
                            None,
                            status=f"skipped (needs ~{dense_gb:.0f} GB)",
                        )
                if n <= 10_000:
                    x64, y64 = x.double(), y.double()
                    ref = otgen.mmd(
                        x64,
                        y64,
                        kernel=kernel,
                        scale=s,
                        estimator="biased",
                        backend="chunked",
                    ).item()
                else:
                    ref = res["otgen"].value
                row = {"kernel": kernel, "d": d, "n": n}
                ours = res["otgen"]
                row["otgen s"] = fmt(ours.median_s)
                row["otgen MB"] = fmt(ours.peak_mb, ".0f")
                row["otgen err"] = _err(ours, ref)
                best = None
                for name, t in res.items():
                    if name == "otgen":
                        continue
                    short = name.replace("geomloss_", "gl_")
                    if t.status != "ok":
                        row[f"{short} s"] = t.status.replace("one run ", "")
                        row[f"{short} ratio"] = "-"
                        row[f"{short} err"] = "-"
                        continue
                    r, _ = ratio(ours, t)
                    row[f"{short} s"] = fmt(t.median_s)
                    row[f"{short} ratio"] = fmt(r, ".2f")
                    row[f"{short} err"] = _err(t, ref)
                    if best is None or t.median_s < best[1]:
                        best = (name, t.median_s)
                if best is not None and ours.median_s is not None:
                    row["vs fastest"] = f"{ours.median_s / best[1]:.2f} ({best[0]})"
                else:
                    row["vs fastest"] = "no peer ran"
                print_table([row], list(row))
                table.append(row)
                rows.append(
                    dict(
                        kernel=kernel,
                        d=d,
                        n=n,
                        reference=ref,
                        timings=list(res.values()),
                    )
                )
    print("\nQuadratic-time estimator (biased V-statistic), float32, forward:")
    print_table(table, list(table[0]))
    return rows, table


def _err(t: Timing, ref):
    if t.value is None or ref is None:
        return "n/a"
    return fmt(abs(t.value - ref), ".1e")


def run_defaults(sizes, dims, args):
    """otgen.mmd(x, y) against 2 * SamplesLoss("gaussian")(x, y), no options."""
    from geomloss import SamplesLoss

    rows, table = [], []
    gl = SamplesLoss("gaussian")
    blur = gl.blur
    for d in dims:
        # KeOps compiles GeomLoss's online formula once per d: not timed.
        xs, ys = clouds(50, d, seed=1)
        SamplesLoss("gaussian", backend="online")(xs, ys)
        for n in sizes:
            x, y = clouds(n, d)
            with torch.no_grad():
                ours = time_case(
                    "otgen",
                    lambda x=x, y=y: otgen.mmd(x, y),
                    repeats=args.repeats,
                    warmup=0,
                    limit_s=args.limit_otgen,
                )
                peer = time_case(
                    "geomloss",
                    lambda x=x, y=y: 2 * gl(x, y),
                    repeats=args.repeats,
                    warmup=0,
                    limit_s=args.limit,
                )
                ref_o = ref_g = None
                if n <= 10_000:
                    x64, y64 = x.double(), y.double()
                    ref_o = otgen.mmd(x64, y64, backend="chunked").item()
                    ref_g = otgen.mmd(
                        x64,
                        y64,
                        kernel="gaussian",
                        scale=blur,
                        estimator="biased",
                        backend="chunked",
                    ).item()
            r, _ = ratio(ours, peer)
            row = {
                "n": n,
                "d": d,
                "otgen s": fmt(ours.median_s),
                "otgen value": fmt(ours.value, ".4g"),
                "otgen err": _err(ours, ref_o),
                "geomloss s": fmt(peer.median_s)
                if peer.status == "ok"
                else peer.status,
                "geomloss value": fmt(peer.value, ".4g"),
                "geomloss err": _err(peer, ref_g),
                "ratio": fmt(r, ".2f"),
            }
            print_table([row], list(row))
            table.append(row)
            rows.append(dict(n=n, d=d, defaults=True, timings=[ours, peer]))
    print("\nDefaults on both sides (each error against its own estimator):")
    print_table(table, list(table[0]))
    return rows, table


def run_linear(n, dims, args):
    rows, table = [], []
    for d in dims:
        x, y = clouds(n, d)
        s = math.sqrt(d)
        with torch.no_grad():
            ours = time_case(
                "otgen_linear",
                lambda x=x, y=y, s=s: otgen.mmd(
                    x, y, kernel="gaussian", scale=s, estimator="linear"
                ),
                repeats=args.repeats,
                warmup=0,
                limit_s=args.limit,
            )
            peer = time_case(
                "torch_linear",
                lambda x=x, y=y, s=s: linear_torch(x, y, s),
                repeats=args.repeats,
                warmup=0,
                limit_s=args.limit,
            )
        r, _ = ratio(ours, peer)
        row = {
            "n": n,
            "d": d,
            "otgen s": fmt(ours.median_s),
            "otgen MB": fmt(ours.peak_mb, ".0f"),
            "torch s": fmt(peer.median_s),
            "torch MB": fmt(peer.peak_mb, ".0f"),
            "ratio": fmt(r, ".2f"),
            "|diff|": fmt(abs((ours.value or 0) - (peer.value or 0)), ".1e"),
            "geomloss": "n/a (no linear estimator)",
        }
        table.append(row)
        rows.append(dict(n=n, d=d, timings=[ours, peer]))
    print("\nLinear-time estimator, Gaussian kernel, float32:")
    print_table(table, list(table[0]))
    return rows, table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="n in {1e3, 1e4}")
    parser.add_argument(
        "--limit",
        type=float,
        default=60.0,
        help="per-run time limit in seconds (slower: skipped)",
    )
    parser.add_argument(
        "--limit-otgen",
        type=float,
        default=None,
        help="time limit for otgen (default: --limit)",
    )
    parser.add_argument(
        "--mem-gb",
        type=float,
        default=16.0,
        help="skip dense peers needing more memory than this",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dims", type=int, nargs="+", default=[3, 64])
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument(
        "--peers",
        nargs="+",
        default=["cdist", "tensorized", "online"],
        choices=["cdist", "tensorized", "online"],
    )
    parser.add_argument(
        "--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS)
    )
    parser.add_argument("--name", default=None, help="results/<name>.json")
    parser.add_argument("--linear-n", type=int, default=1_000_000)
    parser.add_argument(
        "--defaults", action="store_true", help="only the defaults-on-both-sides table"
    )
    args = parser.parse_args()
    if args.limit_otgen is None:
        args.limit_otgen = args.limit
    sizes = args.sizes or ([1000, 10_000] if args.quick else [1000, 10_000, 100_000])
    info = machine_info()
    print(
        f"torch {info['torch']}, threads {info['torch_threads']}, "
        f"load {info['loadavg']}, geomloss {info.get('geomloss')}"
    )
    if args.defaults:
        rows, table = run_defaults(sizes, args.dims, args)
        path = save(
            args.name or "bench_mmd_defaults",
            rows,
            meta=dict(args=vars(args), defaults=table),
        )
        print(f"\nsaved {path}")
        return
    quad, quad_table = run_quadratic(sizes, args.dims, args)
    lin, lin_table = run_linear(args.linear_n, args.dims, args)
    name = args.name or ("bench_mmd_quick" if args.quick else "bench_mmd")
    path = save(
        name,
        quad + lin,
        meta=dict(args=vars(args), quadratic=quad_table, linear=lin_table),
    )
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
