"""Shared benchmark harness: timing, peak memory, ratio tables, JSON output.

Every benchmark builds seeded inputs once and runs otgen and each installed
peer on them in the same process. A case is a callable returning a value; the
harness times it (warm-up, then the median of ``repeats`` runs), records peak
memory and the value, and the table prints ``t_otgen / t_peer`` (below 1 means
otgen is faster) next to the absolute error against a reference.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Timing:
    name: str
    median_s: float | None
    spread_s: float | None  # (max - min) / 2 over the repeats
    peak_mb: float | None
    value: float | None
    status: str = "ok"  # "ok", "n/a" (peer missing), "skipped (...)", "error: ..."
    extra: dict = field(default_factory=dict)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class _PeakRSS:
    """Sample the resident set size in a thread; report the peak above baseline."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.base = _rss_mb()
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(self.period)

    def __enter__(self) -> _PeakRSS:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_mb())


def _as_float(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, torch.Tensor):
        return float(v.detach().double().sum())
    return float(np.asarray(v, dtype=np.float64).sum())


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_case(
    name: str,
    fn: Callable[[], Any],
    *,
    repeats: int = 5,
    warmup: int = 1,
    limit_s: float | None = None,
) -> Timing:
    """Time ``fn``: ``warmup`` untimed calls, then the median of ``repeats``.

    If the first (warm-up) call exceeds ``limit_s``, the case is reported as
    skipped with the time it took, and not repeated.
    """
    try:
        with _PeakRSS() as mem:
            t0 = time.perf_counter()
            value = fn()
            _sync()
            first = time.perf_counter() - t0
        peak = mem.peak - mem.base
        if limit_s is not None and first > limit_s:
            return Timing(
                name,
                first,
                None,
                peak,
                _as_float(value),
                status=f"skipped (one run {first:.1f} s > {limit_s:g} s)",
            )
        times = [] if warmup else [first]
        for _ in range(warmup - 1):
            fn()
        for _ in range(repeats - len(times)):
            _sync()
            t0 = time.perf_counter()
            fn()
            _sync()
            times.append(time.perf_counter() - t0)
        spread = (max(times) - min(times)) / 2 if len(times) > 1 else 0.0
        return Timing(name, statistics.median(times), spread, peak, _as_float(value))
    except ImportError as err:
        return Timing(name, None, None, None, None, status=f"n/a ({err})")
    except (RuntimeError, MemoryError, ValueError) as err:
        return Timing(name, None, None, None, None, status=f"error: {err}"[:120])


def ratio(ours: Timing, peer: Timing) -> tuple[float | None, float | None]:
    """``t_otgen / t_peer`` and its propagated spread (first order)."""
    if ours.median_s is None or peer.median_s is None or peer.status != "ok":
        return None, None
    r = ours.median_s / peer.median_s
    rel = (ours.spread_s or 0.0) / ours.median_s + (peer.spread_s or 0.0) / max(
        peer.median_s, 1e-12
    )
    return r, r * rel


def fmt(v: float | None, spec: str = ".3g") -> str:
    return "n/a" if v is None else format(v, spec)


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Print rows (dicts of already formatted strings) as an aligned table."""
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.rjust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(str(r.get(c, "")).rjust(widths[c]) for c in columns))


def machine_info() -> dict:
    """Versions, CPU, device and load, recorded next to every result."""
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "loadavg": os.getloadavg(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    for mod in ("scipy", "ot", "geomloss", "pykeops"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def save(name: str, results: list[dict], meta: dict | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` with machine info and results."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"machine": machine_info(), "meta": meta or {}, "results": results}
    path.write_text(json.dumps(payload, indent=2, default=_jsonable))
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Timing):
        return asdict(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)
