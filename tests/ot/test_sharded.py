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
# Only on 2 processes: the default eps takes hundreds of iterations.
CASES_2 = {
    "sinkhorn_default_eps": dict(kind="sinkhorn", n=20, m=16, d=2, weighted=True),
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


# The default run: every case on 2 processes, some on 3 and 4 (each process
# imports torch, which dominates); the slow run: every case on 3 and 4.
SUBSET = {
    3: ["sinkhorn_weighted_uneven", "divergence_weighted_uneven", "mmd_energy_median"],
    4: ["sinkhorn_balanced", "sinkhorn_chunked_euclidean", "mmd_imq_biased"],
}


def _names(world: int, full: bool) -> list:
    names = list(CASES) if full or world == 2 else SUBSET[world]
    return names + (list(CASES_2) if world == 2 else [])


def _jobs(world: int, full: bool = False) -> list:
    jobs = [(k, {**CASES, **CASES_2}[k]) for k in _names(world, full)]
    if world == 2:
        jobs += [(f"error_{e}", {"error": e}) for e in ERRORS]
        jobs += [("traffic", TRAFFIC)]
        jobs += list(PLANTED.items())  # last: they patch the processes
    else:
        jobs += [("error_dim", {"error": "dim"})]
    return jobs


_RUNS: dict[tuple[int, bool], list] = {}


def _run(world: int, tmp_path_factory, full: bool = False) -> list:
    if (world, full) not in _RUNS:
        out = tmp_path_factory.mktemp(f"sharded{world}")
        jobs = _jobs(world, full)
        _RUNS[world, full] = sc.launch(world, jobs, str(out), timeout=150)
    return _RUNS[world, full]


def _mismatches(results: list, names, world: int) -> dict:
    bad = {}
    for name in names:
        spec = {**CASES, **CASES_2, **PLANTED}[name]
        ref = sc.reference({k: v for k, v in spec.items() if k != "planted"})
        for rank, res in enumerate(results):
            got = res[name]
            if "crash" in got:
                bad[(name, rank)] = got["crash"]
                continue
            diff = sc.compare(spec, ref, got, rank, world, TOL)
            if diff:
                bad[(name, rank)] = diff
    return bad


@pytest.mark.parametrize("world", [2, 3, 4])
def test_sharded_matches_one_process(world, tmp_path_factory):
    results = _run(world, tmp_path_factory)
    assert _mismatches(results, _names(world, False), world) == {}


@pytest.mark.slow
@pytest.mark.parametrize("world", [3, 4])
def test_sharded_matches_one_process_every_case(world, tmp_path_factory):
    results = _run(world, tmp_path_factory, full=True)
    assert _mismatches(results, _names(world, True), world) == {}


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_mismatched_dimension_is_refused_on_every_rank(world, tmp_path_factory):
    results = _run(world, tmp_path_factory)
    for rank, res in enumerate(results):
        msg = res["error_dim"]["message"]
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
    results = _run(2, tmp_path_factory)
    for rank, res in enumerate(results):
        msg = res[f"error_{name}"]["message"]
        for w in words:
            assert w in msg, (rank, msg)


def test_sharded_traffic_matches_the_model(tmp_path_factory):
    # Per soft-min: all_reduce MAX and SUM of n (rows) or m (cols) float64;
    # rows and cols are each called n_iter + 1 times (one initial pair).
    results = _run(2, tmp_path_factory)
    n, m = TRAFFIC["n"], TRAFFIC["m"]
    for res in results:
        t = res["traffic"]
        k = t["n_iter"] + 1
        rows = [b for c, b in t["calls"] if c == "all_reduce" and b == 8 * n]
        cols = [b for c, b in t["calls"] if c == "all_reduce" and b == 8 * m]
        assert len(rows) == 2 * k and len(cols) == 2 * k
        assert sum(rows) + sum(cols) == 16 * (n + m) * k
        # Nothing of size n * m (or n * m / R) is ever sent.
        assert max(b for _, b in t["calls"]) < 8 * n * m // 2


def test_sharded_comparison_catches_planted_defects(tmp_path_factory):
    results = _run(2, tmp_path_factory)
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
    results = sc.launch(3, list(cases.items()), str(out), timeout=400)
    bad = {}
    for name, s in cases.items():
        ref = sc.reference(s)
        for rank, res in enumerate(results):
            diff = sc.compare(s, ref, res[name], rank, 3, TOL)
            if diff:
                bad[(name, rank)] = diff
    assert bad == {}
