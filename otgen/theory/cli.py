"""The ``otgen verify`` subcommand: run every numerical check of the theory.

``otgen verify [--quick] [--seed S] [--out DIR] [--json] [--items LIST]`` runs
the registry of :mod:`otgen.theory.checks`, prints a table (or JSON with
``--json``), writes ``DIR/report.md`` with its figures, and exits with status 1
if any check fails (2 on a usage error).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from otgen.theory.checks import CHECKS, run_checks

__all__ = ["register", "run"]


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a non-negative integer (got {text!r})"
        ) from None
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32) (got {text})")
    return v


def _items(text: str) -> list[int]:
    try:
        vals = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        vals = []
    bad = [v for v in vals if v not in CHECKS]
    if not vals or bad:
        raise argparse.ArgumentTypeError(
            f"must be a comma-separated list of items among "
            f"{min(CHECKS)}-{max(CHECKS)} (got {text!r})"
        )
    return vals


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def register(subparsers) -> None:
    """Add the ``verify`` subcommand to the ``otgen`` command's subparsers."""
    v = subparsers.add_parser(
        "verify",
        help="check every result of the paper numerically against exact OT",
        description="Run the numerical checks of docs/paper.md section 5 (items "
        "1-16), print a table and write a markdown report with figures. Exit "
        "status 1 if any check fails.",
    )
    v.add_argument("--quick", action="store_true", help="small sizes (< 1 min)")
    v.add_argument("--seed", type=_seed, default=0, help="seed of every instance (0)")
    v.add_argument(
        "--out", default="otgen-verify", help="report directory (./otgen-verify)"
    )
    v.add_argument("--json", action="store_true", help="machine-readable output")
    v.add_argument(
        "--items", type=_items, default=None, help="comma-separated items (all)"
    )
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the checks; return 0 if all pass, 1 otherwise."""
    from tqdm import tqdm

    from otgen._cli_common import CLIError, writable_dir
    from otgen.theory.report import format_table, write_report

    writable_dir(args.out, what="the report")  # before the checks run, not after
    requested = args.items if args.items is not None else list(CHECKS)
    items = [num for num in requested if not CHECKS[num].missing()]
    not_run = [
        f"{num} ({CHECKS[num].title}): needs {', '.join(CHECKS[num].missing())}"
        for num in requested
        if num not in items
    ]
    t0 = time.perf_counter()
    with tqdm(
        total=len(items),
        desc="otgen verify",
        unit="item",
        file=sys.stderr,
        disable=None,
    ) as bar:

        def progress(it):
            bar.set_postfix_str(f"{it.number} {it.title}")
            bar.update(1)

        results = run_checks(
            args.seed, quick=args.quick, items=items, progress=progress
        )
    seconds = time.perf_counter() - t0
    try:
        path = write_report(
            results,
            args.out,
            seed=args.seed,
            quick=args.quick,
            seconds=seconds,
            skipped=not_run,
        )
    except OSError as err:
        raise CLIError(f"cannot write the report to {args.out}: {err}") from err
    n_fail = sum(not r.passed for r in results)
    if args.json:
        _out(
            json.dumps(
                {
                    "passed": n_fail == 0,
                    "n_checks": len(results),
                    "n_failed": n_fail,
                    "seed": args.seed,
                    "quick": args.quick,
                    "seconds": seconds,
                    "report": str(path),
                    "not_run": not_run,
                    "checks": [r.as_dict() for r in results],
                }
            )
        )
    else:
        _out(format_table(results))
        _out(
            f"\n{len(results) - n_fail}/{len(results)} checks passed in "
            f"{seconds:.1f} s (seed {args.seed}, {'quick' if args.quick else 'full'}"
            f" sizes). Report: {path}"
        )
        for line in not_run:
            _out(f"not run: item {line}")
    return 1 if n_fail else 0
