"""The ``"native"`` reduction backend: fused C++ loops on the CPU.

``reduce.cpp`` (next to this file) computes soft-mins and kernel sums over all
pairs (i, j) without storing any (n, m) block: each pair's cost is computed,
transformed and accumulated in registers. :func:`lse_stored` runs the same
soft-min over a stored cost matrix (Sinkhorn's ``"dense"`` backend). Per pair
they are several times faster than the chunked torch loop, which writes and
reads each block several times (``benchmarks/bench_native_micro.py``; figures
in benchmarks/README.md).

The library is built by ``pip install`` (``setup.py``: a setuptools
extension, optional, next to this file, stamped with a key of the source,
flags and CPU; :mod:`otgen.ot._native._build_key`). It is used only while that
key is still the current one; otherwise (no compiler at install time, a
changed source in a checkout, another CPU) it is compiled on first use with
the system C++ compiler (``$CXX``, else ``g++``, ``c++`` or ``clang++``) into
``$OTGEN_CACHE`` (default ``~/.cache/otgen``), once per key: a compiler run
of several seconds, then loaded from the cache. :data:`origin` says which.
The chooser of :mod:`otgen.ot._reduce` never asks for it below
``NATIVE_MIN_PAIRS`` pairs.
Every entry point checks the dtype, device and shape of its arrays before
passing their pointers, and the library is bound only if its ABI version and
its own description of each C signature (``otg_signatures``) match
:data:`SIGNATURES`, the ctypes table used here. Without a compiler, or with
``OTGEN_NATIVE=0``, :func:`available` is False and ``backend="auto"`` uses the
chunked torch loop; ``backend="native"`` then raises with the reason.

The calls release the GIL (ctypes) and split rows over
``torch.get_num_threads()`` OpenMP threads, those of torch's own pool.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch

from otgen.ot._native._build_key import (
    FLAGS,
    LINK_FLAGS,
    PREBUILT,
    SOURCE,
    build_key,
)

__all__ = [
    "available",
    "unavailable_reason",
    "MAX_DIM",
    "KERNEL_KINDS",
    "lse_rows",
    "expgrad_rows",
    "kernel_rows",
    "kernel_grad_rows",
    "lse_stored",
    "linear_mmd_sum",
]

# Largest dimension of the points (the C++ keeps d accumulators per row).
MAX_DIM = 64
KERNEL_KINDS = {"gaussian": 0, "laplacian": 1, "imq": 2, "energy1": 3, "energy2": 4}

_reason: list[str] = []


def _compiler() -> str | None:
    for cand in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    return None


def _cache_dir() -> Path:
    root = os.environ.get("OTGEN_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "otgen"


def _build(cxx: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        objs, procs = [], []
        for dtype in ("F32", "F64"):  # two translation units, compiled in parallel
            obj = Path(tmp) / f"reduce_{dtype}.o"
            cmd = [cxx, *FLAGS, f"-DOTG_{dtype}", "-c", str(SOURCE), "-o", str(obj)]
            procs.append(
                subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                )
            )
            objs.append(str(obj))
        for p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"{cxx} failed:\n{out[-2000:]}")
        so = Path(tmp) / target.name
        # -fopenmp links libgomp.so.1: in a process where torch has loaded its
        # own libgomp.so.1 (same soname) the loader reuses it, and the loops
        # share torch's thread pool.
        link = [cxx, "-shared", *LINK_FLAGS, *objs, "-o", str(so)]
        res = subprocess.run(link, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{cxx} failed to link:\n{res.stderr[-2000:]}")
        os.replace(so, target)  # atomic: concurrent builders do not clash


def _prebuilt(key: str) -> Path | None:
    """The install-time build (setup.py) if it was built for this source and CPU."""
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"{PREBUILT}{suffix}"
        stamp = Path(str(path) + ".key")
        if path.exists() and stamp.exists() and stamp.read_text().strip() == key:
            return path
    return None


# Where the loaded library came from (one entry once loaded), for reports.
origin: list[str] = []


@functools.lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL | None:
    if os.environ.get("OTGEN_NATIVE", "1") == "0":
        _reason.append("disabled by OTGEN_NATIVE=0")
        return None
    key = build_key()
    prebuilt = _prebuilt(key)
    if prebuilt is not None:
        try:
            lib = ctypes.CDLL(str(prebuilt))
        except OSError as err:
            _reason.append(f"the install-time build did not load ({err})")
            return None
        origin.append(f"install-time build {prebuilt.name}")
    else:
        cxx = _compiler()
        if cxx is None:
            _reason.append("no C++ compiler found (set CXX or install g++)")
            return None
        target = _cache_dir() / f"otgen_native_{key}.so"
        try:
            if not target.exists():
                _build(cxx, target)
            lib = ctypes.CDLL(str(target))
        except (OSError, RuntimeError) as err:
            _reason.append(f"build failed: {err}")
            return None
        origin.append(f"built on first use, cached in {target}")
    try:
        _bind(lib)
    except RuntimeError as err:
        _reason.append(str(err))
        # not the ordinary no-compiler case: say so once, the fallback works
        warnings.warn(
            f"otgen's native loops are off: {err}", RuntimeWarning, stacklevel=3
        )
        return None
    return lib


ABI_VERSION = 4  # otg_abi_version() of the reduce.cpp this module was written for
_CODES = {
    ctypes.c_void_p: "P",
    ctypes.c_int64: "L",
    ctypes.c_int: "I",
    ctypes.c_double: "D",
}
_P, _L, _N, _D = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_double
# Argument and return types of each entry point (both dtypes): compared with
# the library's own otg_signatures() before binding, so a C signature that
# changes without this table fails to load instead of reading garbage.
SIGNATURES: dict[str, tuple[list, type | None]] = {
    "softmin": ([_L, _L, _N, _P, _P, _P, _D, _N, _L, _P, _P, _P, _P, _N], None),
    "expgrad": (
        [_L, _L, _N, _P, _P, _P, _P, _P, _D, _N, _L, _P, _P, _P, _P, _P, _N],
        None,
    ),
    "kernel": ([_N, _L, _L, _N, _P, _P, _P, _N, _N, _P, _N, _P, _N], None),
    "softmin_stored": ([_L, _L, _P, _L, _P, _D, _P, _N], None),
    "kgrad": ([_N, _L, _L, _N, _P, _P, _P, _P, _N, _N, _P, _P, _N], None),
    "linear": ([_N, _L, _N, _P, _P, _N, _P, _N], _D),
}


def _signature_string() -> str:
    return ";".join(
        f"{name}:{''.join(_CODES[t] for t in args)}"
        + (f"->{_CODES[ret]}" if ret is not None else "")
        for name, (args, ret) in SIGNATURES.items()
    )


def _bind(lib: ctypes.CDLL) -> None:
    """Check the library's ABI version and signatures, then set the argtypes.

    Raises RuntimeError naming what differs (the library is then not used).
    """
    try:
        lib.otg_abi_version.restype = ctypes.c_int
        lib.otg_signatures.restype = ctypes.c_char_p
        version = lib.otg_abi_version()
        theirs = lib.otg_signatures().decode()
    except AttributeError as err:
        raise RuntimeError(f"not an otgen native library ({err})") from None
    if version != ABI_VERSION:
        raise RuntimeError(
            f"ABI version {version} of the built library, {ABI_VERSION} expected: "
            "delete the cached library ($OTGEN_CACHE, default ~/.cache/otgen)."
        )
    ours = _signature_string()
    if theirs != ours:
        diff = sorted(set(theirs.split(";")) ^ set(ours.split(";")))
        raise RuntimeError(
            "the C signatures differ from the Python bindings "
            f"({'; '.join(diff)}): update SIGNATURES with reduce.cpp."
        )
    for suf in ("f32", "f64"):
        for name, (args, ret) in SIGNATURES.items():
            fn = getattr(lib, f"otg_{name}_{suf}")
            fn.argtypes, fn.restype = args, ret


def available() -> bool:
    """True if the native library is built (or builds now) and loads."""
    return _lib() is not None


def unavailable_reason() -> str:
    """Why :func:`available` is False ("" when it is True)."""
    available()
    return "; ".join(_reason)


def _fn(name: str, dtype: torch.dtype):
    lib = _lib()
    if lib is None:
        raise RuntimeError(
            f"the native backend is unavailable ({unavailable_reason()}); pass "
            "backend='chunked'."
        )
    return getattr(lib, f"otg_{name}_{'f32' if dtype == torch.float32 else 'f64'}")


def _prep(*ts: torch.Tensor | None) -> list:
    return [None if t is None else t.detach().contiguous() for t in ts]


def _checked(x: torch.Tensor, *, points: bool = True, **arrays) -> list:
    """``x`` and each ``name=(tensor, shape)``, checked and made contiguous.

    The C functions take raw pointers and sizes: every array must be a CPU
    tensor of ``x``'s dtype (float32 or float64) with the shape the sizes
    describe (``None`` in a shape: any), or memory is read out of bounds.
    ``points``: ``x`` holds points (at most ``MAX_DIM`` coordinates), not a
    stored matrix.
    Raises TypeError / ValueError naming the argument.
    """
    if not isinstance(x, torch.Tensor) or x.dtype not in (torch.float32, torch.float64):
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"x must be a float32 or float64 tensor (got {got}).")
    if x.ndim != 2 or (points and x.shape[1] > MAX_DIM):
        raise ValueError(
            f"x must have shape (n, d) with d <= {MAX_DIM} (got {tuple(x.shape)})."
        )
    out = [x]
    for name, (t, shape) in arrays.items():
        if t is None:
            out.append(None)
            continue
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a tensor (got {type(t).__name__}).")
        if t.device.type != "cpu" or t.dtype != x.dtype:
            raise TypeError(
                f"{name} must be a CPU {x.dtype} tensor like x (got {t.dtype} on "
                f"{t.device}); convert it with .to(x)."
            )
        if t.ndim != len(shape) or any(
            want is not None and want != got for want, got in zip(shape, t.shape)
        ):
            raise ValueError(
                f"{name} must have shape {tuple(shape)} (None: any) for these "
                f"sizes (got {tuple(t.shape)})."
            )
        out.append(t)
    return _prep(*out)


def _check_p(p: int) -> int:
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2 for the native loops (got {p!r}).")
    return int(p)


def _check_kind(kind: str) -> int:
    if kind not in KERNEL_KINDS:
        raise ValueError(
            f"kind must be one of {', '.join(map(repr, KERNEL_KINDS))} (got {kind!r})."
        )
    return KERNEL_KINDS[kind]


def _ptr(t: torch.Tensor | None):
    return None if t is None else t.data_ptr()


def _units(units, n: int, m: int) -> tuple:
    """``(count, rptr, cptr, ranges)`` pointers; ``units=None``: all pairs."""
    if units is None:
        return 0, None, None, None
    rptr, cptr, rg = units
    for t in (rptr, cptr, rg):
        if t.dtype != torch.int64 or not t.is_contiguous():
            raise TypeError("units must be contiguous int64 tensors")
    bad_shape = rptr.ndim != 1 or cptr.ndim != 1 or cptr.shape[0] < rptr.shape[0]
    if bad_shape or rg.numel() % 2:
        raise ValueError(
            "units must be (rptr (K + 1,), cptr (K + 1,), ranges (R, 2) or (2 R,))"
        )
    last, n_ranges = int(cptr[rptr.shape[0] - 1]), rg.numel() // 2
    if int(rptr[-1]) != n or last > n_ranges or (rg.numel() and int(rg.max()) > m):
        raise ValueError(
            f"units do not describe {n} rows and {m} columns (rptr ends at "
            f"{int(rptr[-1])}, cptr at {last} for {n_ranges} ranges)."
        )
    return rptr.shape[0] - 1, rptr.data_ptr(), cptr.data_ptr(), rg.data_ptr()


def lse_rows(x, yt, h, eps: float, p: int, units=None) -> torch.Tensor:
    """``log sum_j exp(h_j - |x_i - y_j|^p / eps)``, shape (n,); ``yt`` is (d, m).

    ``units=(rptr, cptr, ranges)`` restricts the sum (block-sparse): rows
    ``rptr[u]:rptr[u+1]`` sum over the column ranges ``ranges[k, 0]:ranges[k, 1]``
    for ``k`` in ``cptr[u]:cptr[u+1]``. Default: every column.
    """
    p = _check_p(p)
    x, yt, h = _checked(x, yt=(yt, (x.shape[-1], None)), h=(h, (yt.shape[-1],)))
    pairs = _units(units, x.shape[0], yt.shape[1])
    out = torch.empty(x.shape[0], dtype=x.dtype)
    _fn("softmin", x.dtype)(
        x.shape[0], yt.shape[1], x.shape[1], _ptr(x), _ptr(yt), _ptr(h),
        1.0 / eps, p, *pairs,
        _ptr(out), torch.get_num_threads(),
    )  # fmt: skip
    return out


def expgrad_rows(x, yt, al, be, w, eps: float, p: int, units=None):
    """``(G, S)``: ``G_i = sum_j e_ij grad_x |x_i - y_j|^p``, ``S_i = sum_j e_ij``.

    ``e_ij = w_j exp(al_i + be_j - |x_i - y_j|^p / eps)`` (``w=None``: 1); the
    exponent must be <= 0 (it is clamped there: a soft-max weight). ``units``
    as in :func:`lse_rows`.
    """
    p = _check_p(p)
    n, m = x.shape[0], yt.shape[-1]
    x, yt, al, be, w = _checked(
        x, yt=(yt, (x.shape[-1], None)), al=(al, (n,)), be=(be, (m,)), w=(w, (m,))
    )
    pairs = _units(units, n, m)
    G = torch.empty_like(x)
    S = torch.empty(x.shape[0], dtype=x.dtype)
    _fn("expgrad", x.dtype)(
        n, m, x.shape[1], _ptr(x), _ptr(yt), _ptr(al), _ptr(be), _ptr(w),
        1.0 / eps, p, *pairs, _ptr(G), _ptr(S),
        torch.get_num_threads(),
    )  # fmt: skip
    return G, S


def _consts(kind: str, scales, dtype) -> torch.Tensor:
    if kind == "gaussian":
        c = [-0.5 / (s * s) for s in scales]
    elif kind in ("laplacian", "energy1"):
        c = [-1.0 / s for s in scales]
    elif kind == "imq":
        c = list(scales)
    else:  # energy2
        c = [-1.0 / (s * s) for s in scales]
    return torch.tensor(c, dtype=dtype)


def kernel_rows(kind: str, scales, x, yt, Vt, tri: bool) -> torch.Tensor:
    """``out_i = sum_j k(x_i, y_j) V_j`` in float64, shape (n, p); ``Vt`` is (p, m).

    ``tri=True`` (``yt`` the transpose of ``x``): only ``j > i``.
    """
    x, yt, Vt = _checked(x, yt=(yt, (x.shape[-1], None)), Vt=(Vt, (None, yt.shape[-1])))
    if tri and yt.shape[1] != x.shape[0]:
        raise ValueError("tri=True needs yt = x.T (got different sizes).")
    p = Vt.shape[0]
    out = torch.empty(x.shape[0], p, dtype=torch.float64)
    code = _check_kind(kind)
    c = _consts(kind, scales, x.dtype)
    _fn("kernel", x.dtype)(
        code, x.shape[0], yt.shape[1], x.shape[1], _ptr(x),
        _ptr(yt), _ptr(Vt), p, len(scales), _ptr(c), int(tri), _ptr(out),
        torch.get_num_threads(),
    )  # fmt: skip
    return out


def lse_stored(C: torch.Tensor, h: torch.Tensor, eps: float) -> torch.Tensor:
    """``log sum_j exp(h_j - C_ij / eps)`` over a stored (n, m) matrix, shape (n,)."""
    if not isinstance(C, torch.Tensor) or C.ndim != 2:
        raise ValueError("C must be an (n, m) tensor.")
    C, h = _checked(C, points=False, h=(h, (C.shape[1],)))
    out = torch.empty(C.shape[0], dtype=C.dtype)
    _fn("softmin_stored", C.dtype)(
        C.shape[0], C.shape[1], _ptr(C), C.shape[1], _ptr(h), 1.0 / eps,
        _ptr(out), torch.get_num_threads(),
    )  # fmt: skip
    return out


def kernel_grad_rows(kind: str, scales, x, yt, U, Vt) -> torch.Tensor:
    """``G_i = sum_j 2 k'(|x_i - y_j|^2) (U_i . V_j) (x_i - y_j)``, shape (n, d).

    ``k'`` is the derivative in the squared distance; ``Vt`` is (p, m).
    """
    m = yt.shape[-1]
    x, yt, U, Vt = _checked(
        x,
        yt=(yt, (x.shape[-1], None)),
        U=(U.to(x.dtype), (x.shape[0], None)),
        Vt=(Vt, (None, m)),
    )
    if U.shape[1] != Vt.shape[0]:
        raise ValueError(f"U has {U.shape[1]} columns, Vt {Vt.shape[0]} rows.")
    G = torch.empty_like(x)
    code = _check_kind(kind)
    c = _consts(kind, scales, x.dtype)
    _fn("kgrad", x.dtype)(
        code, x.shape[0], yt.shape[1], x.shape[1], _ptr(x),
        _ptr(yt), _ptr(U), _ptr(Vt), Vt.shape[0], len(scales),
        _ptr(c), _ptr(G), torch.get_num_threads(),
    )  # fmt: skip
    return G


def linear_mmd_sum(kind: str, scales, x, y) -> float:
    """``sum_l k(x_2l, x_2l+1) + k(y_2l, y_2l+1) - k(x_2l, y_2l+1) - k(x_2l+1, y_2l)``.

    Over ``l < min(n, m) // 2``, in one pass (float64 total); no autograd.
    """
    x, y = _checked(x, y=(y, (None, x.shape[-1])))
    h = min(x.shape[0], y.shape[0]) // 2
    code = _check_kind(kind)
    c = _consts(kind, scales, x.dtype)
    return _fn("linear", x.dtype)(
        code, h, x.shape[1], _ptr(x), _ptr(y), len(scales),
        _ptr(c), torch.get_num_threads(),
    )  # fmt: skip
