"""Micro-benchmarks of the native loops behind the Sinkhorn and MMD figures.

Three measurements, each the median of repeated calls on seeded float32 data:

1. Soft-min over a stored (n, n) cost matrix: the native loop
   (``_native.lse_stored``) against torch's ``logsumexp`` of the same
   exponents; ns per pair on all torch threads.
2. Kernel sums ``sum_j k(x_i, x_j) v_j`` (upper triangle, energy kernel) of
   pooled clouds, by dimension: ns per pair.
3. The same kernel sum alone and right after a parallel torch op (what
   ``otgen.mmd`` does): the two must take the same time when the native loops
   share torch's thread pool.
4. Soft-min recomputing the costs (``_native.lse_rows``, the Sinkhorn
   iteration without a stored C) and its gradient pass
   (``_native.expgrad_rows``), by dimension and size: ns per pair. With y read
   once per block of rows, m = 1e5 (25.6 MB of y at d = 64) costs the same
   per pair as m = 4000.

    python benchmarks/bench_native_micro.py
"""

from __future__ import annotations

import statistics
import time

import torch

from otgen.ot import _native


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    if not _native.available():
        raise SystemExit(f"native loops unavailable: {_native.unavailable_reason()}")
    g = torch.Generator().manual_seed(0)
    print(f"threads: {torch.get_num_threads()}")

    print("\n1. soft-min over a stored cost matrix (float32)")
    print(f"{'n':>6} {'native ms':>10} {'torch ms':>10} {'native ns/pair':>15}")
    for n, reps in ((1000, 21), (4000, 5)):
        C = 300 * torch.rand(n, n, generator=g)
        h = torch.randn(n, generator=g)
        nat = median_ms(lambda C=C, h=h: _native.lse_stored(C, h, 0.005), reps)
        ref = median_ms(lambda C=C, h=h: torch.logsumexp(h[None] - C / 0.005, 1), reps)
        print(f"{n:>6} {nat:>10.2f} {ref:>10.2f} {1e6 * nat / n / n:>15.3f}")

    print("\n2. kernel sums, energy kernel, upper triangle (float32)")
    print(f"{'points':>6} {'d':>3} {'ms':>9} {'ns/pair':>8}")
    for N, reps in ((2000, 21), (20000, 3)):
        for d in (3, 8, 16, 64):
            z = torch.randn(N, d, generator=g)
            zt, vt = z.T.contiguous(), torch.randn(1, N, generator=g)
            ms = median_ms(
                lambda z=z, zt=zt, vt=vt: _native.kernel_rows(
                    "energy1", (1.0,), z, zt, vt, True
                ),
                reps,
            )
            print(f"{N:>6} {d:>3} {ms:>9.2f} {2e6 * ms / N / N:>8.3f}")

    print("\n3. a kernel sum alone and right after a parallel torch op (d = 64)")
    x = torch.randn(2000, 64, generator=g)
    xt, vt = x.T.contiguous(), torch.randn(1, 2000, generator=g)

    def alone():
        _native.kernel_rows("energy1", (1.0,), x, xt, vt, True)

    def after_torch_op():
        (x - x.mean(0)).sum()
        _native.kernel_rows("energy1", (1.0,), x, xt, vt, True)

    print(f"alone {median_ms(alone, 41):.2f} ms, after a torch op "
          f"{median_ms(after_torch_op, 41):.2f} ms")  # fmt: skip

    print("\n4. soft-min and its gradient pass, recomputing |x - y|^2 (float32)")
    print(f"{'n':>6} {'m':>7} {'d':>3} {'lse ns/pair':>12} {'grad ns/pair':>13}")
    for n, m, d, reps in (
        (4000, 4000, 3, 11),
        (4000, 4000, 64, 5),
        (4000, 100000, 64, 1),
    ):
        x = torch.randn(n, d, generator=g)
        yt = (1.5 * torch.randn(m, d, generator=g) + 1).T.contiguous()
        h = torch.randn(m, generator=g)
        lse = median_ms(
            lambda x=x, yt=yt, h=h: _native.lse_rows(x, yt, h, 0.5, 2), reps
        )
        al = -_native.lse_rows(x, yt, h, 0.5, 2)  # exponents <= 0
        grad = median_ms(
            lambda x=x, yt=yt, al=al, h=h: _native.expgrad_rows(
                x, yt, al, h, None, 0.5, 2
            ),
            reps,
        )
        per = 1e6 / n / m  # ms -> ns per pair
        print(f"{n:>6} {m:>7} {d:>3} {lse * per:>12.3f} {grad * per:>13.3f}")


if __name__ == "__main__":
    main()
