"""The certified multiscale exact solver and its exact c-transforms.

References: POT's dense network simplex (``ot.emd2``) on the full matrix,
SciPy's LP (HiGHS) for weighted cases, brute-force minima over all pairs for
the c-transforms.
"""

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import otgen
from otgen.ot import _exact_multiscale as ms
from otgen.ot._ctransform import BlockScan, TreeSearch, choose_ctransform
from otgen.ot.costs import Cost, resolve_cost
from tests.ot.lp_reference import transport_lp

ot = pytest.importorskip("ot")

# Above DENSE_PAIRS, so that at least one coarse level and column generation
# run (1500 x 1200 = 1.8e6 pairs > 1e6).
N, M = 1500, 1200


def clouds(n, m, d, seed=0, shift=1.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 1.5 + shift


def dense_reference(x, y, a, b, cost):
    C = cost.pairwise(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    return ot.emd2(a, b, C, numItermax=10**9)


def brute_min(x, y, g, cost):
    C = cost.pairwise(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    return (C - g[None, :]).min(1)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("weights", ["uniform", "random"])
def test_matches_dense_simplex(d, weights):
    x, y = clouds(N, M, d, seed=d)
    rng = np.random.default_rng(1)
    if weights == "uniform":
        a, b = np.full(N, 1 / N), np.full(M, 1 / M)
    else:
        a, b = rng.random(N) + 0.1, rng.random(M) + 0.1
        a, b = a / a.sum(), b / b.sum()
    res = otgen.exact_ot(x, y, a, b, solver="multiscale")
    ref = dense_reference(x, y, a, b, Cost())
    assert res.solver == "multiscale" and res.converged
    np.testing.assert_allclose(res.value, ref, rtol=1e-9)
    # The certificate: potentials feasible over all pairs (brute force) and the
    # duality gap closed.
    C = Cost().pairwise(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    worst = (res.f[:, None] + res.g[None, :] - C).max()
    assert worst <= 1e-9 * C.max()
    # Exact up to Qhull's precision (about 1e-12 of the largest cost): points
    # that close to the lifted hull may be merged into it.
    assert res.max_dual_violation == pytest.approx(max(worst, 0.0), abs=1e-11 * C.max())
    assert res.duality_gap <= 1e-9 * C.max()
    r, c = res.plan.marginals()
    np.testing.assert_allclose(r, a, atol=1e-12)
    np.testing.assert_allclose(c, b, atol=1e-12)
    assert res.rounds >= 1 and res.n_edges < N * M
    assert res.plan.nnz <= N + M - 1


@pytest.mark.parametrize("cost", ["euclidean", "minkowski"])
def test_other_costs_by_scan(cost):
    x, y = clouds(1100, 1000, 2, seed=5)
    c = resolve_cost(cost, p=1.5 if cost == "minkowski" else None, q=1.0)
    res = otgen.exact_ot(x, y, cost=c, solver="multiscale")
    ref = dense_reference(x, y, np.full(1100, 1 / 1100), np.full(1000, 1e-3), c)
    assert res.converged
    np.testing.assert_allclose(res.value, ref, rtol=1e-9)


def test_zero_weights_get_feasible_potentials():
    x, y = clouds(1200, 1100, 2, seed=7)
    rng = np.random.default_rng(3)
    a, b = rng.random(1200), rng.random(1100)
    a[rng.choice(1200, 200, replace=False)] = 0.0
    b[rng.choice(1100, 150, replace=False)] = 0.0
    a, b = a / a.sum(), b / b.sum()
    res = otgen.exact_ot(x, y, a, b, solver="multiscale")
    ref = dense_reference(x, y, a, b, Cost())
    np.testing.assert_allclose(res.value, ref, rtol=1e-9)
    C = Cost().pairwise(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    assert (res.f[:, None] + res.g[None, :] - C).max() <= 1e-9 * C.max()
    assert res.converged


def test_n_much_larger_than_m_and_weighted_lp():
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(30, 2)) + 0.5
    a, b = rng.random(40), rng.random(30)
    a, b = a / a.sum(), b / b.sum()
    C = Cost().pairwise(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    sol, _ = ms.multiscale_exact(x, y, a, b, Cost())
    np.testing.assert_allclose(sol.value, transport_lp(a, b, C)[0], rtol=1e-9)
    # n >> m: 3000 x 400 goes through the coarse levels on one side only
    x, y = clouds(3000, 400, 2, seed=12)
    a, b = np.full(3000, 1 / 3000), np.full(400, 1 / 400)
    res = otgen.exact_ot(x, y, solver="multiscale")
    np.testing.assert_allclose(res.value, dense_reference(x, y, a, b, Cost()), 1e-9)


def test_planted_violation_is_found():
    x, y = clouds(2000, 1800, 2, seed=2)
    res = otgen.exact_ot(x, y, solver="multiscale")
    xs, ys = np.asarray(x), np.asarray(y)
    f, g = np.array(res.f), np.array(res.g)
    assert ms.dual_violation(xs, ys, f, g, Cost()) <= 1e-9 * res.extra["cost_scale"]
    for j, delta in [(17, 1e-3), (1500, 0.25)]:
        bad = g.copy()
        bad[j] += delta
        C = Cost().pairwise(torch.from_numpy(xs), torch.from_numpy(ys)).numpy()
        truth = (f[:, None] + bad[None, :] - C).max()
        found = ms.dual_violation(xs, ys, f, bad, Cost())
        assert found == pytest.approx(truth, rel=1e-9)
        assert found >= 0.9 * delta


def test_scan_against_brute_force():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(250, 3))
    g = rng.normal(size=250) * 5
    for cost in (Cost(), Cost(p=1.0), Cost(q=1.0, p=3.0)):
        j = BlockScan(cost).argmin(x, y, g, np.zeros(300, dtype=np.int64))
        got = ms.pair_costs(x, y, np.arange(300), j, cost) - g[j]
        np.testing.assert_allclose(got, brute_min(x, y, g, cost), rtol=1e-12)
    assert isinstance(choose_ctransform(Cost(), 2), TreeSearch)
    assert isinstance(choose_ctransform(Cost(), 3), TreeSearch)
    assert isinstance(choose_ctransform(Cost(p=1.0), 2), TreeSearch)
    assert isinstance(choose_ctransform(Cost(), 9), BlockScan)


_COSTS = [
    Cost(),
    Cost(p=1.0),
    Cost(q=1.0, p=3.0),
    Cost(q=np.inf, p=1.0),
    Cost(q=3.0, p=1.5),
]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 80),
    m=st.integers(1, 300),
    d=st.integers(1, 5),
    k=st.integers(0, len(_COSTS) - 1),
    dup=st.booleans(),
    scale=st.sampled_from([1e-3, 1.0, 30.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_tree_search_is_the_exact_c_transform(n, m, d, k, dup, scale, seed):
    # Any potentials (not only smooth ones), repeated and flat clouds, every
    # named cost: the branch and bound must return a true minimiser.
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 2
    if dup:
        y[: m // 2] = y[0]
        y[:, -1] = 0.0
    g = rng.normal(size=m) * scale
    cost = _COSTS[k]
    j = TreeSearch(cost).argmin(x, y, g, rng.integers(0, m, size=n))
    got = ms.pair_costs(x, y, np.arange(n), j, cost) - g[j]
    # the reference from coordinate differences too (torch's cdist rounds at
    # 1e-12, more than the search's own error)
    r, c = np.divmod(np.arange(n * m), m)
    truth = (ms.pair_costs(x, y, r, c, cost) - g[c]).reshape(n, m).min(1)
    np.testing.assert_allclose(got, truth, rtol=1e-13, atol=1e-13)


def test_tree_search_split_over_threads_is_exact(monkeypatch):
    # Past 2 * _MIN_ROWS rows the search runs in row blocks on several threads:
    # the blocks must cover every row once, in order (against one thread and
    # against brute force over row blocks).
    from otgen.ot import _ctransform as ct

    rng = np.random.default_rng(7)
    n, m = 3 * ct._MIN_ROWS + 5, 700
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(m, 2))
    g = rng.normal(size=m)
    start = rng.integers(0, m, size=n)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    j3 = TreeSearch(Cost()).argmin(x, y, g, start)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    j1 = TreeSearch(Cost()).argmin(x, y, g, start)
    np.testing.assert_array_equal(j3, j1)
    got = ms.pair_costs(x, y, np.arange(n), j3, Cost()) - g[j3]
    np.testing.assert_allclose(got, brute_min(x, y, g, Cost()), rtol=1e-13, atol=1e-13)


def test_tree_search_fails_with_a_wrong_bound(monkeypatch):
    # Planted defect: node bounds that ignore g prune the true minimiser away
    # (the brute-force comparison above must be able to fail).
    from otgen.ot import _kdsearch as kd

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 2)), rng.normal(size=(400, 2))
    g = rng.normal(size=400) * 10
    real = kd.node_max
    monkeypatch.setattr(kd, "node_max", lambda G, *a: np.zeros_like(real(G, *a)))
    j = TreeSearch(Cost()).argmin(x, y, g, np.zeros(200, dtype=np.int64))
    got = ms.pair_costs(x, y, np.arange(200), j, Cost()) - g[j]
    assert (got > brute_min(x, y, g, Cost()) + 1e-9).any()


def test_auto_rules_by_dimension_and_cost():
    # The measured rules (benchmarks/README.md): sqeuclidean multiscale from
    # n = m = 2000 in 2-D and 3000 in 3-D to 8-D; W1 dense while it fits.
    from otgen.ot.exact import _choose

    sq, w1 = Cost(), Cost(p=1.0)
    assert _choose(2000, 2000, 2, sq) == "multiscale"
    assert _choose(1999, 2000, 2, sq) == "network_simplex"
    for d in range(3, 9):
        assert _choose(3000, 3000, d, sq) == "multiscale"
        assert _choose(2999, 3000, d, sq) == "network_simplex"
    assert _choose(5000, 5000, 9, sq) == "network_simplex"
    assert _choose(5000, 5000, 2, w1) == "network_simplex"
    assert _choose(20000, 20000, 2, w1) == "multiscale"  # past the dense limit
    assert _choose(10, 10, 1, w1) == "sorted_1d"


@pytest.mark.parametrize("s", [1e-12, 1e-6, 1e6, 1e12])
def test_scale_equivariant(s):
    x, y = clouds(1100, 1000, 2, seed=9)
    base = otgen.exact_ot(x, y, solver="multiscale")
    res = otgen.exact_ot(x * s, y * s, solver="multiscale")
    assert res.converged
    np.testing.assert_allclose(res.value, base.value * s**2, rtol=1e-10)
    # The violations themselves are rounding (about 1e-12 of the cost scale),
    # which does not scale exactly; the certificate does.
    assert res.max_dual_violation <= 1e-9 * res.extra["cost_scale"]
    np.testing.assert_allclose(res.extra["cost_scale"], base.extra["cost_scale"] * s**2)


def test_auto_picks_multiscale_and_torch_gradients():
    x, y = clouds(2000, 2000, 2, seed=3)
    res = otgen.exact_ot(x, y)
    assert res.solver == "multiscale" and res.converged
    # 3-D from 3000 points, other costs only past the dense memory limit
    assert otgen.exact_ot(*clouds(2000, 2000, 3)).solver == "network_simplex"
    assert otgen.exact_ot(x[:1500], y[:1500], cost="euclidean").solver == (
        "network_simplex"
    )
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = torch.from_numpy(y)
    v = otgen.exact_ot(tx, ty).value
    v.backward()
    P = res.plan
    grad = np.zeros_like(x)
    np.add.at(grad, P.rows, 2 * P.values[:, None] * (x[P.rows] - y[P.cols]))
    np.testing.assert_allclose(tx.grad.numpy(), grad, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(v.item(), res.value, rtol=1e-12)


def test_iteration_cap_gives_warning_and_not_converged():
    x, y = clouds(1100, 1000, 2, seed=8)
    with pytest.warns(UserWarning, match="converged=False"):
        res = otgen.exact_ot(x, y, solver="multiscale", max_iter=50)
    assert not res.converged


def test_progress_bar(capsys):
    x, y = clouds(1100, 1000, 2, seed=8)
    otgen.exact_ot(x, y, solver="multiscale", progress=True)
    assert "exact OT (multiscale)" in capsys.readouterr().err
    otgen.exact_ot(x, y, solver="multiscale")
    assert "exact OT" not in capsys.readouterr().err
    with pytest.raises(ValueError, match="progress must be True, False or None"):
        otgen.exact_ot(x, y, progress="yes")


def test_callable_cost_is_refused():
    x, y = clouds(10, 10, 2)
    with pytest.raises(ValueError, match="solver='multiscale' needs a named cost"):
        otgen.exact_ot(x, y, cost=lambda a, b: torch.cdist(a, b), solver="multiscale")


def test_a_plan_missing_mass_is_not_converged(monkeypatch):
    # A planted defect: the solver's plan loses its largest flow (as POT's
    # output would, for flows it rounds away); the marginal check must see it.
    real = ms._Level.simplex

    def lossy(self, key, f0, g0, max_iter):
        fs, ft, fv, f, g, code, red = real(self, key, f0, g0, max_iter)
        fv = fv.copy()
        fv[np.argmax(fv)] = 0.0
        return fs, ft, fv, f, g, code, red

    monkeypatch.setattr(ms._Level, "simplex", lossy)
    x, y = clouds(1100, 1000, 2, seed=4)
    with pytest.warns(UserWarning, match="marginal error") as record:
        res = otgen.exact_ot(x, y, solver="multiscale")
    assert not res.converged
    said = [re.search(r"marginal error ([0-9.e+-]+);", str(w.message)) for w in record]
    assert any(m and float(m.group(1)) > 1e-6 for m in said)
