"""The ``otgen`` command: thin argument parsing over the library.

Subcommands:

- ``otgen distance A B``: W_p between two sample files (``.npy``, ``.csv``,
  ``.txt``; rows are points).
- Further subcommands (``train``, ``verify``) register themselves from the
  layers that own them through a ``register(subparsers)`` function.

Bad input prints a one-line error and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from otgen._imports import quiet_import

EXIT_USAGE = 2
_METRICS = {"euclidean": 2.0, "cityblock": 1.0, "chebyshev": float("inf")}
# Modules that add subcommands; each exposes ``register(subparsers)``.
_PLUGINS = ("otgen.models.cli", "otgen.theory.cli")


class CLIError(Exception):
    """A user error: printed on one line, exit status 2."""


def load_samples(path: str) -> np.ndarray:
    """Read a sample file: rows are points (``.npy``, ``.csv`` or ``.txt``)."""
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"{path}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix in (".csv", ".txt"):
            delim = "," if suffix == ".csv" else None
            arr = np.loadtxt(p, delimiter=delim, ndmin=2, dtype=np.float64)
        else:
            raise CLIError(
                f"{path}: unsupported file type {suffix or '(none)'}; "
                "use .npy, .csv or .txt with one point per row"
            )
    except CLIError:
        raise
    except (ValueError, OSError, EOFError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CLIError(f"{path}: cannot read samples ({msg})") from err
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise CLIError(f"{path}: samples must be numbers (got dtype {arr.dtype})")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise CLIError(
            f"{path}: expected a non-empty 2-D array, one point per row "
            f"(got shape {arr.shape})"
        )
    return arr


def _distance(args: argparse.Namespace) -> int:
    from otgen.ot.exact import exact_ot

    x, y = load_samples(args.a), load_samples(args.b)
    if x.shape[1] != y.shape[1]:
        raise CLIError(
            f"{args.a} has points of dimension {x.shape[1]} but {args.b} has "
            f"{y.shape[1]}; both files need the same number of columns"
        )
    q = _METRICS[args.metric]
    quiet_import("ot.lp.emd_wrap")  # load the solver before the clock starts
    t0 = time.perf_counter()
    res = exact_ot(x, y, cost="minkowski", p=args.p, q=q)
    elapsed = time.perf_counter() - t0
    value = max(float(res.value), 0.0)
    w = value ** (1.0 / args.p)
    out = {
        "W_p": w,
        "p": args.p,
        "cost": f"{args.metric}(x, y)^{args.p:g}",
        "transport_cost": value,
        "solver": res.solver,
        "converged": res.converged,
        "duality_gap": res.duality_gap,
        "n": int(x.shape[0]),
        "m": int(y.shape[0]),
        "d": int(x.shape[1]),
        "seconds": elapsed,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"W_{args.p:g} = {w:.10g}   (transport cost {value:.10g} for "
            f"{out['cost']}; n={out['n']}, m={out['m']}, d={out['d']})"
        )
        print(
            f"solver: {res.solver}, converged: {res.converged}, "
            f"duality gap {res.duality_gap:.2e}, time {elapsed:.3f} s"
        )
    return 0


def _positive_p(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        msg = f"must be a number >= 1 (got {text!r})"
        raise argparse.ArgumentTypeError(msg) from None
    if not v >= 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {text})")
    return v


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(EXIT_USAGE, f"otgen: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = _Parser(
        prog="otgen",
        description="Optimal transport and OT-based generative modelling.",
    )
    from otgen import __version__

    parser.add_argument("--version", action="version", version=f"otgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    d = sub.add_parser(
        "distance",
        help="Wasserstein distance W_p between two sample files",
        description="Exact W_p between the empirical measures of two sample "
        "files (.npy, .csv or .txt, one point per row, uniform weights).",
    )
    d.add_argument("a", help="first sample file")
    d.add_argument("b", help="second sample file")
    d.add_argument("--p", type=_positive_p, default=2.0, help="order p >= 1 (2)")
    d.add_argument(
        "--metric",
        "--cost",
        dest="metric",
        choices=tuple(_METRICS),
        default="euclidean",
        help="ground metric d; the transport cost is d(x, y)^p (euclidean)",
    )
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(func=_distance)
    for name in _PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otgen`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except CLIError as err:
        print(f"otgen: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as err:
        print(f"otgen: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
