"""Numba against the C++ native loops (issue 17, item 3): ns per pair.

The decision rule: move the native backend to Numba if Numba is within 1.25x
of the C++ ns per pair. Both run the same algorithm on the same seeded
float32 data in one process, with the same number of threads
(``torch.get_num_threads()``; Numba's pool is set to it): a soft-min over a
stored cost matrix (part 1 of ``bench_native_micro.py``) and the soft-min
recomputing ``|x_i - y_j|^2`` (part 4), both written as the C++ does them:
blocks of 64 rows handed to the threads, tiles of 512 columns, a running
maximum, and the same branch-free polynomial exp (Numba has no SVML here, and
a libm exp would not vectorise). Numba: ``parallel=True``, ``fastmath=True``,
``cache=True``. The first-call (compile or cache load) times are printed too.

    flock /tmp/otgen-bench.lock python benchmarks/bench_numba_vs_native.py
"""

from __future__ import annotations

import math
import statistics
import time
from functools import partial

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from otgen.ot import _native

ROWS, TILE = 64, 512
LOG2E, LN2_HI, LN2_LO = 1.44269504088896341, 0.693145751953125, 1.428606765330187045e-06


@intrinsic
def _as_f32(typingctx, v):
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@njit(fastmath=True, inline="always")
def exp_neg(t):  # exp(t), t in [-87, 0], float32: the C++ polynomial
    kf = np.float32(np.rint(t * np.float32(LOG2E)))
    r = t - kf * np.float32(LN2_HI)
    r -= kf * np.float32(LN2_LO)
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    return p * _as_f32((np.int32(kf) + np.int32(127)) << np.int32(23))


@njit(parallel=True, fastmath=True, cache=True)
def lse_stored_nb(C, h, inv_eps, out):
    n, m = C.shape
    nblk = (n + ROWS - 1) // ROWS
    for b in prange(nblk):
        s = np.empty(m, np.float32)
        for i in range(b * ROWS, min(n, (b + 1) * ROWS)):
            mx = np.float32(-np.inf)
            for j in range(m):
                v = h[j] - C[i, j] * inv_eps
                s[j] = v
                mx = max(mx, v)
            acc = np.float32(0.0)
            for j in range(m):
                acc += exp_neg(max(s[j] - mx, np.float32(-87.0)))
            out[i] = mx + math.log(acc)


@njit(parallel=True, fastmath=True, cache=True)
def lse_rows_nb(x, yt, h, inv_eps, out):
    n, d = x.shape
    m = yt.shape[1]
    nblk = (n + ROWS - 1) // ROWS
    for b in prange(nblk):
        i0, i1 = b * ROWS, min(n, (b + 1) * ROWS)
        mx = np.full(ROWS, -np.inf, np.float32)
        acc = np.zeros(ROWS, np.float64)
        s = np.empty(TILE, np.float32)
        for t0 in range(0, m, TILE):
            L = min(m, t0 + TILE) - t0
            for i in range(i0, i1):
                for j in range(L):
                    s[j] = 0.0
                for k in range(d):
                    xk = x[i, k]
                    for j in range(L):
                        diff = xk - yt[k, t0 + j]
                        s[j] += diff * diff
                tmx = np.float32(-np.inf)
                for j in range(L):
                    v = h[t0 + j] - s[j] * inv_eps
                    s[j] = v
                    tmx = max(tmx, v)
                r = i - i0
                if tmx > mx[r]:
                    if acc[r] > 0.0:
                        acc[r] *= math.exp(float(mx[r] - tmx))
                    mx[r] = tmx
                part = np.float32(0.0)
                for j in range(L):
                    part += exp_neg(max(s[j] - mx[r], np.float32(-87.0)))
                acc[r] += part
        for i in range(i0, i1):
            out[i] = mx[i - i0] + math.log(acc[i - i0])


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    threads = torch.get_num_threads()
    numba.set_num_threads(threads)
    print(f"threads: torch {threads}, numba {numba.get_num_threads()} "
          f"(layer setting {numba.config.THREADING_LAYER!r}); "
          f"native available: {_native.available()}")  # fmt: skip
    g = torch.Generator().manual_seed(0)
    rows = []

    # First calls: the C++ library is already built (or loaded) by available().
    C = 300 * torch.rand(64, 64, generator=g)
    h = torch.randn(64, generator=g)
    out = np.empty(64, np.float32)
    t0 = time.perf_counter()
    lse_stored_nb(C.numpy(), h.numpy(), np.float32(200.0), out)
    t_first_stored = time.perf_counter() - t0
    x = torch.randn(64, 3, generator=g)
    t0 = time.perf_counter()
    lse_rows_nb(x.numpy(), x.T.contiguous().numpy(), h.numpy(), np.float32(2.0), out)
    t_first_rows = time.perf_counter() - t0
    print(f"numba first call (compile or cache load): lse_stored "
          f"{t_first_stored:.2f} s, lse_rows {t_first_rows:.2f} s")  # fmt: skip

    print(f"\n{'case':<26} {'C++ ns/pair':>12} {'numba ns/pair':>14} "
          f"{'numba/C++':>10} {'max rel diff':>13}")  # fmt: skip
    for n, reps in ((1000, 21), (4000, 7)):
        C = 300 * torch.rand(n, n, generator=g)
        h = torch.randn(n, generator=g)
        o = np.empty(n, np.float32)
        Cn, hn, inv = C.numpy(), h.numpy(), np.float32(1 / 0.005)
        ref = _native.lse_stored(C, h, 0.005)
        lse_stored_nb(Cn, hn, inv, o)
        err = float((torch.from_numpy(o) - ref).abs().max() / ref.abs().max())
        tc, tn = [], []
        for _ in range(3):  # interleaved: the machine is shared
            tc.append(median_ms(partial(_native.lse_stored, C, h, 0.005), reps))
            tn.append(median_ms(partial(lse_stored_nb, Cn, hn, inv, o), reps))
        rows.append((f"stored C, n={n}", min(tc) * 1e6 / n / n,
                     min(tn) * 1e6 / n / n, err))  # fmt: skip
    for n, m, d, reps in ((4000, 4000, 3, 11), (4000, 4000, 64, 5)):
        x = torch.randn(n, d, generator=g)
        yt = (1.5 * torch.randn(m, d, generator=g) + 1).T.contiguous()
        h = torch.randn(m, generator=g)
        o = np.empty(n, np.float32)
        xn, ytn, hn, inv = x.numpy(), yt.numpy(), h.numpy(), np.float32(1 / 0.5)
        ref = _native.lse_rows(x, yt, h, 0.5, 2)
        lse_rows_nb(xn, ytn, hn, inv, o)
        err = float((torch.from_numpy(o) - ref).abs().max() / ref.abs().max())
        tc, tn = [], []
        for _ in range(3):
            tc.append(median_ms(partial(_native.lse_rows, x, yt, h, 0.5, 2), reps))
            tn.append(median_ms(partial(lse_rows_nb, xn, ytn, hn, inv, o), reps))
        rows.append((f"lse_rows n=m={n}, d={d}", min(tc) * 1e6 / n / m,
                     min(tn) * 1e6 / n / m, err))  # fmt: skip
    for name, c, nb, err in rows:
        print(f"{name:<26} {c:>12.3f} {nb:>14.3f} {nb / c:>10.2f} {err:>13.1e}")


if __name__ == "__main__":
    main()
