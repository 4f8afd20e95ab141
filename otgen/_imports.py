"""Imports of optional or chatty dependencies.

pykeops prints its start-up notes (e.g. "[KeOps] Warning : CUDA libraries not
found") on standard output when it is imported, and POT imports it (through
GeomLoss) when both are installed. Standard output is the command line's data
channel (``otgen distance --json``), and a CPU user who never asked for KeOps
should not read about CUDA. So:

- otgen itself imports pykeops only when the KeOps backend runs
  (:mod:`otgen.ot._reduce`), and tells whether it is installed without
  importing it (:func:`installed`);
- other chatty imports go through :func:`quiet_import`, which sends their
  prints to standard error, except KeOps's notes when pykeops came in
  transitively (POT importing GeomLoss): those are dropped. Importing pykeops
  itself through :func:`quiet_import` keeps its notes (on standard error).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import sys
from types import ModuleType

__all__ = ["quiet_import", "installed"]

KEOPS_NOTE = "[KeOps] "


def installed(name: str) -> bool:
    """True if top-level module ``name`` can be imported (it is not imported)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def quiet_import(name: str) -> ModuleType:
    """Import module ``name`` with its prints sent to standard error.

    Lines from KeOps (``[KeOps] ...``) are dropped unless ``name`` is pykeops
    itself, i.e. unless the caller runs the KeOps backend.
    """
    if name in sys.modules:
        return sys.modules[name]
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            return importlib.import_module(name)
    finally:
        keep_keops = name.split(".")[0] == "pykeops"
        for line in buf.getvalue().splitlines(keepends=True):
            if keep_keops or not line.lstrip().startswith(KEOPS_NOTE):
                sys.stderr.write(line)
