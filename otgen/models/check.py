r"""A model check that can fail: exact :math:`W_2` against its calibrated floor.

Samples :math:`G_1, \dots, G_m` of a model are compared with a toy law
:math:`P` by a test of :math:`H_0`: the samples are iid from :math:`P`.

1. A held-out sample :math:`H` of :math:`m` points is drawn from :math:`P`.
2. The statistic is the exact :math:`T = W_2(G, H)` (not :math:`W_2^2`),
   between uniform measures on the :math:`m` points of each.
3. The **noise floor** is :math:`R` replicates :math:`F_r = W_2(X_r, H)`, each
   :math:`X_r` a fresh iid sample of :math:`m` points of :math:`P`, against the
   same :math:`H`: the statistic's own law under :math:`H_0`, at the same
   :math:`m`.
4. Under :math:`H_0`, :math:`T, F_1, \dots, F_R` are exchangeable (given
   :math:`H`, they are iid), so the Monte Carlo p-value
   :math:`p = (1 + \#\{r : F_r \ge T\}) / (R + 1)` satisfies
   :math:`\Pr(p \le \alpha) \le \alpha` exactly, for any :math:`R` and
   whatever the law of :math:`W_2` :cite:`besag1977simple` (equality when
   there are no ties). The samples are **indistinguishable** from :math:`P`
   at this :math:`m` when :math:`p > \alpha` (the level, the false-alarm
   rate: 0.05).
5. The size of a failure is the z-score :math:`z = (T - \bar F) / s_F`
   (mean and standard deviation of the replicates): :math:`T` lies
   :math:`z` times the floor's spread above the floor's mean.

The test is one-sided: only a large :math:`W_2` is evidence against the model
(a sample closer to :math:`H` than fresh data is, e.g. one with exactly
balanced mode counts, passes). The smallest p-value is :math:`1/(R + 1)`, so
:math:`R \ge 1/\alpha - 1` (19 at 0.05) is required: with fewer replicates the
check could never fail. With :math:`R = 19` it fails exactly when :math:`T`
exceeds every replicate.

A verdict on :math:`z` alone (Student's t with :math:`R - 1` degrees of
freedom, a prediction interval for one more normal draw) would be more
powerful, but its level rests on a normal floor, and the floor is skewed to
the right on some toys: on ``gaussian`` at :math:`m = 300` it failed 16 of
200 samples of the law itself (8%, against 10 of 200 for the rank rule).

Why :math:`m \ge 10^4` on the 2-D toys: the floor's :math:`W_2` falls like
:math:`m^{-1/4}` there (:math:`W_2^2` like :math:`m^{-1/2}`, dominated by the
multinomial noise of the mode counts), while a model's own error does not.
At :math:`m = 1000` a ring with 57% of its mass smeared between the modes
scores below the floor.

References: :cite:`besag1977simple`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from otgen.models.data import TOYS, ToyDistribution, get_toy

__all__ = [
    "DEFAULT_M",
    "permutation_check",
    "DEFAULT_REPLICATES",
    "LEVEL",
    "CheckResult",
    "min_replicates",
    "model_check",
    "noise_floor",
]

LEVEL = 0.05  # false-alarm rate of the verdict
DEFAULT_M = 10_000  # points per sample; read at call time (tests may lower it)
# 19 replicates: the fewest with which a level-0.05 test can fail (its smallest
# p-value is 1/20); the 20 exact solves at m = 1e4 in 2-D take about a minute
# on the 2-core development machine.
DEFAULT_REPLICATES = 19
_TAG_HELD_OUT = 0x6F7467656E  # seed streams of the check, apart from training's
_TAG_SUBSAMPLE = 0x6F74676E73
_FLOORS: dict[tuple, tuple[np.ndarray, tuple[float, ...]]] = {}
_FLOORS_KEPT = 16


def _seed(seed: int, tag: int, k: int = 0) -> int:
    """An integer seed for stream ``k`` of the check, independent of ``seed``'s."""
    state = np.random.SeedSequence([int(seed), tag, k]).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


def min_replicates(level: float) -> int:
    """The fewest replicates R whose smallest p-value, 1/(R + 1), is <= ``level``.

    Examples
    --------
    >>> min_replicates(0.05), min_replicates(0.01)
    (19, 99)
    """
    return max(2, math.ceil(1.0 / level - 1.0 - 1e-9))


@dataclass(frozen=True)
class CheckResult:
    r"""The outcome of :func:`model_check`.

    Attributes
    ----------
    statistic : float
        :math:`T = W_2(G, H)`, samples against the held-out sample.
    floor : tuple of float
        The replicates :math:`F_r = W_2(X_r, H)`, fresh samples of the law
        (for :func:`permutation_check`: :math:`W_2` between the two parts of
        a random re-split of the pooled samples).
    floor_mean, floor_std : float
        Their mean and standard deviation (``ddof=1``).
    z : float or None
        :math:`(T - \bar F) / s_F`; None when the floor has no spread.
    p_value : float
        :math:`(1 + \#\{F_r \ge T\}) / (R + 1)`; the verdict fails when it
        is at most ``level``.
    level : float
        The false-alarm rate :math:`\alpha`: the verdict fails samples of the
        law itself with probability :math:`\alpha`.
    m : int
        Points per sample (samples, held-out and each replicate).
    replicates : int
        :math:`R`.
    law : str
        Name of the toy law (of the reference data for
        :func:`permutation_check`).
    seed : int
        Seed of the held-out sample, the replicates and any subsampling.
    """

    statistic: float
    floor: tuple[float, ...]
    floor_mean: float
    floor_std: float
    z: float | None
    p_value: float
    level: float
    m: int
    replicates: int
    law: str
    seed: int

    @property
    def indistinguishable(self) -> bool:
        r"""True when :math:`p > \alpha`: the check finds no difference."""
        return self.p_value > self.level

    @property
    def verdict(self) -> str:
        """The verdict in one sentence, with the size of a failure."""
        at = f"{self.law} at m = {self.m}"
        p = f"p = {self.p_value:.3g}"
        if self.indistinguishable:
            z = "n/a" if self.z is None else f"{self.z:+.2f}"
            return (
                f"indistinguishable from {at}: W2 = {self.statistic:.4g} is within "
                f"the floor's spread (z = {z}, {p} > level {self.level:g})"
            )
        if self.z is None:
            size = "lies above every replicate of"
        else:
            size = f"lies {self.z:.1f} times the floor's spread above"
        return (
            f"NOT indistinguishable from {at}: W2 = {self.statistic:.4g} {size} "
            f"the floor's mean {self.floor_mean:.4g} ({p} <= level {self.level:g})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with ``indistinguishable`` and ``verdict``."""
        d = asdict(self)
        d["floor"] = list(self.floor)
        d["indistinguishable"] = self.indistinguishable
        d["verdict"] = self.verdict
        return d

    def metrics(self) -> dict[str, Any]:
        """Flat metrics for a report (``check_*`` and the ``w2_*`` keys)."""
        ratio = self.statistic / self.floor_mean if self.floor_mean > 0 else None
        return {
            "check_indistinguishable": self.indistinguishable,
            "check_verdict": self.verdict,
            "check_z": self.z,
            "check_p_value": self.p_value,
            "check_level": self.level,
            "check_m": self.m,
            "check_replicates": self.replicates,
            "w2_generated": self.statistic,
            "w2_noise_floor": self.floor_mean,
            "w2_noise_floor_std": self.floor_std,
            "w2_floor_replicates": list(self.floor),
            "w2_ratio": ratio,
        }


def _w2(x: np.ndarray, y: np.ndarray) -> float:
    """Exact W2 between uniform clouds (float64).

    :func:`~otgen.ot.exact.exact_ot` chooses the solver: the dense network
    simplex for small clouds, the certified multiscale solver (no n x m
    matrix) for large 2-D and 3-D ones.
    """
    from otgen.ot.exact import exact_ot

    x, y = (v if v.flags.writeable else v.copy() for v in (x, y))
    return math.sqrt(max(float(exact_ot(x, y).value), 0.0))


def _law(law: str | ToyDistribution) -> ToyDistribution:
    return law if isinstance(law, ToyDistribution) else get_toy(law)


def _check_int(v: Any, name: str, low: int, example: str, why: str = "") -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise ValueError(
            f"{name} must be an integer >= {low}{why} (got {v!r}); pass e.g. "
            f"{name}={example}."
        )


def _floor(
    law: ToyDistribution, m: int, replicates: int, seed: int, progress: bool
) -> tuple[np.ndarray, tuple[float, ...]]:
    held = law.sample(m, seed=_seed(seed, _TAG_HELD_OUT), dtype=torch.float64)
    held = held.numpy()
    held.setflags(write=False)
    floor = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=replicates, desc="noise floor (exact W2)", leave=False)
    try:
        for r in range(replicates):
            s = _seed(seed, _TAG_HELD_OUT, r + 1)
            x = law.sample(m, seed=s, dtype=torch.float64).numpy()
            floor.append(_w2(x, held))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return held, tuple(floor)


def noise_floor(
    law: str | ToyDistribution,
    m: int | None = None,
    *,
    replicates: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> tuple[np.ndarray, tuple[float, ...]]:
    r"""The held-out sample :math:`H` and the floor replicates :math:`W_2(X_r, H)`.

    For the registered toys, computed once per (toy, ``m``, ``replicates``,
    ``seed``) in a process and kept in memory (the last 16): models compared
    on the same seed share them.

    Parameters
    ----------
    law : str or ToyDistribution
        The toy law :math:`P` (a name of :data:`~otgen.models.data.TOYS`).
    m : int, optional
        Points per sample (``DEFAULT_M``: 10000).
    replicates : int, optional
        :math:`R` (``DEFAULT_REPLICATES``: 19).
    seed : int, default=0
        Seed of :math:`H` and of the :math:`X_r` (streams of their own, apart
        from those of ``law.sample(n, seed=seed)``).
    progress : bool, default=False
        A progress bar over the replicates (on standard error).

    Returns
    -------
    held : ndarray, shape (m, d)
        :math:`H`, float64, read-only.
    floor : tuple of float
        :math:`F_1, \dots, F_R`.

    Examples
    --------
    >>> held, floor = noise_floor("ring8", 200, replicates=3, seed=0)
    >>> held.shape, len(floor), all(f > 0 for f in floor)
    ((200, 2), 3, True)
    """
    toy = _law(law)
    m = DEFAULT_M if m is None else m
    replicates = DEFAULT_REPLICATES if replicates is None else replicates
    _check_int(m, "m", 2, "10000")
    _check_int(replicates, "replicates", 2, "19")
    key = (toy.name, int(m), int(replicates), int(seed))
    registered = TOYS.get(toy.name) is toy
    if registered and key in _FLOORS:
        return _FLOORS[key]
    out = _floor(toy, int(m), int(replicates), int(seed), progress)
    if registered:
        while len(_FLOORS) >= _FLOORS_KEPT:
            del _FLOORS[next(iter(_FLOORS))]
        _FLOORS[key] = out
    return out


def _as_points(samples: Any, dim: int) -> np.ndarray:
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().double().numpy()
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1 and dim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(
            f"samples must have shape (n, {dim}), one point of the law per row "
            f"(got shape {x.shape}); pass points in the law's dimension."
        )
    if not np.isfinite(x).all():
        raise ValueError(
            "samples must be finite (got NaN or inf entries); remove those rows."
        )
    return x


def model_check(
    samples: Any,
    law: str | ToyDistribution,
    *,
    m: int | None = None,
    replicates: int | None = None,
    level: float = LEVEL,
    seed: int = 0,
    progress: bool = False,
) -> CheckResult:
    r"""Test whether ``samples`` are indistinguishable from ``law`` at size ``m``.

    See the module docstring: :math:`T = W_2(G, H)` against :math:`R` floor
    replicates :math:`W_2(X_r, H)`, Monte Carlo p-value, verdict at ``level``.

    Parameters
    ----------
    samples : array or Tensor, shape (n, d)
        Points of the model, iid; ``n >= m``. When ``n > m``, ``m`` of them
        are drawn without replacement (seeded).
    law : str or ToyDistribution
        The toy law (a name of :data:`~otgen.models.data.TOYS`).
    m : int, optional
        Points per sample: ``min(n, DEFAULT_M)`` (10000) when None.
    replicates : int, optional
        :math:`R`, at least :func:`min_replicates` of ``level`` (19 at 0.05);
        ``DEFAULT_REPLICATES`` (19) when None.
    level : float, default=0.05
        The false-alarm rate :math:`\alpha` of the verdict.
    seed : int, default=0
        Seed of the held-out sample, the replicates and the subsampling.
    progress : bool, default=False
        A progress bar over the exact solves (on standard error).

    Returns
    -------
    CheckResult
        ``statistic``, ``floor`` (mean, std), ``z``, ``p_value``,
        ``indistinguishable`` and ``verdict``.

    Raises
    ------
    ValueError
        On samples of the wrong shape or not finite, ``m`` above the number of
        samples, a level outside (0, 1), or too few replicates to fail.

    Examples
    --------
    >>> toy = get_toy("ring8")
    >>> r = model_check(toy.sample(300, seed=5), "ring8", m=300, seed=0)
    >>> r.m, r.replicates, r.indistinguishable
    (300, 19, True)
    >>> shifted = toy.sample(300, seed=5) + 0.3
    >>> model_check(shifted, "ring8", m=300, seed=0).indistinguishable
    False
    """
    toy = _law(law)
    x = _as_points(samples, toy.dim)
    n = x.shape[0]
    m = min(n, DEFAULT_M) if m is None else m
    replicates = DEFAULT_REPLICATES if replicates is None else replicates
    _check_int(m, "m", 2, "10000")
    _check_level(level, replicates)
    if m > n:
        raise ValueError(
            f"m must be at most the number of samples (got m={m}, {n} samples); "
            f"pass m={n} or more samples."
        )
    if n > m:
        rng = np.random.default_rng(_seed(seed, _TAG_SUBSAMPLE))
        x = x[rng.choice(n, m, replace=False)]
    held, floor = noise_floor(
        toy, m, replicates=replicates, seed=seed, progress=progress
    )
    return _result(_w2(x, held), floor, level, m, toy.name, seed)


_TAG_PERMUTE = 0x6F7470726D


def permutation_check(
    samples: Any,
    reference: Any,
    *,
    replicates: int = 99,
    level: float = LEVEL,
    seed: int = 0,
    name: str = "the held-out data",
) -> CheckResult:
    r"""Exact :math:`W_2` two-sample permutation test, for data of any shape.

    For data whose law cannot be sampled (images: a finite held-out set),
    the floor comes from the samples themselves. With :math:`G` the
    :math:`n` samples and :math:`H` the :math:`m` reference points (each row
    flattened to a vector), the statistic is the exact
    :math:`T = W_2(G, H)` between uniform measures, and the replicates are
    :math:`F_r = W_2(Z_{\pi_r}, Z_{\pi_r^c})`: the pooled points
    :math:`Z = G \cup H` re-split at random into parts of sizes :math:`n`
    and :math:`m`. Under :math:`H_0` (both iid from one law) the pooled
    points are exchangeable, so :math:`T, F_1, \dots, F_R` are too, and
    :math:`p = (1 + \#\{F_r \ge T\}) / (R + 1)` is an exact p-value
    :cite:`besag1977simple`. As :func:`model_check`, one-sided; the verdict
    fails when :math:`p \le` ``level``.

    Parameters
    ----------
    samples, reference : array or Tensor, shape (n, ...) and (m, ...)
        The model's samples and the held-out data, rows of the same shape.
    replicates : int, default=99
        :math:`R`, at least :func:`min_replicates` of ``level``. Each costs
        one exact solve (about 15 ms for 359 x 359 images of 8 x 8).
    level : float, default=0.05
        The false-alarm rate of the verdict.
    seed : int, default=0
        Seed of the re-splits.
    name : str
        What the reference is, for the verdict's sentence.

    Returns
    -------
    CheckResult
        As :func:`model_check`; ``m`` is the number of samples.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> data = torch.rand(120, 4, 4, generator=g)
    >>> permutation_check(data[:60], data[60:], replicates=19).indistinguishable
    True
    >>> permutation_check(data[:60] * 0.5, data[60:], replicates=19).p_value
    0.05
    """
    x, y = (
        _as_rows(v, what)
        for v, what in ((samples, "samples"), (reference, "reference"))
    )
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"samples and reference must have rows of one size (got {x.shape[1]} "
            f"and {y.shape[1]} values per row); pass data of the same shape."
        )
    _check_level(level, replicates)
    n = x.shape[0]
    pool = np.concatenate([x, y])
    rng = np.random.default_rng(_seed(seed, _TAG_PERMUTE))
    t = _w2(x, y)
    floor = []
    for _ in range(replicates):
        perm = rng.permutation(pool.shape[0])
        floor.append(_w2(pool[perm[:n]], pool[perm[n:]]))
    return _result(t, tuple(floor), level, n, name, seed)


def _check_level(level: float, replicates: Any) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1) (got {level!r}); pass e.g. 0.05.")
    r_min = min_replicates(level)
    _check_int(
        replicates,
        "replicates",
        r_min,
        str(r_min),
        why=f" for a test at level {level:g} (the smallest p-value is "
        "1/(replicates + 1): with fewer the check could never fail)",
    )


def _result(
    t: float, floor: tuple[float, ...], level: float, m: int, law: str, seed: int
) -> CheckResult:
    """The Monte Carlo p-value and z-score of ``t`` against the replicates."""
    f = np.asarray(floor)
    mean, std = float(f.mean()), float(f.std(ddof=1))
    spread = std > 1e-12 * max(abs(mean), abs(t), 1e-300)
    return CheckResult(
        statistic=t,
        floor=tuple(floor),
        floor_mean=mean,
        floor_std=std,
        z=(t - mean) / std if spread else None,
        p_value=(1 + int((f >= t).sum())) / (len(floor) + 1),
        level=float(level),
        m=int(m),
        replicates=len(floor),
        law=law,
        seed=int(seed),
    )


def _as_rows(v: Any, what: str) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().double().numpy()
    x = np.asarray(v, dtype=np.float64)
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(
            f"{what} must have shape (n, ...) with n >= 2 rows (got shape "
            f"{x.shape}); pass one sample per row."
        )
    x = x.reshape(x.shape[0], -1)
    if not np.isfinite(x).all():
        raise ValueError(
            f"{what} must be finite (got NaN or inf entries); remove those rows."
        )
    return np.ascontiguousarray(x)
