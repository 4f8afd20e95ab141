"""Docstrings cite through docs/references.bib (issue 17, item 6)."""

import re
from pathlib import Path

import otgen

PACKAGE = Path(otgen.__file__).resolve().parent
BIB = PACKAGE.parent / "docs" / "references.bib"
CITE = re.compile(r":cite:(?:[pt]:)?`([^`]+)`")


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
    lead_owned = {"exact.py", "_exact_multiscale.py", "_ctransform.py", "_solvers.py"}
    blocks = [
        str(f.relative_to(PACKAGE))
        for layer in ("ot", "theory")
        for f in sorted((PACKAGE / layer).rglob("*.py"))
        if f.name not in lead_owned
        and re.search(r"^\s*\.\. \[\d+\]", f.read_text(), re.M)
    ]
    assert blocks == []
