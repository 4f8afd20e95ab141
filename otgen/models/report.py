"""A short markdown report of a training run, and safe writes to its directory.

Every file of a run directory is written atomically (:func:`atomic_write`: a
temporary file in the same directory, flushed to disk, then renamed over the
target with :func:`os.replace`), so a reader or a crash sees the old file or
the new one, never half of one. :class:`RunLock` keeps a second process out of
a directory in use.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "RunDirectoryError",
    "RunLock",
    "atomic_write",
    "atomic_write_text",
    "metrics_table",
    "remove_temporary_files",
    "write_report",
]

_TMP_TAG = ".otgen-tmp"


class RunDirectoryError(RuntimeError):
    """A run directory is in use by another process, or cannot be locked."""


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError), open(path, "rb+") as f:
        os.fsync(f.fileno())


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` on a temporary file, then rename.

    The temporary file lives in the same directory (a rename there is atomic)
    and keeps the suffix of ``path`` (writers such as matplotlib choose the
    format from it). On any failure, or an interrupt, it is removed and
    ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = atomic_write(Path(d) / "a.txt", lambda t: t.write_text("hi"))
    ...     p.read_text(), sorted(q.name for q in Path(d).iterdir())
    ('hi', ['a.txt'])
    """
    path = Path(path)
    while True:  # mode 0o666 less the umask, as for a file written directly
        tmp = (
            path.parent / f".{path.name}.{secrets.token_hex(4)}{_TMP_TAG}{path.suffix}"
        )
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda t: t.write_text(text))


def remove_temporary_files(directory: str | Path) -> list[Path]:
    """Delete the temporary files that interrupted atomic writes left behind."""
    gone = []
    for tmp in Path(directory).glob(f".*{_TMP_TAG}*"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            gone.append(tmp)
    return gone


class RunLock:
    """An exclusive lock on a run directory while one process writes to it.

    The lock is ``directory/.otgen.lock``, locked with ``fcntl.flock`` where
    available (released by the system if the process dies) and holding the
    owner's process id; elsewhere the file's existence is the lock.

    Raises
    ------
    RunDirectoryError
        From :meth:`acquire` when another process holds the lock.
    """

    NAME = ".otgen.lock"

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / self.NAME
        self._fd: int | None = None

    def _holder(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            pid = ""
        return f"process {pid}" if pid else "another process"

    def _busy(self) -> RunDirectoryError:
        return RunDirectoryError(
            f"{self.path.parent} is in use by {self._holder()} (lock file "
            f"{self.path}); wait for that run to finish, or pass another directory"
        )

    def acquire(self) -> RunLock:
        """Take the lock, or raise RunDirectoryError naming its holder."""
        try:
            import fcntl
        except ImportError:  # no flock (Windows): the file's existence is the lock
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise self._busy() from None
        else:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # The holder may have removed the file between our open and flock.
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except OSError:
                same = False
            if not same:
                os.close(fd)
                raise self._busy()
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and release the lock."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


_ROWS = (
    ("w2_generated", "W2(generated, held-out)", "exact W_2 (not W_2^2), m vs m points"),
    ("w2_noise_floor", "W2 noise floor", "exact W_2 between two held-out samples"),
    ("w2_ratio", "ratio to the floor", "about 1 for a perfect model"),
    ("reconstruction", "held-out reconstruction", "mean cost c(x, G(z~)), unscaled"),
    ("latent_penalty", "latent penalty D_Z", "the model's penalty on held-out codes"),
    ("mmd_to_prior", "MMD^2 to the prior", "reference: unbiased, IMQ at C of prior"),
    ("relaxed_cost", "relaxed cost", "recon_scale*rec + lam*D_Z: a lower bound"),
    ("modes_covered", "modes covered", "mass >= 0.2/K within 3 sigma"),
    ("high_quality", "high-quality fraction", "samples within 3 sigma of a centre"),
    ("max_mode_mass_error", "max per-mode mass error", "max_k |mass_k - 1/K|"),
)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def metrics_table(metrics: Mapping[str, Any]) -> str:
    """The metrics as a markdown table (rows present in ``metrics`` only).

    Examples
    --------
    >>> print(metrics_table({"w2_ratio": 1.04}).splitlines()[2])
    | ratio to the floor | 1.04 | about 1 for a perfect model |
    """
    lines = ["| metric | value | meaning |", "|---|---|---|"]
    for key, label, meaning in _ROWS:
        if key in metrics:
            v = metrics[key]
            if key == "modes_covered":
                v = f"{v} / {metrics.get('n_modes', '?')}"
            lines.append(f"| {label} | {_fmt(v)} | {meaning} |")
    if "mode_mass" in metrics:
        mass = ", ".join(f"{m:.3f}" for m in metrics["mode_mass"])
        lines.append(f"| per-mode mass | {mass} | target 1/K each |")
    return "\n".join(lines)


def write_report(
    out_dir: str | Path,
    *,
    title: str,
    metrics: Mapping[str, Any],
    settings: Mapping[str, Any],
    figures: Mapping[str, str | Path],
    timings: Mapping[str, float],
) -> Path:
    """Write ``out_dir/report.md`` and ``out_dir/metrics.json``; return the report.

    Both files are written atomically (:func:`atomic_write`).
    """
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    atomic_write_text(d / "metrics.json", json.dumps(dict(metrics), indent=1) + "\n")
    lines = [f"# {title}", ""]
    lines += ["## Metrics", "", metrics_table(metrics), ""]
    lines += [
        "The training loss estimates the penalised (relaxed) transport cost, a lower "
        "bound on W_c (PAPER.md Prop. P1), not W_2 itself; W2 above is computed "
        "exactly between samples.",
        "",
        "## Time",
        "",
    ]
    lines += [f"- {k}: {v:.1f} s" for k, v in timings.items()]
    lines += [
        "",
        "## Settings",
        "",
        "```json",
        json.dumps(dict(settings), indent=1),
        "```",
        "",
        "## Figures",
        "",
    ]
    for name, path in figures.items():
        rel = Path(os.path.relpath(Path(path).resolve(), d.resolve()))
        lines += [f"### {name}", "", f"![{name}]({rel.as_posix()})", ""]
    return atomic_write_text(d / "report.md", "\n".join(lines))
