"""Sphinx configuration for the otgen documentation."""

import os
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OTGEN_DOCS_QUICK", "1")
# The plotting examples also save PNGs: away from the source tree in a build.
os.environ.setdefault("OTGEN_GALLERY_OUT", tempfile.mkdtemp(prefix="otgen-gallery-"))

project = "otgen"
author = "the otgen developers"
copyright = "2026, the otgen developers"
from otgen import __version__ as release  # noqa: E402

version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinxcontrib.bibtex",
    "myst_parser",
]
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
bibtex_bibfiles = ["references.bib"]
bibtex_default_style = "plain"
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
}
html_theme = "furo"
html_title = f"otgen {release}"
exclude_patterns = ["_build", "examples", "auto_examples/*.ipynb", "auto_examples/*.py"]
nitpicky = False
suppress_warnings = ["config.cache"]
