"""Command-line options of the preset configs, derived from their fields.

``otgen train --model wae-gan --lam 2 --critic-hidden 64 64`` sets the fields
``lam`` and ``critic_hidden`` of :class:`~otgen.models.configs.WAEGANConfig`:
one option per field of any preset (``_`` spelt ``-``), its type read from
the field's annotation (``--hidden 64 64`` for a tuple, ``--learn-sigma`` /
``--no-learn-sigma`` for a bool) and its choices from :data:`RULES
<otgen.models.configs.RULES>`. The config checks the values; a field that
the chosen preset lacks is refused with the list of those it has.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from otgen.models.configs import CONFIGS, RULES

__all__ = ["add_config_options", "config_options"]

# Fields with an option of their own already (``otgen train --seed``).
SKIP = ("d_x", "seed")
_PREFIX = "config_field_"


def _fields() -> dict[str, tuple[Any, dict[str, Any]]]:
    """Each field's annotation and its default in each preset that has it."""
    out: dict[str, tuple[Any, dict[str, Any]]] = {}
    for name, cls in CONFIGS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name not in SKIP:
                kind, defaults = out.setdefault(f.name, (hints[f.name], {}))
                defaults[name.replace("_", "-")] = f.default
    return out


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return str(value)


def _help(defaults: dict[str, Any]) -> str:
    """The defaults, most common first: ``10.0; wae-gan, aae: 1.0``."""
    by_value: dict[str, list[str]] = {}
    for preset, value in defaults.items():
        by_value.setdefault(_show(value), []).append(preset)
    ranked = sorted(by_value.items(), key=lambda kv: -len(kv[1]))
    if len(defaults) == len(CONFIGS):
        (common, _), *rest = ranked
        return "; ".join([common] + [f"{', '.join(p)}: {v}" for v, p in rest])
    return "; ".join(f"{', '.join(p)}: {v}" for v, p in ranked)


def _kwargs(kind: Any, name: str) -> dict[str, Any]:
    """The argparse keywords of a field of type ``kind``."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if kind is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(kind) is tuple:
        n = "+" if args[-1] is Ellipsis else len(args)
        return {"type": args[0], "nargs": n, "metavar": name.upper()}
    if args:  # float | None: None is the default, not an option value
        kind = args[0]
    choices = getattr(RULES[name], "keywords", {}).get("choices")
    if choices:
        return {"type": kind, "choices": choices}
    return {"type": kind, "metavar": name.upper()}


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """Add an option per config field (but ``d_x`` and ``seed``) to ``parser``.

    Examples
    --------
    >>> p = argparse.ArgumentParser()
    >>> add_config_options(p)
    >>> config_options(p.parse_args(["--lam", "2", "--hidden", "8", "8"]))
    {'hidden': [8, 8], 'lam': 2.0}
    """
    group = parser.add_argument_group(
        "model options",
        "fields of the preset's config (otgen.models.configs), over those of "
        "--config. The help gives each preset's default (otgen train's toy and "
        "image recipes change some); a field the preset lacks is an error.",
    )
    for name, (kind, defaults) in sorted(_fields().items()):
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=_PREFIX + name,
            default=None,
            help=_help(defaults),
            **_kwargs(kind, name),
        )


def config_options(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given on the command line (JSON-serialisable)."""
    return {
        key[len(_PREFIX) :]: value
        for key, value in sorted(vars(args).items())
        if key.startswith(_PREFIX) and value is not None
    }
