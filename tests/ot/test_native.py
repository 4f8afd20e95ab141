"""The native (fused C++) backend against torch and brute-force references."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.spatial.distance import cdist

import otgen
import otgen.ot._reduce as reduce_mod
from otgen import Kernel, mmd, mmd_test
from otgen.ot import _native
from otgen.ot._reduce import kernel_matmul, kernel_quadform, softmin
from otgen.ot.costs import Cost
from tests.conftest import TOL

pytestmark = pytest.mark.skipif(
    not _native.available(), reason=f"native backend: {_native.unavailable_reason()}"
)

# float32: each exp and squared distance carries ~1e-7 relative error; sums of
# 1e3 terms agree with float64 to a few 1e-6 relative.
TOL_F32 = dict(rtol=2e-5, atol=2e-5)


def cloud(n, d, seed, dtype=torch.float64, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift).to(
        dtype
    )


def lse_ref(x, y, h, eps, p):
    """log-sum-exp over y in float64 with SciPy's distances."""
    D = torch.from_numpy(cdist(x.double().numpy(), y.double().numpy()))
    return torch.logsumexp(h.double()[None, :] - D**p / eps, 1)


# Unrolled (2, 3), generic row by row (1, 5) and by groups of 4 rows (9, 64;
# 70 rows: a ragged last group).
@pytest.mark.parametrize("d", [1, 2, 3, 5, 9, 64])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lse_rows_matches_logsumexp(d, p, dtype):
    # m = 1100 spans several column tiles and a ragged last one.
    x, y = cloud(70, d, 0, dtype), cloud(1100, d, 1, dtype, shift=0.5, scale=1.5)
    h = cloud(1100, 1, 2, dtype)[:, 0]
    h[::7] = -torch.inf  # zero weights: log 0
    got = _native.lse_rows(x, y.T, h, 0.3, p)
    tol = TOL[torch.float64] if dtype == torch.float64 else TOL_F32
    assert got.dtype == dtype
    assert_allclose(got.double().numpy(), lse_ref(x, y, h, 0.3, p).numpy(), **tol)


@pytest.mark.parametrize("d", [3, 64])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("sparse", [False, True])
def test_expgrad_rows_matches_dense(d, p, sparse):
    # 150 rows: blocks of 64 rows and a ragged one (dense units of 64 rows; a
    # single block-sparse unit of 150 rows over two column ranges).
    x, y = cloud(150, d, 20), cloud(1100, d, 21, shift=0.5, scale=1.5)
    be, w = cloud(1100, 1, 22)[:, 0], torch.rand(1100, dtype=torch.float64) + 0.5
    eps = 0.5 * d
    cols = torch.ones(1100, dtype=torch.bool)
    units = None
    if sparse:
        ranges = torch.tensor([[0, 300], [700, 1100]], dtype=torch.int64)
        units = (torch.tensor([0, 150]), torch.tensor([0, 2]), ranges.flatten())
        cols[300:700] = False
    al = -_native.lse_rows(x, y.T, be, eps, p, units)  # exponents <= 0
    G, S = _native.expgrad_rows(x, y.T, al, be, w, eps, p, units)
    D = torch.from_numpy(cdist(x.numpy(), y.numpy()))
    e = w * torch.exp(al[:, None] + be[None] - D**p / eps) * cols
    diff = x[:, None, :] - y[None, :, :]
    dC = 2 * diff if p == 2 else diff / D[..., None]
    assert_allclose(S.numpy(), e.sum(1).numpy(), **TOL[torch.float64])
    assert_allclose(G.numpy(), (e[..., None] * dC).sum(1).numpy(), **TOL[torch.float64])


def test_lse_rows_extreme_exponents():
    # eps tiny: exponents down to -1e6 are clamped (exp underflows), the row
    # maximum carries the value; all -inf columns give -inf.
    x, y = cloud(20, 3, 3), cloud(30, 3, 4)
    h = torch.zeros(30, dtype=torch.float64)
    got = _native.lse_rows(x, y.T, h, 1e-4, 2)
    assert_allclose(got.numpy(), lse_ref(x, y, h, 1e-4, 2).numpy(), rtol=1e-12)
    dead = _native.lse_rows(x, y.T, torch.full_like(h, -torch.inf), 1.0, 2)
    assert torch.isneginf(dead).all()


def test_threads_give_identical_results():
    # Each row is reduced by one thread: the split does not change any bit.
    x, y = cloud(333, 3, 5, torch.float32), cloud(517, 3, 6, torch.float32)
    h = torch.zeros(517)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _native.lse_rows(x, y.T, h, 0.1, 2)
        torch.set_num_threads(2)
        two = _native.lse_rows(x, y.T, h, 0.1, 2)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(one, two)


@pytest.mark.parametrize("p", [1, 2])
def test_softmin_gradients_match_dense(p):
    cost = Cost(p=p)
    x = cloud(40, 3, 7).requires_grad_()
    y = cloud(55, 3, 8, shift=0.3).requires_grad_()
    h = cloud(55, 1, 9)[:, 0].requires_grad_()
    w = cloud(40, 1, 10)[:, 0]  # signed weights on the outputs
    grads = {}
    for backend in ("dense", "native"):
        out = softmin(x, y, h, 0.2, cost, backend)
        grads[backend] = torch.autograd.grad((w * out).sum(), (x, y, h))
    for got, want in zip(grads["native"], grads["dense"]):
        assert_allclose(got.numpy(), want.numpy(), **TOL[torch.float64])


@pytest.mark.parametrize("reach", [None, 1.0])
def test_sinkhorn_gradcheck(reach):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, dtype=torch.float64, generator=g).requires_grad_()
    y = torch.randn(5, 2, dtype=torch.float64, generator=g).requires_grad_()
    a = (torch.rand(6, dtype=torch.float64, generator=g) + 0.5).requires_grad_()
    b = (torch.rand(5, dtype=torch.float64, generator=g) + 0.5).requires_grad_()

    def fn(x, y, a, b):
        kw = dict(eps=0.3, tol=1e-13, reach=reach, backend="native")
        if reach is None:
            a, b = a / a.sum(), b / b.sum()
        return otgen.sinkhorn(x, y, a, b, **kw).value

    assert torch.autograd.gradcheck(fn, (x, y, a, b), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("p", [1, 2])
def test_sinkhorn_native_equals_dense(p):
    x, y = cloud(120, 3, 11), cloud(90, 3, 12, shift=1.0, scale=1.5)
    cost = "sqeuclidean" if p == 2 else "euclidean"
    kw = dict(eps=0.1, cost=cost, tol=1e-11, max_iter=5000)
    rd = otgen.sinkhorn(x, y, backend="dense", **kw)
    rn = otgen.sinkhorn(x, y, backend="native", **kw)
    assert rn.backend == "native" and rn.converged
    assert_allclose(float(rn.value), float(rd.value), rtol=1e-10)
    assert_allclose(rn.f.numpy(), rd.f.numpy(), rtol=1e-7, atol=1e-8)
    assert_allclose(rn.g.numpy(), rd.g.numpy(), rtol=1e-7, atol=1e-8)


def test_sinkhorn_divergence_float32_far_from_origin():
    # Differences of nearby float32 coordinates are exact (Sterbenz), so an
    # offset of 1e4 costs nothing; |x|^2 + |y|^2 - 2<x, y> would lose it all.
    x, y = cloud(300, 3, 13), cloud(300, 3, 14, shift=0.5)
    ref = otgen.sinkhorn_divergence(x, y, eps=0.1, backend="dense")
    got = otgen.sinkhorn_divergence(
        (x + 1e4).float(), (y + 1e4).float(), eps=0.1, backend="native"
    )
    assert_allclose(float(got), float(ref), rtol=2e-3)


def test_auto_picks_native_for_large_cpu_problems():
    x, y = cloud(600, 3, 15), cloud(500, 3, 16)
    assert otgen.sinkhorn(x, y, eps=0.5).backend == "native"
    small = otgen.sinkhorn(x[:50], y[:40], eps=0.5)
    assert small.backend == "dense"
    # A callable cost is not compiled: auto falls back to torch.
    r = otgen.sinkhorn(x, y, eps=0.5, cost=lambda u, v: torch.cdist(u, v))
    assert r.backend in ("dense", "chunked")


def test_unavailable_backend_falls_back_and_explains(monkeypatch):
    monkeypatch.setattr(_native, "available", lambda: False)
    monkeypatch.setattr(_native, "unavailable_reason", lambda: "no C++ compiler")
    x, y = cloud(600, 3, 15), cloud(500, 3, 16)
    assert otgen.sinkhorn(x, y, eps=0.5).backend == "dense"
    with pytest.raises(ValueError, match="unavailable: no C\\+\\+ compiler"):
        otgen.sinkhorn(x, y, eps=0.5, backend="native")


def test_errors_name_what_is_unsupported():
    x, y = cloud(10, 3, 0), cloud(10, 3, 1)
    with pytest.raises(ValueError, match="backend='native' cannot run.*cost"):
        otgen.sinkhorn(x, y, eps=0.5, cost="minkowski", p=3, backend="native")
    with pytest.raises(ValueError, match="kernel 'energy' with beta=1.5"):
        mmd(x, y, kernel=Kernel("energy", beta=1.5), backend="native")
    with pytest.raises(ValueError, match="kernel 'callable'"):
        mmd(x, y, kernel=lambda u, v: u @ v.T, backend="native")
    with pytest.raises(ValueError, match="dimension 65 > 64"):
        mmd(cloud(5, 65, 0), cloud(5, 65, 1), backend="native")


KERNELS = [
    Kernel("gaussian", scales=(0.7, 2.0)),
    Kernel("laplacian", scales=(1.3,)),
    Kernel("imq", scales=(0.5, 1.0, 4.0)),
    Kernel("energy", scales=(1.0,)),
    Kernel("energy", scales=(2.0,), beta=2.0),
]


def gram(u, v, k):
    """Gram matrix from SciPy distances and the kernel formulas."""
    D = cdist(u.numpy(), v.numpy())
    total = np.zeros_like(D)
    for s in k.scales:
        if k.name == "gaussian":
            total += np.exp(-(D**2) / (2 * s * s))
        elif k.name == "laplacian":
            total += np.exp(-D / s)
        elif k.name == "imq":
            total += s / (s + D**2)
        else:
            total += -((D / s) ** k.beta)
    return torch.from_numpy(total)


@pytest.mark.parametrize("k", KERNELS, ids=lambda k: f"{k.name}{k.beta:g}")
# 2, 3: unrolled; 6: any-d row by row; 24 (>= KROWS_MIN_DIM): rows by groups
# of 4 (45 rows: a ragged last group; triangular sums start mid-group).
@pytest.mark.parametrize("d", [2, 3, 6, 24])
def test_kernel_matmul_and_quadform_match_gram(k, d):
    x, y = cloud(45, d, 20), cloud(600, d, 21, shift=0.4)
    V = cloud(600, 11, 22)  # 11 columns: two calls of at most 8
    W = cloud(45, 3, 23)
    assert_allclose(
        kernel_matmul(x, V, k, "native", y=y).numpy(),
        (gram(x, y, k) @ V).numpy(),
        **TOL[torch.float64],
    )
    assert_allclose(
        kernel_matmul(x, W, k, "native").numpy(),
        (gram(x, x, k) @ W).numpy(),
        **TOL[torch.float64],
    )
    Q = kernel_quadform(x, W, k, "native")
    assert_allclose(Q.numpy(), (W.T @ gram(x, x, k) @ W).numpy(), **TOL[torch.float64])
    q = kernel_quadform(x, W, k, "native", diag=True)
    assert_allclose(q.numpy(), Q.diagonal().numpy(), **TOL[torch.float64])


@pytest.mark.parametrize("k", KERNELS, ids=lambda k: f"{k.name}{k.beta:g}")
def test_kernel_gradients_match_dense(k):
    x = cloud(30, 3, 24).requires_grad_()
    y = cloud(25, 3, 25, shift=0.2).requires_grad_()
    V = cloud(25, 2, 26).requires_grad_()
    W = cloud(30, 2, 27).requires_grad_()
    G = cloud(2, 2, 28)
    for fn in (
        lambda be: (kernel_matmul(x, V, k, be, y=y) * W).sum(),
        lambda be: (kernel_matmul(x, W, k, be) * W.detach()).sum(),
        lambda be: (kernel_quadform(x, W, k, be) * G).sum(),
        lambda be: kernel_quadform(x, W, k, be, diag=True).sum(),
    ):
        want = torch.autograd.grad(fn("dense"), (x, y, V, W), allow_unused=True)
        got = torch.autograd.grad(fn("native"), (x, y, V, W), allow_unused=True)
        for u, v in zip(got, want):
            assert (u is None) == (v is None)
            if u is not None:
                assert_allclose(u.numpy(), v.numpy(), **TOL[torch.float64])


def test_mmd_gradcheck():
    x = cloud(7, 2, 30).requires_grad_()
    y = cloud(6, 2, 31).requires_grad_()
    for kernel in ("imq", "gaussian", "energy"):

        def fn(x, y, kernel=kernel):
            return mmd(x, y, kernel=kernel, scale=1.0, backend="native")

        assert torch.autograd.gradcheck(fn, (x, y))


def test_mmd_float32_matches_float64():
    x, y = cloud(700, 3, 32), cloud(800, 3, 33, shift=0.3)
    for kernel in ("gaussian", "laplacian", "imq", "energy"):
        ref = mmd(x, y, kernel=kernel, scale=1.0, backend="dense")
        got = mmd(x.float(), y.float(), kernel=kernel, scale=1.0, backend="native")
        assert got.dtype == torch.float32
        # MMD^2 is a difference of sums of ~1e6 kernel values (float64
        # accumulated across tiles): absolute error ~1e-7 of the sums' scale.
        assert abs(float(got) - float(ref)) < 1e-5 * max(1.0, abs(float(ref)))


def test_mmd_test_native_equals_dense(monkeypatch):
    x, y = cloud(300, 2, 34), cloud(300, 2, 35, shift=0.15)
    monkeypatch.setattr(reduce_mod, "NATIVE_MIN_PAIRS", 0)
    rn = mmd_test(x, y, kernel="gaussian", scale=1.0, n_permutations=50, seed=3)
    monkeypatch.setattr(reduce_mod, "NATIVE_MIN_PAIRS", 10**18)
    rd = mmd_test(x, y, kernel="gaussian", scale=1.0, n_permutations=50, seed=3)
    assert_allclose(rn.statistic, rd.statistic, **TOL[torch.float64])
    assert rn.p_value == rd.p_value


@pytest.mark.parametrize("k", KERNELS, ids=lambda k: f"{k.name}{k.beta:g}")
def test_linear_estimator_fused_pass_equals_torch(k):
    # n odd: the last point is left out by both; the fused pass has no
    # autograd, so with requires_grad the torch formula runs (and agrees).
    x, y = cloud(1001, 3, 40), cloud(1001, 3, 41, shift=0.3)
    want = mmd(x, y, kernel=k, estimator="linear", backend="dense")
    got = mmd(x, y, kernel=k, estimator="linear", backend="native")
    assert_allclose(got, want, **TOL[torch.float64])
    xg = x.clone().requires_grad_()
    val = mmd(xg, y, kernel=k, estimator="linear", backend="native")
    assert_allclose(val.item(), want, **TOL[torch.float64])
    assert torch.autograd.grad(val, xg)[0].abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lse_stored_matches_logsumexp(dtype):
    # 1100 columns: several tiles and a ragged last one; -inf weights.
    C = cloud(70, 1100, 30).abs().mul(5.0).to(dtype)
    h = cloud(1100, 1, 31, dtype)[:, 0]
    h[::7] = -torch.inf
    for eps in (0.3, 1e-4):  # 1e-4: exponents down to -1e5 are clamped
        want = torch.logsumexp(h.double()[None, :] - C.double() / eps, 1)
        got = _native.lse_stored(C, h, eps)
        tol = TOL[torch.float64] if dtype == torch.float64 else TOL_F32
        assert got.dtype == dtype
        assert_allclose(got.double().numpy(), want.numpy(), **tol)
    dead = _native.lse_stored(C, torch.full_like(h, -torch.inf), 1.0)
    assert torch.isneginf(dead).all()


@pytest.mark.parametrize("cost", ["sqeuclidean", "euclidean"])
def test_sinkhorn_stored_cost_equals_native(cost):
    # "dense" stores C and C^T and reduces with the native loop over them.
    x, y = cloud(120, 10, 32), cloud(90, 10, 33, shift=1.0, scale=1.5)
    kw = dict(eps=0.5, cost=cost, tol=1e-11, max_iter=5000)
    rs = otgen.sinkhorn(x, y, backend="dense", **kw)
    rn = otgen.sinkhorn(x, y, backend="native", **kw)
    assert rs.converged and rn.converged
    assert_allclose(float(rs.value), float(rn.value), rtol=1e-10)
    assert_allclose(rs.f.numpy(), rn.f.numpy(), rtol=1e-7, atol=1e-8)


def test_auto_stores_the_cost_in_high_dimension():
    x, y = cloud(600, 10, 34), cloud(500, 10, 35)
    assert otgen.sinkhorn(x, y, eps=5.0).backend == "dense"
    assert otgen.sinkhorn(x[:, :3], y[:, :3], eps=0.5).backend == "native"
    # A callable cost cannot be compiled: stored rather than recomputed.
    fn = lambda u, v: torch.cdist(u, v)  # noqa: E731
    assert otgen.sinkhorn(x[:, :3], y[:, :3], eps=0.5, cost=fn).backend == "dense"
    # Over the memory budget: the native loops recompute the pairs.
    old = reduce_mod.DENSE_MAX_BYTES
    try:
        reduce_mod.DENSE_MAX_BYTES = 600 * 500 * 8  # C fits, C and C^T do not
        assert otgen.sinkhorn(x, y, eps=5.0).backend == "native"
    finally:
        reduce_mod.DENSE_MAX_BYTES = old


def test_stored_gradient_beyond_dense_pairs(monkeypatch):
    # Beyond DENSE_MAX_PAIRS the gradient pass of a stored problem runs on
    # the native loops (O(n + m) memory): same gradients as dense autograd.
    x = cloud(80, 10, 36).requires_grad_()
    y = cloud(70, 10, 37, shift=0.5).requires_grad_()
    kw = dict(eps=2.0, tol=1e-12, backend="dense")
    want = torch.autograd.grad(otgen.sinkhorn(x, y, **kw).value, (x, y))
    monkeypatch.setattr(reduce_mod, "DENSE_MAX_PAIRS", 100)
    grad_red = reduce_mod.StoredCost(native_ok=True).for_gradient(80, 70)
    assert isinstance(grad_red, reduce_mod.Native)
    got = torch.autograd.grad(otgen.sinkhorn(x, y, **kw).value, (x, y))
    for g_, w_ in zip(got, want):
        assert_allclose(g_.numpy(), w_.numpy(), **TOL[torch.float64])
