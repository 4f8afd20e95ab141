"""Sharded OT over torch.distributed: 2, 3 and 4 gloo processes on loopback.

Each process holds its rows of x, y (and a, b); the value, its rows of the
potentials and the gradients with respect to its rows must equal the
single-process result to 1e-10 in float64 (``sharded_cases.compare``). The
processes are started with ``torch.multiprocessing`` (spawn, one thread
each, a free loopback port) and killed past a deadline; gloo's own timeout
is 60 s.
"""

from __future__ import annotations

import pytest
import torch

from otgen.ot import mmd, sinkhorn, sinkhorn_divergence
from tests.ot import sharded_cases as sc

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch.distributed unavailable"
)

TOL = 1e-10  # float64; sums taken in another order differ by ~1e-15

CASES = {
    "sinkhorn_balanced": dict(kind="sinkhorn", n=30, m=30, d=2, kw=dict(eps=0.2)),
    "sinkhorn_weighted_uneven": dict(
        kind="sinkhorn", n=37, m=23, d=3, weighted=True, uneven=True, kw=dict(eps=0.2)
    ),
    "sinkhorn_chunked_euclidean": dict(
        kind="sinkhorn",
        n=25,
        m=19,
        d=2,
        uneven=True,
        kw=dict(eps=0.3, cost="euclidean", backend="chunked"),
    ),
    "divergence_weighted_uneven": dict(
        kind="divergence", n=29, m=31, d=2, weighted=True, uneven=True, kw=dict(eps=0.2)
    ),
    "mmd_gaussian_weighted_uneven": dict(
        kind="mmd",
        n=31,
        m=22,
        d=3,
        weighted=True,
        uneven=True,
        kw=dict(kernel="gaussian", scale=1.0),
    ),
    "mmd_imq_biased": dict(
        kind="mmd", n=26, m=33, d=2, uneven=True, kw=dict(estimator="biased")
    ),
    "mmd_energy_median": dict(
        kind="mmd", n=24, m=20, d=2, kw=dict(kernel="energy", scale="median")
    ),
}
# Only on 2 processes.
CASES_2 = {
    "sinkhorn_default_eps": dict(
        kind="sinkhorn", n=20, m=16, d=2, weighted=True, kw=dict(tol=1e-2)
    ),
    # eps >= 1e5 x the cost scale: the expansion, solved whole on each rank.
    "sinkhorn_large_eps": dict(kind="sinkhorn", n=14, m=11, d=2, kw=dict(eps=1e7)),
    # float32 in, a float32 loop, its marginals re-measured in float64:
    # float32 rounding (~1e-7 relative) in each partial soft-min.
    "sinkhorn_float32": dict(
        kind="sinkhorn",
        n=21,
        m=17,
        d=2,
        uneven=True,
        dtype=torch.float32,
        tol=1e-5,
        kw=dict(eps=0.2),
    ),
    "divergence_same_object": dict(
        kind="divergence", n=18, m=18, d=2, same=True, kw=dict(eps=0.2)
    ),
}
ERRORS = ("dim", "mass", "per_rank", "some_weights", "reach")
TRAFFIC = dict(kind="traffic", n=37, m=23, d=3, kw=dict(eps=0.2))
# max_iter bounds the defective run (which never converges) in time.
_BASE = dict(CASES["sinkhorn_weighted_uneven"], kw=dict(eps=0.2, max_iter=100))
PLANTED = {
    "planted_grad": dict(_BASE, planted="grad"),
    "planted_lse": dict(_BASE, planted="lse"),
}


# One launch of 4 processes: the 2- and 3-process cases run on new_group's
# of the first ranks (each process imports torch, which dominates the time).
# The default run: every case on 2 processes, some on 3 and 4; the slow run:
# every case on 3 and 4.
SUBSET = {
    3: ["sinkhorn_weighted_uneven", "divergence_weighted_uneven", "mmd_energy_median"],
    4: ["sinkhorn_balanced", "sinkhorn_chunked_euclidean", "mmd_imq_biased"],
}


def _names(world: int, full: bool) -> list:
    names = list(CASES) if full or world == 2 else SUBSET[world]
    return names + (list(CASES_2) if world == 2 else [])


def _jobs(full: bool = False) -> list:
    every = {**CASES, **CASES_2}
    jobs = []
    for world in (2, 3, 4):
        if full and world == 2:
            continue
        jobs += [(world, k, every[k]) for k in _names(world, full)]
        if not full:
            jobs += [(world, "error_dim", {"error": "dim"})]
    if not full:
        jobs += [(2, f"error_{e}", {"error": e}) for e in ERRORS if e != "dim"]
        jobs += [(2, "traffic", TRAFFIC)]
        jobs += [(2, k, v) for k, v in PLANTED.items()]  # last: they patch
    return jobs


_RUNS: dict[bool, dict] = {}


def _run(tmp_path_factory, full: bool = False) -> dict:
    if full not in _RUNS:
        out = tmp_path_factory.mktemp("sharded")
        _RUNS[full] = sc.launch(_jobs(full), str(out), timeout=300 if full else 150)
    return _RUNS[full]


def _mismatches(results: dict, names, world: int) -> dict:
    bad = {}
    for name in names:
        spec = {**CASES, **CASES_2, **PLANTED}[name]
        ref = sc.reference({k: v for k, v in spec.items() if k != "planted"})
        for rank, got in enumerate(results[world, name]):
            if "crash" in got:
                bad[(name, rank)] = got["crash"]
                continue
            diff = sc.compare(spec, ref, got, rank, world, TOL)
            if diff:
                bad[(name, rank)] = diff
    return bad


@pytest.mark.parametrize("world", [2, 3, 4])
def test_sharded_matches_one_process(world, tmp_path_factory):
    results = _run(tmp_path_factory)
    assert _mismatches(results, _names(world, False), world) == {}


@pytest.mark.slow
@pytest.mark.parametrize("world", [3, 4])
def test_sharded_matches_one_process_every_case(world, tmp_path_factory):
    results = _run(tmp_path_factory, full=True)
    assert _mismatches(results, _names(world, True), world) == {}


@pytest.mark.parametrize("world", [2, 3, 4])
def test_sharded_mismatched_dimension_is_refused_on_every_rank(world, tmp_path_factory):
    results = _run(tmp_path_factory)
    for rank, res in enumerate(results[world, "error_dim"]):
        msg = res["message"]
        assert "same dimension d on every rank" in msg, (rank, msg)
        assert "2 on rank 1" in msg


@pytest.mark.parametrize(
    "name, words",
    [
        ("mass", ["a and b must have the same total mass", "summed over all ranks"]),
        ("per_rank", ["a must sum to 1", "got sum 2", "global sum, not per rank"]),
        ("some_weights", ["a must be given on every rank or on none"]),
        ("reach", ["reach=1.0 with group", "balanced problems only"]),
    ],
)
def test_sharded_invalid_weights_are_refused_on_every_rank(
    name, words, tmp_path_factory
):
    results = _run(tmp_path_factory)
    for rank, res in enumerate(results[2, f"error_{name}"]):
        msg = res["message"]
        for w in words:
            assert w in msg, (rank, msg)


def test_sharded_traffic_matches_the_model(tmp_path_factory):
    # Per soft-min: all_reduce MAX and SUM of n (rows) or m (cols) float64;
    # rows and cols are each called n_iter + 1 times (one initial pair).
    results = _run(tmp_path_factory)
    n, m = TRAFFIC["n"], TRAFFIC["m"]
    for t in results[2, "traffic"]:
        k = t["n_iter"] + 1
        rows = [b for c, b in t["calls"] if c == "all_reduce" and b == 8 * n]
        cols = [b for c, b in t["calls"] if c == "all_reduce" and b == 8 * m]
        assert len(rows) == 2 * k and len(cols) == 2 * k
        assert sum(rows) + sum(cols) == 16 * (n + m) * k
        # Nothing of size n * m (or n * m / R) is ever sent.
        assert max(b for _, b in t["calls"]) < 8 * n * m // 2


def test_sharded_comparison_catches_planted_defects(tmp_path_factory):
    results = _run(tmp_path_factory)
    # Summing the partial soft-mins instead of log-sum-exp: wrong potentials.
    bad = _mismatches(results, ["planted_lse"], 2)
    assert {k for k, _ in bad[("planted_lse", 0)]} >= {"f", "value"}
    # A gather whose backward forgets the other ranks: right value and
    # potentials, wrong gradients.
    bad = _mismatches(results, ["planted_grad"], 2)
    keys = {k for r in range(2) for k, _ in bad.get(("planted_grad", r), [])}
    assert keys and keys <= {"gx", "gy", "ga", "gb"}


def test_group_none_is_the_single_process_call():
    # group=None is the default: the same numbers as a call without it.
    x, y, a, b = sc.data(dict(n=15, m=12, d=2, weighted=True))
    r1, r2 = sinkhorn(x, y, a, b, eps=0.3), sinkhorn(x, y, a, b, eps=0.3, group=None)
    assert torch.equal(r1.value, r2.value) and torch.equal(r1.f, r2.f)
    s1 = sinkhorn_divergence(x, y, a, b, eps=0.3)
    assert torch.equal(s1, sinkhorn_divergence(x, y, a, b, eps=0.3, group=None))
    assert torch.equal(mmd(x, y, a, b), mmd(x, y, a, b, group=None))


def test_group_without_process_group_is_refused():
    x = torch.zeros(3, 2, dtype=torch.float64)
    if torch.distributed.is_initialized():
        pytest.skip("a process group is initialised in this process")
    with pytest.raises(ValueError, match="needs an initialised torch.distributed"):
        sinkhorn(x, x + 1, group="world")
    with pytest.raises(ValueError, match="needs an initialised torch.distributed"):
        mmd(x, x + 1, group="world")


@pytest.mark.slow
def test_sharded_large_native(tmp_path_factory):
    # 2000 x 1500 points in 3-D on the native loops (auto), 3 processes.
    spec = dict(
        kind="sinkhorn", n=2000, m=1500, d=3, weighted=True, uneven=True,
        kw=dict(eps=0.1),
    )  # fmt: skip
    div = dict(spec, kind="divergence")
    mm = dict(spec, kind="mmd", kw=dict(kernel="gaussian", scale=0.5))
    cases = {"large_sinkhorn": spec, "large_div": div, "large_mmd": mm}
    out = tmp_path_factory.mktemp("sharded_large")
    results = sc.launch([(3, k, v) for k, v in cases.items()], str(out), timeout=500)
    bad = {}
    for name, s in cases.items():
        ref = sc.reference(s)
        for rank, res in enumerate(results[3, name]):
            diff = sc.compare(s, ref, res, rank, 3, TOL)
            if diff:
                bad[(name, rank)] = diff
    assert bad == {}
