"""Sinkhorn's stopping rules: iterations and the value's error, n = 1000.

For each problem (x ~ N(0, I), y ~ N(1, 1.5^2 I), d = 3 and 64, the default
eps and eps = 2 * 0.05^2, OT(a, b) and the symmetric OT(a, a)): the number
of iterations and the relative error of the value of ``sinkhorn`` under the
value rule (``rtol`` = 1e-3, 1e-4; float32 and float64 data) and under the
marginal rule at ``tol=1e-3`` (the default before the value rule), against a
float64 reference run for 20,000 iterations at the target eps (its value
settled to about 1e-8). One torch thread; no timing (iterations are the
machine-independent cost).

    python benchmarks/bench_stopping_rule.py            # about 6 minutes
"""

from __future__ import annotations

import warnings

import torch

import otgen


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    n = 1000
    print(
        "d  eps  problem  ref_iter  | setting: iterations rel.err ('!' = not converged)"
    )
    for d in (3, 64):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, d, generator=g)
        y = 1.5 * torch.randn(n, d, generator=g) + 1.0
        for eps in (None, 2 * 0.05**2):
            for u, v in ((x, y), (x, x)):
                ref = otgen.sinkhorn(
                    u.double(), v.double(), eps=eps, rtol=1e-12, max_iter=20000
                )
                rv = float(ref.value)
                row = []
                for dt in (torch.float32, torch.float64):
                    for rt in (1e-3, 1e-4):
                        r = otgen.sinkhorn(
                            u.to(dt), v.to(dt), eps=eps, rtol=rt, max_iter=100000
                        )
                        err = abs(float(r.value) - rv) / abs(rv)
                        flag = "" if r.converged else "!"
                        row.append(
                            f"{str(dt)[-7:]} rtol={rt:g}: {r.n_iter} {err:.1e}{flag}"
                        )
                r = otgen.sinkhorn(u, v, eps=eps, tol=1e-3)
                err = abs(float(r.value) - rv) / abs(rv)
                row.append(f"tol=1e-3: {r.n_iter} {err:.1e}")
                sym = "OT(a,a)" if u is v else "OT(a,b)"
                print(d, eps, sym, ref.n_iter, "| " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
