"""The native loops, compiled at install time when a C++ compiler is there.

Everything else is in pyproject.toml. The extension is optional: without a
compiler (or if the build fails) the install goes on, and otgen compiles the
loops on first use instead, or runs without them (see otgen/ot/_native).
The library is loaded with ctypes, never imported; a ``.key`` file next to it
records the source, flags and CPU it was built for, and the loader uses it
only when that key is still its own (``-march=native`` code must not move to
another CPU).
"""

import importlib.util
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
NATIVE = HERE / "otgen" / "ot" / "_native"
spec = importlib.util.spec_from_file_location("_build_key", NATIVE / "_build_key.py")
key = importlib.util.module_from_spec(spec)
spec.loader.exec_module(key)


class BuildNative(build_ext):
    """build_ext that never fails the install and stamps what it built."""

    def build_extension(self, ext):
        """Build ``ext``, then write its key next to it; on failure, warn."""
        try:
            super().build_extension(ext)
        except Exception as err:  # noqa: BLE001 - optional: any failure
            self.warn(
                f"otgen: native loops not built at install ({err}); "
                "they will be compiled on first use if a compiler is found"
            )
            return
        out = Path(self.get_ext_fullpath(ext.name))
        stamp = key.build_key()
        Path(str(out) + ".key").write_text(stamp)
        # An editable install copies the library into the source tree after
        # this step (and not the key): stamp that place too.
        (NATIVE / (out.name + ".key")).write_text(stamp)


native = Extension(
    "otgen.ot._native." + key.PREBUILT,
    sources=[
        "otgen/ot/_native/reduce_f32.cpp",
        "otgen/ot/_native/reduce_f64.cpp",
    ],
    depends=["otgen/ot/_native/reduce.cpp"],
    extra_compile_args=key.FLAGS,
    extra_link_args=key.LINK_FLAGS,
    language="c++",
    optional=True,
)

setup(ext_modules=[native], cmdclass={"build_ext": BuildNative})
