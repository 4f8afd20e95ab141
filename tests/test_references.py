"""Docstrings cite through docs/references.bib (issue 17, item 6)."""

import ast
import re
from pathlib import Path

import otgen

PACKAGE = Path(otgen.__file__).resolve().parent
BIB = PACKAGE.parent / "docs" / "references.bib"
CITE = re.compile(r":cite:(?:[pt]:)?`([^`]+)`")
# Author-year mentions: "Nowozin et al. 2016", "Goodfellow et al. (2014)",
# "Kingma & Welling 2014", "Dowson and Landau 1982", "Villani (2009)", and any
# "et al." (the key goes in :cite:, the place in the paper after it).
AUTHOR_YEAR = re.compile(
    r"\bet\s+al\b"
    r"|\b[A-Z][\w'-]+\s+(?:&|and)\s+[A-Z][\w'-]+,?\s+\(?(?:1[89]|20)\d\d\b"
    r"|\b[A-Z][a-z][\w'-]*,?\s+\(?(?:1[89]|20)\d\d\b\)?"
)
# Hand-copied ".. [1] Authors. Title." blocks and their "[1]_" references.
NUMBERED = re.compile(r"^\s*\.\. \[\d+\]|\[\d+\]_", re.M)
# Layers whose docstrings are checked for both (otgen/ot and otgen/theory have
# the numbered-block check below; their author-year mentions are not all gone).
CHECKED_LAYERS = ("models", "nn", "plot", "ot", "theory")


def bib_keys(text):
    return set(re.findall(r"^@\w+\{([^,\s]+),", text, flags=re.M))


def cited_keys(text):
    return {k.strip() for group in CITE.findall(text) for k in group.split(",")}


def missing(sources, keys):
    return {
        name: sorted(cited_keys(text) - keys)
        for name, text in sources.items()
        if cited_keys(text) - keys
    }


def test_every_cited_key_is_in_the_bibliography():
    keys = bib_keys(BIB.read_text())
    sources = {
        str(f.relative_to(PACKAGE)): f.read_text() for f in PACKAGE.rglob("*.py")
    }
    assert any(cited_keys(t) for t in sources.values())
    assert missing(sources, keys) == {}


def test_the_check_sees_an_unknown_key():
    keys = bib_keys("@article{known2020,\n  title = {T},\n}\n")
    assert keys == {"known2020"}
    planted = {"bad.py": "see :cite:`known2020` and :cite:`unknown1999`"}
    assert missing(planted, keys) == {"bad.py": ["unknown1999"]}


def test_no_numbered_reference_blocks_in_ot_and_theory():
    # Hand-copied ".. [1] Authors. Title." blocks are replaced by :cite: keys.
    blocks = [
        str(f.relative_to(PACKAGE))
        for layer in ("ot", "theory")
        for f in sorted((PACKAGE / layer).rglob("*.py"))
        if re.search(r"^\s*\.\. \[\d+\]", f.read_text(), re.M)
    ]
    assert blocks == []


def docstrings(source):
    """Every string statement of a module: module, class, function and
    attribute docstrings (not the messages of raise statements)."""
    return [
        node.value.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ]


def reference_problems(source):
    """Author-year mentions and numbered reference blocks in the docstrings."""
    return [
        " ".join(m.group(0).split())
        for doc in docstrings(source)
        for pattern in (AUTHOR_YEAR, NUMBERED)
        for m in pattern.finditer(doc)
    ]


def checked_files():
    files = sorted(PACKAGE.glob("*.py"))  # the top-level modules
    for layer in CHECKED_LAYERS:
        files += sorted((PACKAGE / layer).rglob("*.py"))
    return files


def test_models_nn_plot_and_top_level_cite_through_the_bibliography():
    files = checked_files()
    assert {f.parent.name for f in files} >= {"otgen", *CHECKED_LAYERS}
    problems = {
        str(f.relative_to(PACKAGE)): found
        for f in files
        if (found := reference_problems(f.read_text()))
    }
    assert problems == {}


def test_the_docstring_check_sees_planted_author_year_mentions():
    planted = """r\"\"\"f-GAN (Nowozin et al. 2016, Table 1) and the GAN of
Goodfellow et al. (2014), the VAE (Kingma & Welling 2014), the penalty
(Gulrajani et al.
2017), the Fréchet distance (Dowson and Landau 1982), Villani (2009).

References
----------
.. [1] S. Nowozin, B. Cseke, R. Tomioka. f-GAN. NeurIPS 2016.
\"\"\"


def f(x):
    \"\"\"As in [1]_.\"\"\"
    if x:
        raise ValueError(f"pass 'non_saturating' (Nowozin et al. 2016), got {x}")
"""
    assert reference_problems(planted) == [
        "et al",
        "et al",
        "Kingma & Welling 2014",
        "et al",
        "Dowson and Landau 1982",
        "Villani (2009)",
        "NeurIPS 2016",
        ".. [1]",
        "[1]_",
    ]


def test_the_docstring_check_passes_cite_keys_and_messages():
    clean = """r\"\"\"f-GAN :cite:`nowozin2016fgan` (:cite:`nowozin2016fgan`, Table 1),
the GAN of :cite:`goodfellow2014gan`, a test :cite:p:`besag1977simple`, at
n = 2000 with seed 2017 and Python 3.12.
\"\"\"


def f(x):
    \"\"\"Check ``x``.\"\"\"
    if x:
        raise ValueError(f"pass 'non_saturating' (Nowozin et al. 2016), got {x}")
"""
    assert reference_problems(clean) == []
