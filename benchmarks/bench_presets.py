"""Every preset with its default settings, as ``otgen train`` runs it, on toys.

For each preset and toy: ``otgen train --model PRESET --data TOY`` with no
other option (default steps, batch size, seed 0, one torch thread), then the
report's own model check (exact W2 at m = 1e4 against 19 floor replicates)
and the mode statistics, read back from the run's ``metrics.json``.

All runs share one process, so the check's floor is computed once per toy.

Run (under the lock, one torch thread)::

    OMP_NUM_THREADS=1 flock /tmp/otgen-bench.lock \
        python benchmarks/bench_presets.py [--presets a,b] [--toys ring8,grid25]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    from otgen.cli import main as otgen
    from otgen.models.presets import PRESETS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=",".join(PRESETS))
    p.add_argument("--toys", default="ring8,grid25")
    p.add_argument("--steps", default=None, help="override --steps (default: none)")
    p.add_argument("--json", default=None, help="append one JSON line per run here")
    args = p.parse_args()
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(f"# commit {commit}, load {' '.join(load)}, {time.strftime('%F %T')}")
    cols = "preset toy check z W2/floor modes max-mass-err s-train s-total".split()
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    root = Path(tempfile.mkdtemp(prefix="otgen-presets-"))
    for toy in args.toys.split(","):
        for preset in args.presets.split(","):
            out = root / f"{preset}-{toy}"
            argv = ["train", "--model", preset.replace("_", "-"), "--data", toy]
            argv += ["--quiet", "--out", str(out)]
            if args.steps:
                argv += ["--steps", args.steps]
            t0 = time.perf_counter()
            try:
                code = otgen(argv)
            except SystemExit as err:
                code = err.code
            total = time.perf_counter() - t0
            mpath = out / "metrics.json"
            if code != 0 or not mpath.is_file():
                fail = f"FAILED (exit {code})"
                print(f"| {preset} | {toy} | {fail} | | | | | | {total:.0f} |")
                continue
            m = json.loads(mpath.read_text())
            rep = (out / "report.md").read_text()
            t_train = float(rep.split("- training: ")[1].split(" s")[0])
            ok = "pass" if m["check_indistinguishable"] else "FAIL"
            z = m["check_z"]
            print(
                f"| {preset} | {toy} | {ok} | {z:+.1f} | "
                f"{m['w2_generated']:.3f} / {m['w2_noise_floor']:.3f} | "
                f"{m['modes_covered']}/{m['n_modes']} | "
                f"{m['max_mode_mass_error']:.3f} | {t_train:.0f} | {total:.0f} |",
                flush=True,
            )
            if args.json:
                keep = {k: v for k, v in m.items() if k != "w2_floor_replicates"}
                with open(args.json, "a") as f:
                    row = {"preset": preset, "toy": toy, "seconds_train": t_train}
                    f.write(json.dumps({**row, "seconds_total": total, **keep}) + "\n")
    with open("/proc/loadavg") as f:
        print(f"# load after {' '.join(f.read().split()[:3])}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
