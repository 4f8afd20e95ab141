r"""Numerical checks of every result of the paper (docs/paper.md, section 5).

Each item of section 5 is a function ``item_k(seed, *, n, m, mc, ...)`` that
builds its own seeded instance and returns a list of :class:`CheckResult`, one
per statement: the statement in words, a left and a right side, the relation
between them, a tolerance and whether it holds, plus the data a figure needs.
Keyword arguments beyond the sizes build deliberately *broken* instances (a
noisy decoder where Theorem A needs a deterministic one, a penalty weight below
the Lipschitz constant, ...), so that the tests can show each check can fail.

The items live in ``_items_coupling`` (1-4), ``_items_pot`` (5-9),
``_items_continuous`` (10-12), ``_items_adversarial`` (13-14) and
``_items_models`` (15-16, on the real models of :mod:`otgen.models`); this
module holds the registry :data:`CHECKS` and :func:`run_checks`.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass

from otgen.theory._items_adversarial import item_13, item_14
from otgen.theory._items_continuous import item_10, item_11, item_12
from otgen.theory._items_coupling import item_1, item_2, item_3, item_4
from otgen.theory._items_models import item_15, item_16
from otgen.theory._items_pot import item_5, item_6, item_7, item_8, item_9
from otgen.theory.check_result import CheckResult, holds

__all__ = ["CHECKS", "CheckResult", "Item", "holds", "run_checks"]


# -- registry --------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One item of docs/paper.md section 5: its check function and sizes."""

    number: int
    title: str
    fn: Callable[..., list[CheckResult]]
    quick: dict
    full: dict
    needs: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        """Modules this item needs that cannot be imported here."""
        return [m for m in self.needs if importlib.util.find_spec(m) is None]


_KERNELS = ("otgen.ot.kernels",)

CHECKS: dict[int, Item] = {
    it.number: it
    for it in (
        Item(1, "discrete W_c", item_1, dict(n=6, m=5), dict(n=12, m=9)),
        Item(2, "Theorem A", item_2, dict(n=6, m=5), dict(n=12, m=9)),
        Item(3, "Prop. A1", item_3, dict(n=6, m=3), dict(n=7, m=4)),
        Item(4, "Theorem B, Prop. B1", item_4, dict(n=6, m=5), dict(n=12, m=9)),
        Item(5, "Prop. P1-P3", item_5, dict(n=5, m=4), dict(n=8, m=6), _KERNELS),
        Item(6, "Prop. P5 (MMD^2)", item_6, dict(n=5, m=4), dict(n=10, m=7), _KERNELS),
        Item(7, "Prop. P6 (W_1)", item_7, dict(n=5, m=4), dict(n=10, m=7)),
        Item(8, "Kantorovich-Rubinstein", item_8, dict(n=6, m=5), dict(n=12, m=9)),
        Item(9, "Prop. W", item_9, dict(n=6, m=5), dict(n=12, m=9)),
        Item(10, "Gaussians", item_10, dict(mc=4000), dict(mc=100000)),
        Item(11, "Prop. E (blur)", item_11, dict(n=3, mc=4000), dict(n=5, mc=100000)),
        Item(12, "Prop. V (VAE)", item_12, dict(n=3), dict(n=6)),
        Item(
            13,
            "MMD estimators",
            item_13,
            dict(n=16, mc=300),
            dict(n=32, mc=4000),
            (*_KERNELS, "otgen.ot.mmd"),
        ),
        Item(14, "GAN, f-GAN", item_14, dict(n=6), dict(n=20)),
        Item(15, "AAE = WAE-GAN", item_15, dict(n=16), dict(n=64)),
        # A seeded toy WAE-MMD fit on one thread: 100 steps of batch 64 in
        # quick mode, 1000 of batch 128 in full mode.
        Item(
            16,
            "WAE-MMD smoke test",
            item_16,
            dict(n=512, m=512, steps=100, batch_size=64),
            dict(n=4096, m=2048, steps=1000, batch_size=128),
            ("tqdm",),
        ),
    )
}


def run_checks(
    seed: int = 0,
    *,
    quick: bool = False,
    items: list[int] | None = None,
    progress: Callable[[Item], None] | None = None,
) -> list[CheckResult]:
    """Run the registry (or the listed items) and return every check's result.

    References: :cite:`bousquet2017vegan` (the statements checked).

    Parameters
    ----------
    seed : int, default=0
        Seed of every instance.
    quick : bool, default=False
        Small sizes (the whole run in well under a minute on 2 cores).
    items : list of int, optional
        Item numbers to run; all when None.
    progress : callable, optional
        Called with each :class:`Item` after it ran.

    Returns
    -------
    list of CheckResult
        In registry order.

    Examples
    --------
    >>> res = run_checks(0, quick=True, items=[14])
    >>> all(r.passed for r in res), [r.name for r in res][:2]
    (True, ['14.1', '14.2'])
    """
    out: list[CheckResult] = []
    for num in items if items is not None else list(CHECKS):
        it = CHECKS[num]
        t0 = time.perf_counter()
        res = it.fn(seed, **(it.quick if quick else it.full))
        dt = time.perf_counter() - t0
        out.extend(
            CheckResult(**{**r.__dict__, "seconds": dt / max(len(res), 1)}) for r in res
        )
        if progress is not None:
            progress(it)
    return out
