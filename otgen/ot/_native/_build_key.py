"""What a build of the native loops depends on: source, flags and CPU.

Kept free of torch and of the package, so that ``setup.py`` loads it by path
at install time and stamps the library it builds with the same key that the
loader (:mod:`otgen.ot._native`) recomputes before using that library.
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path

SOURCE = Path(__file__).with_name("reduce.cpp")
FLAGS = [
    "-O3",
    "-march=native",
    "-std=c++17",
    "-fPIC",
    "-pthread",
    "-fopenmp",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fassociative-math",
    "-fno-signed-zeros",
]
LINK_FLAGS = ["-pthread", "-fopenmp"]
PREBUILT = "_reduce"  # the install-time build: otgen/ot/_native/_reduce<suffix>


def cpu_tag() -> str:
    """Identify the CPU features the build was tuned for (-march=native)."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "model name")):
                flags += line
                if line.startswith("flags"):
                    break
    except OSError:
        pass
    return platform.machine() + flags


def build_key() -> str:
    """16 hex digits of SHA-256 over the source, the flags and the CPU tag."""
    return hashlib.sha256(
        SOURCE.read_bytes() + " ".join(FLAGS).encode() + cpu_tag().encode()
    ).hexdigest()[:16]
