"""otgen.plot with the Agg backend: what is drawn, against independent
references (brute-force c-transforms, a naive witness, POT's plan)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse  # noqa: E402
import torch  # noqa: E402
from scipy.spatial.distance import cdist  # noqa: E402
from scipy.special import logsumexp  # noqa: E402

import otgen  # noqa: E402
from otgen.plot import (  # noqa: E402
    extend_potential,
    mmd_witness,
    plan_arrows,
    plan_matrix,
    potential_map,
    witness_map,
)


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def clouds(seed=0, n=12, m=9):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = rng.normal(size=(m, 2)) * 0.7 + [3.0, 1.0]
    a = rng.uniform(0.5, 1.5, n)
    return x, y, a / a.sum(), np.full(m, 1.0 / m)


def arrows(ax):
    found = [c for c in ax.collections if c.get_gid() == "otgen.plan"]
    assert len(found) == 1
    return found[0]


def grid_of(im):
    """The grid points of a heat map, from the image's extent and shape."""
    x0, x1, y0, y1 = im.get_extent()
    ny, nx = im.get_array().shape
    X, Y = np.meshgrid(np.linspace(x0, x1, nx), np.linspace(y0, y1, ny))
    return np.column_stack([X.ravel(), Y.ravel()])


# -- arrows ----------------------------------------------------------------------


def test_one_arrow_per_nonzero_of_an_exact_plan(ax):
    x, y, a, b = clouds()
    res = otgen.exact_ot(x, y, a, b)
    out = plan_arrows(x, y, res, ax=ax)
    assert out is ax
    coll = arrows(ax)
    polys = [p.vertices[:7] for p in coll.get_paths()]
    assert len(polys) == res.plan.nnz <= 12 + 9 - 1
    P = res.plan
    for k, v in enumerate(polys):
        i, j = P.rows[k], P.cols[k]
        np.testing.assert_allclose(0.5 * (v[0] + v[6]), x[i], atol=1e-12)  # tail
        np.testing.assert_allclose(v[3], y[j], atol=1e-12)  # tip
    # Widths proportional to the masses (shaft: vertices 0 and 6).
    widths = np.array([np.linalg.norm(v[0] - v[6]) for v in polys])
    np.testing.assert_allclose(widths / widths.max(), P.values / P.values.max())


def test_dense_plan_from_pot_gives_the_same_arrows(ax):
    ot = pytest.importorskip("ot")
    x, y, a, b = clouds(1)
    P = ot.emd(a, b, cdist(x, y, "sqeuclidean"))
    plan_arrows(x, y, P, ax=ax)
    assert len(arrows(ax).get_paths()) == np.count_nonzero(P)


@pytest.mark.parametrize("kind", ["transport_plan", "torch", "sparse", "dense"])
def test_every_plan_kind_draws_its_nonzeros(ax, kind):
    x, y, a, b = clouds(2)
    res = otgen.exact_ot(x, y, a, b)
    plan = {
        "transport_plan": res.plan,
        "torch": torch.from_numpy(res.plan.dense()),
        "sparse": scipy.sparse.csr_matrix(res.plan.dense()),
        "dense": res.plan.dense(),
    }[kind]
    xs, ys = (torch.from_numpy(v) for v in (x, y)) if kind == "torch" else (x, y)
    plan_arrows(xs, ys, plan, ax=ax)
    assert len(arrows(ax).get_paths()) == res.plan.nnz


def test_entropic_plan_keeps_entries_above_the_threshold(ax):
    x, y, a, b = clouds(3)
    res = otgen.sinkhorn(x, y, a, b, eps=0.5)
    P = res.plan.dense()
    plan_arrows(x, y, res, ax=ax)  # default: 1e-2 of the largest entry
    assert len(arrows(ax).get_paths()) == int((P > 1e-2 * P.max()).sum())
    ax.clear()
    plan_arrows(x, y, res, ax=ax, threshold=0.3)
    assert len(arrows(ax).get_paths()) == int((P > 0.3 * P.max()).sum())


def test_points_are_drawn_with_their_marginal_masses(ax):
    x, y, a, b = clouds(4)
    plan_arrows(x, y, otgen.exact_ot(x, y, a, b), ax=ax)
    pts = [c for c in ax.collections if c.get_gid() != "otgen.plan"]
    assert len(pts) == 2
    np.testing.assert_allclose(pts[0].get_offsets(), x)
    np.testing.assert_allclose(pts[0].get_sizes() / pts[0].get_sizes().sum(), a)


def test_plan_arrows_default_axes():
    plt.close("all")
    x, y, a, b = clouds()
    out = plan_arrows(x, y, otgen.exact_ot(x, y))
    assert out is plt.gca()
    plt.close("all")


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(x=np.zeros((12, 3))), r"x must have shape \(n, 2\).*got shape \(12, 3\)"),
        (dict(y=np.zeros(9)), r"y must have shape \(n, 2\).*got shape \(9,\)"),
        (dict(x=np.zeros((0, 2))), "at least one point"),
        (dict(x=np.full((12, 2), np.nan)), "x must be finite"),
        (dict(plan=np.ones((9, 12))), r"plan must have shape \(n, m\) = \(12, 9\)"),
        (dict(plan=-np.ones((12, 9))), "non-negative"),
        (dict(plan=np.ones(12)), r"matrix of shape \(n, m\)"),
        (dict(threshold=1.5), "threshold must be in"),
        (dict(width=-1.0), "width must be positive"),
        (dict(width=np.inf), "width must be positive and finite"),
    ],
)
def test_plan_arrows_errors(ax, bad, match):
    x, y, a, b = clouds()
    args = dict(x=x, y=y, plan=otgen.exact_ot(x, y).plan)
    kw = {}
    for k, v in bad.items():
        (args if k in args else kw)[k] = v
    with pytest.raises(ValueError, match=match):
        plan_arrows(args["x"], args["y"], args["plan"], ax=ax, **kw)


def test_plan_arrows_non_numbers_name_the_parameter(ax):
    x, y, _, _ = clouds()
    plan = otgen.exact_ot(x, y)
    with pytest.raises(TypeError, match="threshold must be a number"):
        plan_arrows(x, y, plan, ax=ax, threshold="high")
    with pytest.raises(TypeError, match="width must be a number"):
        plan_arrows(x, y, plan, ax=ax, width=[0.1])


def test_ax_must_be_axes():
    x, y, _, _ = clouds()
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plan_arrows(x, y, otgen.exact_ot(x, y), ax="left")


def test_too_many_arrows_is_refused(ax, monkeypatch):
    import otgen.plot.plan as mod

    monkeypatch.setattr(mod, "MAX_ARROWS", 10)
    x, y, _, _ = clouds()
    with pytest.raises(ValueError, match="raise threshold"):
        plan_arrows(x, y, np.ones((12, 9)), ax=ax)


# -- matrix ----------------------------------------------------------------------


def test_plan_matrix_shows_the_reordered_plan(ax):
    x, y, a, b = clouds(5)
    res = otgen.exact_ot(x, y, a, b)
    ro, co = np.argsort(x[:, 0]), np.argsort(y[:, 0])
    plan_matrix(res, ax=ax, row_order=ro, col_order=co)
    (im,) = ax.images
    assert im.get_gid() == "otgen.plan_matrix"
    np.testing.assert_array_equal(im.get_array(), res.plan.dense()[ro][:, co])


def test_plan_matrix_log_blanks_the_zeros(ax):
    P = np.array([[0.5, 0.0], [0.0, 0.5]])
    plan_matrix(P, ax=ax, log=True, colorbar=False)
    arr = ax.images[0].get_array()
    assert arr.mask.tolist() == [[False, True], [True, False]]


def test_plan_matrix_errors(ax):
    msg = r"row_order must be a permutation of 0..1 \(got \[0.0, 0.0\]\)"
    with pytest.raises(ValueError, match=msg):
        plan_matrix(np.eye(2), ax=ax, row_order=[0, 0])
    with pytest.raises(ValueError, match="col_order must be a permutation"):
        plan_matrix(np.eye(2), ax=ax, col_order=[0, 1, 2])


# -- potentials ------------------------------------------------------------------


def brute_c_transform(t, pts, pot, p):
    """min_j [|t - y_j|^p - g_j], one grid point at a time."""
    out = np.empty(len(t))
    for k, tk in enumerate(t):
        out[k] = min(
            np.sqrt(((tk - yj) ** 2).sum()) ** p - gj for yj, gj in zip(pts, pot)
        )
    return out


@pytest.mark.parametrize("which", ["f", "g"])
@pytest.mark.parametrize("cost, p", [("sqeuclidean", 2), ("euclidean", 1)])
def test_exact_potential_map_is_the_c_transform(ax, which, cost, p):
    x, y, a, b = clouds(6)
    res = otgen.exact_ot(x, y, a, b, cost=cost)
    potential_map(x, y, res, which=which, ax=ax, resolution=25)
    (im,) = ax.images
    assert im.get_gid() == "otgen.potential"
    t = grid_of(im)
    pts, pot = (y, res.g) if which == "f" else (x, res.f)
    ref = brute_c_transform(t, pts, pot, p)
    np.testing.assert_allclose(im.get_array().ravel(), ref, rtol=1e-12, atol=1e-12)


def test_exact_extension_reproduces_the_potentials_on_the_samples():
    x, y, a, b = clouds(7)
    res = otgen.exact_ot(x, y, a, b)
    scale = res.extra["cost_scale"]
    np.testing.assert_allclose(extend_potential(x, y, res, x), res.f, atol=1e-8 * scale)
    np.testing.assert_allclose(
        extend_potential(x, y, res, y, which="g"), res.g, atol=1e-8 * scale
    )
    # Planted: potentials from another problem do not reproduce f.
    other = otgen.exact_ot(x, y[::-1].copy(), a, b)
    assert np.abs(extend_potential(x, y, other, x) - res.f).max() > 1e-3


@pytest.mark.parametrize("which", ["f", "g"])
def test_entropic_potential_map_is_the_soft_c_transform(ax, which):
    x, y, a, b = clouds(8)
    eps = 0.3
    res = otgen.sinkhorn(x, y, a, b, eps=eps, tol=1e-10, max_iter=5000)
    potential_map(x, y, res, which=which, a=a, b=b, ax=ax, resolution=20)
    t = grid_of(ax.images[0])
    pts, pot, w = (y, res.g, b) if which == "f" else (x, res.f, a)
    C = cdist(t, pts, "sqeuclidean")
    ref = -eps * logsumexp(np.log(w) + (pot - C) / eps, axis=1)
    np.testing.assert_allclose(ax.images[0].get_array().ravel(), ref, rtol=1e-10)


@pytest.mark.parametrize("reach", [None, 2.0])
def test_entropic_extension_reproduces_the_potentials(reach):
    x, y, a, _ = clouds(9)
    b = np.random.default_rng(9).uniform(0.5, 1.5, 9)
    b = b / b.sum() if reach is None else b * 0.2  # unbalanced: unequal masses
    res = otgen.sinkhorn(x, y, a, b, eps=0.2, reach=reach, tol=1e-11, max_iter=10000)
    assert res.converged
    np.testing.assert_allclose(
        extend_potential(x, y, res, x, a=a, b=b), res.f, rtol=0, atol=1e-8
    )
    np.testing.assert_allclose(
        extend_potential(x, y, res, y, which="g", a=a, b=b), res.g, rtol=0, atol=1e-8
    )
    # Planted: forgetting the weights b moves the extension off f.
    assert np.abs(extend_potential(x, y, res, x, a=a) - res.f).max() > 1e-3


def test_extension_in_three_dimensions():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 1
    res = otgen.exact_ot(x, y)
    t = rng.normal(size=(11, 3))
    ref = (cdist(t, y, "sqeuclidean") - res.g).min(1)
    np.testing.assert_allclose(extend_potential(x, y, res, t), ref, rtol=1e-12)


def test_callable_cost_must_be_passed_again():
    x, y, _, _ = clouds()

    def l1(u, v):
        return torch.cdist(u, v, p=1)

    res = otgen.exact_ot(x, y, cost=l1)
    with pytest.raises(ValueError, match="callable cost 'l1'.*pass the same callable"):
        extend_potential(x, y, res, x)
    ref = (cdist(x, y, "cityblock") - res.g).min(1)
    np.testing.assert_allclose(extend_potential(x, y, res, x, cost=l1), ref)


def test_emd_result_needs_the_cost_of_its_matrix():
    x, y, a, b = clouds(15)
    res = otgen.emd(a, b, otgen.cost_matrix(x, y, "euclidean"))
    with pytest.raises(ValueError, match="solved from a cost matrix"):
        extend_potential(x, y, res, x)
    ref = (cdist(x, y) - res.g).min(1)
    got = extend_potential(x, y, res, x, cost="euclidean")
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    np.testing.assert_allclose(got, res.f, atol=1e-9)


def test_potential_errors(ax):
    x, y, a, b = clouds()
    res = otgen.exact_ot(x, y)
    x3 = np.zeros((12, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        potential_map(x3, y, res, ax=ax)
    with pytest.raises(ValueError, match="cost='euclidean' does not match"):
        potential_map(x, y, res, cost="euclidean", ax=ax)
    with pytest.raises(ValueError, match="potentials have lengths"):
        potential_map(x[:5], y, res, ax=ax)
    with pytest.raises(TypeError, match="result must be an OTResult"):
        potential_map(x, y, res.plan, ax=ax)
    with pytest.raises(ValueError, match="which must be 'f'"):
        potential_map(x, y, res, which="h", ax=ax)
    with pytest.raises(ValueError, match="resolution must be in"):
        potential_map(x, y, res, resolution=1, ax=ax)
    with pytest.raises(ValueError, match="extent must be"):
        potential_map(x, y, res, extent=(1, 0, 0, 1), ax=ax)
    with pytest.raises(ValueError, match="levels must be an integer >= 0"):
        potential_map(x, y, res, levels=-1, ax=ax)
    with pytest.raises(ValueError, match="points must have 2 columns"):
        extend_potential(x, y, res, np.zeros((4, 3)))


# -- witness ---------------------------------------------------------------------


def naive_imq_witness(t, x, y, C):
    kx = np.array([[C / (C + ((ti - xi) ** 2).sum()) for xi in x] for ti in t])
    ky = np.array([[C / (C + ((ti - yj) ** 2).sum()) for yj in y] for ti in t])
    return kx.mean(1) - ky.mean(1)


def test_witness_map_equals_the_naive_witness(ax):
    x, y, _, _ = clouds(11)
    witness_map(x, y, ax=ax, resolution=15)  # default: IMQ with C = 2 d = 4
    (im,) = ax.images
    assert im.get_gid() == "otgen.witness"
    ref = naive_imq_witness(grid_of(im), x, y, 4.0)
    np.testing.assert_allclose(im.get_array().ravel(), ref, rtol=1e-10, atol=1e-13)


def test_witness_sign_follows_the_densities():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(200, 2)) * 0.5 + [-2.0, 0.0]
    y = rng.normal(size=(200, 2)) * 0.5 + [2.0, 0.0]
    w = mmd_witness(x, y, np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 0.0]]),
                    kernel="gaussian", scale=1.0)  # fmt: skip
    assert w[0] > 0.1 and w[1] < -0.1 and abs(w[2]) < 0.05


def test_witness_integrates_to_the_biased_mmd2():
    x, y, a, b = clouds(13)
    for kernel, scale in [("gaussian", 0.7), ("imq", 2.0), ("laplacian", 1.0)]:
        wx = mmd_witness(x, y, x, a=a, b=b, kernel=kernel, scale=scale)
        wy = mmd_witness(x, y, y, a=a, b=b, kernel=kernel, scale=scale)
        ref = otgen.mmd(x, y, a, b, kernel=kernel, scale=scale, estimator="biased")
        np.testing.assert_allclose(a @ wx - b @ wy, ref, rtol=1e-10)


def test_median_scale_is_resolved_on_the_samples():
    x, y, _, _ = clouds(14)
    t = np.array([[10.0, 10.0], [0.0, 0.0]])
    s = otgen.median_heuristic(x, y)
    got = mmd_witness(x, y, t, kernel="gaussian", scale="median")
    np.testing.assert_allclose(
        got, mmd_witness(x, y, t, kernel="gaussian", scale=s), rtol=1e-12
    )


def test_witness_errors(ax):
    x, y, _, _ = clouds()
    with pytest.raises(ValueError, match=r"y must have shape \(n, 2\)"):
        witness_map(x, np.zeros((9, 4)), ax=ax)
    with pytest.raises(ValueError, match="a must be 12 finite non-negative"):
        witness_map(x, y, a=np.ones(3), ax=ax)
    with pytest.raises(ValueError, match="kernel must be one of"):
        witness_map(x, y, kernel="cosine", ax=ax)
    with pytest.raises(ValueError, match="levels must be an integer >= 0"):
        witness_map(x, y, levels=2.5, ax=ax)
