"""The first call on a small problem, in a fresh process with no native build.

Issue 17, item 3: a first call on a small problem must cost under 2 s. Each
case runs in a new interpreter whose ``OTGEN_CACHE`` is an empty directory (so
the native library is not built yet) and prints the time of ``import otgen``
and of the first call (``otgen.sinkhorn`` of 300 x 200 points in 3-D,
``otgen.sinkhorn_divergence`` and ``otgen.mmd`` of the same clouds), and
whether the call built the native library.

    flock /tmp/otgen-bench.lock python benchmarks/bench_first_call.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

CASE = """
import json, time
t0 = time.perf_counter()
import torch
import otgen
from otgen.ot import _native
t1 = time.perf_counter()
g = torch.Generator().manual_seed(0)
x, y = torch.randn(300, 3, generator=g), torch.randn(200, 3, generator=g)
call = {call}
t2 = time.perf_counter()
call(x, y)
t3 = time.perf_counter()
print(json.dumps(dict(import_s=t1 - t0, first_call_s=t3 - t2,
                      built=_native._lib.cache_info().currsize > 0)))
"""

CALLS = {
    "sinkhorn": "lambda x, y: otgen.sinkhorn(x, y, eps=0.1)",
    "sinkhorn_divergence": "lambda x, y: otgen.sinkhorn_divergence(x, y, eps=0.1)",
    "mmd": "lambda x, y: otgen.mmd(x, y)",
}


def main() -> None:
    print(f"{'call':<22} {'import s':>9} {'first call s':>13} {'built native':>13}")
    for name, call in CALLS.items():
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "OTGEN_CACHE": cache}
            out = subprocess.run(
                [sys.executable, "-c", CASE.format(call=call)],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:<22} {r['import_s']:>9.2f} {r['first_call_s']:>13.2f} "
              f"{str(r['built']):>13}")  # fmt: skip


if __name__ == "__main__":
    main()
