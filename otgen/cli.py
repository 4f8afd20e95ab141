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
(:data:`POINT_COPIES` copies of them in float64), and problems beyond any exact
solver: more than :data:`MAX_PAIRS` pairs of points in dimension d > 3. Other
sizes go to :func:`otgen.ot.exact.exact_ot` with its default solver choice.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from otgen._imports import quiet_import

EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
DEBUG_ENV = "OTGEN_DEBUG"
# Working copies of the points that ``otgen distance`` may hold at once: the
# file as read, a float64 copy, the normalised copy and the solver's tensors.
POINT_COPIES = 4
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


class CLIError(Exception):
    """A user error: printed on one line, exit status 2."""


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (its type name when it has none)."""
    text = " ".join(str(err).split())
    return text or type(err).__name__


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"  # pragma: no cover


def available_memory() -> int | None:
    """Bytes of memory this process can still allocate, or None if unknown.

    The smaller of the system's available memory (``MemAvailable`` on Linux,
    else ``SC_AVPHYS_PAGES``) and the room left under a cgroup v2 limit.
    """
    avail: int | None = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            avail = None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            room = max(int(limit) - used, 0)
            avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    return avail


@dataclass(frozen=True)
class SampleInfo:
    """What a sample file holds, read without loading it.

    ``n`` is exact for ``.npy`` files and an estimate (``exact=False``) for
    text files, from the size of the file and of its first lines.
    """

    path: str
    n: int
    d: int
    exact: bool


def _npy_info(path: str, p: Path, size: int) -> SampleInfo:
    fmt = np.lib.format
    try:
        with p.open("rb") as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(f)
            else:  # 2.0, and 3.0 (utf-8, the same layout for numeric dtypes)
                shape, _, dtype = fmt.read_array_header_2_0(f)
            offset = f.tell()
    except (ValueError, SyntaxError, TypeError, EOFError, UnicodeDecodeError) as err:
        raise CLIError(f"{path}: not a readable .npy file ({one_line(err)})") from err
    if dtype.hasobject or dtype.names is not None:
        raise CLIError(
            f"{path}: holds {'Python objects' if dtype.hasobject else 'records'} "
            f"(dtype {dtype}); save the points as a numeric (n, d) array"
        )
    if dtype.kind == "c":
        raise CLIError(
            f"{path}: samples must be real numbers (got complex dtype {dtype}); "
            "save the real part, or the real and imaginary parts as two columns"
        )
    if dtype.kind not in "iuf":
        raise CLIError(f"{path}: samples must be numbers (got dtype {dtype})")
    if not all(isinstance(k, int) and k >= 0 for k in shape):
        raise CLIError(f"{path}: corrupt .npy header (shape {shape})")
    if len(shape) not in (1, 2) or math.prod(shape) == 0:
        raise CLIError(
            f"{path}: expected a non-empty 2-D array, one point per row "
            f"(got shape {tuple(shape)})"
        )
    claimed = math.prod(shape) * dtype.itemsize
    if size - offset < claimed:
        raise CLIError(
            f"{path}: truncated or corrupt .npy file: its header claims shape "
            f"{tuple(shape)} of {dtype} ({_size(claimed)} of data) but the file "
            f"holds {_size(max(size - offset, 0))} after the header"
        )
    return SampleInfo(
        path, int(shape[0]), int(shape[1]) if len(shape) == 2 else 1, True
    )


def _text_info(path: str, p: Path, size: int, delim: str | None) -> SampleInfo:
    try:
        with p.open("rb") as f:
            head = f.read(1 << 20)
    except OSError as err:
        raise CLIError(f"{path}: cannot read samples ({one_line(err)})") from err
    lines = head.splitlines()
    if len(head) == size or not lines:  # the whole file: drop nothing
        full = lines
    else:  # the last line may be cut
        full = lines[:-1] or lines
    rows = [ln for ln in full if ln.strip() and not ln.lstrip().startswith(b"#")]
    if not rows:
        raise CLIError(f"{path}: no data rows; it needs one point per row")
    sep = None if delim is None else delim.encode()
    d = len(rows[0].split(sep))
    for i, row in enumerate(rows[1:], start=2):
        if len(row.split(sep)) != d:
            raise CLIError(
                f"{path}: cannot read samples (data row {i} has "
                f"{len(row.split(sep))} columns but row 1 has {d}); every row "
                "needs the same number of columns"
            )
    used = sum(len(ln) + 1 for ln in full)
    n = len(rows) if len(head) == size else math.ceil(len(rows) * size / max(used, 1))
    return SampleInfo(path, n, d, len(head) == size)


def inspect_samples(path: str) -> SampleInfo:
    """Shape of a sample file from its header or size, without loading it.

    Raises CLIError for a missing, empty, unsupported, truncated or non-numeric
    file.
    """
    p = Path(path)
    if p.is_dir():
        raise CLIError(f"{path}: is a directory; pass a sample file")
    if not p.is_file():
        raise CLIError(f"{path}: no such file")
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".csv", ".txt"):
        raise CLIError(
            f"{path}: unsupported file type {suffix or '(none)'}; "
            "use .npy, .csv or .txt with one point per row"
        )
    try:
        size = p.stat().st_size
    except OSError as err:
        raise CLIError(f"{path}: cannot read samples ({one_line(err)})") from err
    if size == 0:
        raise CLIError(f"{path}: empty file; it needs one point per row")
    if suffix == ".npy":
        return _npy_info(path, p, size)
    return _text_info(path, p, size, "," if suffix == ".csv" else None)


def check_memory(infos: Sequence[SampleInfo], *, copies: int = POINT_COPIES) -> None:
    """Refuse sample files whose points alone do not fit in memory.

    ``copies`` float64 copies of every point must fit in
    :func:`available_memory`.
    """
    avail = available_memory()
    need = copies * 8 * sum(i.n * i.d for i in infos)
    if avail is not None and need > avail:
        what = " and ".join(
            f"{i.path} ({'' if i.exact else 'about '}{i.n} x {i.d})" for i in infos
        )
        raise CLIError(
            f"{what}: the points alone need {_size(need)} of working memory "
            f"({copies} float64 copies) but {_size(avail)} is available; "
            "subsample the points or use a machine with more memory"
        )


def load_samples(path: str, *, info: SampleInfo | None = None) -> np.ndarray:
    """Read a sample file as a finite float64 array, rows are points.

    ``.npy``, ``.csv`` or ``.txt``. The file's header (or size) is checked
    against its contents and the available memory before loading.
    """
    if info is None:
        info = inspect_samples(path)
        check_memory([info])
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        else:
            delim = "," if suffix == ".csv" else None
            arr = np.loadtxt(p, delimiter=delim, ndmin=2, dtype=np.float64)
    except MemoryError as err:
        raise CLIError(
            f"{path}: not enough memory to load the samples; subsample them"
        ) from err
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as err:
        raise CLIError(f"{path}: cannot read samples ({one_line(err)})") from err
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise CLIError(f"{path}: samples must be numbers (got dtype {arr.dtype})")
    if np.iscomplexobj(arr):
        raise CLIError(
            f"{path}: samples must be real numbers (got complex dtype {arr.dtype})"
        )
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise CLIError(
            f"{path}: expected a non-empty 2-D array, one point per row "
            f"(got shape {arr.shape})"
        )
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise CLIError(
            f"{path}: samples must be finite (found NaN or inf at row {i + 1}, "
            f"column {j + 1}); remove or impute those entries"
        )
    return arr


def writable_dir(
    path: str | Path, *, option: str = "--out", what: str | None = None
) -> Path:
    """Create directory ``path`` if needed and check that files can be written.

    Raises CLIError naming ``option`` when a file is in the way or the
    directory is not writable; call it before any long computation.
    """
    d = Path(path)
    if d.exists() and not d.is_dir():
        raise CLIError(
            f"{option} {d}: exists and is not a directory; remove it or pass "
            "another path"
        )
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=d):
            pass
    except OSError as err:
        raise CLIError(
            f"{option} {d}: cannot write {what + ' ' if what else ''}there "
            f"({err.strerror or one_line(err)}); pass a writable directory"
        ) from err
    return d


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


def _check_size(infos: Sequence[SampleInfo]) -> None:
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
    _check_size(infos)
    check_memory(infos)
    x = load_samples(args.a, info=infos[0])
    y = load_samples(args.b, info=infos[1])
    infos = [SampleInfo(args.a, *x.shape, True), SampleInfo(args.b, *y.shape, True)]
    _check_size(infos)
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
