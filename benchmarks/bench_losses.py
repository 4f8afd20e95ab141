"""Loss modules: otgen.nn against GeomLoss's SamplesLoss, forward + backward.

Workload: x ~ N(0, I_3), y ~ N(0.3, 0.8^2 I_3), n = m in ``--sizes``
(default 1000 and 4000), float32, seeded; each timed call builds the loss on
a fresh leaf ``x`` (``requires_grad``) and runs ``loss(x, y).backward()``.

Sinkhorn (GeomLoss's cost is |x - y|^2 / 2 and eps = blur^2, so
``2 * SamplesLoss("sinkhorn", p=2, blur=s)`` is otgen's divergence at
``eps = 2 s^2``):

- defaults against defaults: ``SinkhornLoss()`` (eps = (spread / 10)^2,
  tol 1e-3) and ``2 * SamplesLoss("sinkhorn", p=2)`` (blur 0.05,
  scaling 0.5, backend "auto");
- matched: ``SinkhornLoss(eps=2 * 0.05**2, scaling=s**2)`` against GeomLoss
  at blur 0.05 with scaling s = 0.5 and 0.9 (GeomLoss's ratio acts on the
  blur, otgen's on eps = 2 blur^2: the same annealing). otgen keeps its
  stopping rule (marginal error 1e-3); GeomLoss runs its schedule once.
- error: |value - W_2^2| / W_2^2, the exact W_2^2 from ``otgen.exact_ot``
  (float64, certified), i.e. the entropic bias plus the solver's error.

MMD:

- defaults: ``MMDLoss()`` (IMQ kernel, scale 2d, unbiased) and
  ``SamplesLoss("gaussian")`` (blur 0.05, half the biased statistic);
- matched: the Gaussian kernel exp(-|x - y|^2 / 2) (scale 1), the biased
  estimator: ``MMDLoss(kernel="gaussian", scale=1.0, estimator="biased")``
  against ``2 * SamplesLoss("gaussian", blur=1.0)``;
- error: |value - the same quantity computed in float64| relative to it
  (otgen's float64 result for otgen; GeomLoss's float64 run for GeomLoss).

Ratios are t_otgen / t_peer within one run (below 1: otgen faster).

Usage::

    flock /tmp/otgen-bench.lock python benchmarks/bench_losses.py
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fmt, print_table, ratio, save, time_case  # noqa: E402

import otgen  # noqa: E402
from otgen.nn import MMDLoss, SinkhornLoss  # noqa: E402


def fwd_bwd(loss, x, y, factor=1.0):
    def run():
        u = x.detach().clone().requires_grad_(True)
        v = factor * loss(u, y)
        v.backward()
        return v.detach()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000])
    ap.add_argument("--d", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--name", default="bench_losses")
    args = ap.parse_args()
    from geomloss import SamplesLoss

    blur = 0.05
    print(f"d = {args.d}, float32, forward + backward; load {os.getloadavg()}")
    results, rows = [], []
    for n in args.sizes:
        rng = np.random.default_rng(n)
        x64 = torch.tensor(rng.normal(size=(n, args.d)))
        y64 = torch.tensor(0.3 + 0.8 * rng.normal(size=(n, args.d)))
        x, y = x64.float(), y64.float()
        w22 = float(otgen.exact_ot(x64, y64).value)
        kw = dict(repeats=args.repeats, warmup=1)

        def add(kind, setting, ours, peer, ref_ours, ref_peer, n=n, kw=kw):
            to = time_case(f"otgen {kind} {setting} n={n}", ours, **kw)
            tp = time_case(f"geomloss {kind} {setting} n={n}", peer, **kw)
            results.extend([to, tp])
            r, _ = ratio(to, tp)

            def err(t, ref):
                return None if t.value is None else abs(t.value - ref) / abs(ref)

            rows.append(
                {
                    "loss": kind,
                    "setting": setting,
                    "n": n,
                    "t_otgen s": fmt(to.median_s),
                    "t_peer s": fmt(tp.median_s),
                    "t_otgen/t_peer": fmt(r),
                    "err otgen": fmt(err(to, ref_ours), ".2e"),
                    "err peer": fmt(err(tp, ref_peer), ".2e"),
                    "value otgen": fmt(to.value, ".6g"),
                    "value peer": fmt(tp.value, ".6g"),
                    "status": f"{to.status}/{tp.status}",
                }
            )

        # Sinkhorn: error against the exact W_2^2.
        add(
            "sinkhorn",
            "defaults",
            fwd_bwd(SinkhornLoss(), x, y),
            fwd_bwd(SamplesLoss("sinkhorn", p=2), x, y, 2.0),
            w22,
            w22,
        )
        for sc in (0.5, 0.9):
            add(
                "sinkhorn",
                f"blur {blur}, scaling {sc} (otgen: {sc**2:g} on eps)",
                fwd_bwd(SinkhornLoss(eps=2 * blur**2, scaling=sc**2), x, y),
                fwd_bwd(SamplesLoss("sinkhorn", p=2, blur=blur, scaling=sc), x, y, 2.0),
                w22,
                w22,
            )
        # MMD: error against the same quantity in float64.
        gl_def = SamplesLoss("gaussian")
        add(
            "mmd",
            "defaults",
            fwd_bwd(MMDLoss(), x, y),
            fwd_bwd(gl_def, x, y),
            float(otgen.mmd(x64, y64)),
            float(gl_def(x64, y64)),
        )
        gl = SamplesLoss("gaussian", blur=1.0)
        add(
            "mmd",
            "gaussian scale 1, biased",
            fwd_bwd(MMDLoss(kernel="gaussian", scale=1.0, estimator="biased"), x, y),
            fwd_bwd(gl, x, y, 2.0),
            float(
                otgen.mmd(x64, y64, kernel="gaussian", scale=1.0, estimator="biased")
            ),
            2.0 * float(gl(x64, y64)),
        )
        print(f"n = {n}: exact W_2^2 = {w22:.6g}; load {os.getloadavg()}", flush=True)
    cols = [
        "loss",
        "setting",
        "n",
        "t_otgen s",
        "t_peer s",
        "t_otgen/t_peer",
        "err otgen",
        "err peer",
        "value otgen",
        "value peer",
        "status",
    ]
    print_table(rows, cols)
    save(args.name, results, meta=vars(args))


if __name__ == "__main__":
    main()
