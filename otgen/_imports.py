"""Imports of optional or chatty dependencies.

pykeops prints its start-up notes (e.g. "CUDA libraries not found") on
standard output, and POT imports it when it is installed. Standard output is
the command line's data channel (``otgen distance --json``), so such imports
go through :func:`quiet_import`, which sends those prints to standard error.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from types import ModuleType

__all__ = ["quiet_import"]


def quiet_import(name: str) -> ModuleType:
    """Import module ``name`` with its prints sent to standard error."""
    if name in sys.modules:
        return sys.modules[name]
    with contextlib.redirect_stdout(sys.stderr):
        return importlib.import_module(name)
