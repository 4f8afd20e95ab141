"""The ``otgen`` command: thin argument parsing over the library.

Subcommands:

- ``otgen distance A B``: W_p between two sample files (``.npy``, ``.csv``,
  ``.txt``; rows are points).
- Further subcommands (``train``, ``verify``, ``compare``) register themselves
  from the layers that own them through a ``register(subparsers)`` function.

Errors never end in a traceback. Every failure prints one line on standard
error and exits with:

- 2 for a user error (bad option, bad or too large file, a directory in the
  way, not enough memory, a diverged training run), ``otgen: error: ...``;
- 3 for an internal error (a bug in otgen), ``otgen: internal error: ...``
  with a hint: set ``OTGEN_DEBUG=1`` to get the full traceback;
- 130 when interrupted (Ctrl-C); ``otgen train`` first saves a checkpoint.

``otgen verify`` exits with 1 when a check fails.

Sizes are checked before anything large is allocated: a ``.npy`` header is
read first and its claimed shape compared with the file size and with the
available memory; a text file's size bounds the number of values it can hold.
``otgen distance`` refuses inputs whose points alone do not fit in memory
(:data:`otgen._cli_common.POINT_COPIES` copies of them in float64), and
problems beyond any exact solver: more than :data:`MAX_PAIRS` pairs of points
in dimension d > 3. Other sizes go to :func:`otgen.ot.exact.exact_ot` with its
default solver choice.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from otgen._cli_common import (
    CLIError,
    SampleInfo,
    check_memory,
    inspect_samples,
    load_samples,
    one_line,
)
from otgen._imports import quiet_import

EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
DEBUG_ENV = "OTGEN_DEBUG"
# n * m above which, in dimension d > 3, no exact solver can finish (there is
# no sorting or low-dimensional structure to exploit): refused up front.
MAX_PAIRS = 1e13
# Below this the normalised transport cost sum_ij P_ij (d_ij / D)^p has lost
# digits to float64 underflow (its smallest positive value is 2e-308).
_MIN_NORMALISED_COST = 1e-290
# Relative duality gap above which the exact solver's value is not certified.
_CERT_RTOL = 1e-6
_METRICS = {"euclidean": 2.0, "cityblock": 1.0, "chebyshev": float("inf")}
# Modules that add subcommands; each exposes ``register(subparsers)``.
_PLUGINS = ("otgen.models.cli", "otgen.theory.cli")


def _normalise(
    x: np.ndarray, y: np.ndarray, q: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """Translate and scale both clouds so that every distance is at most 1.

    Returns ``(s, x', y')`` with ``x = s x' + c`` and ``y = s y' + c``: W_p is
    translation invariant and scales by ``s``. Halves avoid overflow at 1e308.
    """
    both_max = np.maximum(x.max(0), y.max(0))
    both_min = np.minimum(x.min(0), y.min(0))
    half = both_max / 2 - both_min / 2  # (d,), finite
    centre = both_max / 2 + both_min / 2
    t = float(half.max())
    if t == 0.0:  # every point is the same
        return 1.0, np.zeros_like(x), np.zeros_like(y)
    r = half / t  # in [0, 1]
    if q == 1.0:
        diam = 2 * float(r.sum())
    elif math.isinf(q):
        diam = 2.0
    else:
        diam = 2 * float(np.linalg.norm(r))
    # An upper bound on every distance in the units of (x - centre) / t.
    scale = t * diam
    return scale, (x - centre) / t / diam, (y - centre) / t / diam


def _checksize_text(infos: Sequence[SampleInfo]) -> None:
    x, y = infos
    if x.d != y.d and x.exact and y.exact:
        raise CLIError(
            f"{x.path} has points of dimension {x.d} but {y.path} has {y.d}; both "
            "files need the same number of columns"
        )
    pairs = float(x.n) * float(y.n)
    if pairs > MAX_PAIRS and max(x.d, y.d) > 3:
        raise CLIError(
            f"{x.path} and {y.path}: {x.n} x {y.n} = {pairs:.2g} pairs of points in "
            f"dimension {max(x.d, y.d)} is beyond any exact solver (limit "
            f"{MAX_PAIRS:.0e} pairs when d > 3); subsample the points, or use "
            "otgen.sinkhorn or a sliced distance"
        )


def _same_rows(x: np.ndarray, y: np.ndarray) -> bool:
    if x.shape != y.shape:
        return False
    kx, ky = np.lexsort(x.T[::-1]), np.lexsort(y.T[::-1])
    return bool(np.array_equal(x[kx], y[ky]))


def _distance(args: argparse.Namespace) -> int:
    from otgen.ot.exact import exact_ot

    infos = [inspect_samples(args.a), inspect_samples(args.b)]
    _checksize_text(infos)
    check_memory(infos)
    x = load_samples(args.a, info=infos[0])
    y = load_samples(args.b, info=infos[1])
    infos = [SampleInfo(args.a, *x.shape, True), SampleInfo(args.b, *y.shape, True)]
    _checksize_text(infos)
    p, q = args.p, _METRICS[args.metric]
    if _same_rows(x, y):  # W_p = 0 exactly; the solver would add rounding
        return _print_distance(args, x, y, 0.0, 1.0, None, 0.0)
    scale, xs, ys = _normalise(x, y, q)
    quiet_import("ot.lp.emd_wrap")  # load the solver before the clock starts
    t0 = time.perf_counter()
    try:
        # A bar on standard error for long solves (the multiscale solver past
        # the dense limit: one step per level, with its round and violation).
        long = float(x.shape[0]) * float(y.shape[0]) >= 1e8 and sys.stderr.isatty()
        res = exact_ot(xs, ys, cost="minkowski", p=p, q=q, progress=long or None)
    except MemoryError as err:
        raise CLIError(
            f"not enough memory to solve exact OT between {x.shape[0]} and "
            f"{y.shape[0]} points; subsample the points, or use otgen.sinkhorn"
        ) from err
    elapsed = time.perf_counter() - t0
    value = max(float(res.value), 0.0)  # in units of scale^p, at most 1
    gap = float(res.duality_gap)
    if value < _MIN_NORMALISED_COST:
        raise CLIError(
            f"--p {p:g}: W_p cannot be computed in float64 for these data: the "
            f"transport cost in units of the diameter^p is {value:.3g}, below "
            f"{_MIN_NORMALISED_COST:g} (W_p is too small compared with the spread "
            "of the points at this p), so the costs d(x, y)^p underflow; use a "
            "smaller p"
        )
    viol = res.max_dual_violation or 0.0
    if gap > _CERT_RTOL * value or viol > _CERT_RTOL * value:
        raise CLIError(
            f"--p {p:g}: the exact solver could not certify W_p for these data "
            f"(duality gap {gap / value:.2g} and dual violation {viol / value:.2g} "
            f"of the transport cost, limit {_CERT_RTOL:g}): the costs d(x, y)^p "
            "span more orders of magnitude than float64 resolves (a large p, or "
            "W_p tiny compared with the spread of the points); use a smaller p"
        )
    return _print_distance(args, x, y, value, scale, res, elapsed)


def _print_distance(args, x, y, value, scale, res, elapsed) -> int:
    """Print W_p from the normalised transport cost ``value`` and ``scale``."""
    p = args.p
    w = scale * value ** (1.0 / p)
    if not math.isfinite(w):
        raise CLIError(
            f"W_{p:g} overflows float64 (the points span {scale:.3g}); rescale the data"
        )
    log10_cost = p * math.log10(scale) + math.log10(value) if value > 0 else None
    in_range = log10_cost is None or log10_cost < 307
    cost = value * scale**p if in_range else None
    gap = 0.0 if res is None else float(res.duality_gap)
    out = {
        "W_p": w,
        "p": p,
        "cost": f"{args.metric}(x, y)^{p:g}",
        "transport_cost": cost,
        "log10_transport_cost": log10_cost,
        "solver": "none (identical point sets)" if res is None else res.solver,
        "converged": True if res is None else res.converged,
        "duality_gap": gap * scale**p if in_range else None,
        "relative_duality_gap": gap / value if value > 0 else 0.0,
        "relative_dual_violation": (
            0.0 if res is None else float(res.max_dual_violation or 0.0) / value
        )
        if value > 0
        else 0.0,
        "rounds": None if res is None else res.rounds,
        "edges": None if res is None else res.n_edges,
        "n": int(x.shape[0]),
        "m": int(y.shape[0]),
        "d": int(x.shape[1]),
        "seconds": elapsed,
    }
    if args.json:
        print(json.dumps(out))
    else:
        tc = (
            f"{cost:.10g}"
            if cost is not None
            else f"10^{log10_cost:.6f} (beyond float64)"
        )
        print(
            f"W_{p:g} = {w:.10g}   (transport cost {tc} for "
            f"{out['cost']}; n={out['n']}, m={out['m']}, d={out['d']})"
        )
        print(
            f"solver: {out['solver']}, converged: {out['converged']}, relative "
            f"duality gap {out['relative_duality_gap']:.2e}, time {elapsed:.3f} s"
        )
    return 0


def _positive_p(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        msg = f"must be a number >= 1 (got {text!r})"
        raise argparse.ArgumentTypeError(msg) from None
    if not (v >= 1 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 1 (got {text})")
    return v


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(EXIT_USAGE, f"otgen: error: {' '.join(message.split())}\n")


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


def _fail(kind: str, message: str, code: int) -> int:
    print(f"otgen: {kind}: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otgen`` command; returns the exit status.

    Usage errors from the argument parser exit through ``SystemExit(2)``;
    every other failure is turned into one line on standard error and a
    status (see the module docstring).
    """
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return EXIT_USAGE
        return int(args.func(args) or 0)
    except CLIError as err:
        return _fail("error", one_line(err), EXIT_USAGE)
    except ValueError as err:  # the library's checks of user input
        return _fail("error", one_line(err), EXIT_USAGE)
    except MemoryError as err:
        msg = f"out of memory ({one_line(err)}); use smaller inputs"
        return _fail("error", msg, EXIT_USAGE)
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        msg = f"{where}{err.strerror or one_line(err)}"
        return _fail("error", msg, EXIT_USAGE)
    except KeyboardInterrupt:
        print("otgen: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 (any bug: one line, not a traceback)
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        msg = (
            f"{type(err).__name__}: {one_line(err)} (a bug in otgen; re-run with "
            f"{DEBUG_ENV}=1 for the full traceback and report it)"
        )
        return _fail("internal error", msg, EXIT_INTERNAL)


if __name__ == "__main__":
    # ``python -m otgen.cli``: run the imported module's main, so that the
    # subcommands' CLIError is the class that main catches.
    from otgen.cli import main as _main

    sys.exit(_main())
