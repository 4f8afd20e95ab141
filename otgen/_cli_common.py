"""Helpers shared by the ``otgen`` command and its subcommands (a leaf module).

The errors, sample-file reading and output-directory checks that
:mod:`otgen.cli` and the subcommand modules it loads (``otgen.models.cli``,
``otgen.theory.cli``) all use. It imports nothing from otgen, so that the
subcommand modules never import the command that loads them.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "POINT_COPIES",
    "CLIError",
    "one_line",
    "size_text",
    "available_memory",
    "SampleInfo",
    "inspect_samples",
    "check_memory",
    "load_samples",
    "writable_dir",
]

# Working copies of the points that ``otgen distance`` may hold at once: the
# file as read, a float64 copy, the normalised copy and the solver's tensors.
POINT_COPIES = 4


class CLIError(Exception):
    """A user error: printed on one line, exit status 2."""


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (its type name when it has none)."""
    text = " ".join(str(err).split())
    return text or type(err).__name__


def size_text(nbytes: float) -> str:
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
            f"{tuple(shape)} of {dtype} ({size_text(claimed)} of data) but the file "
            f"holds {size_text(max(size - offset, 0))} after the header"
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
            f"{what}: the points alone need {size_text(need)} of working memory "
            f"({copies} float64 copies) but {size_text(avail)} is available; "
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
