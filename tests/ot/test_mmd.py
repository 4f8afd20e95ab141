"""MMD estimators and the permutation test against independent references."""

import math
import zlib

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.spatial.distance import cdist
from scipy.stats import energy_distance

import otgen.ot._reduce as reduce_mod
from otgen import Kernel, mmd, mmd_test
from otgen.ot._reduce import kernel_matmul, kernel_quadform
from tests.conftest import NATIVE, TOL

NAMED = ["gaussian", "laplacian", "imq", "energy"]
ESTIMATORS = ["unbiased", "biased", "all_pairs", "off_diagonal", "linear"]


def gram(u, v, name, s):
    D = cdist(u, v)
    if name == "gaussian":
        return np.exp(-(D**2) / (2 * s * s))
    if name == "laplacian":
        return np.exp(-D / s)
    if name == "imq":
        return s / (s + D**2)
    if name == "energy":
        return -D / s
    return np.tanh(u @ v.T) + 1.0  # the callable below


def user_kernel(u, v):
    return torch.tanh(u @ v.T) + 1.0


def brute_force(x, y, name, s, estimator, a=None, b=None):
    """Plain double loops over the pairs (independent of otgen's algebra)."""
    n, m = len(x), len(y)
    a = np.full(n, 1 / n) if a is None else a
    b = np.full(m, 1 / m) if b is None else b

    def k(u, v):
        return gram(u[None], v[None], name, s)[0, 0]

    if estimator == "linear":
        h = n // 2
        tot = 0.0
        for i in range(h):
            x1, x2, y1, y2 = x[2 * i], x[2 * i + 1], y[2 * i], y[2 * i + 1]
            tot += k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)
        return tot / h
    if estimator == "off_diagonal":
        tot = 0.0
        for i in range(n):
            for j in range(n):
                if i != j:
                    tot += k(x[i], x[j]) + k(y[i], y[j]) - 2 * k(x[i], y[j])
        return tot / (n * (n - 1))
    exclude = estimator != "biased"
    sxx = sum(
        a[i] * a[j] * k(x[i], x[j])
        for i in range(n)
        for j in range(n)
        if not (exclude and i == j)
    )
    syy = sum(
        b[i] * b[j] * k(y[i], y[j])
        for i in range(m)
        for j in range(m)
        if not (exclude and i == j)
    )
    sxy = sum(a[i] * b[j] * k(x[i], y[j]) for i in range(n) for j in range(m))
    if exclude:
        sxx /= 1 - (a**2).sum()
        syy /= 1 - (b**2).sum()
    return sxx + syy - 2 * sxy


@pytest.mark.parametrize("name", NAMED + ["callable"])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_matches_brute_force(name, estimator):
    rng = np.random.default_rng(zlib.crc32(f"{name}-{estimator}".encode()))
    x, y = rng.normal(size=(9, 3)), rng.normal(size=(9, 3)) + 0.7
    kernel = user_kernel if name == "callable" else name
    scale = None if name == "callable" else 1.3
    want = brute_force(x, y, name, 1.3, estimator)
    for backend in ("dense", "chunked", *(NATIVE if name != "callable" else [])):
        got = mmd(
            x, y, kernel=kernel, scale=scale, estimator=estimator, backend=backend
        )
        assert isinstance(got, float)
        assert_allclose(got, want, **TOL[torch.float64])


@pytest.mark.parametrize("name", NAMED + ["callable"])
@pytest.mark.parametrize("estimator", ["unbiased", "biased"])
def test_weighted_unequal_sizes_match_brute_force(name, estimator):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(7, 2)), rng.normal(size=(5, 2)) * 2
    a, b = rng.random(7), rng.random(5)
    a, b = a / a.sum(), b / b.sum()
    kernel = user_kernel if name == "callable" else name
    scale = None if name == "callable" else 0.8
    got = mmd(x, y, a, b, kernel=kernel, scale=scale, estimator=estimator)
    want = brute_force(x, y, name, 0.8, estimator, a, b)
    assert_allclose(got, want, **TOL[torch.float64])


@pytest.mark.parametrize("name", ["gaussian", "laplacian", "energy"])
def test_biased_is_twice_geomloss(name):
    # GeomLoss's SamplesLoss(kernel) is half the V-statistic, blur = scale.
    geomloss = pytest.importorskip("geomloss")
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(40, 3)))
    y = torch.from_numpy(rng.normal(size=(30, 3)) + 0.5)
    # GeomLoss's energy kernel ignores blur (scale 1).
    scale = 1.0 if name == "energy" else 0.7
    loss = geomloss.SamplesLoss(name, blur=scale, backend="tensorized")
    got = mmd(x, y, kernel=name, scale=scale, estimator="biased")
    tol = dict(TOL[torch.float64])
    if name != "gaussian":
        # GeomLoss clamps squared distances at 1e-8 (in units of blur) before
        # the root, so its diagonal terms are off by up to 1e-4 each.
        tol["atol"] = 1.01e-4 * (1 / 40 + 1 / 30)
    assert_allclose(got.item(), 2 * loss(x, y).item(), **tol)


def test_energy_kernel_is_energy_distance():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=50), rng.exponential(size=70)
    got = mmd(x, y, kernel="energy", estimator="biased", squared=False)
    assert_allclose(got, energy_distance(x, y), **TOL[torch.float64])


def gaussian_closed_form(mu, s1, s2, d, s):
    """MMD^2 of N(0, s1^2 I) and N(mu 1, s2^2 I), Gaussian kernel of width s."""

    def e(var, shift2):
        return (s * s / (s * s + var)) ** (d / 2) * math.exp(
            -shift2 / (2 * (s * s + var))
        )

    exx, eyy = e(2 * s1**2, 0.0), e(2 * s2**2, 0.0)
    exy = e(s1**2 + s2**2, d * mu**2)
    return exx + eyy - 2 * exy, exx, eyy


@pytest.mark.parametrize("estimator", ["unbiased", "off_diagonal", "linear"])
def test_unbiased_against_closed_form(estimator):
    # docs/paper.md check 13: mean over seeded batches within 4 standard errors.
    d, mu, s1, s2, s, n, reps = 2, 0.3, 1.0, 1.3, 1.0, 12, 400
    truth, _, _ = gaussian_closed_form(mu, s1, s2, d, s)
    g = torch.Generator().manual_seed(11)
    x = torch.randn(reps, n, d, generator=g, dtype=torch.float64) * s1
    y = torch.randn(reps, n, d, generator=g, dtype=torch.float64) * s2 + mu
    est = np.array(
        [
            mmd(x[r], y[r], kernel="gaussian", scale=s, estimator=estimator).item()
            for r in range(reps)
        ]
    )
    se = est.std(ddof=1) / math.sqrt(reps)
    assert abs(est.mean() - truth) < 4 * se


def test_biased_expectation_closed_form():
    # E V = MMD^2 + (k(0) - E k(X, X')) / n + (k(0) - E k(Y, Y')) / m.
    d, mu, s1, s2, s, n, reps = 2, 0.3, 1.0, 1.3, 1.0, 10, 400
    truth, exx, eyy = gaussian_closed_form(mu, s1, s2, d, s)
    expected = truth + (1 - exx) / n + (1 - eyy) / n
    g = torch.Generator().manual_seed(12)
    x = torch.randn(reps, n, d, generator=g, dtype=torch.float64) * s1
    y = torch.randn(reps, n, d, generator=g, dtype=torch.float64) * s2 + mu
    est = np.array(
        [
            mmd(x[r], y[r], kernel="gaussian", scale=s, estimator="biased").item()
            for r in range(reps)
        ]
    )
    assert abs(est.mean() - expected) < 4 * est.std(ddof=1) / math.sqrt(reps)


def test_large_sample_close_to_closed_form():
    d, mu, s1, s2, s = 3, 0.5, 1.0, 1.5, 1.2
    truth, _, _ = gaussian_closed_form(mu, s1, s2, d, s)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3000, d, generator=g, dtype=torch.float64) * s1
    y = torch.randn(3000, d, generator=g, dtype=torch.float64) * s2 + mu
    got = mmd(x, y, kernel="gaussian", scale=s, backend="chunked").item()
    # Standard deviation of the U-statistic at n = 3000 is about 2e-3 here.
    assert abs(got - truth) < 1e-2


def test_multiscale_is_sum_of_single_scales(rng):
    x, y = rng.normal(size=(15, 4)), rng.normal(size=(20, 4)) + 0.2
    scales = [0.5, 2.0, 8.0]
    for est in ("unbiased", "biased"):
        total = mmd(x, y, kernel="imq", scale=scales, estimator=est)
        parts = sum(mmd(x, y, kernel="imq", scale=c, estimator=est) for c in scales)
        assert_allclose(total, parts, **TOL[torch.float64])


def test_equal_samples_and_median_scale(rng):
    x = rng.normal(size=(20, 3))
    assert mmd(x, x, estimator="biased") == pytest.approx(0.0, abs=1e-15)
    y = rng.normal(size=(25, 3))
    from otgen import median_heuristic

    med = median_heuristic(x, y)
    assert mmd(x, y, kernel="gaussian", scale="median") == mmd(
        x, y, kernel="gaussian", scale=med
    )


def test_squared_flag(rng):
    x, y = rng.normal(size=(10, 2)), rng.normal(size=(12, 2)) + 1
    v2 = mmd(x, y, estimator="biased")
    assert_allclose(mmd(x, y, estimator="biased", squared=False), math.sqrt(v2))
    # A negative unbiased estimate has root 0.
    xs, ys = rng.normal(size=(10, 2)), rng.normal(size=(10, 2))
    for seed in range(50):
        r = np.random.default_rng(seed)
        xs, ys = r.normal(size=(10, 2)), r.normal(size=(10, 2))
        if mmd(xs, ys) < 0:
            assert mmd(xs, ys, squared=False) == 0.0
            break
    else:
        pytest.fail("no negative unbiased estimate in 50 seeds")


def test_float32_torch_output_and_cancellation():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=g, dtype=torch.float64)
    y = torch.randn(300, 3, generator=g, dtype=torch.float64) + 0.3
    ref = mmd(x, y, kernel="laplacian", scale=1.0)
    # Far from the origin, float32: centring keeps the distances accurate.
    got = mmd((x + 1e4).float(), (y + 1e4).float(), kernel="laplacian", scale=1.0)
    assert got.dtype == torch.float32 and got.ndim == 0
    assert abs(got.item() - ref.item()) < 1e-4


@pytest.mark.parametrize("name", NAMED + ["callable"])
def test_chunked_blocks_equal_dense(name, monkeypatch):
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(37, 3)), rng.normal(size=(29, 3)) + 0.4
    kernel = user_kernel if name == "callable" else name
    scale = None if name == "callable" else [0.5, 1.5]
    dense = mmd(x, y, kernel=kernel, scale=scale, backend="dense")
    monkeypatch.setattr(reduce_mod, "KERNEL_CHUNK_PAIRS", 150)  # many blocks
    chunked = mmd(x, y, kernel=kernel, scale=scale, backend="chunked")
    assert_allclose(chunked, dense, **TOL[torch.float64])


def test_kernel_matmul_rectangular_and_symmetric():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(23, 2, generator=g, dtype=torch.float64)
    y = torch.randn(17, 2, generator=g, dtype=torch.float64)
    V = torch.randn(17, 6, generator=g, dtype=torch.float64)
    W = torch.randn(23, 6, generator=g, dtype=torch.float64)
    k = Kernel("imq", scales=(2.0,))
    Kxy = torch.from_numpy(gram(x.numpy(), y.numpy(), "imq", 2.0))
    Kxx = torch.from_numpy(gram(x.numpy(), x.numpy(), "imq", 2.0))
    for be in ("dense", "chunked"):
        got = kernel_matmul(x, V, k, be, y=y, chunk_pairs=40)
        assert torch.allclose(got, Kxy @ V, **TOL[torch.float64])
        got = kernel_matmul(x, W, k, be, chunk_pairs=40)
        assert torch.allclose(got, Kxx @ W, **TOL[torch.float64])


def test_kernel_quadform_against_explicit_matrix():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(31, 3, generator=g, dtype=torch.float64)
    V = torch.randn(31, 3, generator=g, dtype=torch.float64)
    k = Kernel("laplacian", scales=(0.9,))
    K = torch.from_numpy(gram(x.numpy(), x.numpy(), "laplacian", 0.9))
    for be in ("dense", "chunked"):
        for pairs in (50, 300, 10_000):  # 1 row per block, several rows, one block
            got = kernel_quadform(x, V, k, be, chunk_pairs=pairs)
            assert torch.allclose(got, V.T @ K @ V, **TOL[torch.float64])
            got = kernel_quadform(x, V, k, be, diag=True, chunk_pairs=pairs)
            assert torch.allclose(got, (V * (K @ V)).sum(0), **TOL[torch.float64])


@pytest.mark.parametrize("name", NAMED)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_gradcheck(name, estimator, monkeypatch):
    monkeypatch.setattr(reduce_mod, "KERNEL_CHUNK_PAIRS", 40)  # checkpointed blocks
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 2, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(6, 2, generator=g, dtype=torch.float64, requires_grad=True)
    # The chunked path is the same algebra: check it on two estimators only.
    backends = (
        ("dense", "chunked") if estimator in ("unbiased", "biased") else ("dense",)
    )
    for be in backends:

        def f(u, v, be=be):
            return mmd(
                u, v, kernel=name, scale=[0.7, 2.0], estimator=estimator, backend=be
            )

        assert torch.autograd.gradcheck(f, (x, y))


def test_gradcheck_weights():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5, 2, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 2, generator=g, dtype=torch.float64)
    a = torch.full((5,), 0.2, dtype=torch.float64, requires_grad=True)
    b = torch.full((4,), 0.25, dtype=torch.float64, requires_grad=True)

    def f(x, a, b):
        # Weights that stay summing to 1 under the perturbation of gradcheck
        # would need a projection; the formula is polynomial in a, b, so its
        # gradient is checked without that constraint on a normalised copy.
        return mmd(x, y, a / a.sum(), b / b.sum(), kernel="imq", estimator="biased")

    assert torch.autograd.gradcheck(f, (x, a, b))


def test_chunked_gradient_equals_dense(monkeypatch):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(35, 3, generator=g, dtype=torch.float64, requires_grad=True)
    gd = torch.autograd.grad(mmd(x, y, kernel="imq", backend="dense"), (x, y))
    monkeypatch.setattr(reduce_mod, "KERNEL_CHUNK_PAIRS", 200)
    gc = torch.autograd.grad(mmd(x, y, kernel="imq", backend="chunked"), (x, y))
    for u, v in zip(gd, gc):
        assert torch.allclose(u, v, **TOL[torch.float64])


def test_no_grad_leak():
    x = torch.randn(10, 2)
    y = torch.randn(10, 2)
    out = mmd(x, y)
    assert not out.requires_grad and torch.is_grad_enabled()


# ---------------------------------------------------------------- permutation test
def test_statistic_matches_mmd_and_backends_agree():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(25, 2)) + 0.3
    for est in ("unbiased", "biased"):
        r = mmd_test(
            x,
            y,
            kernel="laplacian",
            scale=1.1,
            estimator=est,
            n_permutations=60,
            seed=3,
        )
        assert_allclose(
            r.statistic,
            mmd(x, y, kernel="laplacian", scale=1.1, estimator=est),
            **TOL[torch.float64],
        )
        rc = mmd_test(
            x,
            y,
            kernel="laplacian",
            scale=1.1,
            estimator=est,
            n_permutations=60,
            seed=3,
            backend="chunked",
        )
        assert_allclose(rc.null_statistics, r.null_statistics, **TOL[torch.float64])
        assert rc.p_value == r.p_value


def test_null_statistics_are_split_estimates():
    # Each permuted statistic is the MMD of some re-split of the pooled sample:
    # their mean over many permutations is close to 0 for the U-statistic
    # (exactly 0 in expectation over all splits).
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 2)) + 2.0
    r = mmd_test(x, y, kernel="gaussian", scale=1.0, n_permutations=2000, seed=1)
    se = r.null_statistics.std() / math.sqrt(2000)
    assert abs(r.null_statistics.mean()) < 4 * se
    assert r.p_value == 1 / 2001


def test_reproducible_from_seed():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(15, 2)), rng.normal(size=(15, 2)) + 0.4
    r1 = mmd_test(x, y, n_permutations=99, seed=5)
    r2 = mmd_test(x, y, n_permutations=99, seed=5)
    r3 = mmd_test(x, y, n_permutations=99, seed=6)
    assert r1.p_value == r2.p_value
    assert np.array_equal(r1.null_statistics, r2.null_statistics)
    assert not np.array_equal(r1.null_statistics, r3.null_statistics)


def test_size_under_null():
    # Under H0 the +1-corrected p-value is valid: P(p <= alpha) = alpha for
    # alpha (B + 1) integer. 200 seeded trials: within 4 binomial SEs.
    alpha, trials, hits = 0.1, 200, 0
    for t in range(trials):
        rng = np.random.default_rng(1000 + t)
        x, y = rng.normal(size=(15, 2)), rng.normal(size=(15, 2))
        hits += mmd_test(x, y, n_permutations=99, seed=t).reject(alpha)
    rate = hits / trials
    assert abs(rate - alpha) < 4 * math.sqrt(alpha * (1 - alpha) / trials)


def test_power_under_mean_shift():
    trials, hits = 20, 0
    for t in range(trials):
        rng = np.random.default_rng(2000 + t)
        x, y = rng.normal(size=(100, 2)), rng.normal(size=(100, 2))
        y[:, 0] += 0.6
        hits += mmd_test(x, y, n_permutations=199, seed=t).reject(0.05)
    assert hits >= 16


# ---------------------------------------------------------------- validation
def test_errors():
    x, y = np.zeros((4, 2)) + np.arange(4)[:, None], np.ones((4, 2))
    with pytest.raises(ValueError, match="estimator must be one of"):
        mmd(x, y, estimator="mean")
    with pytest.raises(ValueError, match="'off_diagonal' pairs x.l. with y.l."):
        mmd(x, y, np.full(4, 0.25), estimator="off_diagonal")
    with pytest.raises(ValueError, match="'linear' needs as many points in x as in y"):
        mmd(x, y[:3], estimator="linear")
    with pytest.raises(ValueError, match="needs at least 2 points in x and in y"):
        mmd(x[:1], y)
    with pytest.raises(ValueError, match="a must sum to 1"):
        mmd(x, y, np.ones(4))
    with pytest.raises(ValueError, match="b must sum to 1"):
        mmd(x, y, None, np.full(4, 0.3))
    with pytest.raises(ValueError, match="a must be non-negative"):
        mmd(x, y, np.array([1.5, -0.5, 0.0, 0.0]))
    with pytest.raises(ValueError, match="needs at least 2 points with positive"):
        mmd(x, y, np.array([1.0, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="backend must be one of"):
        mmd(x, y, backend="gpu")
    with pytest.raises(ValueError, match="same dimension"):
        mmd(x, np.ones((4, 3)))
    with pytest.raises(ValueError, match="x must be finite"):
        mmd(x * np.nan, y)
    with pytest.raises(ValueError, match="n_permutations must be a positive integer"):
        mmd_test(x, y, n_permutations=0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        mmd_test(x, y, seed=-1)
    with pytest.raises(ValueError, match="estimator must be one of 'unbiased', 'bia"):
        mmd_test(x, y, estimator="linear")
    with pytest.raises(ValueError, match="backend='keops' cannot compile"):
        if reduce_mod.keops_available():
            mmd(x, y, kernel=user_kernel, backend="keops")
        else:  # pragma: no cover - pykeops is a test dependency
            raise ValueError("backend='keops' cannot compile")


@pytest.mark.keops
def test_keops_equals_dense():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(30, 3, generator=g, dtype=torch.float64)
    y = torch.randn(20, 3, generator=g, dtype=torch.float64) + 0.5
    dense = mmd(x, y, kernel="gaussian", scale=1.0, backend="dense")
    keops = mmd(x, y, kernel="gaussian", scale=1.0, backend="keops")
    assert torch.allclose(keops, dense, **TOL[torch.float64])
    r_d = mmd_test(x, y, kernel="gaussian", scale=1.0, n_permutations=20)
    r_k = mmd_test(
        x, y, kernel="gaussian", scale=1.0, n_permutations=20, backend="keops"
    )
    assert np.allclose(r_k.null_statistics, r_d.null_statistics, rtol=1e-9)
